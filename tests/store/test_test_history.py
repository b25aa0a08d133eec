"""Test results in the store: every build's tests kept (failures as rows, passes as
counts), replaced by a re-ingest, dropped by retention; ``recheck tests``' numbers."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from subunit_streams import stream_bytes, tempest_ids

from recheck.cli.main import main
from recheck.logs.build import Build
from recheck.logs.testresults import SubunitResults, failed_tests
from recheck.store import EmbeddedStore, Store, open_store

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TESTS = tempest_ids(40, seed=3)


def results(
    failed: Sequence[str] = (), skipped: Sequence[str] = (), seed: int = 0
) -> SubunitResults:
    return failed_tests(io.BytesIO(stream_bytes(TESTS, failed=failed, skipped=skipped, seed=seed)))


def build(uuid: str, job: str = "tempest-full", change: str = "100", patchset: str = "1") -> Build:
    return Build(
        build_uuid=uuid, build_name=job, build_status="FAILURE", build_change=change,
        build_patchset=patchset, build_queue="gate", log_url=f"https://logs.example/{uuid}/",
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    with open_store(tmp_path / "store") as opened:
        assert isinstance(opened, EmbeddedStore)
        yield opened


@pytest.fixture(params=["embedded", "elastic"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each backend: the embedded store, and the cluster store on the fake cluster."""
    if request.param == "embedded":
        with open_store(tmp_path / "store") as opened:
            yield opened
        return
    from elastic_fake import FakeCluster, serve

    from recheck.store.elastic.cluster import ElasticSettings
    from recheck.store.elastic.store import ElasticStore

    with serve(FakeCluster()) as url:
        settings = ElasticSettings(backend="elasticsearch", urls=(url,), timeout=10.0)
        with ElasticStore(settings) as cluster:
            yield cluster


def ingest(store: Store, b: Build, tests: SubunitResults | None, when: datetime) -> None:
    store.ingest(b, [], [], when=when, tests=tests)


