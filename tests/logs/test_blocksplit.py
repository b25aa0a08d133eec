"""The block splitter gives exactly ``split_lines``'s events, on real logs and odd ones."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recheck.logs import blocksplit
from recheck.logs.blocksplit import split_stream
from recheck.logs.split import read_lines, split_lines

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
BUILD = Path(__file__).resolve().parent.parent / "fixtures" / "builds" / "devstack-zuulv3"

TAGS = {
    "console": ["console", "console.html"],
    "oslo": ["screen", "oslofmt", "screen-n-cpu.txt"],
    "oslo-plain": ["oslofmt"],
    "syslog": ["syslog"],
    "plain": ["something"],
    "apache": ["apachecombined"],
    "libvirt": ["libvirt"],
}


def by_lines(data: bytes, tags: list[str], **options: object) -> list[tuple[int, object]]:
    """``split_lines``'s events, each as its items in order (the JSON lines keep it)."""
    limit = options.get("max_event_chars", 1 << 20)
    assert isinstance(limit, int)
    events = split_lines(read_lines(io.BytesIO(data), limit), tags, **options)  # type: ignore[arg-type]
    return [(number, list(event.items())) for number, event in events]


def by_blocks(data: bytes, tags: list[str], **options: object) -> list[tuple[int, object]]:
    blocks = split_stream(io.BytesIO(data), tags, **options)  # type: ignore[arg-type]
    return [(number, list(event.items())) for block in blocks for number, event in block]


