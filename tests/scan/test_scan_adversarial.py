"""Adversarial checks of the scanner's shortcuts against splitting every event.

``tests/test_scan.py`` compares the scanner with the plain path on realistic builds;
these build files meant to defeat each shortcut of ``recheck.scan.scanner``: phrases whose
words are split by lines the splitter drops (xtrace, ``<pre>``, and ``<PRE>``, which
it keeps), CRLF, characters whose lowercase is ASCII, glued punctuation and digits,
DEBUG in odd places and odd prefixes, NBSP and ``\\x1c`` in prefixes, lines longer
than ``max_event_chars``, events longer than the span the scanner keeps, and cuts
that fall exactly on a line's start; each is scanned plain (mapped) and gzipped. The
scanner with a limit must give each signature's first matches in each file.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from recheck.logs.build import Build
from recheck.logs.buildlogs import build_events, build_files, open_build_file
from recheck.logs.localdir import DirSource
from recheck.logs.logfiles import FileRule
from recheck.query import compile_query
from recheck.query.matcher import match_events
from recheck.query.prefilter import hyperscan_available
from recheck.query.signatures import Signature
from recheck.scan import chunks, gates
from recheck.scan.scanner import BuildScanner

Found = dict[str, list[str]]

TS = "2021-06-23 05:14:53.561"
CONSOLE_TS = "2021-06-23 05:14:53.561762 | "

RULES = [
    FileRule("c.txt", ("console",)),
    FileRule("o.txt", ("screen", "oslofmt")),
    FileRule("p.txt", ("oslofmt",)),
    FileRule("l.txt", ("libvirt",)),
    FileRule("e.txt", ("apacheerror",)),
    FileRule("y.txt", ("syslog",)),
    FileRule("s.txt", ("screen",)),
    FileRule("a.txt", ("apachecombined",)),
    FileRule("x.txt", ()),
    FileRule("sc.txt", ("screen", "console")),
]
RULES += [FileRule(rule.pattern + ".gz", rule.tags) for rule in RULES]

WORDS = ["alpha", "Alpha", "ALPHA", "beta", "BETA", "failed", "to", "pre", "PRE", "debug",
         "DEBUG", "\u0130nstance", "\u212aelvin", "kelvin", "stra\u00dfe", "strasse", "x1",
         "alpha1", "1alpha", "alpha_beta", "alpha.beta", "al-pha", "gamma", "delta", "\u00e9",
         "ERROR", "TRACE", "\u0130", "\u00df", "\ufb01", "alpha\u00e9", "_alpha",
         "a'b"]  # fmt: skip
SEPARATORS = [" ", "  ", ", ", "-", "\t", ": ", "\u00a0", "\x1c", " \u2014 ", ".", "\r"]
LEVELS = ["DEBUG", "INFO", "ERROR", "TRACE", "WARNING", "debug", "Debug"]
DROPPED_OR_ODD = ["+ ", "<pre>", "</pre>", "<PRE>", "<Pre>", "<pre>\r", "</pre>\r\r"]

QUERIES = [
    'message:"alpha beta"',
    'message:"beta alpha"',
    'message:"failed to failed"',
    'message:"to alpha beta"',
    'message:"alpha pre"',
    'message:"pre beta"',
    'message:"alpha beta" OR message:"gamma delta"',
    'message:alpha AND NOT message:"beta gamma"',
    'message:"alpha gamma"~2',
    "message:alp*",
    "message:*pha AND message:beta",
    'message:"instance kelvin"',
    'message:"strasse alpha"',
    'message:"alpha x1"',
    'message:"debug alpha"',
    "loglevel:DEBUG AND message:alpha",
    'message:"alpha_beta gamma"',
    'message:"alpha.beta gamma"',
    'message:"al pha"',
    'message:"error alpha"',
    'module:nova AND message:"beta beta"',
    'message:"alpha" AND tags:"_truncated"',
    'message:"beta" AND tags:"_grokparsefailure"',
    'message:"gamma alpha beta delta"',
    "message:Alph?",
    'message:"trace beta"',
    "syslog_program:prog AND message:alpha",
    'message:"alpha alpha"',
    'message:"to failed"',
    'message:"i alpha"',
]


def _sentence(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 7)):
        parts += [rng.choice(WORDS), rng.choice(SEPARATORS)]
    return "".join(parts[:-1])


def _line(rng: random.Random) -> str:
    level = rng.choice(LEVELS)
    if rng.random() < 0.4:
        return f"{TS} {rng.randint(1, 999)} {level} nova.mod [-] {_sentence(rng)}"
    prefix = rng.choice([
        f"{TS} prog[12]: {level} nova ", f"{TS} {level} nova ", f"{TS}\x1c123 DEBUG nova ",
        f"{TS} 123\u00a0DEBUG nova ", f"{TS} 1 INFO x: DEBUG m ", f"{TS} 12 ERROR ",
        f"{TS} 12 TRACE ", f"2021-06-23 05:14:53.561+00:00: 123: {level} : ",
        f"[Wed Jun 23 05:14:53.561 2021] [{level}] ", "Jun  9 15:42:07 host prog[1]: ",
        CONSOLE_TS, '<span class="timestamp"><b>05:14:53.561</b> </span>', "    ",
        '  File "x", in ', '1.2.3.4 - - [23/Jun/2021:05:14:53 +0000] "GET /alpha HTTP/1.1" '
        '200 12 "-" "beta" ', "", *DROPPED_OR_ODD,
    ])  # fmt: skip
    if prefix in DROPPED_OR_ODD[1:]:
        return prefix
    return prefix + _sentence(rng)


def _write_build(root: Path, rng: random.Random, *, gzipped: bool, long_events: bool) -> None:
    for rule in RULES[: len(RULES) // 2]:
        lines = [_line(rng) for _ in range(rng.randint(0, 60))]
        if long_events:  # runs of continuation and dropped lines: events past the span
            for _ in range(rng.randint(0, 3)):
                at = rng.randint(0, len(lines))
                run = [rng.choice(["+ xtrace alpha", "<pre>", "  more alpha", "beta"])
                       for _ in range(rng.randint(10, 80))]  # fmt: skip
                lines[at:at] = run
        text = "\n".join(lines)
        if rng.random() < 0.3:
            text = text.replace("\n", "\r\n")
        if text and rng.random() < 0.5:
            text += "\n"
        data = text.encode()
        if gzipped:
            (root / (rule.pattern + ".gz")).write_bytes(gzip.compress(data))
        else:
            (root / rule.pattern).write_bytes(data)


def _signatures(queries: list[str]) -> list[Signature]:
    return [
        Signature(str(n), text, Path(f"{n}.yaml"), compile_query(text))
        for n, text in enumerate(queries)
    ]


def _reference(root: Path, signatures: list[Signature], keep_debug: bool, chars: int) -> Found:
    events = build_events(
        DirSource(root), Build(), rules=RULES, keep_debug=keep_debug, max_event_chars=chars
    )
    found = match_events(signatures, events)
    return {bug: sorted(ids) for bug, ids in found.items() if ids}


def _first_per_file(found: Found, limit: int) -> Found:
    """The first ``limit`` matches of each bug in each file."""
    kept: Found = {}
    for bug, ids in found.items():
        by_file: dict[str, list[int]] = {}
        for id_ in ids:
            filename, _, line = id_.rpartition(":")
            by_file.setdefault(filename, []).append(int(line))
        kept[bug] = sorted(
            f"{filename}:{line}"
            for filename, lines in by_file.items()
            for line in sorted(lines)[:limit]
        )
    return kept


def _scanned(
    root: Path,
    signatures: list[Signature],
    keep_debug: bool,
    chars: int,
    fast: bool = True,
    limit: int | None = None,
) -> Found:
    # BuildScanner itself, not classify_build: it is the one that takes max_event_chars.
    source = DirSource(root)
    scanner = BuildScanner(
        signatures,
        Build(),
        build_files(source, RULES),
        keep_debug=keep_debug,
        max_event_chars=chars,
        use_hyperscan=fast,
        limit=limit,
    )
    found: Found = {}
    for plan in scanner.plans:
        if scanner.skips(plan):
            continue
        stream = open_build_file(source, plan.path, None)
        assert stream is not None
        with stream:
            for index, filename, line, _ in scanner.scan_file(plan, stream):
                found.setdefault(signatures[index].bug, []).append(f"{filename}:{line}")
    return {bug: sorted(ids) for bug, ids in found.items()}


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("seed", range(30))
def test_hostile_builds_scan_as_they_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, gzipped: bool
) -> None:
    rng = random.Random(seed)
    long_events = seed % 3 == 0
    monkeypatch.setattr(chunks, "CHUNK_BYTES", rng.choice([32, 64, 100, 333, 4096]))
    monkeypatch.setattr(gates, "SAMPLE_BYTES", rng.choice([64, 1 << 16]))
    if long_events:
        monkeypatch.setattr(chunks, "MAX_SPAN_BYTES", rng.choice([200, 300, 500]))
    _write_build(tmp_path, rng, gzipped=gzipped, long_events=long_events)
    keep_debug = rng.random() < 0.3
    chars = rng.choice([1 << 20, 100, 40, 7] if not long_events else [40, 20, 7])
    signatures = _signatures(QUERIES)
    expected = _reference(tmp_path, signatures, keep_debug, chars)
    assert _scanned(tmp_path, signatures, keep_debug, chars) == expected
    # A few at a time too: with all of them, a file's literal choice is different.
    for start in range(0, len(QUERIES), 4):
        some = signatures[start : start + 4]
        want = {bug: ids for bug, ids in expected.items() if int(bug) in range(start, start + 4)}
        assert _scanned(tmp_path, some, keep_debug, chars) == want
    for limit in (1, 3):
        first = _first_per_file(expected, limit)
        assert _scanned(tmp_path, signatures, keep_debug, chars, limit=limit) == first
    if seed % 5 == 0:
        assert _scanned(tmp_path, signatures, keep_debug, chars, fast=False) == expected
        found = _scanned(tmp_path, signatures, keep_debug, chars, fast=False, limit=2)
        assert found == _first_per_file(expected, 2)


def test_the_generator_gives_the_queries_something_to_find(tmp_path: Path) -> None:
    rng = random.Random(0)
    _write_build(tmp_path, rng, gzipped=False, long_events=False)
    assert len(_reference(tmp_path, _signatures(QUERIES), False, 1 << 20)) > 10


def _write(root: Path, name: str, text: str, gzipped: bool) -> None:
    data = text.encode()
    if gzipped:
        (root / (name + ".gz")).write_bytes(gzip.compress(data))
    else:
        (root / name).write_bytes(data)


def _assert_alpha_beta_found(root: Path, chars: int, expected: Found) -> None:
    """Both paths find the phrase "alpha beta" where ``expected`` says, and only there."""
    signatures = _signatures(['message:"alpha beta"'])
    assert _reference(root, signatures, False, chars) == expected
    assert _scanned(root, signatures, False, chars) == expected


def _small_chunks(monkeypatch: pytest.MonkeyPatch, span: int) -> None:
    """Chunks of 100 bytes, and events skipped past ``span`` bytes (or what they keep)."""
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 100)
    monkeypatch.setattr(chunks, "MAX_SPAN_BYTES", span)


@pytest.mark.skipif(not hyperscan_available(), reason="the shortcuts need hyperscan")
@pytest.mark.parametrize("gzipped", [False, True])
def test_an_uppercase_pre_line_is_kept_and_separates_words(tmp_path: Path, gzipped: bool) -> None:
    # The splitter drops "<pre>" and "</pre>" only: "<PRE>" is a line of the event, and
    # its word "pre" is in the phrases "alpha pre" and "pre beta". The scanner used to
    # take it for a dropped line, both after a hit (any case) and in the candidate's
    # lowercased text, and lost both matches.
    common = f"{CONSOLE_TS}beta alpha x"
    lines = [common] * 50 + [f"{CONSOLE_TS}the alpha", "<PRE>", "beta", common]
    _write(tmp_path, "c.txt", "\n".join(lines) + "\n", gzipped)
    signatures = _signatures(['message:"alpha pre"', 'message:"pre beta"', 'message:"alpha beta"'])
    expected = {"0": ["c.txt:51"], "1": ["c.txt:51"]}
    assert _reference(tmp_path, signatures, False, 1 << 20) == expected
    assert _scanned(tmp_path, signatures, False, 1 << 20) == expected


@pytest.mark.skipif(not hyperscan_available(), reason="the shortcuts need hyperscan")
@pytest.mark.parametrize("gzipped", [False, True])
def test_an_event_beginning_right_where_a_long_event_is_cut_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gzipped: bool
) -> None:
    # A 400-byte event, cut at the span limit; the next event begins exactly there. The
    # scanner used to look for the next event from the first line break after the cut,
    # passing over that line.
    _small_chunks(monkeypatch, span=400)
    chars = 40  # 8 bytes a character: 336 < 400, so the span is MAX_SPAN_BYTES
    head = f"{CONSOLE_TS}start\n"
    body = head + "x" * (400 - len(head) - 1) + "\n"
    text = body + f"{CONSOLE_TS}alpha beta\n" * 2
    _write(tmp_path, "c.txt", text, gzipped)
    _assert_alpha_beta_found(tmp_path, chars, {"0": ["c.txt:3", "c.txt:4"]})


@pytest.mark.skipif(not hyperscan_available(), reason="the shortcuts need hyperscan")
@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize(
    ("name", "head", "dropped"),
    [("o.txt", f"{TS} 1 INFO m [-] start", "+ xtrace"), ("c.txt", f"{CONSOLE_TS}start", "<pre>")],
)
def test_dropped_lines_do_not_count_toward_the_span(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gzipped: bool,
    name: str,
    head: str,
    dropped: str,
) -> None:
    # Past the span the rest of an event is skipped, as it keeps no more text; but lines
    # the splitter drops keep none: the line after them is still in the event's message.
    _small_chunks(monkeypatch, span=400)
    chars = 80  # the span: 8 * 82 = 656 bytes, less than the dropped lines
    text = f"{head}\n" + f"{dropped}\n" * 150 + "alpha beta\n" + f"{head}\n"
    _write(tmp_path, name, text, gzipped)
    _assert_alpha_beta_found(tmp_path, chars, {"0": [f"{name}:1"]})


@pytest.mark.skipif(not hyperscan_available(), reason="the shortcuts need hyperscan")
@pytest.mark.parametrize("gzipped", [False, True])
def test_a_span_shorter_than_what_an_event_keeps_is_widened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gzipped: bool
) -> None:
    # An event keeps max_event_chars characters, whatever MAX_SPAN_BYTES is: the rest of
    # an event is skipped only past 8 bytes a character.
    _small_chunks(monkeypatch, span=200)
    chars = 500
    text = f"{CONSOLE_TS}start\n" + "  more\n" * 60 + "alpha beta\n"
    _write(tmp_path, "c.txt", text, gzipped)
    _assert_alpha_beta_found(tmp_path, chars, {"0": ["c.txt:1"]})


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128])
def test_files_of_chunk_sizes_with_and_without_a_final_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gzipped: bool, size: int
) -> None:
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64)
    line = f"{CONSOLE_TS}alpha beta\n"
    text = (line * (size // len(line) + 1))[:size]
    signatures = _signatures(['message:"alpha beta"', 'message:"beta alpha"'])
    for ending in ["", "\n", f"{CONSOLE_TS}alpha"]:
        _write(tmp_path, "c.txt", text + ending, gzipped)
        expected = _reference(tmp_path, signatures, False, 1 << 20)
        assert _scanned(tmp_path, signatures, False, 1 << 20) == expected
