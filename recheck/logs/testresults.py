"""Which tests failed in a build, from its subunit stream, and signatures' ``test_ids``.

A signature with ``test_ids`` matches a build only if one of those tests failed there, as
in elastic-recheck (which asked subunit2sql for the build's failed tests). The build's
test results come from its subunit stream (``testrepository.subunit``, written by
``stestr last --subunit``), read here with python-subunit.

**What counts as failed**: a test whose last final status in the stream is ``fail``
(subunit v1's ``failure:`` and ``error:`` both become ``fail``). That is what
elastic-recheck matched (subunit2sql's failed test ids are the runs with status
``fail``) and what ``subunit-stats`` counts as "Failed tests". Not failed: ``success``,
``skip``, ``xfail`` (an expected failure), ``uxsuccess`` (the test passed although it
was expected to fail: the bug's symptom is a test failing, not passing; it is counted in
``SubunitResults.counts``), and a test that started but has no final status because the
stream ends first (a killed or timed-out run: ``SubunitResults.incomplete``). A class or
module fixture that fails is reported by stestr as ``setUpClass (pkg.module.Class)``;
that is a failed test id like any other (see ``test_matches`` for how it matches).

**Matching** (``test_matches``): a signature's test id matches a failed test id when it
is equal to it, or to it without its ``[...]`` attributes (tempest's
``test_y[id-...,smoke]``; subunit2sql stored ids without them, so elastic-recheck's
signatures are written without them), or to the ``pkg.module.Class`` of a failed class
fixture (``setUpClass (pkg.module.Class)``), or to a leading part of one of these that
ends just before a ``.``, ``(`` or ``[``: a module or class names every test in it, and
``test_x`` names every testscenarios variant ``test_x(scenario)`` (neutron's functional
and fullstack tests) and every parametrized ``test_x[param]``. ``...test_tagged_attach``
does not match ``...test_tagged_attachment``, and a test method does not match a failed
``setUpClass`` of its class (the method did not run, it did not fail).

**Bad streams never raise**: a truncated or corrupt stream gives the tests read before
(and after) the damage plus a message in ``SubunitResults.problems``; bytes that are not
subunit at all (an HTML error page, a text log) give no tests and a problem saying so.
The stream is read packet by packet, never whole: memory stays bounded whatever its size
(one packet is at most 4 MiB).
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO, Literal

import subunit  # type: ignore[import-untyped]
from testtools import ExtendedToStreamDecorator, StreamResult

from recheck.logs.subunitfast import Rest, read_packets

__all__ = [
    "FAILED_STATUSES",
    "NONE_FAILED",
    "NO_STREAM",
    "SUBUNIT_NAMES",
    "SUBUNIT_PATHS",
    "SubunitResults",
    "TestRun",
    "build_test_results",
    "failed_tests",
    "find_subunit",
    "matching_failures",
    "merge_results",
    "skip_reason",
    "test_matches",
]

FAILED_STATUSES = frozenset({"fail"})
"""Final statuses that make a test failed (see the module docstring for why not uxsuccess)."""
_FINAL_STATUSES = frozenset({"success", "fail", "skip", "xfail", "uxsuccess"})

SUBUNIT_NAMES = ("testrepository.subunit", "testrepository.subunit.gz")
"""File names of a build's subunit stream, wherever it sits in the build's logs."""

SUBUNIT_PATHS = (
    # Zuul v3 (zuul-jobs' fetch-subunit-output, devstack/tempest jobs): the log root.
    "testrepository.subunit",
    "testrepository.subunit.gz",
    # Jenkins-era devstack-gate jobs and TripleO jobs: under logs/.
    "logs/testrepository.subunit",
    "logs/testrepository.subunit.gz",
    # Multinode devstack layouts keep the controller's files under controller/logs/.
    "controller/logs/testrepository.subunit",
    "controller/logs/testrepository.subunit.gz",
)
"""Where builds keep their subunit stream, most usual first (OpenDev's download list
indexes ``testrepository.subunit`` and ``logs/testrepository.subunit``). ``find_subunit``
also finds a file of one of ``SUBUNIT_NAMES`` anywhere else in the build."""

NO_STREAM = "no subunit stream in the build"
NONE_FAILED = "none of its test_ids failed"

_GZIP_MAGIC = b"\x1f\x8b"
_V2_SIGNATURE = 0xB3
# A line that begins a subunit v1 test or sets its context (python-subunit's keywords).
_V1_DIRECTIVE = re.compile(rb"(?m)^(?:test|testing|time|tags|progress)[: ]")
_NON_SUBUNIT = "recheck.non-subunit"
# Where junk ends and a packet may start: the signature 0xb3, unless it ends a UTF-8
# character (as python-subunit's parser means to decide), then version 2 flags (0x2_).
_PACKET_START = re.compile(
    rb"(?<![\xc2-\xdf])(?<![\xe0-\xef][\x80-\xbf])(?<![\xf0-\xf4][\x80-\xbf][\x80-\xbf])"
    rb"\xb3(?:[\x20-\x2f]|\Z)"
)
_PARSER_ID = "subunit.parser"  # python-subunit reports a corrupt packet as this test failing
_SNIFF_LIMIT = 64 * 1024  # no subunit packet in the first 64 KiB: not a subunit stream
_NON_SUBUNIT_LIMIT = 4 * 1024 * 1024  # stop after 4 MiB of non-subunit bytes in all
_MAX_PROBLEMS = 10
_MAX_PARSER_ERRORS = 1000


DETAILS_MAX_CHARS = 16 * 1024
"""Attachment text kept per failed test (traceback first, then the others, each cut to
its end when the rest does not fit): enough for a traceback, never a test's whole log."""
_WORKER_TAG = "worker-"