def by_tiny_blocks(
    data: bytes, tags: list[str], sizes: tuple[int, int, int], **options: object
) -> list[tuple[int, object]]:
    """``by_blocks`` with the block, read and carry sizes ``sizes`` (a hypothesis test
    cannot take a function-scoped fixture)."""
    old = (blocksplit.BLOCK_BYTES, blocksplit._READ_BYTES, blocksplit._MAX_CARRY)
    try:
        blocksplit.BLOCK_BYTES, blocksplit._READ_BYTES, blocksplit._MAX_CARRY = sizes
        return by_blocks(data, tags, **options)
    finally:
        blocksplit.BLOCK_BYTES, blocksplit._READ_BYTES, blocksplit._MAX_CARRY = old


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few hundred bytes: every input is cut many times."""
    monkeypatch.setattr(blocksplit, "BLOCK_BYTES", 300)
    monkeypatch.setattr(blocksplit, "_READ_BYTES", 64)
    monkeypatch.setattr(blocksplit, "_MAX_CARRY", 2000)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("console.html.excerpt.txt", "console"),
        ("nova-compute.excerpt.log", "oslo"),
        ("neutron-server.excerpt.log", "oslo-plain"),
        ("screen-c-api.excerpt.txt", "oslo"),
        ("syslog.excerpt.txt", "syslog"),
        ("syslog.excerpt.txt", "plain"),
    ],
)
@pytest.mark.parametrize("keep_debug", [False, True])
def test_real_logs_split_alike(name: str, kind: str, keep_debug: bool, small_blocks: None) -> None:
    data = (LOGS / name).read_bytes()
    tags = TAGS[kind]
    expected = by_lines(data, tags, keep_debug=keep_debug)
    assert expected
    assert by_blocks(data, tags, keep_debug=keep_debug) == expected


def test_a_real_build_splits_alike_with_default_blocks() -> None:
    for path in sorted(BUILD.rglob("*.txt")):
        data = path.read_bytes()
        for tags in TAGS.values():
            assert by_blocks(data, tags) == by_lines(data, tags), (path, tags)


LINES = [
    "2021-06-23 05:14:53.561762 | ok line",
    "2021-06-23 05:14:53.561762 | Traceback (most recent call last):",
    '<span class="timestamp"><b>05:14:53.561</b> </span>jenkins line',
    "<pre>",
    "</pre>",
    "2014-02-11 16:04:54.123 1234 ERROR nova.compute [-] boom",
    "2014-02-11 16:04:54.123 1234 TRACE nova.compute Traceback",
    "2014-02-11 16:04:54.123 1234 DEBUG nova.compute [-] chatter",
    "2014-02-11 16:04:54.123 1234 INFO nova.compute [-] fine",
    "2014-02-11 16:04:54.123 ERROR nova.compute [-] no pid",
    "Feb 11 16:04:54 host nova-compute[123]: ERROR oops",
    "Jun  9 15:42:07 host kernel: [  869.078170] init: killed",
    "+ xtrace line",
    "  continuation with spaces",
    "",
    "caf\u00e9 \u2028 unicode \x0b vt",
    "\r",
    "line with carriage return\r",
    '10.0.0.1 - - [11/Feb/2014:16:04:54 +0000] "GET /x HTTP/1.1" 200 12 "-" "curl"',
    "2014-02-11 16:04:54.123+0000: 1234: error : virNetSocket: boom",
]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.one_of(st.sampled_from(LINES), st.text(max_size=30)), min_size=0, max_size=40
    ),
    kind=st.sampled_from(sorted(TAGS)),
    ending=st.sampled_from(["\n", "", "\r\n"]),
    keep_debug=st.booleans(),
    limit=st.sampled_from([1 << 20, 40]),
)
def test_odd_inputs_split_alike(
    lines: list[str], kind: str, ending: str, keep_debug: bool, limit: int
) -> None:
    data = ("\n".join(lines) + ending).encode("utf-8", errors="surrogateescape")
    tags = TAGS[kind]
    options = {"keep_debug": keep_debug, "max_event_chars": limit}
    expected = by_lines(data, tags, **options)
    assert by_tiny_blocks(data, tags, (50, 16, 120), **options) == expected
    assert by_blocks(data, tags, **options) == expected


def test_a_read_error_keeps_the_complete_lines_before_it() -> None:
    lines = [f"2021-06-23 05:14:{n % 60:02d}.561762 | line {n}\n" for n in range(20000)]
    whole = gzip.compress("".join(lines).encode())
    stream = gzip.GzipFile(fileobj=io.BytesIO(whole[: len(whole) // 2]))
    errors: list[tuple[BaseException, int]] = []
    events = [
        event
        for block in split_stream(
            stream, ["console"], on_read_error=lambda e, n: errors.append((e, n))
        )  # type: ignore[arg-type]
        for event in block
    ]
    assert len(errors) == 1 and isinstance(errors[0][0], EOFError)
    assert 1000 < len(events) < 20000
    assert [event["message"] for _, event in events] == [f"line {n}" for n in range(len(events))]
    assert errors[0][1] == len(events)


# Lines made of the parts the one-pass patterns of recheck.logs.blockformats decide on:
# canonical oslo lines and every near miss of them (timestamps, separators, pids, levels,
# the module part, a syslog program's colon), console and syslog prefixes, and the
# lines around them (tracebacks, xtrace, <pre>, non-ASCII digits and whitespace).
_STAMPS = [
    "2014-02-11 16:04:54.123",
    "2014-12-31 23:59:59.999999",
    "2014-10-01 09:00:00.5",
    "2014-02-11T16:04:54.123",
    "2014-02-11 16:04:54",
    "2014-02-11 16:04:60.1",
    "14-2-3 1:02:03.5",
    "2014-02-11 16:04:54,123",
    "2014-02-11 16:04:54.123Z",
    "2014-02-11 16:04:54.123+01:00",
    "2014-02-11 16:04:54.12\u0663",
    "2014-13-11 16:04:54.123",
    "2014-02-32 16:04:54.123",
    "2014-02-11 24:04:54.123",
    "Feb 11 16:04:54",
    "Feb  1 16:04:54",
    "",
]
_SPACES = [" ", "  ", "\t", "\x1c", "\u2028", "\x85", ""]
_PIDS = ["1234", "", "-12", "1.5", ".5", "12a", "\u0661\u0662", "[pid]", "host"]
_LEVELS = ["DEBUG", "TRACE", "ERROR", "INFO", "WARNING", "AUDIT", "CRITICAL", "debug", "ERRORS"]
_LEVELS += ["DEBUG:", "| ", "prog[12]:"]
_RESTS = [
    "nova.compute [-] msg",
    "a: ERROR b",
    "[-] msg",
    "nova.compute",
    "[nova.compute] msg",
    "",
    " ",
    "x: DEBUG y",
    "prog[12]: INFO z",
    "caf\u00e9 \u2028 x",
    "m\x85n",
    "| console text",
]
_OTHER = [
    '  File "x.py", line 1, in f',
    "Traceback (most recent call last):",
    "+ xtrace line",
    "<pre>",
    "",
    "\r",
    "host prog[12]: msg",
    "host: msg",
]


@st.composite
def _log_line(draw: st.DrawFn) -> str:
    """Mostly canonical oslo lines, each part sometimes replaced by a near miss."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(_OTHER))
    parts = []
    for choices in (_STAMPS, _SPACES, _PIDS, _SPACES, _LEVELS, _SPACES, _RESTS):
        odd = draw(st.integers(0, 3)) == 0
        canonical = choices[:1] if choices in (_SPACES, _PIDS) else choices[:3]
        parts.append(draw(st.sampled_from(choices if odd else canonical)))
    return "".join(parts)


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(_log_line(), min_size=1, max_size=30),
    kind=st.sampled_from(["oslo", "oslo-plain", "console", "syslog"]),
    ending=st.sampled_from(["\n", "", "\r\n"]),
    crlf=st.booleans(),
    keep_debug=st.booleans(),
    limit=st.sampled_from([1 << 20, 60]),
)
def test_one_pass_formats_split_alike(
    lines: list[str], kind: str, ending: str, crlf: bool, keep_debug: bool, limit: int
) -> None:
    """The one-pass splitting of recheck.logs.blockformats gives split_lines's events,
    fields in the same order, on DEBUG-heavy oslo logs with tracebacks after DEBUG
    lines, dropped xtrace lines and prefixes that almost match."""
    data = (("\r\n" if crlf else "\n").join(lines) + ending).encode()
    tags = TAGS[kind]
    options = {"keep_debug": keep_debug, "max_event_chars": limit}
    expected = by_lines(data, tags, **options)
    assert by_blocks(data, tags, **options) == expected
    assert by_tiny_blocks(data, tags, (90, 16, 400), **options) == expected


