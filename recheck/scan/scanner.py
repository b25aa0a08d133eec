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
3. **Pass over the hits that cannot matter.** A hit on a line the splitter keeps
   nothing of (the first line of a DEBUG event, an xtrace line:
   ``split.dropped_line_test``) is dropped, and so is a hit of a word of a required
   phrase that the rest of the phrase does not follow (``_FileGate.may_begin``). Which
   conjunct each signature locates is chosen from a sample of the file's first chunk.
4. **Split around the hits left.** For each, the enclosing event is found by walking
   back to the nearest line that surely begins an event (``split.event_start_test``)
   and forward to the next one; only those lines are split, with the same splitter as
   everything else, and the candidate signatures are then evaluated in full by the
   engine. The result is exactly what splitting and matching every event would give.

Chunks are cut where an event surely begins, so no event spans two chunks. A local file
is scanned mapped into memory (no copy), other streams through one reused buffer. A
file for which some signature has no usable literal (a query that only says ``NOT
...``, or literals that are not ASCII) is split in full; so is every file without
hyperscan. Memory is bounded by the chunk size, whatever the file's size.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import io
import itertools
import mmap
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import BinaryIO, TypeVar, cast

from recheck.logs.build import Build
from recheck.logs.logfiles import logical_name
from recheck.logs.split import (
    MAX_EVENT_CHARS,
    PARSE_FAILURE_TAG,
    TRUNCATED_TAG,
    StartTest,
    Text,
    dropped_line_test,
    event_start_test,
    file_format,
    read_lines,
    split_lines,
)
from recheck.models import Event, Signature
from recheck.query.engine import DEFAULT_FIELD, Bool, Doc, Node, Phrase, Query, Term, selectivity
from recheck.query.prefilter import Prefilter
from recheck.scan.linecount import count_newlines

hyperscan: ModuleType | None
try:  # optional: `pip install 'recheck[fast]'`
    import hyperscan
except ImportError:  # pragma: no cover - exercised where hyperscan is missing
    hyperscan = None

__all__ = ["RAW_FIELDS", "BuildScanner", "FilePlan", "Gate", "ScanStats"]

RAW_FIELDS = frozenset(
    {DEFAULT_FIELD, "loglevel", "module", "pid", "syslog_program", "syslog_pid",
     "syslog_host", "verb", "request", "response"}
)  # fmt: skip
"""Fields the splitter takes from a file's text: each value is a substring of its lines."""

SAMPLE_BYTES = 1 << 16
"""Bytes of a file's first chunk in which literals are counted to choose which to locate..."""

SAMPLE_PIECES = 4
"""... in this many pieces spread over the chunk."""

CHUNK_BYTES = 8 << 20
"""Bytes read and scanned at a time."""

