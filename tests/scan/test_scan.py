"""The one-pass scanner gives exactly what splitting and matching every event gives.

``recheck.scan.scanner`` splits only the events around literal hits, in chunks cut where an
event surely begins. These tests generate hostile builds (tracebacks, folded ERROR
lines after DEBUG events, lines that say DEBUG in odd places, xtrace lines, CRLF,
invalid UTF-8, characters whose lowercase is ASCII, no final newline) and compare its
verdicts, with tiny chunks so that every boundary case is crossed, against the plain
path: ``build_events`` + ``match_events``: every match when nothing limits them, and
each bug's first matches (by file and line) when classify keeps only a few.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from recheck.logs.build import Build
from recheck.logs.buildlogs import build_events
from recheck.logs.localdir import DirSource
from recheck.logs.split import event_start_test
from recheck.pipeline import DEFAULT_EXAMPLES, DEFAULT_FILE_RULES, build_files, classify_build
from recheck.query import compile_query
from recheck.query.matcher import match_events
from recheck.query.prefilter import hyperscan_available
from recheck.query.signatures import Signature
from recheck.scan import chunks as scan_chunks
from recheck.scan.chunks import ScanStats
from recheck.scan.scanner import BuildScanner

WORDS = ["Timeout", "volume", "ERROR", "nova", "Kelvin", "failed", "deadlock", "ssh",
         "connection", "refused", "tempest", "\u212aelvin", "\u0130nstance", "instance",
         "ünïcode", "quota", "exceeded"]  # fmt: skip

QUERIES = [
    'message:"connection refused"',
    'message:"timeout" AND tags:"console"',
    'message:"volume failed" AND tags:"screen-c-vol.txt"',
    "message:deadlock AND loglevel:ERROR",
    'message:"kelvin" AND NOT message:"nova"',
    "message:instance",
    "message:ünïcode",
    'message:"quota exceeded" OR tags:"syslog"',
    "NOT message:ssh",
    "module:nova.compute AND message:failed",
    "message:tempe* AND build_name:tempest-full",
    "message:refused AND build_name:other-job",
    'message:"failed" AND tags:"_grokparsefailure"',
    'tags:"_truncated"',
    'message:"exceeded quota"~3',
]

TS = "2021-06-23 05:14:53.561"


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))


def _oslo_file(rng: random.Random, lines: int) -> str:
    out: list[str] = []
    for _ in range(lines):
        kind = rng.random()
        level = rng.choice(["DEBUG", "INFO", "WARNING", "ERROR"])
        if kind < 0.5:
            out.append(f"{TS} 1234 {level} nova.compute [-] {_sentence(rng)}")
        elif kind < 0.55:
            # Lines whose level the syslog_program branch of the prefix decides, and
            # lines that say DEBUG without being DEBUG events.
            out.append(rng.choice([
                f"{TS} 1234 INFO nova.compute [-] x: DEBUG nova {_sentence(rng)}",
                f"{TS} prog[12]: {level} nova {_sentence(rng)}",
                f"{TS} 1234 {level} nova.compute [-] DEBUG {_sentence(rng)}",
                f"{TS} 1234 DEBUG: {_sentence(rng)}",
            ]))  # fmt: skip
        elif kind < 0.7:
            out.append(f"{TS} 1234 TRACE nova.compute {_sentence(rng)}")
        elif kind < 0.78:
            out.append(f"{TS} ERROR nova {_sentence(rng)}")  # folds, see recheck.logs.split
        elif kind < 0.82:
            out.append(f'  File "x.py", line 3, in {_sentence(rng)}')
        elif kind < 0.85:  # continues a phrase across a dropped line
            out.append(f"    {_sentence(rng)}")
        elif kind < 0.9:
            out.append(f"+ {_sentence(rng)}")
        elif kind < 0.95:
            out.append(f"garbage line {_sentence(rng)}")
        else:
            out.append("")
    return "\n".join(out)


def _console_file(rng: random.Random, lines: int) -> str:
    out: list[str] = []
    for _ in range(lines):
        kind = rng.random()
        if kind < 0.7:
            out.append(f"2021-06-23 05:14:53.561762 | {_sentence(rng)}")
        elif kind < 0.75:
            out.append(rng.choice(["<pre>", "</pre>", "<pre>x"]))  # the first two dropped
        else:
            out.append(_sentence(rng))
    return "\r\n".join(out) if rng.random() < 0.3 else "\n".join(out)


def _syslog_file(rng: random.Random, lines: int) -> str:
    return "\n".join(f"Jun  9 15:42:07 host kernel[12]: {_sentence(rng)}" for _ in range(lines))


def _make_build(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    logs = root / "controller" / "logs"
    logs.mkdir(parents=True)
    (logs / "screen-c-vol.txt").write_text(_oslo_file(rng, rng.randint(1, 300)))
    (logs / "screen-n-cpu.txt").write_text(_oslo_file(rng, rng.randint(1, 300)))
    data = _console_file(rng, rng.randint(1, 300)).encode()
    if rng.random() < 0.5:
        data += b"\xff\xfe bad \xc3 utf8 Timeout\n"
    (root / "job-output.txt").write_bytes(data)
    (logs / "syslog.txt").write_text(_syslog_file(rng, rng.randint(0, 50)))


def _signatures() -> list[Signature]:
    return [
        Signature(str(n), text, Path(f"{n}.yaml"), compile_query(text))
        for n, text in enumerate(QUERIES)
    ]


def _reference(
    root: Path, build: Build, keep_debug: bool, signatures: list[Signature]
) -> dict[str, list[str]]:
    events = build_events(DirSource(root), build, keep_debug=keep_debug)
    found = match_events(signatures, events)
    return {bug: sorted(ids) for bug, ids in found.items() if ids}


def _scanned(
    root: Path,
    build: Build,
    keep_debug: bool,
    fast: bool,
    signatures: list[Signature],
    examples: int | None = None,
    expected: dict[str, list[str]] | None = None,
) -> tuple[dict[str, list[str]], ScanStats]:
    """The matches classify keeps (all of them by default); with ``expected`` (every
    match), also checks the counts it tells beside them."""
    result = classify_build(
        DirSource(root),
        signatures,
        build,
        keep_debug=keep_debug,
        use_hyperscan=fast,
        examples=examples,
    )
    found: dict[str, list[str]] = {}
    for match in result.matches:
        found.setdefault(match.bug, []).append(f"{match.filename}:{match.line}")
    for bug, ids in (expected or {}).items():
        # Exact, or a lower bound said to be one, which only a bug with more can need.
        if bug in result.capped:
            assert examples is not None and examples < result.counts[bug] <= len(ids)
        else:
            assert result.counts[bug] == len(ids)
    return {bug: sorted(ids) for bug, ids in found.items()}, result.stats


def _first(found: dict[str, list[str]], examples: int) -> dict[str, list[str]]:
    """Each bug's first ``examples`` matches by file and line: what classify keeps."""

    def place(id_: str) -> tuple[str, int]:
        filename, _, line = id_.rpartition(":")
        return filename, int(line)

    return {bug: sorted(sorted(ids, key=place)[:examples]) for bug, ids in found.items()}


