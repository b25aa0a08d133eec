"""The history commands end to end: ingest, query, gc and reclassify over a real store.

Builds are the real fixture builds of tests/fixtures/builds (read tests/fixtures/README.md);
each test gets its own store in a temporary directory. What ``recheck query`` reports is
checked against what ``recheck match`` says over ``recheck events`` output for the same
builds, and what ``recheck ingest`` stores against what ``recheck classify`` reports. The
Zuul API mode runs against a local HTTP server replaying a real recorded builds list.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from recheck.cli.main import main
from recheck.logs.build import Build
from recheck.logs.buildlogs import build_events
from recheck.logs.localdir import DirSource
from recheck.logs.zuul import build_from_zuul
from recheck.query.signatures import load_signatures
from recheck.store import HOME_VARIABLE, open_store
from recheck.store.base import classify_events
from recheck.store.stats import summarize

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures"
BUILDS = FIXTURES / "builds"
JENKINS = BUILDS / "gate-tempest-devstack-vm-neutron"
ZUUL = BUILDS / "devstack-zuulv3"
QUERIES = ROOT / "queries"
ZUUL_RECORDS: list[dict[str, Any]] = json.loads((FIXTURES / "zuul-api" / "builds.json").read_text())
FAILURE = ["--build-status", "FAILURE"]
KEEP_ALL = "store: {event_days: 100000, build_days: 100000}\n"
"""Retention that keeps the 2021 builds of the recorded Zuul answer, and the fixture
builds, stored at their end time (2021 and 2013, the newest timestamps of their logs)."""
ALL_DAYS = ["--days", "100000"]
"""A time window holding the fixture builds."""
ZUUL_END = datetime(2021, 6, 23, 6, 47, 27, tzinfo=UTC)
JENKINS_END = datetime(2013, 9, 27, 18, 49, 31, tzinfo=UTC)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A bot.yaml for the tests: only 127.0.0.1 may be fetched from, nothing expires."""
    path = tmp_path / "bot.yaml"
    path.write_text(f"fetch: {{allowed_hosts: [127.0.0.1], retries: 0}}\n{KEEP_ALL}")
    return path


