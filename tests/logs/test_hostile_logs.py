"""Hostile or unusual log text (issue 17, item 7): where an oslo.log event begins."""

from __future__ import annotations

from pathlib import Path

import pytest

from recheck.logs.split import event_start_test, split_lines

INFO = "2020-01-15 10:00:00.123 4242 INFO nova.compute.manager [req-1 - -] Starting"
NO_PID = "2020-01-15 10:00:01.456 ERROR nova.compute.manager [req-2 - -] Instance failed"
TRACEBACK = (
    "2020-01-15 10:00:01.457 4242 ERROR nova.compute.manager Traceback (most recent call last):"
)
TRACE = "2020-01-15 10:00:01.457 4242 TRACE nova.compute.manager   File 'x.py', line 1"


def test_an_error_line_without_a_pid_begins_its_own_event() -> None:
    events = list(split_lines([INFO, NO_PID, TRACEBACK, TRACE], ["oslofmt"]))
    assert [(line, event["loglevel"]) for line, event in events] == [(1, "INFO"), (2, "ERROR")]
    assert events[0][1]["message"] == "[req-1 - -] Starting"
    assert events[1][1]["message"] == f"[req-2 - -] Instance failed\n{TRACEBACK}\n{TRACE}"
    assert "pid" not in events[1][1]


def test_the_scanners_start_test_agrees() -> None:
    starts = event_start_test(["oslofmt"])
    verdicts = [starts(line.encode(), 0, len(line)) for line in (INFO, NO_PID, TRACEBACK, TRACE)]
    assert verdicts == [True, True, False, False]


def test_a_syslog_timestamped_error_without_a_pid_begins_its_own_event() -> None:
    info = "Jan 15 10:00:00 4242 INFO nova.compute.manager Starting"
    error = "Jan 15 10:00:01 ERROR nova.compute.manager Instance failed"
    events = list(split_lines([info, error], ["oslofmt"]))
    assert [event["loglevel"] for _, event in events] == ["INFO", "ERROR"]
    assert event_start_test(["oslofmt"])(error.encode(), 0, len(error))


def test_one_nul_byte_does_not_make_a_log_binary(tmp_path: Path) -> None:
    # Issue 20, item 7: a single NUL on line 3 once skipped the whole file as binary,
    # and the known failure on line 901 was never seen.
    lines = [f"2020-01-15 10:00:{i % 60:02d}.000 123 INFO nova.x [-] step {i}" for i in range(900)]
    lines[2] = "2020-01-15 10:00:02.000 123 INFO nova.x [-] odd \0 byte"
    lines.append("2020-01-15 10:00:59.000 123 ERROR nova.x [-] the known failure")
    log = tmp_path / "screen-n-cpu.txt"
    log.write_text("\n".join(lines) + "\n")
    from recheck.logs.source import open_text_stream

    with log.open("rb") as raw:
        text = open_text_stream(raw).read()
    assert b"the known failure" in text


@pytest.mark.parametrize(
    "head",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00",
        b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x03\x00>\x00\x01\x00\x00\x00" + bytes(40),
    ],
)
def test_binary_files_are_still_skipped(head: bytes, tmp_path: Path) -> None:
    from recheck.logs.source import BinaryFileError, open_text_stream

    path = tmp_path / "blob"
    path.write_bytes(head * 50)
    with path.open("rb") as raw, pytest.raises(BinaryFileError):
        open_text_stream(raw)