@pytest.mark.parametrize("chunk", [64, 333, 1 << 20])
@pytest.mark.parametrize("seed", range(12))
def test_scanner_equals_splitting_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, chunk: int
) -> None:
    monkeypatch.setattr(scan_chunks, "CHUNK_BYTES", chunk)
    _make_build(tmp_path, seed)
    build = Build(build_name="tempest-full", build_status="FAILURE")
    keep_debug = seed % 3 == 0
    everything = _signatures()
    expected = _reference(tmp_path, build, keep_debug, everything)
    assert len(expected) > 5  # the generator must give the signatures something to find
    assert _scanned(tmp_path, build, keep_debug, True, everything)[0] == expected
    # Each signature stops in a file once it has its matches: still the first ones.
    for examples in (1, DEFAULT_EXAMPLES):
        first = _first(expected, examples)
        assert _scanned(tmp_path, build, keep_debug, True, everything, examples, expected)[0] == (
            first
        )
        if chunk == 64:
            found = _scanned(tmp_path, build, keep_debug, False, everything, examples, expected)
            assert found[0] == first
    if chunk == 64:
        assert _scanned(tmp_path, build, keep_debug, False, everything)[0] == expected
    # One signature at a time: each file's choice of literals differs.
    hit_chunks = 0
    for signature in everything:
        alone = {bug: ids for bug, ids in expected.items() if bug == signature.bug}
        found, stats = _scanned(tmp_path, build, keep_debug, True, [signature])
        assert found == alone
        hit_chunks += stats.chunks_with_hits
        if chunk == 333:
            found, _ = _scanned(tmp_path, build, keep_debug, True, [signature], 2, alone)
            assert found == _first(alone, 2)
    assert hit_chunks > 0 or not hyperscan_available()