MAX_SPAN_BYTES = 32 << 20
"""Longest stretch kept in memory while looking for a line that begins an event; past
it, the event is far longer than an event keeps (``MAX_EVENT_CHARS``) and the rest of
it is skipped. Counted without the lines the splitter drops, and at least what
``max_event_chars`` needs (see ``_span_test``)."""

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
    gates: dict[int, Gate] = field(default_factory=dict)
    """Signature index -> the literals its text must contain."""

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

    def add(self, other: ScanStats) -> None:
        """Count ``other``'s work in too (a worker's, scanning other files)."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


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
        self._whole_gates: dict[str, Gate | None] = {}  # query -> gate of its whole tree
        self.files = list(files)
        # Planned when first asked for: forked workers plan only the files they scan.
        self._plans: dict[int, FilePlan] = {}
        self._literal_ids: dict[str, int] = {}
        self._literals: list[str] = []  # literal id -> literal, in the order first seen
        # One database per set of located literals (files of one kind share it).
        self._databases: dict[frozenset[int], _Database] = {}

    # ---------------------------------------------------------------- planning

    @property
    def plans(self) -> list[FilePlan]:
        """Every file's plan, in the files' order."""
        return [self.plan(index) for index in range(len(self.files))]

    def plan(self, index: int) -> FilePlan:
        """The plan of ``files[index]``."""
        plan = self._plans.get(index)
        if plan is None:
            plan = self._plans[index] = self._plan(*self.files[index])
            for gate in plan.gates.values():
                for alternatives in gate.conjuncts:
                    for lit in alternatives:
                        if lit not in self._literal_ids:
                            self._literal_ids[lit] = len(self._literals)
                            self._literals.append(lit)
        return plan

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
        # Query -> (its query in this file, its gate there), or None if it cannot match.
        cache: dict[str, tuple[Query, Gate | None] | None] = {}
        for index, signature in enumerate(self.signatures):
            key = signature.query
            if key not in cache:
                compiled = signature.compiled
                root = compiled.root.specialize(docs, _is_constant)
                if _never(root):
                    cache[key] = None
                elif root is compiled.root:  # nothing decided here: as in other files
                    cache[key] = (compiled, self._gate_of(compiled))
                else:
                    cache[key] = (Query(key, root, compiled.default_field), _gate(root))
            planned = cache[key]
            if planned is None:
                continue
            query, gate = planned
            plan.queries[index] = query
            if gate is not None:
                plan.gates[index] = gate
        return plan

    def _gate_of(self, compiled: Query) -> Gate | None:
        """``_gate`` of a signature's whole query, worked out once for all files."""
        if compiled.text not in self._whole_gates:
            self._whole_gates[compiled.text] = _gate(compiled.root)
        return self._whole_gates[compiled.text]

    def _database(self, located: frozenset[int]) -> _Database:
        database = self._databases.get(located)
        if database is None:
            database = self._databases[located] = _Database(sorted(located), self._literals)
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
        """Every (signature, event) match in the file ``stream`` (decompressed text)."""
        if self.skips(plan):
            return
        self.stats.files += 1
        if plan.split_all or not self._use_hyperscan:
            self.stats.files_split_in_full += 1
            yield from self._split_all(plan, stream)
            return
        file_lines = _FileLines.of(stream)
        mapped = _map(stream) if file_lines is not None else None
        try:
            yield from self._scan_chunks(plan, stream, file_lines, mapped)
        finally:
            if mapped is not None:
                mapped.close()

    def _scan_chunks(
        self,
        plan: FilePlan,
        stream: BinaryIO,
        file_lines: _FileLines | None,
        mapped: mmap.mmap | None,
    ) -> Iterator[MatchFound]:
        ids = self._literal_ids
        starts = event_start_test(plan.tags)
        beyond = _span_test(plan.tags, self.max_event_chars)
        if mapped is not None:
            chunks = _mapped_chunks(mapped, stream.fileno(), starts, self.stats, beyond)
        else:
            chunks = _chunks(
                stream, starts, self.stats, beyond=beyond, count_lines=file_lines is None
            )
        first = next(chunks, None)
        if first is None:
            return
        # Which conjunct of each signature to locate: the one whose literals are the
        # rarest in the file's first lines. Length alone is a poor guess: "devstack" is
        # long and on every other line of a devstack log. A hit on a line the splitter
        # drops (DEBUG) is passed over cheaply; any other costs ~10 times more: finding
        # its event and checking it. Counted in one hyperscan pass over the sample.
        dropped = dropped_line_test(
            plan.tags, keep_debug=self.keep_debug, max_event_chars=self.max_event_chars
        )
        every = {lit for gate in plan.gates.values() for alts in gate.conjuncts for lit in alts}
        # Words of up to 3 letters ("a", "in", "to") are on most lines: counted apart,
        # lest their hits make the sample's pass cost as much as a chunk's.
        short = {lit for lit in every if len(lit) <= 3}
        counted = self._database(frozenset(ids[lit] for lit in every - short))
        counts: Counter[int] = Counter()
        for start, end in _sample(first[0], first[1], first[2]):
            hits = sorted(counted.scan(first[0], end, start)[0])
            live = hits if dropped is None else _kept_hits(first[0], end, hits, dropped)
            counts.update(hit for _, hit in hits)
            for _, hit in live:
                counts[hit] += 9
            lowered = first[0][start:end].lower()
            for word in short:
                counts[ids[word]] += 10 * lowered.count(word.encode("ascii"))

        # Among conjuncts as rare as each other, one whose literals other signatures
        # look for already: hyperscan scans a set of literals the slower the bigger it is.
        looked_for: set[str] = set()

        def cost(alternatives: tuple[str, ...]) -> tuple[int, int, int]:
            total = sum(counts[ids[lit]] for lit in alternatives)
            new = sum(lit not in looked_for for lit in alternatives)
            return (total, new, -min(len(lit) for lit in alternatives))

        # Signatures with one conjunct first: their literals are looked for whatever.
        located_of: dict[int, tuple[str, ...]] = {}
        for index, gate in sorted(plan.gates.items(), key=lambda item: len(item[1].conjuncts)):
            located = gate.conjuncts[gate.best]
            if len(gate.conjuncts) > 1:
                located = min(gate.conjuncts, key=cost)
            located_of[index] = located
            looked_for.update(located)

        # An apache access log's message joins fields that are not next to each other.
        phrases_apart = "apachecombined" in plan.tags
        separator = _raw_separator(plan.tags)
        gates: list[_FileGate] = []
        for index, gate in plan.gates.items():
            located = located_of[index]
            gates.append(
                _FileGate(
                    index,
                    [frozenset(ids[lit] for lit in alts) for alts in gate.conjuncts],
                    frozenset(ids[lit] for lit in located),
                    gate.phrases,
                    None if phrases_apart else _suffixes(located, gate.phrases, ids, separator),
                )
            )
        if phrases_apart:
            gates = [dataclasses.replace(gate, phrases=()) for gate in gates]
        scan = _FileScan(
            plan,
            starts,
            dropped,
            _removed_lines(plan.tags),
            gates,
            self._database(frozenset(lit for gate in gates for lit in gate.scanned)),
        )
        for chunk, begin, size, offset, first_line in itertools.chain([first], chunks):
            lines = _ChunkLines(chunk, begin, offset, first_line, file_lines)
            yield from self._scan_chunk(scan, chunk, begin, size, lines)

    def _scan_chunk(
        self, scan: _FileScan, chunk: Text, begin: int, size: int, lines: _ChunkLines
    ) -> Iterator[MatchFound]:
        """The matches in ``chunk[begin:size]`` (valid only during this call)."""
        plan = scan.plan
        offsets, lowering = scan.database.scan(chunk, size, begin)
        if lowering:
            # Rare: hyperscan may have missed a literal; evaluate every event here.
            self.stats.chunks_with_hits += 1
            whole = bytes(chunk[begin:size])
            yield from self._evaluate(plan, whole, sorted(plan.gates), lines, begin)
            return
        if not offsets:
            return
        # A signature is a candidate here only if a literal of its located conjunct is,
        # where one of its phrases can begin (see _FileGate.suffixes).
        present = {lit for _, lit in offsets}
        by_literal: dict[int, list[_FileGate]] = {}
        for gate in scan.gates:
            for lit in gate.scanned & present:
                by_literal.setdefault(lit, []).append(gate)
        self.stats.chunks_with_hits += 1
        offsets.sort()
        hits: list[tuple[int, list[_FileGate]]] = []
        for at, lit in offsets:
            passed = [gate for gate in by_literal[lit] if gate.may_begin(lit, chunk, at, size)]
            if passed:
                hits.append((at, passed))
        if scan.dropped is not None:
            hits = _kept_hits(chunk, size, hits, scan.dropped)
        regions = _regions(chunk, size, [at for at, _ in hits], scan.starts)
        position = 0
        for start, end in regions:
            found: dict[int, _FileGate] = {}
            while position < len(hits) and hits[position][0] < end:
                found.update((gate.index, gate) for gate in hits[position][1])
                position += 1
            region = bytes(chunk[start:end])  # the buffer is reused: keep a copy
            # Dropped lines removed before lowering: the splitter drops "<pre>", not "<PRE>".
            text = region if scan.removed is None else scan.removed.sub(b"", region)
            text = text.lower()
            contains = _Contains(text, self._literals)
            chosen = sorted(index for index, gate in found.items() if gate.admits(text, contains))
            if not chosen:
                continue
            yield from self._evaluate(plan, region, chosen, lines, start)

    def _evaluate(
        self, plan: FilePlan, data: bytes, candidates: list[int], lines: _ChunkLines, at: int
    ) -> Iterator[MatchFound]:
        """The matches in ``data``, found at ``at`` in the chunk ``lines`` numbers."""
        for line, event, doc in self._docs(plan, io.BytesIO(data)):
            for index in candidates:
                if plan.queries[index].matches(doc):
                    # Counted only for a match: counting every line break before each
                    # candidate event would cost more than the scan itself.
                    yield index, plan.filename, lines.at(at) + line - 1, event

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