def ingest(store_dir: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``recheck ingest`` into ``store_dir``, keeping old builds unless ``argv`` names a
    --config."""
    keep = [] if "--config" in argv else ["--config", str(keep_all_config(store_dir))]
    return run(
        ["ingest", "--store", str(store_dir), "--queries", str(QUERIES), *keep, *argv], capsys
    )


def keep_all_config(store_dir: Path) -> Path:
    path = store_dir.parent / "keep-all.yaml"
    path.write_text(KEEP_ALL)
    return path


def ingest_fixtures(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = ingest(store_dir, capsys, str(ZUUL), str(JENKINS), *FAILURE)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "2 builds: 2 ingested, 0 skipped, 0 failed"


# --- ingest ------------------------------------------------------------------------------


def test_ingest_stores_every_event_and_the_matches_classify_reports(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_fixtures(store_dir, capsys)

    with open_store(store_dir) as store:
        stored = {b.build.build_name: b for b in store.builds()}
        bugs = ("demo-1", "demo-2", "demo-3")
        matches = {bug: store.matches_for(bug, days=100000) for bug in bugs}
    assert set(stored) == {"tempest-full", None}
    for build_dir, name in ((ZUUL, "tempest-full"), (JENKINS, None)):
        code, out, _ = run(
            ["classify", str(build_dir), "--queries", str(QUERIES), "--format", "json", *FAILURE],
            capsys,
        )
        assert code == 0
        report = json.loads(out)
        build = stored[name]
        assert list(build.bugs) == sorted(report["bugs"]) and report["bugs"]
        found = [
            {"bug": m.bug, "filename": m.filename, "line": m.line, "message": m.message}
            for bug in report["bugs"]
            for m in matches[bug]
            if m.build.uuid == build.uuid
        ]
        assert found == report["matches"]
        code, out, _ = run(["events", str(build_dir), *FAILURE], capsys)
        assert build.events == len(out.splitlines()) > 0
    assert stored["tempest-full"].uuid == "5b2e9c1f3a8d4e6f9c0b7a2d1e4f6a8b"  # its inventory's
    # Each stored at its own end time, its logs' newest timestamp, not when it was ingested.
    assert (stored["tempest-full"].time, stored[None].time) == (ZUUL_END, JENKINS_END)


def test_classify_stored_says_what_classify_says_from_the_logs(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_fixtures(store_dir, capsys)
    with open_store(store_dir) as store:
        stored = {b.build.build_name: b for b in store.builds()}
    for build_dir, name in ((ZUUL, "tempest-full"), (JENKINS, None)):
        common = ["--queries", str(QUERIES), "--format", "json", *FAILURE]
        code, out, _ = run(["classify", str(build_dir), *common], capsys)
        assert code == 0
        from_logs = json.loads(out)
        uuid = stored[name].uuid
        code, out, _ = run(
            ["classify", "--stored", uuid, "--store", str(store_dir), *common], capsys
        )
        assert code == 0
        from_store = json.loads(out)
        assert from_store["bugs"] == from_logs["bugs"] and from_logs["bugs"]
        strip = [{k: v for k, v in m.items() if k != "url"} for m in from_logs["matches"]]
        assert from_store["matches"] == strip
        assert from_store["build"]["build_uuid"] == uuid


def test_classify_needs_exactly_one_of_source_and_stored(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["classify"], capsys)[0] == 2
    code, _, err = run(["classify", str(JENKINS), "--stored", "x"], capsys)
    assert code == 2 and "either SOURCE" in err
    code, _, err = run(["classify", "--stored", "nope", "--store", str(store_dir)], capsys)
    assert code == 2 and "no store here: ingest builds first" in err
    assert not store_dir.exists(), "a read-only command must not create a store"
    ingest_fixtures(store_dir, capsys)
    code, _, err = run(["classify", "--stored", "nope", "--store", str(store_dir)], capsys)
    assert code == 2 and "no stored events of build 'nope'" in err
    for command in (["query", "message:x"], ["gc"], ["reclassify"], ["report", "--output", "o"]):
        missing = store_dir.parent / "typo"
        code, _, err = run([*command, "--store", str(missing)], capsys)
        assert code == 2 and "no store here" in err, command
        assert not missing.exists()


def test_a_second_ingest_skips_stored_builds_and_force_replaces_them(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_fixtures(store_dir, capsys)
    with open_store(store_dir) as store:
        before = {b.uuid: b for b in store.builds()}

    code, out, err = ingest(store_dir, capsys, str(ZUUL), str(JENKINS), *FAILURE)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[-1] == "2 builds: 0 ingested, 2 skipped, 0 failed"
    assert all(line.startswith("skipped ") and "--force" in line for line in lines[:2])

    code, out, err = ingest(store_dir, capsys, str(ZUUL), str(JENKINS), "--force", *FAILURE)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "2 builds: 2 ingested, 0 skipped, 0 failed"
    with open_store(store_dir) as store:
        after = {b.uuid: b for b in store.builds()}
    assert after.keys() == before.keys()  # replaced, not added
    for uuid, build in after.items():
        assert build.ingested_at >= before[uuid].ingested_at
        assert build.time == before[uuid].time  # --force does not move a build to now
        assert (build.events, build.bugs) == (before[uuid].events, before[uuid].bugs)


def test_a_broken_source_fails_alone_and_the_exit_status_says_so(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken-inventory"
    shutil.copytree(ZUUL, broken)
    (broken / "zuul-info" / "inventory.yaml").write_text("all: [not, a, zuul, inventory]\n")
    missing = tmp_path / "no-such-build"

    code, out, err = ingest(
        store_dir, capsys, str(ZUUL), str(missing), str(broken), str(JENKINS), *FAILURE
    )

    assert code == 1
    assert out.splitlines()[-1] == "4 builds: 2 ingested, 0 skipped, 2 failed"
    errors = err.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"recheck ingest: error: {missing}: no such file or directory")
    assert errors[1].startswith(f"recheck ingest: error: {broken}/zuul-info/inventory.yaml: ")
    with open_store(store_dir) as store:
        names = sorted(str(b.build.build_name) for b in store.builds())
    assert names == ["None", "tempest-full"]


@pytest.mark.parametrize(
    ("retention", "said"),
    [
        ("store: {event_days: 10, build_days: 100000}\n", "more than store.event_days (10)"),
        ("store: {event_days: 10, build_days: 30}\n", "more than store.build_days (30)"),
    ],
)
def test_ingesting_a_build_older_than_retention_keeps_says_so(
    store_dir: Path, capsys: pytest.CaptureFixture[str], retention: str, said: str
) -> None:
    # Retention would drop what was just stored (the fixture build ended in 2021): a
    # search finding nothing later must not be the first sign of it.
    config = store_dir.parent / "short.yaml"
    config.write_text(retention)
    code, out, err = ingest(store_dir, capsys, str(ZUUL), *FAILURE, "--config", str(config))
    assert code == 0 and "1 ingested" in out
    assert f"the build ended 2021-06-23, {said} days ago" in err
    assert err.count("warning") == 1


def test_ingest_usage_errors(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ingest(store_dir, capsys) == (
        2,
        "",
        "recheck ingest: error: give at least one SOURCE, or --zuul URL --tenant T\n",
    )
    code, _, err = ingest(store_dir, capsys, "--zuul", "http://127.0.0.1:9")
    assert (code, err) == (
        2,
        "recheck ingest: error: --zuul needs --tenant (the Zuul tenant, e.g. openstack)\n",
    )
    code, _, err = ingest(store_dir, capsys, str(ZUUL), str(JENKINS), "--build-uuid", "x")
    assert code == 2 and "--build-uuid names one build" in err
    assert not store_dir.exists()


def test_a_store_that_cannot_be_opened_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "catalog.sqlite").write_text("not a database\n" * 100)
    attempts = [
        (not_a_dir, ["gc"]),
        (damaged, ["query", "tags:console"]),
        (not_a_dir, ["ingest", str(ZUUL)]),
        (damaged, ["reclassify"]),
    ]
    for store, command in attempts:
        code, out, err = run([*command, "--store", str(store)], capsys)
        assert (code, out) == (2, "")
        assert err.startswith(f"recheck {command[0]}: error: cannot use the store: ")
        assert str(store) in err and "Traceback" not in err


def test_bad_store_settings_and_options_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("store:\n  event_days: -1\n")
    code, out, err = run(["gc", "--config", str(config), "--store", str(tmp_path / "s")], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"recheck gc: error: {config}:2:15: store.event_days must be a number of days "
        "above 0, found int -1\n"
    )
    code, _, err = run(["reclassify", "--since", "yesterday"], capsys)
    assert code == 2
    assert "'yesterday' is neither a duration (30m, 12h, 1d, 2w) nor a date" in err
    code, _, err = run(["query", "x", "--days", "0"], capsys)
    assert code == 2 and "'0' is not a number above 0" in err
    assert not (tmp_path / "s").exists()


def test_the_store_location_option_then_bot_yaml_then_recheck_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECHECK_CONFIG", raising=False)
    monkeypatch.delenv(HOME_VARIABLE, raising=False)

    def stored_in(*argv: str) -> list[str]:
        code, _, _ = run(["ingest", str(ZUUL), "--queries", str(QUERIES), "--force", *argv], capsys)
        assert code == 0
        return sorted(path.parent.name for path in tmp_path.rglob("catalog.sqlite"))

    assert stored_in() == [".recheck"]
    monkeypatch.setenv(HOME_VARIABLE, str(tmp_path / "home"))
    assert stored_in() == [".recheck", "home"]
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "bot.yaml").write_text("store: {path: from-config}\n")
    assert stored_in("--config", "conf/bot.yaml") == [".recheck", "from-config", "home"]
    assert (tmp_path / "conf" / "from-config").is_dir()  # relative to the config file
    assert stored_in("--config", "conf/bot.yaml", "--store", "opt") == [
        ".recheck",
        "from-config",
        "home",
        "opt",
    ]


# --- query -------------------------------------------------------------------------------


def expected_hits(
    query: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, queue: str | None = None
) -> list[dict[str, Any]]:
    """The events of the fixture builds that ``recheck match`` says ``query`` matches,
    from ``recheck events`` output: the independent answer ``recheck query`` must give."""
    queries = tmp_path / "expected-queries"
    queries.mkdir(exist_ok=True)
    signature = Path(query)
    if signature.suffix == ".yaml":
        shutil.copy(signature, queries / "q.yaml")
    else:
        (queries / "q.yaml").write_text(json.dumps({"query": query}))
    events: list[dict[str, Any]] = []
    for build_dir in (ZUUL, JENKINS):
        code, out, _ = run(["events", str(build_dir), *FAILURE], capsys)
        assert code == 0
        events += [json.loads(line) for line in out.splitlines()]
    for index, event in enumerate(events):
        event["id"] = str(index)  # ids repeat across builds; make them unique
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(event) + "\n" for event in events))
    code, out, _ = run(["match", "--queries", str(queries), str(events_file)], capsys)
    assert code == 0
    ids = set(json.loads(out)["matches"]["q"])
    hits = [{k: v for k, v in e.items() if k != "id"} for e in events if e["id"] in ids]
    return [hit for hit in hits if queue is None or hit.get("build_queue") == queue]


QUERY_CASES = [
    'message:"delete failed"',
    "tags:console",
    "tags:screen AND loglevel:(ERROR OR WARNING)",
    'message:"timeout" OR message:/eventle.*/',
    str(QUERIES / "demo-3.yaml"),
    'message:"no such phrase anywhere"',
]


@pytest.mark.parametrize("query", QUERY_CASES)
def test_query_reports_exactly_what_match_says_over_the_events(
    query: str, store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_fixtures(store_dir, capsys)
    expected = summarize(expected_hits(query, capsys, tmp_path))

    store = ["--store", str(store_dir), *ALL_DAYS]
    code, out, err = run(["query", query, *store, "--format", "json"], capsys)
    # Only check's lint warnings on stderr (tags:console is broad).
    assert code == 0 and all(
        line.startswith("recheck query: warning: ") for line in err.splitlines()
    )
    report = json.loads(out)
    summary = {name: report[name] for name in ("hits", "builds", "fields")}
    assert summary == json.loads(json.dumps(expected.to_json()))
    assert list(report) == ["hits", "builds", "fields", "events", "by_day"]
    assert len(report["events"]) == min(20, expected.hits)
    assert sum(report["by_day"].values()) == expected.hits

    code, out, _ = run(["query", query, *store], capsys)
    assert code == 0
    assert out.splitlines()[: len(expected.lines())] == expected.lines()


def test_query_hits_cover_both_builds_and_a_queue_narrows_them(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_fixtures(store_dir, capsys)
    query = "tags:screen"
    hits = expected_hits(query, capsys, tmp_path)
    check = expected_hits(query, capsys, tmp_path, queue="check")
    assert 0 < len(check) < len(hits)  # only the Zuul build has a queue

    store = ["--store", str(store_dir), *ALL_DAYS]
    code, out, _ = run(["query", query, *store, "--format", "json"], capsys)
    assert (code, json.loads(out)["hits"], json.loads(out)["builds"]) == (
        0,
        len(hits),
        {"FAILURE": 2},
    )
    code, out, _ = run(
        [
            "query",
            query,
            *store,
            "--format",
            "json",
            "--queue",
            "check",
            "--quantity",
            "1",
            "--verbose",
        ],
        capsys,
    )
    report = json.loads(out)
    assert report["hits"] == len(check)
    assert report["fields"]["build_uuid"] == [["5b2e9c1f3a8d4e6f9c0b7a2d1e4f6a8b", 1.0]]
    assert all(len(top) == 1 for top in report["fields"].values())


def test_query_text_output_shows_shares(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_fixtures(store_dir, capsys)
    code, out, _ = run(
        ["query", 'message:"delete failed"', "--store", str(store_dir), *ALL_DAYS], capsys
    )
    assert code == 0
    assert out.splitlines()[:4] == [
        "total hits: 1",
        "builds: FAILURE 1",
        "build_status",
        "  100% FAILURE",
    ]


def test_a_bad_query_says_where(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["query", 'message:"foo', "--store", str(store_dir)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        'recheck query: error: bad query: unterminated quoted phrase (add the closing ") '
        "at character 9\n"
        '  message:"foo\n'
        "          ^\n"
    )
    code, _, err = run(["query", "missing.yaml", "--store", str(store_dir)], capsys)
    assert (code, err) == (2, "recheck query: error: missing.yaml: no such signature file\n")


# --- gc ----------------------------------------------------------------------------------


def store_old_build(store_dir: Path, days_ago: float, uuid: str = "old-build") -> int:
    """Ingest the Jenkins build dated ``days_ago`` straight into the store; its events."""
    signatures, _ = load_signatures(QUERIES)
    build = Build(build_uuid=uuid, build_status="FAILURE")
    events = list(build_events(DirSource(JENKINS), build))
    with open_store(store_dir) as store:
        store.ingest(
            build,
            events,
            classify_events(signatures, events),
            when=datetime.now(UTC) - timedelta(days=days_ago),
        )
    return len(events)


def test_gc_drops_old_events_then_old_builds_and_says_how_many(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fixture builds are stored at their own (old) time: recent copies are kept.
    store_old_build(store_dir, days_ago=0, uuid="recent-1")
    store_old_build(store_dir, days_ago=1, uuid="recent-2")
    events = store_old_build(store_dir, days_ago=30)

    code, out, err = run(["gc", "--store", str(store_dir)], capsys)
    assert (code, err) == (0, "")
    assert out == (
        f"events older than 10 days: {events} dropped\n"
        "test results older than 10 days: 0 builds dropped\n"
        "builds older than 90 days: 0 dropped, with 0 matches\n"
    )
    code, out, _ = run(["gc", "--store", str(store_dir), "--build-days", "20"], capsys)
    assert out == (
        "events older than 10 days: 0 dropped\n"
        "test results older than 10 days: 0 builds dropped\n"
        "builds older than 20 days: 1 dropped, with 2 matches\n"
    )
    with open_store(store_dir) as store:
        assert len(store.builds()) == 2 and not store.has_build("old-build")


# --- reclassify --------------------------------------------------------------------------


def test_reclassify_shows_a_new_signatures_past_hits(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = tmp_path / "queries"
    queries.mkdir()
    shutil.copy(QUERIES / "demo-1.yaml", queries)
    code, _, _ = run(
        [
            "ingest",
            str(ZUUL),
            str(JENKINS),
            *FAILURE,
            "--store",
            str(store_dir),
            "--queries",
            str(queries),
            "--config",
            str(keep_all_config(store_dir)),
        ],
        capsys,
    )
    assert code == 0
    with open_store(store_dir) as store:
        assert store.matches_for("demo-2") == []

    shutil.copy(QUERIES / "demo-2.yaml", queries)
    shutil.copy(QUERIES / "demo-3.yaml", queries)
    argv = ["reclassify", "--store", str(store_dir), "--queries", str(queries)]
    code, out, err = run(argv, capsys)
    assert (code, err) == (0, "")
    # Nothing was recorded as reclassified yet, so all three run; demo-1's match stays.
    assert out == (
        "re-ran 3 signatures over 2 stored builds: 3 matching events\n"
        "signatures: demo-1 demo-2 demo-3\n"
    )
    code, out, _ = run(argv, capsys)
    assert out == "no new or changed signatures; nothing re-run (--all re-runs every one)\n"
    # --since goes by the builds' own times: 2013 and 2021 here.
    code, out, _ = run([*argv, "--all", "--since", "1d"], capsys)
    assert out.startswith("re-ran 3 signatures over 0 stored builds")
    code, out, _ = run([*argv, "--all", "--since", "2013-09-27"], capsys)
    assert out.startswith("re-ran 3 signatures over 2 stored builds")

    code, report, _ = run(
        ["classify", str(JENKINS), "--queries", str(QUERIES), "--format", "json", *FAILURE], capsys
    )
    expected = [m for m in json.loads(report)["matches"] if m["bug"] == "demo-2"]
    with open_store(store_dir) as store:
        found = store.matches_for("demo-2", days=100000)
    assert [
        {"bug": m.bug, "filename": m.filename, "line": m.line, "message": m.message} for m in found
    ] == expected


# --- the Zuul API mode -------------------------------------------------------------------


class ZuulReplay:
    """127.0.0.1: ``/api/tenant/openstack/builds`` answers with the real recorded builds
    list (filtered by pipeline and result, paged by limit and skip, as Zuul does), each
    record's log_url pointing at ``/logs/``, which serves tests/fixtures/builds."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        replay = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                replay.requests.append(self.path)
                parts = urlsplit(self.path)
                if parts.path == "/api/tenant/openstack/builds":
                    body = json.dumps(replay.answer(parse_qs(parts.query))).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif parts.path.startswith("/logs/"):
                    self.path = self.path.removeprefix("/logs")
                    super().do_GET()
                else:
                    self.send_error(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=BUILDS))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        records = [
            dict(record, log_url=f"{self.url}/logs/{JENKINS.name}/")  # logs without inventory
            for record in ZUUL_RECORDS
            if all(
                record.get(key) == query[key][0] for key in ("pipeline", "result") if key in query
            )
        ]
        skip = int(query.get("skip", ["0"])[0])
        return records[skip : skip + int(query.get("limit", ["50"])[0])]

    def __enter__(self) -> ZuulReplay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def zuul(monkeypatch: pytest.MonkeyPatch) -> Iterator[ZuulReplay]:
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)  # a proxy must not stand between us and 127.0.0.1
    with ZuulReplay() as replay:
        yield replay