@dataclass(frozen=True, slots=True)
class TestRun:
    """One test's result in a run: what the history and the run view keep."""

    __test__ = False  # not a pytest test class

    test_id: str
    status: str
    """Final status (``success``, ``fail``, ``skip``, ``xfail``, ``uxsuccess``), or
    ``incomplete`` for a test the stream started but never finished."""
    start: float | None = None
    """When it started (seconds since the epoch); None when the stream does not say."""
    duration: float | None = None
    """Seconds from its start to its final status; None when unknown."""
    worker: str | None = None
    """Its worker tag (stestr's ``worker-N``), None when untagged."""
    details: tuple[tuple[str, str], ...] = ()
    """For a failed test, its attachments by name (``traceback`` first), at most
    ``DETAILS_MAX_CHARS`` in all; empty for the others."""


@dataclass(frozen=True)
class SubunitResults:
    """What one subunit stream (or several, merged) says about a test run."""

    failed: frozenset[str] = frozenset()
    """Ids of the tests whose last final status is ``fail``."""
    incomplete: frozenset[str] = frozenset()
    """Ids of tests started but not finished when the stream ends (a killed run)."""
    counts: dict[str, int] = field(default_factory=dict)
    """How many tests ended with each final status (success, fail, skip, xfail, uxsuccess)."""
    problems: tuple[str, ...] = ()
    """What was wrong with the stream: truncated, corrupt packets, not subunit, unreadable."""
    format: Literal["v2", "v1"] | None = None
    """The subunit version read; None when the stream held no subunit at all."""
    runs: tuple[TestRun, ...] = ()
    """Every test with its final status, timing and worker, in the order they ended
    (the incomplete ones last)."""

    @property
    def readable(self) -> bool:
        """Whether any subunit content was read (a stream of garbage is not)."""
        return self.format is not None


# --- reading a stream -----------------------------------------------------------------