def _sample(data: Text, begin: int, size: int) -> list[tuple[int, int]]:
    """Where literals are counted in a file's first chunk ``data[begin:size]``: a few
    pieces spread over it, each from a line's start (a log's first lines are seldom like
    the rest: a service dumps its configuration when it starts)."""
    piece = SAMPLE_BYTES // SAMPLE_PIECES
    pieces = [(begin, min(begin + piece, size))]
    for k in range(1, SAMPLE_PIECES):
        start = data.find(b"\n", begin + (size - begin) * k // SAMPLE_PIECES, size) + 1
        if start == 0:
            break
        pieces.append((start, min(start + piece, size)))
    return pieces


def _is_constant(name: str) -> bool:
    return name not in RAW_FIELDS


def _never(root: Node) -> bool:
    return type(root).__name__ == "MatchNone"


@dataclass(frozen=True)
class Gate:
    """A necessary condition on a file's raw text: each conjunct needs one of its literals.

    Literals are lowercase ASCII, looked for case-insensitively in the raw bytes; the
    ``best`` conjunct (the most selective) is the one whose occurrences are located.
    """

    conjuncts: tuple[tuple[str, ...], ...]
    best: int
    phrases: tuple[tuple[tuple[str, ...], ...], ...] = ()
    """AND of ORs of exact phrases (ASCII words) the text must hold."""


def _gate(root: Node) -> Gate | None:
    """The literals of raw fields that a match's text must contain; None if none."""
    conjuncts = root.required_literals()
    if not conjuncts:
        return None
    usable = [
        tuple(sorted({lit for _, lit in alternatives}))
        for alternatives in conjuncts
        if alternatives
        and all(name in RAW_FIELDS and lit.isascii() and lit for name, lit in alternatives)
    ]
    if not usable:
        return None
    usable = list(dict.fromkeys(usable))
    best = max(range(len(usable)), key=lambda i: selectivity([("", lit) for lit in usable[i]]))
    phrases = tuple(dict.fromkeys(tuple(alts) for alts in _required_phrases(root)))
    # One-word phrases alone add nothing to the literal conjuncts.
    phrases = tuple(alts for alts in phrases if any(len(terms) > 1 for terms in alts))
    return Gate(tuple(usable), best, phrases)


_ALNUM_EDGES = re.compile(r"[a-z0-9](?:.*[a-z0-9])?", re.ASCII | re.DOTALL)


def _required_phrases(node: Node) -> list[list[tuple[str, ...]]]:
    """Exact phrases a match contains, as AND of ORs, of words with alphanumeric edges.

    Between two words at adjacent positions there is no ASCII letter or digit (those are
    always part of a token), so ``w1[^a-z0-9]*w2`` must occur in the lowercased text.
    A single word is a one-word phrase.
    """
    if isinstance(node, Phrase | Term):
        terms = node.terms if isinstance(node, Phrase) else (node.term,)
        if (
            (isinstance(node, Term) or node.slop == 0)
            and node.field in RAW_FIELDS
            and all(term.isascii() and _ALNUM_EDGES.fullmatch(term) for term in terms)
        ):
            return [[terms]]
        return []
    if not isinstance(node, Bool):
        return []
    if node.must:
        return [alts for child in node.must for alts in _required_phrases(child)]
    alternatives: list[tuple[str, ...]] = []
    for child in node.should:
        conjuncts = _required_phrases(child)
        if not conjuncts:
            return []  # this branch can match without any phrase we know of
        # The branch's most telling condition: its longest phrase, fewest alternatives.
        alternatives += max(conjuncts, key=_telling)
    return [alternatives] if alternatives else []


def _telling(alternatives: Iterable[tuple[str, ...]]) -> tuple[int, int]:
    alternatives = list(alternatives)
    return (min(len(terms) for terms in alternatives), -len(alternatives))


# Compiled when first needed, and kept: a file's gates name hundreds of phrases, of
# which only those near a hit are ever looked for (compiling them all took a third of
# the scan of a console log with 1,000 signatures).
@functools.lru_cache(maxsize=8192)
def _phrase_pattern(terms: tuple[str, ...]) -> re.Pattern[bytes]:
    # Each word begins and ends with [a-z0-9], which the separator class excludes, so
    # the pattern cannot backtrack more than one separator run per attempt.
    return re.compile(b"[^a-z0-9]*".join(re.escape(term.encode("ascii")) for term in terms))


def _raw_separator(tags: Sequence[str]) -> re.Pattern[bytes]:
    """What may stand between two words of a phrase in a file's raw text.

    In the text ``_FileGate.admits`` checks, only ``[^a-z0-9]`` (lowercased, the lines
    the splitter drops removed: ``_removed_lines``); in the raw text also those dropped
    lines, matched first and whole, just as the removal does. Possessive: no
    backtracking, whatever the text.
    """
    dropped = []
    if "screen" in tags:
        dropped.append(rb"\n\+ [^\n]*+")
    if file_format(tags) == "console":
        # Case-sensitive, as the splitter drops only these: a "<PRE>" line is kept, and
        # its word "pre" stands between the words around it.
        dropped.append(rb"(?<=\n)(?-i:</?pre>)(?=\r?\n|\Z)")
    return _compiled(b"(?:" + b"|".join([*dropped, rb"[^a-z0-9]"]) + b")*+")


@functools.lru_cache(maxsize=16)
def _compiled(pattern: bytes) -> re.Pattern[bytes]:
    # Any case: [^a-z0-9] must not take an uppercase letter for a separator.
    return re.compile(pattern, re.IGNORECASE)


def _followed(
    data: Text, at: int, size: int, terms: tuple[str, ...], sep: re.Pattern[bytes]
) -> bool:
    """Whether ``terms[1:]`` follow the hit of ``terms[0]`` at ``data[at]``, in any case,
    separated as ``sep`` allows. Word by word rather than one regex per phrase: compiling
    those took longer than all the hits' checks. The separator being possessive, this is
    what that regex would decide."""
    position = at + len(terms[0])
    for term in terms[1:]:
        match = sep.match(data, position, size)
        position = match.end() if match is not None else position
        word = term.encode("ascii")
        if data[position : position + len(word)].lower() != word:
            return False
        position += len(word)
    return True


def _suffixes(
    located: tuple[str, ...],
    phrases: tuple[tuple[tuple[str, ...], ...], ...],
    ids: dict[str, int],
    separator: re.Pattern[bytes],
) -> dict[int, list[tuple[tuple[str, ...], re.Pattern[bytes]]]] | None:
    """For ``_FileGate.suffixes``: from the first phrase conjunct each of whose
    alternatives has a located literal among its words."""
    for alternatives in phrases:
        if all(any(term in located for term in terms) for terms in alternatives):
            suffixes: dict[int, list[tuple[tuple[str, ...], re.Pattern[bytes]]]] = {}
            for terms in alternatives:
                for at, term in enumerate(terms):
                    if term in located:
                        suffixes.setdefault(ids[term], []).append((terms[at:], separator))
            return suffixes
    return None


def _removed_lines(tags: Sequence[str]) -> re.Pattern[bytes] | None:
    """Lines the splitter drops, which must not separate a phrase's words in the text
    (matched in the raw text, before it is lowercased)."""
    patterns = []
    if "screen" in tags:
        patterns.append(rb"\n\+ [^\n]*")
    if file_format(tags) == "console":
        patterns.append(rb"\n</?pre>\r?(?=\n|\Z)")
    return re.compile(b"|".join(patterns)) if patterns else None


_Hit = TypeVar("_Hit", bound=tuple[int, object])
"""A hit: its offset first, then what it found."""


@dataclass(frozen=True)
class _FileScan:
    """How one file is scanned, decided from its plan and its first chunk."""

    plan: FilePlan
    starts: StartTest
    dropped: StartTest | None
    """Whether the splitter keeps nothing of a line (a DEBUG event's first line...)."""
    removed: re.Pattern[bytes] | None
    """Lines the splitter drops, removed from a candidate event's text."""
    gates: list[_FileGate]
    database: _Database


def _kept_hits(data: Text, size: int, hits: list[_Hit], dropped: StartTest) -> list[_Hit]:
    """The hits (sorted by offset) that are not on a line the splitter keeps nothing of.

    Most hits of a common literal are on DEBUG lines: one test of the line is far
    cheaper than finding its event, only for the splitter to drop it.
    """
    kept: list[_Hit] = []
    line_end = -1
    skip = False
    for hit in hits:
        if hit[0] > line_end:  # the first hit on its line
            line_start = data.rfind(b"\n", 0, hit[0]) + 1
            line_end = _line_end(data, hit[0], size)
            skip = dropped(data, line_start, line_end)
        if not skip:
            kept.append(hit)
    return kept


@dataclass(frozen=True)
class _FileGate:
    """A signature's gate in one file, as literal ids and compiled phrase patterns."""

    index: int
    conjuncts: list[frozenset[int]]
    scanned: frozenset[int]
    phrases: tuple[tuple[tuple[str, ...], ...], ...]
    """AND of ORs of exact phrases (see Gate.phrases)."""
    suffixes: dict[int, list[tuple[tuple[str, ...], re.Pattern[bytes]]]] | None = None
    """Located literal -> the rest of each phrase it is a word of, from that word on,
    with the separator of words in the raw text (``_followed``); None when the
    located literals are not all words of the phrases of one conjunct (then every hit
    is a candidate)."""

    def may_begin(self, lit: int, data: Text, at: int, size: int) -> bool:
        """Whether the hit of ``lit`` at ``data[at]`` can be a phrase's word of a match.

        A matching event holds one of the alternatives of the phrase conjunct, and
        each alternative has a located literal among its words: that word's hit is
        followed by the rest of the phrase. Hits that are not (most hits of a common
        word) need no event found nor checked.
        """
        if self.suffixes is None:
            return True
        return any(
            _followed(data, at, size, terms, separator)
            for terms, separator in self.suffixes.get(lit, ())
        )

    def admits(self, text: bytes, contains: _Contains) -> bool:
        """Whether lowercased ``text`` holds every conjunct and phrase."""
        return all(any(contains(lit) for lit in alts) for alts in self.conjuncts) and all(
            any(_phrase_pattern(terms).search(text) for terms in alts) for alts in self.phrases
        )


class _Contains:
    """Memoized "does ``text`` contain literal ``id``" for one region."""

    def __init__(self, text: bytes, literals: list[str]) -> None:
        self._text = text
        self._literals = literals
        self._known: dict[int, bool] = {}

    def __call__(self, lit: int) -> bool:
        known = self._known.get(lit)
        if known is None:
            known = self._known[lit] = self._literals[lit].encode("ascii") in self._text
        return known


class _Database:
    """A hyperscan database of literals, found case-insensitively wherever they occur."""

    def __init__(self, ids: list[int], literals: list[str]) -> None:
        assert hyperscan is not None
        self._ids = ids
        self._lengths = [len(literals[i]) for i in ids]
        # The characters whose lowercase is ASCII are looked for in the same pass, with
        # ids after the literals' (see _ASCII_LOWERING).
        expressions = [literals[i].encode("ascii") for i in ids] + list(_ASCII_LOWERING)
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=[hyperscan.HS_FLAG_CASELESS] * len(ids) + [hyperscan.HS_FLAG_SINGLEMATCH] * 2,
            literal=True,
        )
        self._scratch = hyperscan.Scratch(self._db)

    def scan(self, data: Text, size: int, start: int = 0) -> tuple[list[tuple[int, int]], bool]:
        """``(start offset, literal id)`` of every occurrence of a literal in
        ``data[start:size]``, and whether it holds a character whose lowercase is ASCII."""
        hits: list[tuple[int, int]] = []
        with memoryview(data) as whole, whole[start:size] as part:
            self._db.scan(part, match_event_handler=_collect, context=hits, scratch=self._scratch)
        count = len(self._ids)
        ids, lengths = self._ids, self._lengths
        found = [(start + end - lengths[hit], ids[hit]) for hit, end in hits if hit < count]
        return found, len(found) < len(hits)


