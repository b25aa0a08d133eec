"""Test results in the store: every build's tests kept (failures as rows, passes as
counts), replaced by a re-ingest, dropped by retention; ``recheck tests``' numbers."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from subunit_streams import stream_bytes, tempest_ids

from recheck.logs.build import Build
from recheck.logs.testresults import SubunitResults, failed_tests
from recheck.store import EmbeddedStore, open_store

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


def ingest(store: EmbeddedStore, b: Build, tests: SubunitResults | None, when: datetime) -> None:
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
