"""Classify a build in one pass over each file, splitting only the events that can match.

Splitting every line of a 1 GB build into events in Python costs far more than finding
the few places where a signature could match. So, per file:

1. **Decide the constant conditions once.** Every field of an event except those the
   splitter takes from the line itself (``RAW_FIELDS``: message, loglevel, module...)
   is the same for the whole file: tags, filename, build fields. Each signature is
   specialized to the file (``Node.specialize``): one that cannot match there is dropped,
   and the conditions left are all on the file's text.
2. **Scan the raw bytes for literals.** Of what is left, each signature has a necessary
   condition: one of a few lowercase literals must occur in its text (a rare word of the
   phrase it looks for). One hyperscan database holds every signature's literals; each
   chunk of a file is scanned once, case-insensitively. A chunk with no literal of a
   signature that can match in this file is skipped without being split.
3. **Split around the hits.** For each occurrence of a literal, the enclosing event is
   found by walking back to the nearest line that surely begins an event
   (``split.event_start_test``) and forward to the next one; only those lines are split,
   with the same splitter as everything else, and the candidate signatures are then
   evaluated in full by the engine. The result is exactly what splitting and matching
   every event would give.

Chunks are cut where an event surely begins, so no event spans two chunks. A file for
which some signature has no usable literal (a query that only says ``NOT ...``, or
literals that are not ASCII) is split in full; so is every file without hyperscan.
Memory is bounded by the chunk size, whatever the file's size.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, BinaryIO, cast

from recheck.build import Build
from recheck.logfiles import logical_name
from recheck.models import Event, Signature
from recheck.prefilter import Prefilter
from recheck.query import DEFAULT_FIELD, Doc, Node, Query, selectivity
from recheck.split import (
    MAX_EVENT_CHARS,
    PARSE_FAILURE_TAG,
    TRUNCATED_TAG,
    StartTest,
    event_start_test,
    read_lines,
    split_lines,
)

hyperscan: ModuleType | None
try:  # optional: `pip install 'recheck[fast]'`
    import hyperscan
except ImportError:  # pragma: no cover - exercised where hyperscan is missing
    hyperscan = None

__all__ = ["RAW_FIELDS", "BuildScanner", "FilePlan", "ScanStats"]

RAW_FIELDS = frozenset(
    {DEFAULT_FIELD, "loglevel", "module", "pid", "syslog_program", "syslog_pid",
     "syslog_host", "verb", "request", "response"}
)  # fmt: skip
"""Fields the splitter takes from a file's text: each value is a substring of its lines."""

CHUNK_BYTES = 8 << 20
"""Bytes read and scanned at a time."""

MAX_SPAN_BYTES = 32 << 20
"""Longest stretch kept in memory while looking for a line that begins an event; past
it, the event is far longer than an event keeps (``MAX_EVENT_CHARS``) and the rest of
it is skipped."""

# Characters outside ASCII whose Java lowercase is an ASCII letter: a literal's ASCII
# letters may stand for them in the text, and hyperscan's caseless mode only folds ASCII.
_ASCII_LOWERING = (b"\xc4\xb0", b"\xe2\x84\xaa")  # U+0130 -> i, U+212A (Kelvin) -> k

MatchFound = tuple[int, str, int, Event]
"""(signature index, filename, first line, event) for every event a signature matched."""


@dataclass
class FilePlan:
    """What to do with one file: which signatures can match in it, and how to find them."""

    path: str
    tags: list[str]
    filename: str
    queries: dict[int, Query] = field(default_factory=dict)
    """Signature index -> its query specialized to this file (those that can match)."""
    gates: dict[int, tuple[str, ...]] = field(default_factory=dict)
    """Signature index -> ASCII literals one of which its text must contain."""

    @property
    def split_all(self) -> bool:
        """Some signature has no literal to look for: every event must be evaluated."""
        return len(self.gates) < len(self.queries)


@dataclass
class ScanStats:
    """What a scan did, for benchmarks and ``--verbose``."""

    files: int = 0
    files_skipped: int = 0
    files_split_in_full: int = 0
    bytes_read: int = 0
    chunks: int = 0
    chunks_with_hits: int = 0
    events_evaluated: int = 0