def test_a_dropped_last_line_leaves_the_empty_line_before_it() -> None:
    # "\n<pre>": an empty line, then a dropped one; the empty line is an event.
    for data in (b"\n<pre>", b"\n<pre>\n", b"<pre>", b"x\n</pre>"):
        assert by_blocks(data, TAGS["console"]) == by_lines(data, TAGS["console"]), data
    assert by_blocks(b"\n<pre>", TAGS["console"]) == [
        (1, [("message", ""), ("tags", [*TAGS["console"], "_grokparsefailure"])])
    ]


def test_debug_events_dropped_and_kept_around_tracebacks() -> None:
    data = (
        b"2014-02-11 16:04:54.123 1234 DEBUG nova.compute [-] chatter\n"
        b"2014-02-11 16:04:54.123 1234 TRACE nova.compute Traceback\n"
        b"2014-02-11 16:04:54.123 1234 INFO nova.compute [-] boom\n"
        b"2014-02-11 16:04:54.123 1234 TRACE nova.compute   File x\n"
        b"+ dropped\n"
        b"2014-02-11 16:04:54.123 1234 INFO nova.compute x: ERROR y\n"
    )
    tags = TAGS["oslo"]
    events = by_blocks(data, tags)
    assert events == by_lines(data, tags)
    assert [(number, dict(items)["loglevel"]) for number, items in events] == [
        (2, "TRACE"),  # after a DEBUG event: an event of its own
        (3, "INFO"),  # the TRACE line after it folds into it; line 5 is dropped
        (6, "ERROR"),  # a syslog-style program: the level after its colon
    ]
    assert (
        dict(events[1][1])["message"]
        == "[-] boom\n2014-02-11 16:04:54.123 1234 TRACE nova.compute   File x"
    )
    assert [number for number, _ in by_blocks(data, tags, keep_debug=True)] == [1, 2, 3, 6]
