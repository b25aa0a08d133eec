"""``recheck diff``: a change of the signatures replayed over a real store (the real fixture
builds of tests/fixtures/builds, one ingested as failed and one as passed), from
directories and from git revisions of a queries repository."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from recheck.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
BUILDS = ROOT / "tests" / "fixtures" / "builds"
JENKINS = BUILDS / "gate-tempest-devstack-vm-neutron"
ZUUL = BUILDS / "devstack-zuulv3"
CONFIG = "store: {event_days: 100000, build_days: 100000}\nbug_tracker: {type: url}\n"
# No uuid in its logs: ingest names it after its directory's path (so after the checkout's).
JENKINS_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, JENKINS.as_uri()))
ZUUL_UUID = "5b2e9c1f3a8d4e6f9c0b7a2d1e4f6a8b"
BUILD_KEYS = {"build_uuid", "build_name", "build_status", "project", "time", "log_url"}


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """``old/``: demo-3 alone, with which both builds were ingested (so the failed one is
    uncategorized); ``new/``: demo-3, demo-1 added, and a demo-2 broadened to hit the
    passing build's eventlet error too."""
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    shutil.copy(ROOT / "queries" / "demo-3.yaml", old)
    shutil.copytree(old, new)
    shutil.copy(ROOT / "queries" / "demo-1.yaml", new)
    (new / "demo-2.yaml").write_text(
        'query: message:"State change timeout" OR message:"cannot switch to a different"\n'
    )
    (tmp_path / "bot.yaml").write_text(CONFIG)
    common = ["--store", str(tmp_path / "store"), "--config", str(tmp_path / "bot.yaml"),
              "--queries", str(old)]  # fmt: skip
    assert main(["ingest", str(JENKINS), "--build-status", "FAILURE", *common]) == 0
    assert main(["ingest", str(ZUUL), "--build-status", "SUCCESS", *common]) == 0
    return tmp_path


def diff(world: Path, *argv: str) -> list[str]:
    return ["diff", *argv, "--days", "100000", "--store", str(world / "store"),
            "--config", str(world / "bot.yaml")]  # fmt: skip


def test_diff_lists_gains_losses_new_categories_and_passing_hits(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(diff(world, str(world / "old"), str(world / "new"), "--format", "json"))
    found = json.loads(capsys.readouterr().out)

    assert code == 1, "the change adds a hit on a passing build"
    assert found["builds_replayed"] == 2
    changes = {c["bug"]: c for c in found["signatures"]}
    assert set(changes) == {"demo-1", "demo-2"}, "demo-3 did not change"
    assert changes["demo-1"]["change"] == "added"
    assert [b["build_uuid"] for b in changes["demo-1"]["gained"]] == [JENKINS_UUID]
    assert changes["demo-1"]["passing_gained"] == []
    # demo-2: the failed build (its real target) and the passing one, newest first.
    assert [b["build_uuid"] for b in changes["demo-2"]["gained"]] == [ZUUL_UUID, JENKINS_UUID]
    assert [b["build_status"] for b in changes["demo-2"]["passing_gained"]] == ["SUCCESS"]
    assert all(c["lost"] == [] for c in changes.values())
    assert [b["build_uuid"] for b in found["failures_newly_categorized"]] == [JENKINS_UUID]
    assert found["failures_newly_uncategorized"] == []
    (passing,) = found["passing_builds_newly_hit"]
    assert set(passing) == BUILD_KEYS
    assert passing["build_uuid"] == ZUUL_UUID and passing["build_name"] == "tempest-full"


def test_the_reverse_change_loses_what_the_change_gained(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(diff(world, str(world / "new"), str(world / "old"), "--format", "json"))
    found = json.loads(capsys.readouterr().out)

    assert code == 0, "no passing build newly hit"
    changes = {c["bug"]: c for c in found["signatures"]}
    assert changes["demo-1"]["change"] == "removed"
    assert changes["demo-2"]["change"] == "removed"
    assert [b["build_uuid"] for b in changes["demo-2"]["lost"]] == [ZUUL_UUID, JENKINS_UUID]
    assert [b["build_uuid"] for b in found["failures_newly_uncategorized"]] == [JENKINS_UUID]
    assert found["passing_builds_newly_hit"] == []


def test_diff_text_lists_builds_per_signature(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(diff(world, str(world / "old"), str(world / "new")))
    lines = capsys.readouterr().out.splitlines()

    assert code == 1
    assert "2 signatures changed, replayed over 2 stored builds" in lines[0]
    assert "demo-2 (added): gains 2 builds, loses 0, 1 passing build newly hit" in lines
    assert f"  + SUCCESS tempest-full 2021-06-23 06:47 {ZUUL_UUID}" in lines
    assert lines[-2:] == [
        "passing builds newly hit: 1",
        f"  SUCCESS tempest-full 2021-06-23 06:47 {ZUUL_UUID}",
    ]


def git(repo: Path, *argv: str) -> None:
    subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True)


def test_diff_reads_two_git_revisions_of_a_queries_repository(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = world / "repo"
    shutil.copytree(world / "old", repo / "queries")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q",
        "--allow-empty", "-m", "empty")  # fmt: skip
    git(repo, "add", "queries")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "old")
    git(repo, "checkout", "-q", "-b", "change")
    shutil.rmtree(repo / "queries")
    shutil.copytree(world / "new", repo / "queries")
    (repo / "queries" / "broken.yaml").write_text("query: message:(\n")
    git(repo, "add", "-A", "queries")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "new")
    capsys.readouterr()

    code = main(diff(world, "main:queries", "HEAD:queries", "--repo", str(repo),
                     "--format", "json"))  # fmt: skip
    out, err = capsys.readouterr()

    assert code == 1
    assert {c["bug"] for c in json.loads(out)["signatures"]} == {"demo-1", "demo-2"}
    assert "warning: skipped HEAD:queries/broken.yaml:1:" in err
    # The empty first commit has no queries directory: a clear error, exit 2.
    code = main(diff(world, "main~1:queries", "HEAD:queries", "--repo", str(repo)))
    assert code == 2
    assert "main~1:queries: git cannot read it in" in capsys.readouterr().err


@pytest.mark.parametrize(
    "side",
    ["--output=/tmp/x:queries", "-:queries", "queries-that-do-not-exist", ":queries", "a\0b:c"],
)
def test_sides_that_are_neither_directories_nor_revisions_are_refused(
    world: Path, side: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    options = diff(world, "--repo", str(world))
    code = main([*options, "--", side, str(world / "new")])  # '--': a side may look like an option

    assert code == 2
    err = capsys.readouterr().err
    assert "neither a directory nor a git revision" in err or "git cannot read it" in err
    assert not Path("/tmp/x").exists() or side != "--output=/tmp/x:queries"