def rows(store: EmbeddedStore, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(Path(store.path) / "catalog.sqlite") as conn:
        return list(conn.execute(sql))


def test_every_test_is_counted_and_failures_are_rows(store: EmbeddedStore) -> None:
    ingest(store, build("b1"), results(failed=TESTS[:2], skipped=TESTS[2:5]), NOW)

    assert rows(store, "SELECT sum(runs), sum(failures) FROM test_days") == [(37, 2)]
    assert rows(store, "SELECT sum(runs), sum(failures), job FROM test_counts") == [
        (37, 2, "tempest-full")
    ]
    failures = rows(
        store,
        "SELECT n.name, f.worker, f.details FROM test_failures f JOIN test_names n ON n.id = f.test"
        " ORDER BY n.name",
    )
    assert sorted(name for name, *_ in failures) == sorted(TESTS[:2])
    assert all(str(worker).startswith("worker-") for _, worker, _ in failures)
    assert all("TimeoutException" in str(details) for *_, details in failures)


def test_a_reingest_replaces_the_counts_and_gc_drops_them(store: EmbeddedStore) -> None:
    ingest(store, build("b1"), results(failed=TESTS[:2]), NOW)
    ingest(store, build("b2"), results(), NOW)
    ingest(store, build("b1"), results(failed=TESTS[:1]), NOW)  # --force: replaced

    assert rows(store, "SELECT sum(runs), sum(failures) FROM test_days") == [(80, 1)]
    assert rows(store, "SELECT count(*) FROM test_failures") == [(1,)]
    ingest(store, build("b1"), None, NOW)  # again, now without a stream
    assert rows(store, "SELECT sum(runs), sum(failures) FROM test_counts") == [(40, 0)]

    old = NOW - timedelta(days=20)
    ingest(store, build("b3"), results(failed=TESTS[:3]), old)
    dropped = store.gc(now=NOW, event_days=10, build_days=90)
    assert dropped.tests == 1
    assert rows(store, "SELECT sum(runs), sum(failures) FROM test_days") == [(40, 0)]
    assert rows(store, "SELECT count(*) FROM test_builds") == [(1,)]


# --- what recheck tests reports ---------------------------------------------------------


def test_a_failure_that_passed_on_recheck_is_flaky(any_store: Store) -> None:
    store = any_store
    ingest(store, build("b1", change="7", patchset="2"), results(failed=TESTS[:1]), NOW)
    ingest(store, build("b2", change="7", patchset="2"), results(), NOW + timedelta(hours=1))
    # Failed on another patchset and never passed there: not flaky by recheck.
    ingest(store, build("b3", change="8", patchset="1"), results(failed=TESTS[1:2]), NOW)

    found = {s.test: s for s in store.test_summaries(10, now=NOW + timedelta(hours=2))}
    assert set(found) == {TESTS[0], TESTS[1]}
    assert found[TESTS[0]].flaky and not found[TESTS[1]].flaky
    assert (found[TESTS[0]].runs, found[TESTS[0]].failures) == (3, 1)
    assert found[TESTS[0]].last_failure == NOW
    assert found[TESTS[0]].last_build == "b1"


def test_sporadic_failures_are_flaky_and_a_clear_start_is_a_regression(
    any_store: Store,
) -> None:
    store = any_store
    sporadic, broken = TESTS[0], TESTS[1]
    for day in range(8):
        for n in range(3):
            failed = ([sporadic] if (day, n) in {(1, 0), (5, 2)} else []) + (
                [broken] if day >= 6 else []
            )
            uuid = f"d{day}-{n}"
            when = NOW - timedelta(days=8 - day, hours=n)
            ingest(store, build(uuid, change=uuid), results(failed=failed), when)

    found = {s.test: s for s in store.test_summaries(10, now=NOW)}
    assert found[sporadic].flaky and (found[sporadic].failures, found[sporadic].runs) == (2, 24)
    assert not found[broken].flaky and found[broken].failures == 6
    assert [s.test for s in store.test_summaries(10, now=NOW)] == [broken, sporadic]
    assert [d.failures for d in found[broken].days] == [0, 0, 0, 0, 0, 0, 3, 3]


def test_job_and_pattern_narrow_the_tests(any_store: Store) -> None:
    store = any_store
    ingest(store, build("a", job="tempest-full"), results(failed=TESTS[:2]), NOW)
    ingest(store, build("b", job="nova-next"), results(failed=TESTS[2:3]), NOW)

    by_job = store.test_summaries(10, job="nova-next", now=NOW)
    assert [(s.test, s.runs, s.failures) for s in by_job] == [(TESTS[2], 1, 1)]
    piece = TESTS[5].split(".")[-1][:-3]
    by_pattern = store.test_summaries(10, pattern=f"tempest*{piece}", now=NOW)
    assert [(s.test, s.runs, s.failures) for s in by_pattern] == [(TESTS[5], 2, 0)]
    assert store.test_summaries(10, names=[TESTS[0], "unknown"], now=NOW)[0].test == TESTS[0]


def test_the_run_view_has_every_test_and_the_failures_tracebacks(any_store: Store) -> None:
    store = any_store
    ingest(store, build("b1"), results(failed=TESTS[3:4], skipped=TESTS[:1]), NOW)

    run = store.build_tests("b1")
    assert run is not None and run.build.uuid == "b1"
    assert len(run.tests) == 40 and {t[1] for t in run.tests} == {"success", "fail", "skip"}
    starts = [t[2] for t in run.tests]
    assert starts == sorted(starts)
    [failure] = run.failures
    assert failure.test == TESTS[3] and failure.details[0][0] == "traceback"
    assert run.counts == {"fail": 1, "skip": 1, "success": 38}
    assert store.build_tests("nope") is None
    assert store.tested_builds(["b1", "nope"]) == {"b1": 1}


# --- the command ------------------------------------------------------------------------


def test_recheck_tests_prints_json_worst_first_and_a_table(
    store: EmbeddedStore, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    ingest(store, build("b1"), results(failed=TESTS[:2]), now)
    ingest(store, build("b2"), results(failed=TESTS[1:2]), now)
    store.close()

    assert main(["tests", "--store", store.path, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["test"] for r in rows] == [TESTS[1], TESTS[0]]
    assert rows[0] == {
        "test": TESTS[1], "runs": 2, "failures": 2, "failure_rate": 1.0, "flaky": False,
        "last_failure": rows[0]["last_failure"],
    }  # fmt: skip
    assert datetime.fromisoformat(rows[0]["last_failure"]) == now.replace(microsecond=0)
    assert rows[1]["flaky"] is True  # passed on the same change and patchset (b2)

    assert main(["tests", "--store", store.path, "--job", "tempest-full"]) == 0
    out = capsys.readouterr().out
    assert "failures" in out.splitlines()[0] and TESTS[1] in out and "flaky" in out
    assert main(["tests", "--store", store.path, "--job", "other"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no test failures in the stored builds of job other" in (
        captured.err
    )


def test_gc_drops_test_results_on_both_backends(any_store: Store) -> None:
    ingest(any_store, build("old"), results(failed=TESTS[:1]), NOW - timedelta(days=20))
    ingest(any_store, build("new"), results(failed=TESTS[1:2]), NOW)
    assert any_store.gc(now=NOW, event_days=10, build_days=90).tests == 1
    assert [s.test for s in any_store.test_summaries(30, now=NOW)] == [TESTS[1]]
    assert any_store.tested_builds(["old", "new"]) == {"new": 1}
    ingest(any_store, build("new"), None, NOW)  # again, without a stream: none kept
    assert any_store.tested_builds(["new"]) == {} and any_store.build_tests("new") is None