def test_ingest_the_builds_zuuls_api_lists(
    zuul: ZuulReplay, store_dir: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--zuul",
        zuul.url,
        "--tenant",
        "openstack",
        "--since",
        "2021-02-01",
        "--config",
        str(config),
    ]
    code, out, err = ingest(store_dir, capsys, *argv)

    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "3 builds: 3 ingested, 0 skipped, 0 failed"
    with open_store(store_dir) as store:
        stored = {b.uuid: b for b in store.builds()}
    assert list(stored) == [record["uuid"] for record in ZUUL_RECORDS]  # newest first
    for record in ZUUL_RECORDS:
        build = stored[record["uuid"]]
        log_url = f"{zuul.url}/logs/{JENKINS.name}/"
        assert build.build == build_from_zuul(dict(record, log_url=log_url), "openstack")
        ended = datetime.fromisoformat(record["end_time"]).replace(tzinfo=UTC)
        assert build.time == ended
        assert build.events > 0 and build.bugs == ("demo-1", "demo-2")
    assert zuul.requests[0] == "/api/tenant/openstack/builds?limit=100&skip=0"

    # Stored builds are skipped before anything of them is fetched.
    zuul.requests.clear()
    code, out, _ = ingest(store_dir, capsys, *argv)
    assert (code, out.splitlines()[-1]) == (0, "3 builds: 0 ingested, 3 skipped, 0 failed")
    assert all(path.startswith("/api/") for path in zuul.requests)