class BuildScanner:
    """Match ``signatures`` against a build's files, file by file."""

    def __init__(
        self,
        signatures: Sequence[Signature],
        build: Build,
        files: Sequence[tuple[str, list[str]]],
        *,
        keep_debug: bool = False,
        max_event_chars: int = MAX_EVENT_CHARS,
        use_hyperscan: bool = True,
    ) -> None:
        self.signatures = list(signatures)
        self.build_fields = build.event_fields()
        self.keep_debug = keep_debug
        self.max_event_chars = max_event_chars
        self.stats = ScanStats()
        self._use_hyperscan = use_hyperscan and hyperscan is not None
        self.plans = [self._plan(path, tags) for path, tags in files]
        literals = sorted({lit for plan in self.plans for alts in plan.gates.values()
                           for lit in alts})  # fmt: skip
        self._literal_ids = {lit: index for index, lit in enumerate(literals)}
        self._literals = literals
        self._db = self._compile(literals) if self._use_hyperscan else None
        self._scratch = hyperscan.Scratch(self._db) if self._db is not None and hyperscan else None

    # ---------------------------------------------------------------- planning

    def _plan(self, path: str, tags: list[str]) -> FilePlan:
        filename = logical_name(path)
        plan = FilePlan(path, tags, filename)
        constants: Event = {**self.build_fields, "filename": filename}
        # The splitter adds these two tags to some events; a tag condition that they
        # could change is left to be decided per event.
        docs = [
            Doc({**constants, "tags": [*tags, *extra]})
            for extra in ([], [PARSE_FAILURE_TAG], [TRUNCATED_TAG],
                          [PARSE_FAILURE_TAG, TRUNCATED_TAG])
        ]  # fmt: skip
        cache: dict[str, tuple[Node, tuple[str, ...] | None]] = {}
        for index, signature in enumerate(self.signatures):
            key = signature.query
            if key not in cache:
                root = signature.compiled.root.specialize(docs, _is_constant)
                cache[key] = (root, _gate(root))
            root, gate = cache[key]
            if _never(root):
                continue
            plan.queries[index] = Query(signature.query, root, signature.compiled.default_field)
            if gate is not None:
                plan.gates[index] = gate
        return plan

    def _compile(self, literals: list[str]) -> Any:
        if not literals or hyperscan is None:
            return None
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(
            expressions=[lit.encode("ascii") for lit in literals],
            ids=list(range(len(literals))),
            elements=len(literals),
            flags=[hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS] * len(literals),
            literal=True,
        )
        return db

    # ---------------------------------------------------------------- scanning

    def scan_file(self, plan: FilePlan, stream: BinaryIO) -> Iterator[MatchFound]:
        """Every (signature, event) match in the file ``stream`` (decompressed text)."""
        self.stats.files += 1
        if not plan.queries:
            self.stats.files_skipped += 1
            return
        if plan.split_all or self._db is None:
            self.stats.files_split_in_full += 1
            yield from self._split_all(plan, stream)
            return
        literal_sigs: dict[int, list[int]] = {}
        for index, alternatives in plan.gates.items():
            for lit in alternatives:
                literal_sigs.setdefault(self._literal_ids[lit], []).append(index)
        starts = event_start_test(plan.tags)
        for chunk, first_line in _chunks(stream, starts, self.stats):
            yield from self._scan_chunk(plan, chunk, first_line, starts, literal_sigs)

    def _scan_chunk(
        self,
        plan: FilePlan,
        chunk: bytes,
        first_line: int,
        starts: StartTest,
        literal_sigs: dict[int, list[int]],
    ) -> Iterator[MatchFound]:
        assert self._db is not None
        hits: list[int] = []
        self._db.scan(chunk, match_event_handler=_collect, context=hits, scratch=self._scratch)
        relevant = [lit for lit in hits if lit in literal_sigs]
        if not relevant and not _has_ascii_lowering(chunk):
            return
        self.stats.chunks_with_hits += 1
        if _has_ascii_lowering(chunk):
            # Rare: hyperscan may have missed a literal; evaluate every event here.
            candidates = sorted(plan.gates)
            regions = [(0, len(chunk))]
        else:
            candidates = sorted({index for lit in relevant for index in literal_sigs[lit]})
            lowered = chunk.lower()
            offsets: list[int] = []
            for lit in relevant:
                needle = self._literals[lit].encode("ascii")
                at = lowered.find(needle)
                while at != -1:
                    offsets.append(at)
                    at = lowered.find(needle, at + 1)
            regions = _regions(chunk, sorted(offsets), starts)
        line = first_line
        counted = 0
        for start, end in regions:
            line += chunk.count(b"\n", counted, start)
            counted = start
            yield from self._evaluate(plan, chunk[start:end], line, candidates)

    def _evaluate(
        self, plan: FilePlan, data: bytes, first_line: int, candidates: list[int]
    ) -> Iterator[MatchFound]:
        for line, event, doc in self._docs(plan, io.BytesIO(data)):
            for index in candidates:
                if plan.queries[index].matches(doc):
                    yield index, plan.filename, first_line + line - 1, event

    def _split_all(self, plan: FilePlan, stream: BinaryIO) -> Iterator[MatchFound]:
        order = sorted(plan.queries)
        prefilter = Prefilter([plan.queries[index] for index in order], self._use_hyperscan)
        counting = cast(BinaryIO, _Counting(stream, self.stats))
        for line, event, doc in self._docs(plan, counting):
            for position in prefilter.candidates(doc):
                index = order[position]
                if plan.queries[index].matches(doc):
                    yield index, plan.filename, line, event

    def _docs(self, plan: FilePlan, stream: BinaryIO) -> Iterator[tuple[int, Event, Doc]]:
        """The events of ``stream`` with the file's and build's fields, ready to match."""
        lines = read_lines(stream, self.max_event_chars)
        for line, event in split_lines(
            lines, plan.tags, keep_debug=self.keep_debug, max_event_chars=self.max_event_chars
        ):
            self.stats.events_evaluated += 1
            event["filename"] = plan.filename
            event.update(self.build_fields)
            yield line, event, Doc(event)