def failed_tests(stream: BinaryIO) -> SubunitResults:
    """Read a subunit v2 (or v1) stream, gzip-compressed or not, and say which tests failed.

    Compression is recognised by its magic bytes, not by a file name (logs servers store
    ``.gz`` files but sometimes serve them decompressed). Never raises for bad content or
    a read error: what was read before it is kept and ``problems`` says what happened.
    The caller closes ``stream``.
    """
    # read1 where there is one: a buffered stream's read() loses the bytes it had
    # gathered when a later raw read fails; read1 does one raw read.
    outer = _Guarded(getattr(stream, "read1", stream.read))
    buffered = io.BufferedReader(outer, 1 << 16)
    inner: _Guarded | None = None
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        # Small compressed reads, and read1 (one decompression step per call): what was
        # decompressed before a truncation or a corruption is delivered, not lost with it.
        gz = gzip.GzipFile(fileobj=_SmallReads(buffered), mode="rb")
        inner = _Guarded(gz.read1)
        buffered = io.BufferedReader(inner, 1 << 16)
    source = _ParserInput(buffered)
    collector = _Collector(source)
    head = buffered.peek(_SNIFF_LIMIT)[:_SNIFF_LIMIT]
    fmt: Literal["v2", "v1"] | None
    if not head:
        fmt = None
    elif _V1_DIRECTIVE.search(head) and not _PACKET_START.search(head):
        fmt = "v1"
        _read_v1(source, collector)
    else:
        fmt = "v2"
        _read_v2(source, collector)
    read_error = outer.error or (inner.error if inner is not None else None)
    return collector.results(fmt, head, read_error, compressed=inner is not None)


def _read_v2(source: _ParserInput, collector: _Collector) -> None:
    # Well-formed packets first, fast; python-subunit's parser from the first that is not.
    try:
        consumed, held = read_packets(source.raw_read, collector)
    except _Stop:
        return
    source.offset += consumed
    source.resume(held)
    parser = subunit.ByteStreamToStreamResult(source, non_subunit_name=_NON_SUBUNIT)
    try:
        parser.run(collector)
    except _Stop:
        pass
    except Exception as exc:  # python-subunit's parser failing on content it did not expect
        collector.problem(f"the subunit parser stopped at byte {source.offset}: {exc!r}")


def _read_v1(source: _ParserInput, collector: _Collector) -> None:
    sink = _CountingSink()
    protocol = subunit.TestProtocolServer(ExtendedToStreamDecorator(collector), sink)
    line_number = 0
    try:
        # Lines of at most 1 MiB: the rest of a longer one reads as a line of junk.
        for line in iter(lambda: source.readline(1 << 20), b""):
            line_number += 1
            try:
                protocol.lineReceived(line)
            except Exception as exc:  # a malformed directive (a bad time: line ...)
                collector.problem(f"line {line_number}: cannot parse {line[:80]!r}: {exc}")
        # The stream ends inside a test: python-subunit reports that test as an error;
        # it did not fail, the run stopped (as a v2 stream cut there reads).
        collector.closing = True
        protocol.lostConnection()
    except Exception as exc:
        collector.problem(f"the subunit v1 parser stopped at line {line_number}: {exc!r}")
    collector.non_subunit_bytes += sink.size


class _Stop(Exception):
    """Reading the stream is pointless: the collector says why in its problems."""


class _Guarded(io.RawIOBase):
    """A byte stream that ends instead of raising: the first read error is kept in ``error``.

    A truncated ``.gz`` raises EOFError, corrupt compressed data zlib.error or
    BadGzipFile, a network stream OSError; all of them end the stream here.
    """

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self.error is not None:
            return 0
        try:
            data = self._read(len(buffer))
        except Exception as exc:  # whatever the stream raises ends it; reported, not raised
            self.error = exc
            return 0
        buffer[: len(data)] = data
        return len(data)


