"""What a build is read from: which files, in which format, with whose fields, at what time.

Issue 17 items 8-10 on the real fixture logs (tests/fixtures/logs, tests/fixtures/builds,
tests/fixtures/zuul-api): a file named on its own is read in the format its lines show;
a build with no file recheck reads is an error, and the files it skips are named; Zuul's
API wins over the inventory; a build's time is its own end, not when it was read.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recheck.cli.main import main
from recheck.config.files import FetchConfig
from recheck.logs.build import Build
from recheck.logs.buildlogs import (
    NoLogFilesError,
    build_end_time,
    build_events,
    build_files,
    read_build_info,
    unread_files,
)
from recheck.logs.http import Fetcher
from recheck.logs.localdir import DirSource, FileSource
from recheck.logs.logfiles import content_tags
from recheck.logs.zuul import zuul_build_file_source, zuul_build_time

FIXTURES = Path(__file__).parents[1] / "fixtures"
LOGS = FIXTURES / "logs"
BUILDS = FIXTURES / "builds"
ZUUL = BUILDS / "devstack-zuulv3"
JENKINS = BUILDS / "gate-tempest-devstack-vm-neutron"
QUERIES = Path(__file__).resolve().parents[2] / "queries"
RECORD = json.loads((FIXTURES / "zuul-api" / "builds.json").read_text())[0]


# --- a file named on its own: always read, its format from its lines ----------------------


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        ("nova-compute.excerpt.log", ("oslofmt",)),
        ("neutron-server.excerpt.log", ("oslofmt",)),
        ("screen-c-api.excerpt.txt", ("oslofmt",)),  # devstack's journal of an oslo service
        ("console.html.excerpt.txt", ("console",)),
        ("syslog.excerpt.txt", ("syslog",)),
    ],
)
def test_a_named_file_no_rule_knows_is_read_in_the_format_its_lines_show(
    tmp_path: Path, name: str, tags: tuple[str, ...]
) -> None:
    # Renamed so that no file rule can know it by name: only its content decides.
    path = tmp_path / f"renamed-{name}"
    shutil.copy(LOGS / name, path)
    source = FileSource(path)
    rules = source.rules()
    assert [rule.tags for rule in rules] == [tags]
    events = [event for _, event in build_events(source, Build(), rules=rules)]
    assert events
    parsed = [event for event in events if "_grokparsefailure" not in event["tags"]]
    assert len(parsed) > len(events) / 2


def test_a_named_file_in_no_known_format_is_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("first thing\nsecond thing\n")
    source = FileSource(path)
    assert content_tags(path.read_text().splitlines()) == ()
    events = dict(build_events(source, Build(), rules=source.rules()))
    assert [event["message"] for event in events.values()] == ["first thing", "second thing"]


def test_a_named_file_known_by_name_keeps_its_rule() -> None:
    source = FileSource(JENKINS / "logs" / "screen-n-api.txt")
    assert source.rules()[0].tags == ("screen", "oslofmt", "devstack", "nova")


# --- a build with nothing to read is an error, and skipped files are named ---------------


def test_an_empty_build_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NoLogFilesError) as caught:
        build_files(DirSource(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"no log files in {tmp_path} (it holds no files); known names: ")
    assert "job-output.txt" in message and "screen-*.txt" in message


def test_a_build_of_unknown_files_is_an_error_naming_them(tmp_path: Path) -> None:
    shutil.copy(LOGS / "nova-compute.excerpt.log", tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nova.conf").write_text("[DEFAULT]\n")
    expected = (
        r"none of its files has a name recheck reads: "
        r"etc/nova.conf, nova-compute.excerpt.log\); known names: "
    )
    with pytest.raises(NoLogFilesError, match=expected):
        build_events(DirSource(tmp_path), Build())


def test_unread_files_leave_out_the_inventory(tmp_path: Path) -> None:
    shutil.copytree(ZUUL, tmp_path / "build")
    (tmp_path / "build" / "notes.md").write_text("x\n")
    assert unread_files(DirSource(tmp_path / "build")) == ["notes.md"]
    assert unread_files(DirSource(ZUUL)) == []


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_commands_fail_with_status_1_on_a_build_without_log_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "README").write_text("nothing here\n")
    for command in (["classify", "--queries", str(QUERIES)], ["events"]):
        code, out, err = run([*command, str(build)], capsys)
        assert (code, out) == (1, ""), command
        assert err.startswith(f"recheck {command[0]}: error: no log files in {build} "), command
        assert "known names: job-output.txt" in err
    store = ["--store", str(tmp_path / "store"), "--queries", str(QUERIES)]
    code, out, err = run(["ingest", str(build), str(JENKINS), *store], capsys)
    assert code == 1
    assert out.splitlines()[-1] == "2 builds: 1 ingested, 0 skipped, 1 failed"
    assert err.startswith(f"recheck ingest: error: {build}: no log files in {build} ")


def test_files_a_build_does_not_read_are_listed_as_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = tmp_path / "build"
    shutil.copytree(JENKINS, build)
    (build / "logs" / "nova.conf").write_text("[DEFAULT]\n")
    code, out, err = run(
        ["classify", str(build), "--queries", str(QUERIES), "--build-status", "FAILURE"], capsys
    )
    assert code == 0
    assert "bug demo-1" in out and "bug demo-2" in out
    assert err == (
        "recheck classify: skipped 1 file whose names are not in the file rules: logs/nova.conf\n"
    )


# --- Zuul's API wins over the inventory ---------------------------------------------------


class _FromZuul(DirSource):
    """The Zuul fixture build as if Zuul's API had described it."""

    def build_info(self) -> Build:
        return Build(build_name="job-from-the-api", build_status="FAILURE", build_queue=None)


