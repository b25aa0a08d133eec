"""``recheck stats``: each signature's hits on failed and passing builds, its precision and
flags (too broad, stale, overlapping), from a real store holding the real fixture builds
(tests/fixtures/builds), one ingested as failed and one as passed."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recheck.cli.main import main
from recheck.logs.build import Build
from recheck.models import BugInfo, Match
from recheck.query.signatures import load_signatures
from recheck.store import open_store
from recheck.store.precision import signature_stats

ROOT = Path(__file__).resolve().parents[2]
BUILDS = ROOT / "tests" / "fixtures" / "builds"
JENKINS = BUILDS / "gate-tempest-devstack-vm-neutron"
ZUUL = BUILDS / "devstack-zuulv3"
CONFIG = "store: {event_days: 100000, build_days: 100000}\nbug_tracker: {type: url}\n"
KEYS = {"bug", "failure_builds", "success_builds", "precision", "last_hit", "jobs", "flags"}


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A queries directory (the demo signatures, and a duplicate of demo-2), a bot.yaml
    that keeps every build and looks no bug up, and a store: the 2013 Jenkins build
    ingested as failed, the 2021 Zuul build as passed."""
    queries = tmp_path / "queries"
    queries.mkdir()
    for name in ("demo-1.yaml", "demo-2.yaml", "demo-3.yaml"):
        shutil.copy(ROOT / "queries" / name, queries)
    (queries / "dup.yaml").write_text('query: message:"State change timeout" AND tags:console\n')
    (queries / "fixed.yaml").write_text(
        'query: message:"cannot switch to a different thread"\nresolved_at: 2021-07-01\n'
    )
    (tmp_path / "bot.yaml").write_text(CONFIG)
    common = ["--store", str(tmp_path / "store"), "--config", str(tmp_path / "bot.yaml"),
              "--queries", str(queries)]  # fmt: skip
    assert main(["ingest", str(JENKINS), "--build-status", "FAILURE",
                 "--build-name", "gate-tempest-devstack-vm-neutron", *common]) == 0  # fmt: skip
    assert main(["ingest", str(ZUUL), "--build-status", "SUCCESS", *common]) == 0
    return tmp_path


def stats_json(world: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, dict]:
    capsys.readouterr()
    code = main(["stats", "--store", str(world / "store"), "--config", str(world / "bot.yaml"),
                 "--queries", str(world / "queries"), "--format", "json", *extra])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads(out)
    assert all(set(entry) == KEYS for entry in document["signatures"])
    return {entry["bug"]: entry for entry in document["signatures"]}


def test_stats_counts_failed_and_passing_builds_and_flags(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = stats_json(world, capsys, "--days", "100000")

    assert found["demo-1"] == {
        "bug": "demo-1", "failure_builds": 1, "success_builds": 0, "precision": 1.0,
        "last_hit": "2013-09-27T18:49:31+00:00",
        "jobs": {"gate-tempest-devstack-vm-neutron": 1}, "flags": {},
    }  # fmt: skip
    # The Zuul build passed: demo-3's hit there is a false alarm.
    assert found["demo-3"]["failure_builds"] == 0
    assert found["demo-3"]["success_builds"] == 1
    assert found["demo-3"]["precision"] == 0.0
    assert found["demo-3"]["jobs"] == {"tempest-full": 1}
    assert found["demo-3"]["flags"]["too_broad"] == "hits 1 build that passed"
    # demo-2 and dup match the same console event.
    assert found["demo-2"]["flags"] == {"overlapping": "matches the same events as dup (1 event)"}
    assert found["dup"]["flags"] == {"overlapping": "matches the same events as demo-2 (1 event)"}
    # fixed.yaml hits the same line as demo-3 and its bug is resolved.
    assert found["fixed"]["flags"]["stale"] == "bug fixed was resolved at 2021-07-01"
    assert "overlapping" in found["fixed"]["flags"]


def test_stats_window_makes_old_hits_stale_but_keeps_last_hit(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = stats_json(world, capsys, "--days", "30")

    assert found["demo-1"]["failure_builds"] == 0
    assert found["demo-1"]["precision"] is None
    assert found["demo-1"]["last_hit"] == "2013-09-27T18:49:31+00:00"
    assert found["demo-1"]["flags"] == {"stale": "no hit in 30 days"}
    assert found["demo-1"]["jobs"] == {}


def test_stats_text_is_a_table_with_the_flags_spelled_out(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["stats", "--store", str(world / "store"), "--config", str(world / "bot.yaml"),
                 "--queries", str(world / "queries"), "--days", "100000"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()

    assert code == 0
    assert lines[0].split() == ["bug", "failed", "passed", "precision", "last", "hit", "jobs",
                                "flags"]  # fmt: skip
    demo3 = next(line for line in lines if line.startswith("demo-3 "))
    assert demo3.split()[:5] == ["demo-3", "0", "1", "0%", "2021-06-23"]
    assert demo3.split()[-2:] == ["too_broad", "overlapping"]
    assert "demo-3: too_broad: hits 1 build that passed" in lines
    assert lines[-1] == "5 signatures over 100000 days: 2 too broad, 1 stale, 4 overlapping"


def test_stats_on_a_missing_store_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["stats", "--store", str(tmp_path / "nowhere"), "--queries",
                 str(ROOT / "queries")])  # fmt: skip

    assert code == 2
    assert "no store here" in capsys.readouterr().err


NOW = datetime(2024, 5, 20, 12, 0, tzinfo=UTC)


def test_a_fixed_bug_from_the_tracker_is_stale_and_sampled_builds_count(tmp_path: Path) -> None:
    signatures, _ = load_signatures(ROOT / "queries")
    with open_store(tmp_path / "store") as store:
        # A passing build recorded as the bot's sample does: its matches, no events.
        store.ingest(
            Build(build_uuid="ok-1", build_name="tempest-full", build_status="SUCCESS"),
            [],
            [Match("demo-1", "logs/screen-q-svc.txt", 20, "[-] delete failed")],
            when=NOW - timedelta(hours=1),
        )
        matches = store.matches_between()

    fixed = {"demo-2": BugInfo("demo-2", "a title", status="Fix Released")}
    measured = signature_stats(signatures, matches, NOW - timedelta(days=10), days=10, bugs=fixed)
    found = {s.bug: s for s in measured}

    assert (found["demo-1"].failure_builds, found["demo-1"].success_builds) == (0, 1)
    assert found["demo-1"].precision == 0.0
    assert found["demo-2"].flags == {"stale": "bug demo-2 is Fix Released"}
    assert found["demo-3"].flags == {"stale": "no hit in 10 days"}