class _SmallReads:
    """Compressed bytes handed to GzipFile 2 KiB at a time.

    zlib raises on corrupt data without returning what it decompressed from the same
    input, so the smaller the input, the less is lost before a corruption.
    """

    def __init__(self, buffered: io.BufferedReader[_Guarded]) -> None:
        self._buffered = buffered

    def read(self, size: int = -1) -> bytes:
        return self._buffered.read(2048 if size < 0 else min(size, 2048))

    def seek(self, offset: int) -> int:
        raise io.UnsupportedOperation("a subunit stream is read once, from the start")


class _ParserInput:
    """What python-subunit reads from: counts bytes, refuses a negative-length read, and
    passes over the junk between packets in one step.

    A corrupt packet header can claim a length under the header's own size, and
    python-subunit would then ``read(negative)``: read the whole rest of the file into
    memory. Refusing makes that packet a short read, reported as corrupt, and parsing
    goes on after it.

    Between packets the parser reads one byte at a time (``read(1)``; no valid packet is
    read that way, its smallest read is 2 bytes) and hands each byte that does not start
    a packet over as non-subunit content: slow for megabytes of junk, and a UTF-8
    character ending in 0xb3 (``ó``) makes it parse a packet that is not there. So a
    ``read(1)`` that is not at a packet's start (``_PACKET_START``) passes over all
    the junk up to the next one and returns one newline standing for it:
    the parser reports it as non-subunit content and goes on with the packet. The bytes
    passed over beyond that one are counted in ``skipped``.
    """

    def __init__(self, buffered: io.BufferedReader[_Guarded]) -> None:
        self._buffered: io.BufferedReader[_Guarded] | io.BufferedReader[Rest] = buffered
        self.offset = 0
        self.skipped = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b""
        if size == 1:
            window = self._buffered.peek(_SNIFF_LIMIT)[:_SNIFF_LIMIT]
            start = _PACKET_START.search(window)
            junk = start.start() if start else len(window)
            if junk:
                self._buffered.read(junk)  # no more than peek returned: all of it
                self.offset += junk
                self.skipped += junk - 1
                return b"\n"
        data = self._buffered.read(size)
        self.offset += len(data)
        return data

    def raw_read(self, size: int) -> bytes:
        """Bytes for the fast reader (which counts them itself: see ``resume``)."""
        return self._buffered.read(size)

    def resume(self, held: bytes) -> None:
        """Go on from bytes the fast reader read but did not consume."""
        if held:
            self._buffered = io.BufferedReader(Rest(held, self._buffered.read), 1 << 16)

    def readline(self, limit: int = -1) -> bytes:
        data = self._buffered.readline(limit)
        self.offset += len(data)
        return data

    def at_eof(self) -> bool:
        return not self._buffered.peek(1)


