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
    limit = options.get("max_event_chars", 1 << 20)
    assert isinstance(limit, int)
    return list(split_lines(read_lines(io.BytesIO(data), limit), tags, **options))  # type: ignore[arg-type]


def by_blocks(data: bytes, tags: list[str], **options: object) -> list[tuple[int, object]]:
    return [event for block in split_stream(io.BytesIO(data), tags, **options) for event in block]  # type: ignore[arg-type]


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
    old = (blocksplit.BLOCK_BYTES, blocksplit._READ_BYTES, blocksplit._MAX_CARRY)
    try:
        blocksplit.BLOCK_BYTES, blocksplit._READ_BYTES, blocksplit._MAX_CARRY = 50, 16, 120
        assert by_blocks(data, tags, **options) == expected
    finally:
        blocksplit.BLOCK_BYTES, blocksplit._READ_BYTES, blocksplit._MAX_CARRY = old
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