def _collect(
    pattern_id: int, start: int, end: int, flags: int, hits: list[tuple[int, int]]
) -> None:
    hits.append((pattern_id, end))


def _line_end(data: Text, start: int, size: int) -> int:
    end = data.find(b"\n", start, size)
    return size if end == -1 else end


def _regions(data: Text, size: int, offsets: list[int], starts: StartTest) -> list[tuple[int, int]]:
    """The spans ``[start, end)`` of whole events of ``data[:size]`` around ``offsets``
    (sorted, disjoint)."""
    regions: list[tuple[int, int]] = []
    for offset in offsets:
        if regions and offset < regions[-1][1]:
            continue
        start = data.rfind(b"\n", 0, offset) + 1
        while start > 0 and not starts(data, start, _line_end(data, start, size)):
            start = data.rfind(b"\n", 0, start - 1) + 1
        end = _line_end(data, offset, size)
        while end < size and not starts(data, end + 1, _line_end(data, end + 1, size)):
            end = _line_end(data, end + 1, size)
        end = min(end + 1, size)
        if regions and start < regions[-1][1]:
            start = regions.pop()[0]  # events never overlap: same event, widen
        regions.append((start, end))
    return regions


_Chunk = tuple[Text, int, int, int, int]
"""``(data, begin, end, offset, first line)``: a chunk is ``data[begin:end]``; ``data[0]``
is at ``offset`` in the file; the chunk's first line is ``first line`` (0: not counted)."""


