"""A build's log directory into events, with build metadata (logs.localdir, logs.build)."""

from __future__ import annotations

import gzip
import sys
import traceback
from pathlib import Path

import pytest

from recheck.logs.build import Build, BuildInfoError, load_inventory
from recheck.logs.buildlogs import NoLogFilesError, build_events, build_files, read_build_info
from recheck.logs.localdir import DirSource
from recheck.logs.source import FileProblem

BUILDS = Path(__file__).parents[1] / "fixtures" / "builds"
ZUUL = BUILDS / "devstack-zuulv3"
JENKINS = BUILDS / "gate-tempest-devstack-vm-neutron"


def test_build_fields_come_from_the_zuul_inventory() -> None:
    assert load_inventory(ZUUL / "zuul-info/inventory.yaml") == Build(
        build_uuid="5b2e9c1f3a8d4e6f9c0b7a2d1e4f6a8b",
        build_short_uuid="5b2e9c1",
        build_name="tempest-full",
        build_queue="check",
        build_change="458341",
        build_patchset="3",
        build_branch="master",
        project="openstack/cinder",
        voting="1",
        tenant="openstack",
    )


def test_options_override_the_inventory() -> None:
    options = Build(build_status="FAILURE", build_queue="gate", log_url="https://logs/x/")
    build = read_build_info(DirSource(ZUUL), options)
    assert build.build_status == "FAILURE"
    assert build.build_queue == "gate"
    assert build.log_url == "https://logs/x/"
    assert build.build_name == "tempest-full"


def test_a_build_without_inventory_has_only_the_options() -> None:
    build = read_build_info(
        DirSource(JENKINS), Build(build_name="gate-tempest-devstack-vm-neutron")
    )
    assert build.event_fields() == {"build_name": "gate-tempest-devstack-vm-neutron"}


def test_non_voting_from_inventory(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("all:\n  vars:\n    zuul:\n      job: x\n      voting: false\n")
    build = load_inventory(path)
    assert build.voting == "0"
    assert not build.is_voting


@pytest.mark.parametrize(
    ("text", "expected"),
    [("all: [1, 2\n", "not valid YAML"), ("all:\n  vars: {}\n", "no all.vars.zuul")],
)
def test_a_broken_inventory_is_an_error_naming_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(BuildInfoError, match=expected) as info:
        load_inventory(path)
    assert str(path) in str(info.value)


def test_only_selected_files_are_read() -> None:
    assert [path for path, _ in build_files(DirSource(ZUUL))] == [
        "controller/logs/screen-c-api.txt",
        "controller/logs/screen-c-vol.txt",
        "controller/logs/syslog.txt.gz",
        "job-output.txt",
    ]


def test_every_event_has_its_filename_line_and_the_build_fields() -> None:
    build = read_build_info(DirSource(ZUUL), Build(build_status="FAILURE"))
    events = dict(build_events(DirSource(ZUUL), build))
    event = events["controller/logs/syslog.txt:9"]
    assert event["filename"] == "controller/logs/syslog.txt"  # .gz is not part of it
    assert event["tags"] == ["syslog", "syslog.txt"]
    assert event["build_status"] == "FAILURE"
    assert event["build_uuid"] == "5b2e9c1f3a8d4e6f9c0b7a2d1e4f6a8b"
    assert event["voting"] == "1"
    assert all(e["build_name"] == "tempest-full" for e in events.values())
    assert {str(e["filename"]) for e in events.values()} == {
        "controller/logs/screen-c-api.txt",
        "controller/logs/screen-c-vol.txt",
        "controller/logs/syslog.txt",
        "job-output.txt",
    }


def test_a_truncated_gzip_is_reported_for_that_file_only(tmp_path: Path) -> None:
    lines = [f"2021-06-23 05:14:{n % 60:02d}.561762 | line {n}\n" for n in range(20000)]
    whole = gzip.compress("".join(lines).encode())
    (tmp_path / "job-output.txt.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/syslog.txt").write_text(
        "Jun  9 15:42:07 host kernel: [  869.078170] init: tgt main process killed\n"
    )
    problems: list[FileProblem] = []
    events = dict(build_events(DirSource(tmp_path), Build(), on_problem=problems.append))
    assert [problem.path for problem in problems] == ["job-output.txt.gz"]
    assert "truncated or corrupt" in problems[0].message
    assert str(problems[0]).startswith("job-output.txt.gz: ")
    # The events read before the damage are kept, and the other file is read in full.
    assert events["job-output.txt:1"]["message"] == "line 0"
    assert 1000 < sum(key.startswith("job-output.txt:") for key in events) < 20000
    assert "logs/syslog.txt:1" in events


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("2021-06-23 05:14:53.561762 | secret\n")
    root = tmp_path / "build"
    root.mkdir()
    (root / "job-output.txt").symlink_to(outside)
    # The link is not even listed: the build has no file to read.
    assert DirSource(root).paths() == []
    with pytest.raises(NoLogFilesError, match="it holds no files"):
        build_files(DirSource(root))


def test_a_build_is_listed_whole_once_however_deep_and_without_linked_folders(
    tmp_path: Path,
) -> None:
    root = tmp_path / "build"
    deep = root.joinpath(*["d"] * 300)
    deep.mkdir(parents=True)
    (deep / "job-output.txt").write_text("x\n")
    (root / "logs").mkdir()
    (root / "logs" / "syslog.txt").write_text("x\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "job-output.txt").write_text("x\n")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    source = DirSource(root)
    expected = sorted(["/".join(["d"] * 300) + "/job-output.txt", "logs/syslog.txt"])
    # A level of folders is no level of recursion (a hostile build may nest thousands).
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(traceback.extract_stack()) + 100)
    try:
        listed = source.paths()
    finally:
        sys.setrecursionlimit(limit)
    assert listed == expected
    # Listed once: a command asks several times (build fields, files to read, not read).
    (root / "logs" / "later.txt").write_text("x\n")
    assert source.paths() == expected
    source.paths().clear()  # the caller's copy
    assert source.paths() == expected
