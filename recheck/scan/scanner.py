"""Classify a build in one pass over each file, splitting only the events that can match.

``BuildScanner`` plans each file (``plan``), scans its chunks (``chunks``) for the
literals of its gates (``gates``) and splits and evaluates only the events around the
hits left; a signature stops being looked for in a file once it has ``limit`` matches.
The result is exactly the first ``limit`` matches, per signature and file, that
splitting and matching every event would give.
"""

from __future__ import annotations

import io
import itertools
import mmap
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

from recheck.logs.build import Build
from recheck.logs.split import (
    MAX_EVENT_CHARS,
    StartTest,
    Text,
    dropped_line_test,
    event_start_test,
    read_lines,
    split_lines,
)
from recheck.models import Event
from recheck.query import Doc
from recheck.query.prefilter import Prefilter
from recheck.query.signatures import Signature
from recheck.scan.chunks import (
    Chunk,
    ChunkLines,
    CountingReader,
    FileLines,
    ScanStats,
    event_regions,
    line_end,
    map_file,
    mapped_chunks,
    read_chunks,
    removed_lines,
    small_file,
    span_test,
)
from recheck.scan.gates import (
    Contains,
    FileGate,
    LiteralDatabase,
    MadeGates,
    file_gates,
    hyperscan,
)
from recheck.scan.plan import RAW_FIELDS, FilePlan, Gate, Planner

__all__ = ["RAW_FIELDS", "BuildScanner", "FilePlan", "Gate", "ScanStats"]

# The method. Splitting every line of a 1 GB build into events in Python costs far more than finding
# the few places where a signature could match. So, per file:
#
# 1. **Decide the constant conditions once.** Every field of an event except those the
#    splitter takes from the line itself (``RAW_FIELDS``: message, loglevel, module...)
#    is the same for the whole file: tags, filename, build fields. Each signature is
#    specialized to the file (``Node.specialize``): one that cannot match there is dropped,
#    and the conditions left are all on the file's text.
# 2. **Scan the raw bytes for literals.** Of what is left, each signature has a necessary
#    condition: one of a few lowercase literals must occur in its text (a rare word of the
#    phrase it looks for). One hyperscan database holds every signature's literals; each
#    chunk of a file is scanned once, case-insensitively. A chunk with no literal of a
#    signature that can match in this file is skipped without being split.
# 3. **Pass over the hits that cannot matter.** A hit on a line the splitter keeps
#    nothing of (the first line of a DEBUG event, an xtrace line:
#    ``split.dropped_line_test``) is dropped, and so is a hit of a word of a required
#    phrase that the rest of the phrase does not follow (``FileGate.may_begin``). Which
#    conjunct each signature locates is chosen from a sample of the file's first chunk.
# 4. **Split around the hits left.** For each, the enclosing event is found by walking
#    back to the nearest line that surely begins an event (``split.event_start_test``)
#    and forward to the next one; only those lines are split, with the same splitter as
#    everything else, and the candidate signatures are then evaluated in full by the
#    engine. The result is exactly what splitting and matching every event would give.
#
# Chunks are cut where an event surely begins, so no event spans two chunks. A local file
# is scanned mapped into memory (no copy), other streams through one reused buffer.
# Memory is bounded by the chunk size, whatever the file's size.
#
# Cost must not grow with how much a signature matches (issue 16): classifying needs a
# few examples per signature, not every event of a file that a broad query matches. So
# each signature is evaluated in a file only until it has ``limit`` matches; once every
# signature located by a literal has them, the file's chunks are no longer scanned. A
# signature with no usable literal in a file (one that says only ``NOT ...``, or
# ``tags:"console"`` alone once decided for a console log: it matches every event) does
# not make the others split every event: the chunks are split for it alone, from the
# file's start, only until it has its matches, usually within the first few events.
# Without hyperscan every event is split, until every signature has its matches.

MatchFound = tuple[int, str, int, Event]
"""(signature index, filename, first line, event) for every event a signature matched."""