def _is_constant(name: str) -> bool:
    return name not in RAW_FIELDS


def _never(root: Node) -> bool:
    return type(root).__name__ == "MatchNone"


def _gate(root: Node) -> tuple[str, ...] | None:
    """The most selective set of ASCII literals of raw fields one of which must occur."""
    conjuncts = root.required_literals()
    if not conjuncts:
        return None
    usable = [
        alternatives
        for alternatives in conjuncts
        if alternatives
        and all(name in RAW_FIELDS and lit.isascii() and lit for name, lit in alternatives)
    ]
    if not usable:
        return None
    best = max(usable, key=selectivity)
    return tuple(sorted({lit for _, lit in best}))


def _collect(pattern_id: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    hits.append(pattern_id)


def _has_ascii_lowering(chunk: bytes) -> bool:
    return any(needle in chunk for needle in _ASCII_LOWERING)


def _line_end(data: bytes, start: int) -> int:
    end = data.find(b"\n", start)
    return len(data) if end == -1 else end


def _regions(data: bytes, offsets: list[int], starts: StartTest) -> list[tuple[int, int]]:
    """The spans ``[start, end)`` of whole events around ``offsets`` (sorted, disjoint)."""
    regions: list[tuple[int, int]] = []
    for offset in offsets:
        if regions and offset < regions[-1][1]:
            continue
        start = data.rfind(b"\n", 0, offset) + 1
        while start > 0 and not starts(data, start, _line_end(data, start)):
            start = data.rfind(b"\n", 0, start - 1) + 1
        end = _line_end(data, offset)
        while end < len(data) and not starts(data, end + 1, _line_end(data, end + 1)):
            end = _line_end(data, end + 1)
        end = min(end + 1, len(data))
        if regions and start < regions[-1][1]:
            start = regions.pop()[0]  # events never overlap: same event, widen
        regions.append((start, end))
    return regions


def _chunks(stream: BinaryIO, starts: StartTest, stats: ScanStats) -> Iterator[tuple[bytes, int]]:
    """``(chunk, number of its first line)``; each chunk starts where an event surely does."""
    carry = b""
    line = 1
    skipping = False  # inside an event longer than MAX_SPAN_BYTES: its rest is dropped
    while True:
        block = stream.read(CHUNK_BYTES)
        stats.bytes_read += len(block)
        data = carry + block if carry else block
        if skipping:
            begin = _first_start(data, starts, complete_only=bool(block))
            if begin is None:
                if not block:
                    return
                # Keep the last line break: the line after it may begin an event.
                keep = data.rfind(b"\n")
                line += data.count(b"\n", 0, max(keep, 0))
                carry = data[keep:] if keep != -1 else b""
                continue
            line += data.count(b"\n", 0, begin)
            data = data[begin:]
            skipping = False
        if not block:
            if data:
                stats.chunks += 1
                yield data, line
            return
        cut = _last_start(data, starts)
        if cut is None:
            if len(data) < MAX_SPAN_BYTES:
                carry = data
                continue
            cut = len(data)
            skipping = True
        chunk, carry = data[:cut], data[cut:]
        stats.chunks += 1
        yield chunk, line
        line += chunk.count(b"\n")


def _last_start(data: bytes, starts: StartTest) -> int | None:
    """The start of the last complete line of ``data`` (not its first) that begins an event."""
    end = data.rfind(b"\n")
    while end > 0:
        start = data.rfind(b"\n", 0, end) + 1
        if start == 0:
            return None
        if starts(data, start, end):
            return start
        end = start - 1
    return None


def _first_start(data: bytes, starts: StartTest, complete_only: bool) -> int | None:
    """The first line start after the beginning of ``data`` that begins an event."""
    start = data.find(b"\n") + 1
    while start:
        end = data.find(b"\n", start)
        if end == -1:
            if complete_only or start >= len(data):
                return None
            end = len(data)
        if starts(data, start, end):
            return start
        start = end + 1 if end < len(data) else 0
    return None


class _Counting:
    """A stream's ``readline`` that counts the bytes read into ``stats``."""

    def __init__(self, stream: BinaryIO, stats: ScanStats) -> None:
        self._stream = stream
        self._stats = stats

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self._stats.bytes_read += len(data)
        return data