def _span_test(tags: Sequence[str], max_event_chars: int) -> StartTest:
    """Whether ``data[begin:end]``, from an event's first line on, holds more of it than
    the event keeps, so that the rest of the event can be skipped.

    The event keeps ``max_event_chars`` characters, and a character is at most 4 bytes
    (a line longer than ``4 * max_event_chars + 4`` bytes is cut there): 8 bytes a
    character cover the text and a last line cut by the span. Lines the splitter drops
    (xtrace, ``<pre>``) keep nothing, so they do not count: an event of a screen log
    may hold megabytes of xtrace and then the line a signature looks for.
    """
    least = max(MAX_SPAN_BYTES, 8 * (max_event_chars + 2))
    removed = _removed_lines(tags)

    def beyond(data: Text, begin: int, end: int) -> bool:
        if end - begin < least:
            return False
        if removed is None:
            return True
        dropped = sum(m.end() - m.start() for m in removed.finditer(data, begin, end))
        return end - begin - dropped >= least

    return beyond


def _chunks(
    stream: BinaryIO,
    starts: StartTest,
    stats: ScanStats,
    *,
    beyond: StartTest,
    count_lines: bool = True,
) -> Iterator[_Chunk]:
    """The chunks of ``stream``, read into a buffer: ``buffer[:size]``, found at
    ``offset`` in the stream, each starting where an event surely does. Without
    ``count_lines`` the line number is always 0.

    One buffer is filled again for every chunk (what follows the cut moved to its
    front), so the chunk is valid only until the next is asked for. Reading into one
    reused buffer instead of a fresh ``bytes`` per read saves allocating, page-faulting
    and copying every chunk two or three times over: a third of the scan's time.
    """
    buffer = bytearray(CHUNK_BYTES)
    filled = 0  # bytes at the buffer's front that hold data: the carry, then what was read
    offset = 0  # where the buffer's first byte is in the stream
    line = 1 if count_lines else 0
    skipping = False  # inside an event longer than MAX_SPAN_BYTES: its rest is dropped
    while True:
        if len(buffer) - filled < CHUNK_BYTES:
            buffer.extend(bytes(filled + CHUNK_BYTES - len(buffer)))  # a long event
        got = _read_into(stream, buffer, filled)
        stats.bytes_read += got
        filled += got
        if skipping:
            begin = _first_start(buffer, filled, starts, complete_only=bool(got))
            if begin is None:
                if not got:
                    return
                # Keep the last line break: the line after it may begin an event.
                keep = max(buffer.rfind(b"\n", 0, filled), 0)
                if count_lines:
                    line += count_newlines(buffer, 0, keep)
                offset += keep
                filled = _shift(buffer, keep, filled)
                continue
            if count_lines:
                line += count_newlines(buffer, 0, begin)
            offset += begin
            filled = _shift(buffer, begin, filled)
            skipping = False
        if not got:
            if filled:
                stats.chunks += 1
                yield buffer, 0, filled, offset, line
            return
        cut = _last_start(buffer, filled, starts)
        if cut is None:
            if not beyond(buffer, 0, filled):
                continue
            cut = filled
            skipping = True
        stats.chunks += 1
        yield buffer, 0, cut, offset, line
        # Cut inside a long event: keep its last byte, so that a line beginning right
        # after the cut is still tested as the first line after a line break.
        kept = cut - 1 if skipping else cut
        if count_lines:
            line += count_newlines(buffer, 0, kept)
        offset += kept
        filled = _shift(buffer, kept, filled)