@pytest.mark.skipif(not hyperscan_available(), reason="the fast path needs hyperscan")
def test_files_no_signature_can_match_are_not_read(tmp_path: Path) -> None:
    _make_build(tmp_path, 1)
    only_console = [Signature("1", 'message:"timeout" AND tags:"console"', Path("1.yaml"),
                              compile_query('message:"timeout" AND tags:"console"'))]  # fmt: skip
    result = classify_build(DirSource(tmp_path), only_console, Build())
    assert result.stats.files == 4
    assert result.stats.files_skipped == 3  # the screen logs and syslog
    assert result.stats.files_split_in_full == 0


@pytest.mark.skipif(not hyperscan_available(), reason="the fast path needs hyperscan")
def test_only_events_around_hits_are_split(tmp_path: Path) -> None:
    lines = [f"2021-06-23 05:14:53.561762 | ordinary line {n}" for n in range(50_000)]
    lines[31_337] = "2021-06-23 05:14:53.561762 | ssh: connect to host: Connection refused"
    (tmp_path / "job-output.txt").write_text("\n".join(lines) + "\n")
    signatures = _signatures()[:1]
    result = classify_build(DirSource(tmp_path), signatures, Build())
    assert [(m.filename, m.line) for m in result.matches] == [("job-output.txt", 31_338)]
    assert result.stats.events_evaluated == 1


@pytest.mark.parametrize("fast", [True, False])
def test_a_broad_signature_stops_once_it_has_its_examples(tmp_path: Path, fast: bool) -> None:
    # Issue 16: the implicit OR makes tags:"console" alone match every event of a
    # console log; it used to make the scanner split the whole file for every signature.
    lines = [f"2021-06-23 05:14:53.561762 | ordinary line {n}" for n in range(50_000)]
    lines[31_337] = "2021-06-23 05:14:53.561762 | ssh: connect to host: Connection refused"
    (tmp_path / "job-output.txt").write_text("\n".join(lines) + "\n")
    broad = '(message:"alpha" AND message:"beta") OR message:"gamma" tags:"console"'
    signatures = [*_signatures()[:1], Signature("2", broad, Path("2.yaml"), compile_query(broad))]
    result = classify_build(DirSource(tmp_path), signatures, Build(), use_hyperscan=fast)
    assert [(m.bug, m.line) for m in result.matches] == [("0", 31_338)] + [
        ("2", line) for line in range(1, DEFAULT_EXAMPLES + 1)
    ]
    assert result.counts == {"0": 1, "2": DEFAULT_EXAMPLES + 1}
    assert result.capped == {"2"}
    if fast:
        assert result.stats.events_evaluated == DEFAULT_EXAMPLES + 2
        assert result.stats.files_split_in_full == 0


@pytest.mark.parametrize("fast", [True, False])
def test_a_line_repeated_a_million_times_keeps_a_few_matches(tmp_path: Path, fast: bool) -> None:
    # Issue 20: matches were kept without bound (~300 bytes and 29 us each).
    line = "2021-06-23 05:14:53.561762 | ssh: connect to host: Connection refused\n"
    (tmp_path / "job-output.txt").write_text(line * (1_000_000 if fast else 20_000))
    result = classify_build(DirSource(tmp_path), _signatures()[:1], Build(), use_hyperscan=fast)
    assert [m.line for m in result.matches] == list(range(1, DEFAULT_EXAMPLES + 1))
    assert (result.counts, result.capped) == ({"0": DEFAULT_EXAMPLES + 1}, {"0"})
    assert result.stats.events_evaluated == DEFAULT_EXAMPLES + 1


@pytest.mark.skipif(not hyperscan_available(), reason="the fast path needs hyperscan")
@pytest.mark.parametrize(
    ("path", "head", "dropped", "tail"),
    [
        ("controller/logs/screen-n-cpu.txt", f"{TS} 1234 INFO nova [-] the alpha",
         "+ xtrace line", "    Beta gamma"),
        ("job-output.txt", "2021-06-23 05:14:53.561762 | the ALPHA", "<pre>", "beta gamma"),
    ],
)  # fmt: skip
def test_a_phrase_across_a_dropped_line_is_found_from_its_rare_first_word(
    tmp_path: Path, path: str, head: str, dropped: str, tail: str
) -> None:
    # "beta" is everywhere, so the scanner looks for "alpha", then for the rest of the
    # phrase after it: across the line the splitter drops, as in the event's message.
    common = head.replace("the alpha", "beta").replace("the ALPHA", "beta")
    lines = [common] * 2000 + [head, dropped, tail] + [common] * 10
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text("\n".join(lines) + "\n")
    signature = Signature("1", 'message:"alpha beta"', Path("1.yaml"),
                          compile_query('message:"alpha beta"'))  # fmt: skip
    result = classify_build(DirSource(tmp_path), [signature], Build())
    assert [(m.filename, m.line) for m in result.matches] == [(path, 2001)]
    assert result.stats.events_evaluated == 1