class _CountingSink:
    """Where subunit v1's parser writes the lines that are not subunit: counted, dropped."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


class _Collector(StreamResult):
    """A testtools StreamResult keeping each test's last status, and the stream's problems."""

    def __init__(self, source: _ParserInput) -> None:
        super().__init__()
        self._source = source
        self._status: dict[str, str] = {}
        self._inprogress: set[str] = set()
        self._started: dict[str, float] = {}
        self._attachments: dict[str, dict[str, list[bytes]]] = {}
        self._runs: dict[str, TestRun] = {}
        self._problems: list[str] = []
        self._dropped_problems = 0
        self._parser_errors = 0
        self._packets = 0
        self.non_subunit_bytes = 0
        self._first_non_subunit: int | None = None
        self.closing = False

    def status(
        self,
        test_id: str | None = None,
        test_status: str | None = None,
        test_tags: object = None,
        runnable: bool = True,
        file_name: str | None = None,
        file_bytes: bytes | memoryview | None = None,
        eof: bool = False,
        mime_type: str | None = None,
        route_code: str | None = None,
        timestamp: object = None,
    ) -> None:
        when = None if timestamp is None else timestamp.timestamp()  # type: ignore[attr-defined]
        self.packet(test_id, test_status, test_tags, file_name, file_bytes, when)  # type: ignore[arg-type]

    def packet(
        self,
        test_id: str | None,
        test_status: str | None,
        test_tags: set[str] | None,
        file_name: str | None,
        file_bytes: bytes | memoryview | None,
        timestamp: float | None,
    ) -> None:
        """One packet's fields (``recheck.logs.subunitfast.PacketSink``)."""
        if test_id == _PARSER_ID:
            if file_name == "Parser Error" and file_bytes is not None:
                self._parser_error(bytes(file_bytes).decode("utf-8", "replace"))
            return
        if test_id is None and file_name == _NON_SUBUNIT:
            self._non_subunit(len(file_bytes) if file_bytes is not None else 0)
            return
        self._packets += 1
        if test_id is None:
            return
        if file_name is not None and file_bytes:
            self._attach(test_id, file_name, file_bytes)
        if test_status == "inprogress":
            self._inprogress.add(test_id)
            if timestamp is not None:
                self._started[test_id] = timestamp
        elif test_status in _FINAL_STATUSES:
            if self.closing and test_id in self._inprogress:
                return
            self._status[test_id] = test_status
            self._inprogress.discard(test_id)
            self._finish(test_id, test_status, test_tags, timestamp)

    def _attach(self, test_id: str, name: str, data: bytes | memoryview) -> None:
        """Keep a test's attachment until its status says whether it failed: only the
        last ``DETAILS_MAX_CHARS`` bytes of each (a failed test keeps no more)."""
        parts = self._attachments.setdefault(test_id, {}).setdefault(name, [])
        parts.append(bytes(data[-DETAILS_MAX_CHARS:]))
        if len(parts) > 1 and sum(map(len, parts)) > 2 * DETAILS_MAX_CHARS:
            parts[:] = [b"".join(parts)[-DETAILS_MAX_CHARS:]]

    def _finish(self, test_id: str, status: str, tags: set[str] | None, end: float | None) -> None:
        start = self._started.pop(test_id, None)
        worker = None
        if tags:
            worker = next((t for t in tags if t.startswith(_WORKER_TAG)), None)
        attachments = self._attachments.pop(test_id, None)
        details = _details(attachments) if attachments and status in FAILED_STATUSES else ()
        self._runs.pop(test_id, None)  # a test run twice: the last result is its result
        self._runs[test_id] = TestRun(
            test_id,
            status,
            start if start is not None else end,
            None if start is None or end is None else max(0.0, end - start),
            worker,
            details,
        )

    def problem(self, message: str) -> None:
        if len(self._problems) < _MAX_PROBLEMS:
            self._problems.append(message)
        else:
            self._dropped_problems += 1

    def _parser_error(self, message: str) -> None:
        self._parser_errors += 1
        where = f"at byte {self._source.offset}"
        if "wanted -" in message:
            self.problem(f"corrupt packet {where}: its length is smaller than its header")
        elif message.startswith("Short read") and self._source.at_eof():
            self.problem(f"the stream ends in the middle of a packet {where}: truncated")
        else:
            self.problem(f"corrupt packet {where}: {message}")
        self._check_budget()
        if self._parser_errors > _MAX_PARSER_ERRORS:
            self.problem(f"stopped reading after {_MAX_PARSER_ERRORS} corrupt packets")
            raise _Stop

    def _non_subunit(self, size: int) -> None:
        size += self._source.skipped
        self._source.skipped = 0
        if self._first_non_subunit is None:
            self._first_non_subunit = self._source.offset - size
        self.non_subunit_bytes += size
        self._check_budget()
        if self.non_subunit_bytes > _NON_SUBUNIT_LIMIT:
            self.problem(
                f"stopped reading at byte {self._source.offset}: "
                f"more than {_NON_SUBUNIT_LIMIT >> 20} MiB of non-subunit content"
            )
            raise _Stop

    def _check_budget(self) -> None:
        if self._packets == 0 and self._source.offset > _SNIFF_LIMIT:
            raise _Stop

    def results(
        self,
        fmt: Literal["v2", "v1"] | None,
        head: bytes,
        read_error: Exception | None,
        compressed: bool,
    ) -> SubunitResults:
        problems = list(self._problems)
        if fmt is None:
            problems.insert(0, "no test results could be read" if read_error else "empty stream")
            fmt_read = None
        elif self._packets == 0 and fmt == "v2" and _looks_like_v2(head):
            problems.insert(0, "no test results: the stream's first packet is unreadable")
            fmt_read = None
        elif self._packets == 0:
            kind = "subunit v1" if fmt == "v1" else "subunit"
            problems = [f"not a {kind} stream: no test results in it; it starts with {head[:60]!r}"]
            self._dropped_problems = 0
            fmt_read = None
        else:
            fmt_read = fmt
            if self.non_subunit_bytes:
                where = (
                    f" (the first at byte {self._first_non_subunit})"
                    if self._first_non_subunit is not None
                    else ""
                )
                problems.append(
                    f"skipped {self.non_subunit_bytes} bytes of non-subunit content{where}"
                )
        if self._dropped_problems:
            problems.append(f"... and {self._dropped_problems} more problems")
        if read_error is not None:
            problems.append(_read_error_message(read_error, self._source.offset, compressed))
        if self._inprogress:
            problems.append(
                f"{len(self._inprogress)} test(s) started but never finished "
                "(the stream ends first: a killed or timed-out run?)"
            )
        incomplete = (
            TestRun(t, "incomplete", self._started.get(t)) for t in sorted(self._inprogress)
        )
        return SubunitResults(
            failed=frozenset(t for t, s in self._status.items() if s in FAILED_STATUSES),
            incomplete=frozenset(self._inprogress),
            counts=dict(sorted(Counter(self._status.values()).items())),
            problems=tuple(problems),
            format=fmt_read,
            runs=(*self._runs.values(), *incomplete),
        )