def _map(stream: BinaryIO) -> mmap.mmap | None:
    """The regular file ``stream`` mapped into memory, or None if it cannot be.

    Scanning a mapping saves copying every byte out of the page cache (a seventh of a
    scan). Mapped only for local files, which are complete logs: a file that shrinks
    while mapped would kill the process (SIGBUS), so each chunk first checks the size.
    """
    try:
        if os.fstat(stream.fileno()).st_size == 0:
            return None
        return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None


def _mapped_chunks(
    data: mmap.mmap,
    fd: int,
    starts: StartTest,
    stats: ScanStats,
    beyond: StartTest,
) -> Iterator[_Chunk]:
    """The chunks of a mapped file, cut as ``_chunks`` cuts them; pages already scanned
    are released, so that memory stays bounded whatever the file's size."""
    size = len(data)
    stats.bytes_read += size
    begin = 0
    while begin < size:
        if os.fstat(fd).st_size < size:
            raise OSError(errno.EIO, "the file shrank while it was being read")
        end = min(begin + CHUNK_BYTES, size)
        cut = _last_start(data, end, starts, begin) if end < size else size
        while cut is None and end < size and not beyond(data, begin, end):
            end = min(end + CHUNK_BYTES, size)
            cut = _last_start(data, end, starts, begin) if end < size else size
        stats.chunks += 1
        if cut is None:  # an event far longer than an event keeps: its rest is skipped
            yield data, begin, end, 0, 0
            # From the byte before the cut: a line may begin right at it.
            cut = _first_start(data, size, starts, complete_only=False, begin=end - 1) or size
        else:
            yield data, begin, cut, 0, 0
        page = mmap.PAGESIZE
        if hasattr(data, "madvise") and cut // page > begin // page:
            data.madvise(
                mmap.MADV_DONTNEED, begin // page * page, (cut // page - begin // page) * page
            )
        begin = cut