_Pending = tuple[int, int, int, Event]
"""A match in a chunk before its line is counted: (position of the split text in the
chunk, line in that text, signature index, event)."""


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
        limit: int | None = None,
    ) -> None:
        """``limit``: the matches each signature reports per file at most (None: all);
        they are its first in the file."""
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        self.signatures = list(signatures)
        self.limit = limit
        self.build_fields = build.event_fields()
        self.keep_debug = keep_debug
        self.max_event_chars = max_event_chars
        self.stats = ScanStats()
        self._use_hyperscan = use_hyperscan and hyperscan is not None
        self.files = list(files)
        self._literal_ids: dict[str, int] = {}
        self._literals: list[str] = []  # literal id -> literal, in the order first seen
        self._planner = Planner(self.signatures, self.build_fields, self._register)
        # Planned when first asked for: forked workers plan only the files they scan.
        self._plans: dict[int, FilePlan] = {}
        # One database per set of located literals (files of one kind share it).
        self._databases: dict[frozenset[int], LiteralDatabase] = {}
        self._made_gates: MadeGates = {}
        self._buffer = bytearray()  # what files are read into, one at a time (read_chunks)

    # ---------------------------------------------------------------- planning

    @property
    def plans(self) -> list[FilePlan]:
        """Every file's plan, in the files' order."""
        return [self.plan(index) for index in range(len(self.files))]

    def plan(self, index: int) -> FilePlan:
        """The plan of ``files[index]``."""
        plan = self._plans.get(index)
        if plan is None:
            path, tags = self.files[index]
            plan = self._plans[index] = self._planner.plan(path, tags)
        return plan

    def _register(self, gate: Gate) -> None:
        """Number the literals of ``gate``."""
        for alternatives in gate.conjuncts:
            for lit in alternatives:
                if lit not in self._literal_ids:
                    self._literal_ids[lit] = len(self._literals)
                    self._literals.append(lit)

    def _database(self, located: frozenset[int]) -> LiteralDatabase:
        database = self._databases.get(located)
        if database is None:
            database = self._databases[located] = LiteralDatabase(sorted(located), self._literals)
        return database

    # ---------------------------------------------------------------- scanning

    def skips(self, plan: FilePlan) -> bool:
        """Whether no signature can match in the file, so it need not even be opened."""
        if plan.queries:
            return False
        self.stats.files += 1
        self.stats.files_skipped += 1
        return True

    def scan_file(self, plan: FilePlan, stream: BinaryIO) -> Iterator[MatchFound]:
        """The (signature, event) matches in the file ``stream`` (decompressed text): for
        each signature its first ``limit`` in the file, in the file's order."""
        if self.skips(plan):
            return
        self.stats.files += 1
        wanted = _Wanted(self.limit, self.stats)
        if not self._use_hyperscan:
            yield from self._split_all(plan, stream, wanted)
            return
        file_lines = FileLines.of(stream)
        small = None if file_lines is None else small_file(stream, file_lines.size, self.stats)
        if small is not None:  # one chunk, whose lines are counted in it
            yield from self._scan_chunks(plan, stream, None, small, wanted)
            return
        mapped = map_file(stream) if file_lines is not None else None
        try:
            yield from self._scan_chunks(plan, stream, file_lines, mapped, wanted)
        finally:
            if mapped is not None:
                mapped.close()

    def _scan_chunks(
        self,
        plan: FilePlan,
        stream: BinaryIO,
        file_lines: FileLines | None,
        source: mmap.mmap | Iterator[Chunk] | None,
        wanted: _Wanted,
    ) -> Iterator[MatchFound]:
        """The matches in the chunks of ``stream``: mapped (``source`` its mapping), read
        already (``source`` them), or read now (None)."""
        starts = event_start_test(plan.tags)
        beyond = span_test(plan.tags, self.max_event_chars)
        if isinstance(source, mmap.mmap):
            chunks = mapped_chunks(source, stream.fileno(), starts, self.stats, beyond)
        elif source is not None:
            chunks = source
        else:
            chunks = read_chunks(
                stream,
                starts,
                self.stats,
                beyond=beyond,
                count_lines=file_lines is None,
                buffer=self._buffer,
            )
        first = next(chunks, None)
        if first is None:
            return
        scan = self._file_scan(plan, starts, first)
        for chunk, begin, size, offset, first_line in itertools.chain([first], chunks):
            lines = ChunkLines(chunk, begin, offset, first_line, file_lines)
            yield from self._scan_chunk(scan, chunk, begin, size, lines, wanted)
            if not scan.gates and not scan.ungated:
                return  # every signature has its matches: the rest is not read
        if scan.ungated:
            self.stats.files_split_in_full += 1

    def _file_scan(self, plan: FilePlan, starts: StartTest, first: Chunk) -> _FileScan:
        """How to scan ``plan``'s file, decided from its ``first`` chunk."""
        dropped = dropped_line_test(
            plan.tags, keep_debug=self.keep_debug, max_event_chars=self.max_event_chars
        )
        ungated = [index for index in sorted(plan.queries) if index not in plan.gates]
        gates = (
            file_gates(plan, dropped, first, self._literal_ids, self._database, self._made_gates)
            if plan.gates
            else []
        )
        scanned = frozenset(lit for gate in gates for lit in gate.scanned)
        return _FileScan(
            plan,
            starts,
            dropped,
            removed_lines(plan.tags),
            gates,
            ungated,
            self._database(scanned) if gates else None,
            scanned,
        )

    def _scan_chunk(
        self,
        scan: _FileScan,
        chunk: Text,
        begin: int,
        size: int,
        lines: ChunkLines,
        wanted: _Wanted,
    ) -> Iterator[MatchFound]:
        """The matches in ``chunk[begin:size]`` (valid only during this call)."""
        plan = scan.plan
        found: list[_Pending] = []
        whole: list[int] = list(scan.ungated)  # signatures evaluated on every event here
        hits: list[tuple[int, list[FileGate]]] = []
        if scan.database is not None:
            offsets, lowering = scan.database.scan(chunk, size, begin)
            if lowering:
                # Rare: hyperscan may have missed a literal; evaluate every event here.
                self.stats.chunks_with_hits += 1
                whole = sorted({*whole, *(gate.index for gate in scan.gates)})
            elif offsets:
                hits = self._live_hits(scan, chunk, size, offsets)
        if whole:
            data = bytes(chunk[begin:size])
            found += self._evaluate(plan, data, whole, begin, wanted)
        found += self._evaluate_hits(scan, chunk, size, hits, wanted)
        # Line numbers are counted forward only: in the order of the matches' positions.
        found.sort(key=lambda match: match[:2])
        for at, line, index, event in found:
            yield index, plan.filename, lines.at(at) + line - 1, event
        self._forget_done(scan, wanted)

    def _live_hits(
        self, scan: _FileScan, chunk: Text, size: int, offsets: list[tuple[int, int]]
    ) -> list[tuple[int, list[FileGate]]]:
        """The hits of ``offsets`` that may begin a match of a signature still looked for."""
        # A signature is a candidate here only if a literal of its located conjunct is,
        # where one of its phrases can begin (see FileGate.suffixes).
        present = {lit for _, lit in offsets}
        by_literal: dict[int, list[FileGate]] = {}
        for gate in scan.gates:
            for lit in gate.scanned & present:
                by_literal.setdefault(lit, []).append(gate)
        # Hits of literals no signature looks for any more (it has its matches).
        scan.idle_hits += sum(lit not in by_literal for _, lit in offsets)
        self.stats.chunks_with_hits += 1
        offsets.sort()
        hits: list[tuple[int, list[FileGate]]] = []
        for at, lit in offsets:
            gates = by_literal.get(lit)
            if gates is None:
                continue
            passed = [gate for gate in gates if gate.may_begin(lit, chunk, at, size)]
            if passed:
                hits.append((at, passed))
        return hits

    def _evaluate_hits(
        self,
        scan: _FileScan,
        chunk: Text,
        size: int,
        hits: list[tuple[int, list[FileGate]]],
        wanted: _Wanted,
    ) -> list[_Pending]:
        """The matches in the events around ``hits`` (sorted), in order: a hit is passed
        over once its signatures have their matches, so that a common word costs a
        check of its hits, not the splitting of every event around them."""
        found: list[_Pending] = []
        position = 0
        end_of_line = -1  # of the last hit's line, and whether the splitter drops it
        dropped = False
        while position < len(hits):
            at, gates = hits[position]
            position += 1
            if not any(wanted.wants(gate.index) for gate in gates):
                continue
            if scan.dropped is not None:
                if at > end_of_line:
                    start = chunk.rfind(b"\n", 0, at) + 1
                    end_of_line = line_end(chunk, at, size)
                    dropped = scan.dropped(chunk, start, end_of_line)
                if dropped:
                    continue  # nothing of this line is kept (a DEBUG event's first line)
            ((start, end),) = event_regions(chunk, size, [at], scan.starts)
            candidates = {gate.index: gate for gate in gates}
            while position < len(hits) and hits[position][0] < end:
                candidates.update((gate.index, gate) for gate in hits[position][1])
                position += 1
            region = bytes(chunk[start:end])  # the buffer is reused: keep a copy
            # Dropped lines removed before lowering: the splitter drops "<pre>", not "<PRE>".
            text = region if scan.removed is None else scan.removed.sub(b"", region)
            text = text.lower()
            contains = Contains(text, self._literals)
            chosen = sorted(
                index
                for index, gate in candidates.items()
                if wanted.wants(index) and gate.admits(text, contains)
            )
            if chosen:
                found += self._evaluate(scan.plan, region, chosen, start, wanted)
        return found

    def _forget_done(self, scan: _FileScan, wanted: _Wanted) -> None:
        """Stop looking for the signatures that have their matches in this file."""
        scan.ungated = [index for index in scan.ungated if wanted.wants(index)]
        gates = [gate for gate in scan.gates if wanted.wants(gate.index)]
        if len(gates) < len(scan.gates):
            scan.gates = gates
            scan.scanned = frozenset(lit for gate in gates for lit in gate.scanned)
        if not gates:
            scan.database = None
        elif scan.idle_hits > _IDLE_HITS_PER_LITERAL * len(scan.scanned):
            # A database without the literals nobody looks for any more: compiling one
            # costs about as much as passing over this many of their hits.
            scan.database = self._database(scan.scanned)
        scan.idle_hits = 0

    def _evaluate(
        self, plan: FilePlan, data: bytes, candidates: list[int], at: int, wanted: _Wanted
    ) -> list[_Pending]:
        """The matches in ``data``, found at ``at`` in its chunk; only the first events
        of ``data`` are split when every candidate has its matches early."""
        left = list(candidates)
        found: list[_Pending] = []
        for line, event, doc in self._docs(plan, io.BytesIO(data)):
            for index in left:
                if plan.queries[index].matches(doc):
                    found.append((at, line, index, event))
                    if not wanted.take(index):
                        left = [other for other in left if other != index]
            if not left:
                break
        return found

    def _split_all(self, plan: FilePlan, stream: BinaryIO, wanted: _Wanted) -> Iterator[MatchFound]:
        order = sorted(plan.queries)
        prefilter = Prefilter([plan.queries[index] for index in order], self._use_hyperscan)
        counting = cast(BinaryIO, CountingReader(stream, self.stats))
        left = len(order)
        for line, event, doc in self._docs(plan, counting):
            for position in prefilter.candidates(doc):
                index = order[position]
                if wanted.wants(index) and plan.queries[index].matches(doc):
                    yield index, plan.filename, line, event
                    if not wanted.take(index):
                        left -= 1
            if not left:
                return  # every signature has its matches: the rest is not read
        self.stats.files_split_in_full += 1

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