def _details(attachments: dict[str, list[bytes]]) -> tuple[tuple[str, str], ...]:
    """A failed test's attachments as text, ``traceback`` first, ``DETAILS_MAX_CHARS`` in
    all: each one that does not fit whole keeps its end (where a log says what failed)."""
    names = sorted(attachments, key=lambda n: (n != "traceback", n != "reason", n))
    room = DETAILS_MAX_CHARS
    kept: list[tuple[str, str]] = []
    for name in names:
        if room <= 0:
            break
        text = b"".join(attachments[name]).decode("utf-8", "replace")
        if len(text) > room:
            text = f"[... {len(text) - room} characters cut]\n" + text[-room:]
        kept.append((name[:200], text))
        room -= len(text)
    return tuple(kept)


def _looks_like_v2(head: bytes) -> bool:
    """Whether bytes start like a subunit v2 packet: the signature, then version 2 flags."""
    return head[:1] == bytes([_V2_SIGNATURE]) and (len(head) < 2 or head[1] >> 4 == 2)


def _read_error_message(exc: Exception, offset: int, compressed: bool) -> str:
    where = f"after {offset} bytes" + (" of decompressed data" if compressed else "")
    if isinstance(exc, EOFError):
        return f"the compressed stream is truncated {where}: {exc}"
    if isinstance(exc, zlib.error | gzip.BadGzipFile):
        return f"the compressed stream is corrupt {where}: {exc}"
    return f"read error {where}: {exc}"


# --- a build's streams ----------------------------------------------------------------