class _FileLines:
    """Line numbers of byte offsets in a regular file, counted only when asked for.

    Counting every line break of every chunk costs a fifth of a scan, yet line numbers
    are needed only where a signature matched: usually in few files, near their end.
    So for a plain file on disk the scan keeps byte offsets, and this counts the line
    breaks before an offset by reading the file again (``pread``, from the page cache,
    leaving the scan's position alone), once, from where it last stopped.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._offset = 0
        self._line = 1

    @staticmethod
    def of(stream: BinaryIO) -> _FileLines | None:
        """A counter for ``stream`` if it is a plain regular file, else None."""
        if not isinstance(stream, io.BufferedReader) or not isinstance(stream.raw, io.FileIO):
            return None  # decompressed or fetched: count while reading instead
        try:
            fd = stream.fileno()
            return _FileLines(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except OSError:
            return None

    def at(self, offset: int) -> int:
        """The number of the line holding byte ``offset`` (offsets asked never go back)."""
        while self._offset < offset:
            piece = os.pread(self._fd, min(offset - self._offset, CHUNK_BYTES), self._offset)
            if not piece:
                break  # the file shrank under us: the best number there is
            self._line += count_newlines(piece, 0, len(piece))
            self._offset += len(piece)
        return self._line


class _ChunkLines:
    """Line numbers of positions in one chunk, asked in increasing order."""

    def __init__(
        self,
        chunk: Text,
        begin: int,
        offset: int,
        first_line: int,
        file_lines: _FileLines | None,
    ) -> None:
        self._chunk = chunk
        self._offset = offset
        self._file_lines = file_lines
        self._line = first_line
        self._counted = begin

    def at(self, position: int) -> int:
        """The number of the line holding ``chunk[position]``."""
        if self._file_lines is not None:
            return self._file_lines.at(self._offset + position)
        assert not isinstance(self._chunk, mmap.mmap), "a mapped file counts with _FileLines"
        self._line += count_newlines(self._chunk, self._counted, position)
        self._counted = position
        return self._line


def _read_into(stream: BinaryIO, buffer: bytearray, filled: int) -> int:
    """Read up to CHUNK_BYTES into ``buffer`` after its first ``filled`` bytes."""
    with memoryview(buffer) as whole, whole[filled : filled + CHUNK_BYTES] as free:
        readinto = getattr(stream, "readinto", None)
        if readinto is not None:
            return int(readinto(free))
        data = stream.read(CHUNK_BYTES)
        free[: len(data)] = data
        return len(data)


def _shift(buffer: bytearray, begin: int, filled: int) -> int:
    """Move ``buffer[begin:filled]`` to the buffer's front; returns its length."""
    buffer[: filled - begin] = buffer[begin:filled]
    return filled - begin


def _last_start(data: Text, size: int, starts: StartTest, begin: int = 0) -> int | None:
    """The start of the last complete line of ``data[begin:size]`` (not its first) that
    begins an event."""
    end = data.rfind(b"\n", begin, size)
    while end > begin:
        start = data.rfind(b"\n", begin, end) + 1
        if start <= begin:
            return None
        if starts(data, start, end):
            return start
        end = start - 1
    return None


def _first_start(
    data: Text, size: int, starts: StartTest, complete_only: bool, begin: int = 0
) -> int | None:
    """The first line start after the beginning of ``data[begin:size]`` that begins an
    event."""
    start = data.find(b"\n", begin, size) + 1
    while start:
        end = data.find(b"\n", start, size)
        if end == -1:
            if complete_only or start >= size:
                return None
            end = size
        if starts(data, start, end):
            return start
        start = end + 1 if end < size else 0
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
