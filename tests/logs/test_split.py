"""Lines into events, as OpenStack's logstash pipeline made them (recheck.logs.split).

Golden expectations are on real log lines: the fixture builds under
tests/fixtures/builds/ are excerpts of real gate logs (see tests/fixtures/README.md).
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from recheck.logs.logfiles import file_tags
from recheck.logs.split import (
    MAX_EVENT_CHARS,
    PARSE_FAILURE_TAG,
    TRUNCATED_TAG,
    file_format,
    read_lines,
    split_lines,
)
from recheck.models import Event

BUILDS = Path(__file__).parents[1] / "fixtures" / "builds"
JENKINS = BUILDS / "gate-tempest-devstack-vm-neutron"
ZUUL = BUILDS / "devstack-zuulv3"


def _split(path: Path, name: str, *, keep_debug: bool = False) -> dict[int, Event]:
    """Split a fixture file as the build file ``name``: events by first line number."""
    tags = file_tags(name)
    assert tags is not None
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as stream:
        return dict(split_lines(read_lines(stream), tags, keep_debug=keep_debug))


def _lines(*texts: str) -> Iterator[str]:
    return iter(texts)


# --- oslo.log service logs -------------------------------------------------------------


def test_a_traceback_folds_into_the_error_line_that_announces_it() -> None:
    events = _split(JENKINS / "logs/screen-q-svc.txt.gz", "logs/screen-q-svc.txt")
    event = events[20]
    assert event["loglevel"] == "ERROR"
    assert event["module"] == "neutron.api.v2.resource"
    assert event["pid"] == "2820"
    message = event["message"]
    assert isinstance(message, str)
    trace = "2013-09-27 18:23:42.923 2820 TRACE neutron.api.v2.resource"
    assert message.split("\n")[:2] == [
        "[-] delete failed",
        f"{trace} Traceback (most recent call last):",
    ]
    assert message.split("\n")[-2:] == [
        f"{trace} PortNotFound: Port 6a8a6cb8-811f-4c9f-b183-133223d5a7c5 could not be found",
        trace,
    ]
    assert message.count("\n") == 13  # the ERROR line and its 13 TRACE lines: one event
    assert not any(number in events for number in range(21, 34))
    assert event["tags"] == ["screen", "oslofmt", "devstack", "screen-q-svc.txt"]


def test_an_error_line_folds_into_the_previous_info_event_as_the_reference_does() -> None:
    # Real lines from screen-n-api.txt; logstash's fold pattern takes any
    # "<timestamp> <number> ERROR" line for a traceback line.
    info = (
        "2013-09-27 18:22:08.660 2515 INFO nova.openstack.common.periodic_task [-] "
        "Skipping periodic task _periodic_update_dns because its interval is negative"
    )
    error = (
        "2013-09-27 18:24:08.147 2790 ERROR glanceclient.common.http [-] "
        "Request returned failure status."
    )
    events = list(split_lines(_lines(info, error), ["oslofmt"]))
    assert len(events) == 1
    line, event = events[0]
    assert line == 1
    assert event["loglevel"] == "INFO"
    assert event["message"] == (
        "[-] Skipping periodic task _periodic_update_dns because its interval is negative\n" + error
    )


def test_an_error_line_after_a_debug_line_starts_its_own_event() -> None:
    # Deliberate difference from the reference, which folded it into the DEBUG event
    # and then dropped both.
    events = _split(JENKINS / "logs/screen-n-api.txt", "logs/screen-n-api.txt")
    glance = events[18]
    assert glance["loglevel"] == "ERROR"
    assert glance["module"] == "glanceclient.common.http"
    assert glance["message"] == "[-] Request returned failure status."
    # An ERROR line without a pid (the request-context format of 2013) too.
    compute = events[37]
    assert compute["loglevel"] == "ERROR"
    assert compute["module"] == "nova.compute.api"
    assert "pid" not in compute
    assert isinstance(compute["message"], str)
    assert compute["message"].startswith("[req-8d9449f1-a5a0-4ec8-b8d8-9a5f4089023b ")


def test_lines_without_a_timestamp_continue_the_previous_event() -> None:
    events = _split(JENKINS / "logs/screen-n-api.txt", "logs/screen-n-api.txt", keep_debug=True)
    event = events[11]
    assert event["loglevel"] == "DEBUG"
    assert event["message"] == (
        "[-] \nHTTP/1.1 404 Not Found\ndate: Fri, 27 Sep 2013 18:24:08 GMT\n"
        "content-length: 0\ncontent-type: text/plain; charset=UTF-8\n"
        "x-openstack-request-id: req-5919943b-9674-456b-a3cf-89d0b5a0957e\n"
        " log_http_response /opt/stack/new/python-glanceclient/glanceclient/common/http.py:150"
    )


def test_debug_events_are_dropped_unless_kept() -> None:
    dropped = _split(JENKINS / "logs/screen-q-svc.txt.gz", "logs/screen-q-svc.txt")
    kept = _split(JENKINS / "logs/screen-q-svc.txt.gz", "logs/screen-q-svc.txt", keep_debug=True)
    assert {event.get("loglevel") for event in dropped.values()} == {"ERROR"}
    assert len(kept) == 28
    assert sum(event.get("loglevel") == "DEBUG" for event in kept.values()) == 27
    assert kept[5]["message"] == (
        "[-] using channel_id: 1 __init__ /usr/local/lib/python2.7/dist-packages/amqp/channel.py:70"
    )


def test_xtrace_lines_are_dropped_from_screen_logs_only() -> None:
    screen = _split(JENKINS / "logs/screen-q-svc.txt.gz", "logs/screen-q-svc.txt", keep_debug=True)
    assert min(screen) == 5  # lines 1-4 are devstack's "+ ..." commands
    assert not any(str(event["message"]).startswith("+ ") for event in screen.values())
    console = _split(JENKINS / "console.html.gz", "console.html")
    assert console[6]["message"] == "+ [[ ! -e devstack-gate ]]"


def test_journal_lines_of_systemd_devstack_services() -> None:
    events = _split(ZUUL / "controller/logs/screen-c-vol.txt", "controller/logs/screen-c-vol.txt")
    first = events[1]
    assert first == {
        "syslog_program": "ubuntu-xenial-rax-dfw-9013276 cinder-volume",
        "syslog_pid": "27348",
        "loglevel": "INFO",
        "module": "cinder.volume.manager",
        "message": "[req-34715675-437c-4668-8f27-ee0f5f10cabb "
        "tempest-VolumesDeleteCascade-157659443 None] Delete snapshot completed successfully.",
        "tags": ["screen", "oslofmt", "devstack", "cinder", "screen-c-vol.txt"],
    }
    # A journal line without a level does not match the oslo prefix: logstash kept the
    # whole line as message and tagged the failure.
    error = events[9]
    assert error["message"] == (
        "May 26 20:44:32.284561 ubuntu-xenial-rax-dfw-9013276 cinder-volume[27348]: "
        "error: cannot switch to a different thread"
    )
    assert PARSE_FAILURE_TAG in error["tags"]
    assert "loglevel" not in error


# --- console logs -----------------------------------------------------------------------


def test_console_message_is_the_text_after_the_timestamp() -> None:
    events = _split(JENKINS / "console.html.gz", "console.html")
    assert events[110] == {
        "message": "AssertionError: State change timeout exceeded!(400s) "
        "While waitingfor set(['running', '_GONE']) at \"pending\"",
        "tags": ["console", "console.html"],
    }


def test_console_pre_tags_are_dropped() -> None:
    events = _split(JENKINS / "console.html.gz", "console.html")
    assert min(events) == 2 and 1 not in events and 219 not in events
    assert not any(event["message"] in ("<pre>", "</pre>") for event in events.values())
    assert len(events) == 217


def test_console_lines_without_a_prefix_continue_the_previous_event() -> None:
    lines = _lines(
        "2021-06-23 06:47:27.402618 | logserver.rdoproject.org | Traceback:",
        '  File "upload.py", line 3',
        "2021-06-23 06:47:27.403053 | next",
    )
    assert list(split_lines(lines, ["console", "console.html"])) == [
        (
            1,
            {
                "message": 'logserver.rdoproject.org | Traceback:\n  File "upload.py", line 3',
                "tags": ["console", "console.html"],
            },
        ),
        (3, {"message": "next", "tags": ["console", "console.html"]}),
    ]


def test_old_jenkins_console_timestamps_start_events() -> None:
    # Hand-written in the shape of Jenkins' timestamper plugin output (2013-2014).
    lines = _lines(
        '<span class="timestamp"><b>18:07:11.860</b> </span>Started by user anonymous',
        "a continuation",
        '<span class="timestamp"><b>18:07:11.884</b> </span>[EnvInject] - Loading',
    )
    events = list(split_lines(lines, ["console", "console.html"]))
    assert [(line, event["message"]) for line, event in events] == [
        (1, "Started by user anonymous\na continuation"),
        (3, "[EnvInject] - Loading"),
    ]


# --- syslog, apache, libvirt ------------------------------------------------------------


def test_syslog_line() -> None:
    events = _split(ZUUL / "controller/logs/syslog.txt.gz", "controller/logs/syslog.txt")
    assert events[9] == {
        "syslog_host": "devstack-precise-hpcloud-b3-227769",
        "syslog_program": "kernel",
        "message": "[  869.078170] init: tgt main process (23220) killed by KILL signal",
        "tags": ["syslog", "syslog.txt"],
    }
    assert len(events) == 62  # one event per line: syslog has no multi-line records


@pytest.mark.parametrize(
    ("tags", "line", "expected"),
    [
        (
            ["apachecombined"],
            '127.0.0.1 - - [27/Sep/2013:18:24:08 +0000] "GET /v2.0/networks.json HTTP/1.1" '
            '200 1234 "-" "python-neutronclient"',
            {"verb": "GET", "request": "/v2.0/networks.json", "response": "200",
             "message": "GET /v2.0/networks.json 200"},
        ),
        (
            ["apacheerror"],
            "[Fri Sep 27 18:24:08 2013] [error] [client 127.0.0.1] File does not exist: /var/www",
            {"loglevel": "error", "message": "[client 127.0.0.1] File does not exist: /var/www"},
        ),
        (
            ["libvirt"],
            "2017-03-28 12:20:43.570+0000: 8526: error : virNetSocketReadWire:1801 : "
            "End of file while reading data: Input/output error",
            {"pid": "8526", "loglevel": "error",
             "message": "virNetSocketReadWire:1801 : End of file while reading data: "
             "Input/output error"},
        ),
    ],
)  # fmt: skip
def test_other_formats(tags: list[str], line: str, expected: dict[str, str]) -> None:
    [(number, event)] = list(split_lines(_lines(line), tags))
    assert number == 1
    assert event == {**expected, "tags": tags}


def test_a_file_without_a_format_gives_one_event_per_line() -> None:
    events = list(split_lines(_lines("first", "  second"), ["tempest", "tripleo"]))
    assert [event["message"] for _, event in events] == ["first", "  second"]
    assert all(PARSE_FAILURE_TAG not in event["tags"] for _, event in events)


@pytest.mark.parametrize(
    ("tags", "fmt"),
    [
        (["console", "console.html", "devstack"], "console"),
        (["screen", "oslofmt", "devstack", "syslog", "multinode"], "oslofmt"),
        (["syslog", "syslog.txt"], "syslog"),
        (["tempest", "tripleo"], None),
    ],
)
def test_file_format_follows_the_references_precedence(tags: list[str], fmt: str | None) -> None:
    assert file_format(tags) == fmt


# --- bytes, sizes -----------------------------------------------------------------------


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    raw = b"2013-09-27 18:22:35.392 | caf\xe9 \xff\xfe ok\r\n2013-09-27 18:22:36.123 | next\n"
    lines = list(read_lines(io.BytesIO(raw)))
    assert lines == [
        "2013-09-27 18:22:35.392 | caf\ufffd \ufffd\ufffd ok",
        "2013-09-27 18:22:36.123 | next",
    ]
    events = list(split_lines(iter(lines), ["console"]))
    assert events[0][1]["message"] == "caf\ufffd \ufffd\ufffd ok"


def test_a_100_mb_line_is_cut_and_the_event_marked_truncated(tmp_path: Path) -> None:
    path = tmp_path / "job-output.txt"
    block = b"x" * (1 << 20)
    with path.open("wb") as out:
        out.write(b"2021-06-23 05:14:53.561762 | ")
        for _ in range(100):
            out.write(block)
        out.write(b"\n2021-06-23 05:14:53.562169 | Updating repositories\n")
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            events = list(split_lines(read_lines(stream), ["console"]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20  # the line is never held whole
    assert [line for line, _ in events] == [1, 2]
    big, after = events[0][1], events[1][1]
    assert isinstance(big["message"], str)
    assert len(big["message"]) <= MAX_EVENT_CHARS
    assert big["message"].startswith("xxx")
    assert TRUNCATED_TAG in big["tags"]
    assert after == {"message": "Updating repositories", "tags": ["console"]}


def test_continuation_lines_stop_at_the_event_size_limit() -> None:
    lines = _lines(
        "2013-09-27 18:22:35.392 | start", *(["y" * 10] * 100), "2013-09-27 18:22:36 | end"
    )
    events = list(split_lines(lines, ["console"], max_event_chars=50))
    first = events[0][1]
    assert isinstance(first["message"], str)
    assert len(first["message"]) <= 50
    assert first["message"].startswith("start\nyyyyyyyyyy\n")
    assert TRUNCATED_TAG in first["tags"]
    assert events[1] == (102, {"message": "end", "tags": ["console"]})


def test_dropped_lines_are_told_as_splitting_them_would() -> None:
    # dropped_line_test decides ASCII oslo lines on bytes (faster); the reference here
    # is what split_lines itself does with the line: decode, parse, compare the level.
    import random

    from recheck.logs.split import _parse, dropped_line_test, event_start_test

    rng = random.Random(5)
    pieces = ["2021-06-23 05:14:53.561", "Jun  9 15:42:07", " ", "  ", "1234", "-7", "x:",
              "prog[12]:", "DEBUG", "INFO", "ERROR", "TRACE", "nova.compute", "[-]", "[nova]",
              "\x1c", "\t", "\u00a0", "é", ":", "DEBUG:", "\r"]  # fmt: skip
    tags = ["screen", "oslofmt", "screen-n-cpu.txt"]
    dropped = dropped_line_test(tags)
    starts = event_start_test(tags)
    assert dropped is not None
    told = 0
    for _ in range(20_000):
        words = [rng.choice(pieces) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.7:
            words[0] = "2021-06-23 05:14:53.561"
        raw = " ".join(words).encode()
        line = raw.removesuffix(b"\r").decode("utf-8", errors="replace")
        fields = _parse(line, "oslofmt")
        debug = fields is not None and fields.get("loglevel") == "DEBUG"
        expected = raw.startswith(b"+ ") or (debug and starts(raw, 0, len(raw)))
        assert dropped(raw, 0, len(raw)) == expected, raw
        # In a chunk, after other lines: the same verdict.
        assert dropped(b"x DEBUG\n" + raw + b"\ny", 8, 8 + len(raw)) == expected, raw
        told += expected
    assert told > 500  # the generator makes DEBUG lines of every shape