def test_zuuls_api_wins_over_the_inventory_which_fills_the_gaps() -> None:
    build = read_build_info(_FromZuul(ZUUL))
    assert build.build_name == "job-from-the-api"  # the inventory says tempest-full
    assert build.build_status == "FAILURE"
    assert build.build_queue == "check"  # the API did not say: the inventory's
    assert build.build_uuid == "5b2e9c1f3a8d4e6f9c0b7a2d1e4f6a8b"
    options = Build(build_name="from-options")
    assert read_build_info(_FromZuul(ZUUL), options).build_name == "from-options"


# --- a build's time is its own end --------------------------------------------------------


def test_a_local_builds_time_is_the_newest_timestamp_of_its_logs() -> None:
    assert build_end_time(DirSource(ZUUL)) == datetime(2021, 6, 23, 6, 47, 27, tzinfo=UTC)
    # console.html.gz ends "2013-09-27 18:49:31.824999 | Finished: FAILURE".
    assert build_end_time(DirSource(JENKINS)) == datetime(2013, 9, 27, 18, 49, 31, tzinfo=UTC)
    single = FileSource(LOGS / "nova-compute.excerpt.log")
    assert build_end_time(single, single.rules()) is not None


def test_a_log_without_dated_lines_gives_no_time(tmp_path: Path) -> None:
    shutil.copy(LOGS / "syslog.excerpt.txt", tmp_path)  # syslog lines carry no year
    single = FileSource(tmp_path / "syslog.excerpt.txt")
    assert build_end_time(single, single.rules()) is None


def test_a_zuul_builds_time_is_its_end_time_in_zuuls_record(tmp_path: Path) -> None:
    saved = tmp_path / "build.json"
    saved.write_text(json.dumps(dict(RECORD, log_url="http://127.0.0.1:9/logs/")))
    fetcher = Fetcher(FetchConfig(allowed_hosts=("127.0.0.1",)))
    try:
        source = zuul_build_file_source(saved, fetcher)
        assert source is not None
        # Nothing is fetched: the record says it (2021-02-08T14:44:26).
        assert (
            build_end_time(source)
            == zuul_build_time(RECORD)
            == datetime(2021, 2, 8, 14, 44, 26, tzinfo=UTC)
        )
    finally:
        fetcher.close()