def find_subunit(paths: Iterable[str]) -> list[str]:
    """The build's subunit stream files among its file paths, most usual place first.

    A file named ``testrepository.subunit`` or ``testrepository.subunit.gz`` anywhere in
    the build; the places in ``SUBUNIT_PATHS`` come first, then the others by depth and
    name. When both ``X`` and ``X.gz`` are there, only ``X`` is kept (the same stream).
    """
    found = {p for p in paths if PurePosixPath(p).name in SUBUNIT_NAMES}
    found = {p for p in found if not (p.endswith(".gz") and p[:-3] in found)}
    known = {path: rank for rank, path in enumerate(SUBUNIT_PATHS)}
    return sorted(
        found,
        key=lambda p: (known.get(p.removeprefix("./"), len(known)), p.count("/"), p),
    )


def build_test_results(
    paths: Iterable[str], open_file: Callable[[str], BinaryIO]
) -> SubunitResults | None:
    """The test results of a build: its subunit streams read and merged; None if it has none.

    ``paths`` are the build's files and ``open_file`` opens one of them (a log source's
    ``paths()`` and ``open``). A stream that cannot be opened is a problem, not an error;
    problems are prefixed with the stream's path.
    """
    streams = find_subunit(paths)
    if not streams:
        return None
    results: list[tuple[str, SubunitResults]] = []
    for path in streams:
        try:
            with open_file(path) as stream:
                results.append((path, failed_tests(stream)))
        except OSError as exc:
            results.append((path, SubunitResults(problems=(f"cannot open: {exc}",))))
    return merge_results(results)


def merge_results(results: Sequence[tuple[str, SubunitResults]]) -> SubunitResults:
    """The union of several streams' results (a build may have several streams)."""
    counts: Counter[str] = Counter()
    for _, result in results:
        counts.update(result.counts)
    formats = [r.format for _, r in results if r.format is not None]
    return SubunitResults(
        failed=frozenset().union(*(r.failed for _, r in results)),
        incomplete=frozenset().union(*(r.incomplete for _, r in results)),
        counts=dict(sorted(counts.items())),
        problems=tuple(f"{path}: {p}" for path, r in results for p in r.problems),
        format=formats[0] if formats else None,
        runs=tuple(run for _, r in results for run in r.runs),
    )


# --- matching signatures' test ids ----------------------------------------------------

_ATTRIBUTES = re.compile(r"\[[^\[\]]*\]")
_CLASS_FIXTURE = re.compile(r"(?:setUpClass|tearDownClass|setUpModule|tearDownModule) \((\S+)\)")
_BOUNDARIES = frozenset(".([")


def _match_keys(failed_id: str) -> set[str]:
    """Every signature test id that names ``failed_id`` (see the module docstring)."""
    failed_id = failed_id.strip()
    forms = {failed_id, _ATTRIBUTES.sub("", failed_id)}
    fixture = _CLASS_FIXTURE.fullmatch(failed_id)
    if fixture:
        forms.add(fixture.group(1))
    keys = set(forms)
    for form in forms:
        keys.update(form[:i] for i, char in enumerate(form) if i and char in _BOUNDARIES)
    return keys


def matching_failures(test_ids: Iterable[str], failed: Iterable[str]) -> list[str]:
    """The failed test ids that one of a signature's ``test_ids`` names, sorted."""
    wanted = {t.strip() for t in test_ids if t.strip()}
    return sorted(f for f in set(failed) if not wanted.isdisjoint(_match_keys(f)))


def test_matches(test_ids: Iterable[str], failed: Iterable[str]) -> bool:
    """Whether one of a signature's ``test_ids`` names one of the ``failed`` test ids."""
    return bool(matching_failures(test_ids, failed))


test_matches.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def skip_reason(test_ids: Sequence[str], results: SubunitResults | None) -> str | None:
    """Why a signature with ``test_ids`` is not evaluated for a build; None if it is.

    ``results`` is the build's ``build_test_results`` (None: the build has no stream).
    A signature without test_ids is always evaluated.
    """
    if not test_ids:
        return None
    if results is None:
        return NO_STREAM
    if not results.readable:
        return f"{NO_STREAM} that could be read ({'; '.join(results.problems)})"
    if not test_matches(test_ids, results.failed):
        return NONE_FAILED
    return None
