"""The uncategorized page's telling error line: chosen from a real build's stored events
(tests/fixtures/builds, ingested into a real embedded store), and the rule on its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from web_store import NEUTRON, ZUULV3

from recheck.logs.build import Build
from recheck.logs.sources import open_source
from recheck.pipeline import ingest_build
from recheck.store import Store, StoreError, open_store
from recheck.store.base import StoredBuild
from recheck.web.errorline import NEAR_END, Candidate, error_line, telling

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[StoredBuild]]]:
    with open_store(tmp_path_factory.mktemp("errorline") / "store") as store:
        for logs, uuid in ((NEUTRON, "neutron-1"), (ZUULV3, "cinder-1")):
            build = Build(
                build_uuid=uuid, build_status="FAILURE", build_queue="gate", voting="1",
                log_url=f"https://logs.example.org/{uuid}/",
            )  # fmt: skip
            ingest_build(store, open_source(str(logs)), build, [], when=NOW)
        yield store, store.builds()


def _build(stored: tuple[Store, list[StoredBuild]], uuid: str) -> StoredBuild:
    return next(b for b in stored[1] if b.uuid == uuid)


def test_a_console_s_first_error_of_its_last_burst_is_shown(
    stored: tuple[Store, list[StoredBuild]],
) -> None:
    # console.html ends with the test run's summary and tox's errors (lines 56 to 149,
    # read in the fixture): the first of them names the failed test.
    line = error_line(stored[0], _build(stored, "neutron-1"))
    assert line is not None
    assert (line.filename, line.line) == ("console.html", 56)
    assert line.message == (
        "tempest.thirdparty.boto.test_ec2_instance_run.InstanceRunTest."
        "test_run_stop_terminate_instance[gate,smoke] ... FAIL"
    )
    assert line.url == "https://logs.example.org/neutron-1/console.html#56"


def test_a_traceback_is_shown_by_its_exception_not_its_header(
    stored: tuple[Store, list[StoredBuild]],
) -> None:
    # No error in job-output.txt: screen-c-vol.txt's traceback (lines 2 to 9) is next.
    line = error_line(stored[0], _build(stored, "cinder-1"))
    assert line is not None
    assert (line.filename, line.line) == ("controller/logs/screen-c-vol.txt", 9)
    assert line.message.endswith("error: cannot switch to a different thread")


class _Forgetful:
    """A store whose events of the build were dropped by retention."""

    path = "/forgetful"

    def classify(self, *args: object) -> object:
        raise StoreError(Path("/store"), "no stored events of build 'x'")


def test_a_build_without_stored_events_has_no_line(
    stored: tuple[Store, list[StoredBuild]],
) -> None:
    assert error_line(_Forgetful(), _build(stored, "neutron-1")) is None  # type: ignore[arg-type]


class _Counting:
    """A store that counts the classifications asked of it."""

    def __init__(self, store: Store) -> None:
        self.store, self.calls, self.path = store, 0, "/counting"

    def classify(self, *args: object) -> object:
        self.calls += 1
        return self.store.classify(*args)  # type: ignore[arg-type]


def test_a_build_s_line_is_searched_once_until_it_is_ingested_again(
    stored: tuple[Store, list[StoredBuild]],
) -> None:
    counting = _Counting(stored[0])
    build = _build(stored, "neutron-1")
    first = error_line(counting, build)  # type: ignore[arg-type]
    assert first is not None and error_line(counting, build) == first  # type: ignore[arg-type]
    assert counting.calls == 1
    again = replace(build, ingested_at=build.ingested_at + timedelta(minutes=1))
    assert error_line(counting, again) == first and counting.calls == 2  # type: ignore[arg-type]


def _c(filename: str, line: int, message: str, level: bool = False) -> Candidate:
    return Candidate(filename, line, message, level)


def test_the_end_of_the_console_wins_over_earlier_errors_and_other_files() -> None:
    early = _c("job-output.txt", 10, "ERROR: cannot fetch mirror (retried)")
    late = [
        _c("job-output.txt", 9000, "fatal: [controller]: FAILED! => {'rc': 1}"),
        _c("job-output.txt", 9000 + NEAR_END, "ERROR: devstack failed"),
    ]
    service = _c("logs/screen-n-cpu.txt", 3, "[-] Instance failed to spawn", level=True)
    assert telling([service, early, *late]) == late[0]
    assert telling([service, early]) == early
    assert telling([service]) == service


def test_words_that_are_no_error_line_are_not_chosen() -> None:
    noise = [
        _c("job-output.txt", 5, "controller | ok: changed=3 failed=0"),
        _c("job-output.txt", 6, "gcc -Werror -o x x.c"),
        _c("job-output.txt", 7, "uploading logs/mysql/error.txt.gz"),
    ]
    assert telling(noise) is None
    header = _c("job-output.txt", 8, "Traceback (most recent call last):")
    assert telling([*noise, header]) == header, "a header alone is still an error"
    exception = _c("job-output.txt", 20, "ValueError: bad flavor")
    assert telling([*noise, header, exception]) == exception