def test_zuul_api_filters_limit_and_since(
    zuul: ZuulReplay, store_dir: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--zuul", zuul.url + "/", "--tenant", "openstack", "--config", str(config)]
    code, out, _ = ingest(
        store_dir,
        capsys,
        *base,
        "--since",
        "2021-02-01",
        "--pipeline",
        "check",
        "--result",
        "SUCCESS",
    )
    assert out.splitlines()[-1] == "1 build: 1 ingested, 0 skipped, 0 failed"
    assert zuul.requests[0] == (
        "/api/tenant/openstack/builds?pipeline=check&result=SUCCESS&limit=100&skip=0"
    )

    zuul.requests.clear()
    code, out, _ = ingest(
        store_dir, capsys, *base, "--since", "2021-02-01", "--limit", "1", "--force"
    )
    assert out.splitlines()[-1] == "1 build: 1 ingested, 0 skipped, 0 failed"
    assert zuul.requests[0] == "/api/tenant/openstack/builds?limit=1&skip=0"

    # The second record started at 13:55, before this: listing stops there.
    code, out, _ = ingest(store_dir, capsys, *base, "--since", "2021-02-08T14:00:00")
    assert (code, out.splitlines()[-1]) == (0, "1 build: 0 ingested, 1 skipped, 0 failed")


def test_zuul_api_refused_host_is_a_usage_error(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "strict.yaml"
    config.write_text("fetch: {allowed_hosts: [zuul.example.org]}\n")
    code, out, err = ingest(
        store_dir,
        capsys,
        "--zuul",
        "http://127.0.0.1:9",
        "--tenant",
        "openstack",
        "--config",
        str(config),
    )
    assert (code, out) == (2, "")
    assert err.startswith("recheck ingest: error: cannot list Zuul's builds: http://127.0.0.1:9/")
    assert "host 127.0.0.1 is not allowed" in err


def test_query_shows_the_newest_events_highlighted_per_day_and_the_lint_warnings(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_fixtures(store_dir, capsys)
    query = 'message:"delete failed" OR message:fail* OR message:error OR tags:nosuchtag'
    argv = ["query", query, "--store", str(store_dir), *ALL_DAYS, "--limit", "3"]
    code, out, err = run([*argv, "--format", "json"], capsys)
    assert code == 0
    report = json.loads(out)
    # The zuul build (2021) is newer than the jenkins one (2013): its hits come first.
    events = report["events"]
    assert len(events) == 3 < report["hits"]
    for event in events:
        assert list(event) == [
            "build_uuid", "build_name", "build_status", "filename", "line", "message", "url"
        ]  # fmt: skip
    with open_store(store_dir) as store:
        times = {b.uuid: b.time for b in store.builds()}
    assert [times[e["build_uuid"]] for e in events] == sorted(
        (times[e["build_uuid"]] for e in events), reverse=True
    )
    assert sum(report["by_day"].values()) == report["hits"]
    assert report["by_day"][JENKINS_END.date().isoformat()] > 0
    assert report["by_day"][ZUUL_END.date().isoformat()] > 0
    assert "broad: clause 'tags:nosuchtag'" in err
    code, text, err = run(argv, capsys)
    assert code == 0 and "broad" in err
    lines = text.splitlines()
    days = lines.index("hits per day (last 100000 days)")
    # From the first day with hits (2013) to the last (2021), the quiet years in one line.
    assert lines[days + 1].startswith(f"  {JENKINS_END.date().isoformat()} #")
    assert "days without hits" in lines[days + 2]
    assert lines[days + 3].startswith(f"  {ZUUL_END.date().isoformat()} #")
    newest = lines.index(f"newest 3 of {report['hits']} matching events")
    shown = "\n".join(lines[newest:])
    # Each shown message with the query's words marked (plain output: **word**).
    assert shown.count("**") >= 6
    assert all(e["url"] is None for e in events), "ingested without a log URL: no link"
    for event in events:
        assert f"{event['filename']}:{event['line']}" in shown


def test_query_with_no_hit_says_so(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingest_fixtures(store_dir, capsys)
    code, out, err = run(["query", "mesage:nowhere", "--store", str(store_dir)], capsys)
    assert code == 0
    assert "no stored event of the last 10 days matches" in out
    assert "warning: unknown field 'mesage'" in err, "check's warnings, known fields too"
