"""Hostile or unusual log text (issue 17, item 7): where an oslo.log event begins."""

from __future__ import annotations

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