@pytest.mark.parametrize("chunk", [64, 1 << 20])
@pytest.mark.parametrize("seed", range(4))
def test_compressed_files_are_scanned_as_plain_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, chunk: int
) -> None:
    # Plain files on disk get their line numbers counted after the fact (pread); a
    # decompressed stream is counted while it is read. Both must give the same lines.
    monkeypatch.setattr(scan_chunks, "CHUNK_BYTES", chunk)
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    _make_build(plain, seed)
    for path in plain.rglob("*.txt"):
        target = packed / path.relative_to(plain).with_suffix(".txt.gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.compress(path.read_bytes()))
    build = Build(build_name="tempest-full", build_status="FAILURE")
    everything = _signatures()
    expected = _reference(plain, build, seed % 2 == 0, everything)
    assert len(expected) > 5
    assert _scanned(plain, build, seed % 2 == 0, True, everything)[0] == expected
    assert _scanned(packed, build, seed % 2 == 0, True, everything)[0] == expected


def test_an_event_longer_than_the_span_limit_is_cut_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_chunks, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(scan_chunks, "MAX_SPAN_BYTES", 5000)
    traceback = "\n".join(f"  continuation {n} connection refused" for n in range(2000))
    text = (
        f"2021-06-23 05:14:53.561762 | start\n{traceback}\n"
        "2021-06-23 05:14:53.561762 | after connection refused\n"
    )

    def matched_lines(name: str) -> list[int]:
        # An event keeps 500 characters here, so the span limit (5000 bytes, at least 8
        # a kept character) is what cuts the giant event.
        files = build_files(DirSource(tmp_path), DEFAULT_FILE_RULES)
        scanner = BuildScanner(_signatures()[:1], Build(), files, max_event_chars=500)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(tmp_path / name, "rb") as stream:
            return [line for _, _, line, _ in scanner.scan_file(scanner.plan(0), stream)]

    (tmp_path / "job-output.txt").write_text(text)
    # The giant event matched in its first 5000 bytes, and the event after it is found
    # with its true line number even though the giant event's rest was skipped.
    assert matched_lines("job-output.txt") == [1, 2002]
    # The same when the lines are counted while reading (a compressed file).
    (tmp_path / "job-output.txt").unlink()
    (tmp_path / "job-output.txt.gz").write_bytes(gzip.compress(text.encode()))
    assert matched_lines("job-output.txt.gz") == [1, 2002]


def test_a_binary_file_is_a_problem_for_that_file_only(tmp_path: Path) -> None:
    (tmp_path / "job-output.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 50)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "syslog.txt").write_text(
        "Jun  9 15:42:07 host kernel: ssh: connect to host: Connection refused\n"
    )
    result = classify_build(DirSource(tmp_path), _signatures()[:1], Build())
    assert [(m.filename, m.line) for m in result.matches] == [("logs/syslog.txt", 1)]
    assert [problem.path for problem in result.problems] == ["job-output.txt"]
    assert "binary content" in result.problems[0].message


@pytest.mark.parametrize("fast", [True, False])
def test_a_100_mb_line_is_cut_and_the_lines_after_it_still_match(
    tmp_path: Path, fast: bool
) -> None:
    with open(tmp_path / "job-output.txt", "wb") as out:
        out.write(b"2021-06-23 05:14:53.561762 | huge ")
        block = b"connection refused " * 5000
        for _ in range((100 << 20) // len(block)):
            out.write(block)
        out.write(b"\n2021-06-23 05:14:54.000000 | then: Connection refused\n")
    result = classify_build(DirSource(tmp_path), _signatures()[:1], Build(), use_hyperscan=fast)
    assert [m.line for m in result.matches] == [1, 2]
    assert result.problems == []


def test_a_mapped_file_that_shrinks_is_an_error_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading a mapped page past a file's new end would kill the process (SIGBUS): the
    # scanner checks the size before each chunk.
    monkeypatch.setattr(scan_chunks, "CHUNK_BYTES", 4096)
    path = tmp_path / "job-output.txt"
    path.write_text("".join(f"2021-06-23 05:14:53.561762 | line {n}\n" for n in range(2000)))
    with open(path, "rb") as stream:
        mapped = scan_chunks.map_file(stream)
        assert mapped is not None
        starts = event_start_test(["console"])
        beyond = scan_chunks.span_test(["console"], 1 << 20)
        chunks = scan_chunks.mapped_chunks(mapped, stream.fileno(), starts, ScanStats(), beyond)
        data, begin, end, _, _ = next(chunks)
        assert (begin, data[end : end + 4]) == (0, b"2021")  # cut where an event begins
        with open(path, "r+b") as writer:
            writer.truncate(100)
        with pytest.raises(OSError, match="shrank"):
            next(chunks)
        chunks.close()
        mapped.close()


def test_each_formats_fields_are_the_splitters() -> None:
    # plan.FORMAT_FIELDS decides conditions on the fields a format never gives: it must
    # hold every field the splitter's prefix patterns can give (recheck.logs.split).
    from recheck.logs import split
    from recheck.scan.plan import FORMAT_FIELDS

    patterns = {
        "console": [split._CONSOLE_PREFIX],
        "oslofmt": [split._OSLO_PREFIX, split._OSLO_PID_PREFIX],
        "apacheerror": [split._APACHE_ERROR],
        "libvirt": [split._LIBVIRT],
        "syslog": [split._SYSLOG_PREFIX],
        "apachecombined": [split._APACHE_COMBINED],
    }
    for name, compiled in patterns.items():
        fields = {group for pattern in compiled for group in pattern.groupindex} - {"logmessage"}
        assert FORMAT_FIELDS[name] == fields, name
    assert set(FORMAT_FIELDS) == {None, *split._FORMATS, "console"}


def test_a_field_a_file_kind_never_has_is_decided_per_file(tmp_path: Path) -> None:
    (tmp_path / "job-output.txt").write_text(
        "".join(f"2021-06-23 05:14:53.561762 | an error {n}\n" for n in range(1000))
    )
    for text, matched in [("loglevel:ERROR", []), ("NOT loglevel:ERROR", [1])]:
        signature = Signature("1", text, Path("1.yaml"), compile_query(text))
        result = classify_build(DirSource(tmp_path), [signature], Build(), examples=1)
        assert [m.line for m in result.matches] == matched
        # One more than shown: then the count is known to be a lower bound.
        assert result.stats.events_evaluated == 2 * len(matched)


TINY_QUERIES = [
    *QUERIES,
    # Conditions on filename: decided per file, whatever its kind shares with others.
    'message:"failed" AND filename:"syslog.txt"',
    "message:volume AND filename:node1*",
    'message:refused AND NOT filename:"node3/logs/screen-c-vol.txt"',
    "filename:node2* OR message:quota",
]


@pytest.mark.parametrize("fast", [True, False])
def test_many_tiny_files_give_what_splitting_every_event_gives(tmp_path: Path, fast: bool) -> None:
    # Issue 20: files of one kind share their plan and gates (and a small file is read
    # whole, not mapped); each file's matches must stay exactly its own.
    rng = random.Random(20)
    makers = {"screen-c-vol.txt": _oslo_file, "syslog.txt": _syslog_file,
              "devstacklog.txt": _console_file}  # fmt: skip
    for node in range(60):
        for name, make in makers.items():
            path = tmp_path / f"node{node}" / "logs" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(make(rng, rng.randint(1, 6)) + "\n")
    signatures = [
        Signature(str(n), text, Path(f"{n}.yaml"), compile_query(text))
        for n, text in enumerate(TINY_QUERIES)
    ]
    build = Build(build_name="tempest-full", build_status="FAILURE")
    expected = _reference(tmp_path, build, False, signatures)
    assert {str(n) for n in range(len(QUERIES), len(TINY_QUERIES))} <= set(expected)
    assert _scanned(tmp_path, build, False, fast, signatures)[0] == expected
    found = classify_build(
        DirSource(tmp_path), signatures, build, use_hyperscan=fast, examples=None, workers=2
    )
    by_bug: dict[str, list[str]] = {}
    for match in found.matches:
        by_bug.setdefault(match.bug, []).append(f"{match.filename}:{match.line}")
    assert {bug: sorted(ids) for bug, ids in by_bug.items()} == expected
    # Without a query naming files, the plans of two files of one kind share their
    # queries: planning is done once per kind, not once per file.
    files = build_files(DirSource(tmp_path), DEFAULT_FILE_RULES)
    scanner = BuildScanner(signatures[: len(QUERIES)], build, files)
    plans = {plan.path: plan for plan in scanner.plans}
    assert (
        plans["node4/logs/screen-c-vol.txt"].queries is plans["node5/logs/screen-c-vol.txt"].queries
    )