_IDLE_HITS_PER_LITERAL = 100
"""Hits in a chunk of literals no signature looks for any more, per literal looked for,
past which the file's database is compiled again without them."""


@dataclass
class _FileScan:
    """How one file is scanned, decided from its plan and its first chunk; the
    signatures looked for shrink as they get their matches."""

    plan: FilePlan
    starts: StartTest
    dropped: StartTest | None
    """Whether the splitter keeps nothing of a line (a DEBUG event's first line...)."""
    removed: re.Pattern[bytes] | None
    """Lines the splitter drops, removed from a candidate event's text."""
    gates: list[FileGate]
    """The gates of the signatures located by their literals, still looked for."""
    ungated: list[int]
    """Signatures with no usable literal here, still looked for: every event is theirs."""
    database: LiteralDatabase | None
    """Finds (at least) the literals of ``scanned``; None once no gate is left."""
    scanned: frozenset[int]
    """The literals ``gates`` locate."""
    idle_hits: int = 0
    """Hits of the last chunk of literals that no gate locates any more."""


class _Wanted:
    """How many matches each signature has in one file, against the scanner's limit."""

    def __init__(self, limit: int | None, stats: ScanStats) -> None:
        self._limit = limit
        self._stats = stats
        self._found: Counter[int] = Counter()

    def wants(self, index: int) -> bool:
        """Whether signature ``index`` is still looked for."""
        return self._limit is None or self._found[index] < self._limit

    def take(self, index: int) -> bool:
        """Count a match of ``index``; whether it is still looked for."""
        self._found[index] += 1
        if self.wants(index):
            return True
        self._stats.signatures_stopped += 1
        return False
