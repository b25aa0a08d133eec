"""A file's gates at scan time: literals found in raw bytes, and the checks of each hit.

Which conjunct of each signature to locate is chosen from a file's first chunk
(``file_gates``). One hyperscan database finds every located literal of a file's
signatures in a chunk; a hit on a line the splitter drops, or not followed by the rest
of its phrase, is passed over before any event is split (``FileGate``).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TypeVar

from recheck.logs.split import StartTest, Text, file_format
from recheck.scan.chunks import Chunk, line_end
from recheck.scan.plan import FilePlan, Gate

hyperscan: ModuleType | None
try:  # optional: `pip install 'recheck[fast]'`
    import hyperscan
except ImportError:  # pragma: no cover - exercised where hyperscan is missing
    hyperscan = None

SAMPLE_BYTES = 1 << 16
"""Bytes of a file's first chunk in which literals are counted to choose which to locate..."""


SAMPLE_PIECES = 4
"""... in this many pieces spread over the chunk."""


SMALL_CHUNK_BYTES = 16 << 10
"""A first chunk at most this long (a small file) is not sampled: each signature locates
its longest literal (``Gate.best``). Counting the literals of hundreds of signatures
costs more than the few hits a better choice could spare in so little text."""

MadeGates = dict[tuple[int, int, bool, re.Pattern[bytes]], "FileGate"]
"""``FileGate``s made for the small files, by signature, gate (its ``id``: gates are
interned, ``plan.Planner``), and the separator and phrase rule of the file's format."""


# Characters outside ASCII whose Java lowercase is an ASCII letter: a literal's ASCII
# letters may stand for them in the text, and hyperscan's caseless mode only folds ASCII.
_ASCII_LOWERING = (b"\xc4\xb0", b"\xe2\x84\xaa")  # U+0130 -> i, U+212A (Kelvin) -> k


@dataclass(frozen=True)
class FileGate:
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

    def admits(self, text: bytes, contains: Contains) -> bool:
        """Whether lowercased ``text`` holds every conjunct and phrase."""
        return all(any(contains(lit) for lit in alts) for alts in self.conjuncts) and all(
            any(_phrase_pattern(terms).search(text) for terms in alts) for alts in self.phrases
        )


class LiteralDatabase:
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


class Contains:
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


_Hit = TypeVar("_Hit", bound=tuple[int, object])
"""A hit: its offset first, then what it found."""


def kept_hits(data: Text, size: int, hits: list[_Hit], dropped: StartTest) -> list[_Hit]:
    """The hits (sorted by offset) that are not on a line the splitter keeps nothing of.

    Most hits of a common literal are on DEBUG lines: one test of the line is far
    cheaper than finding its event, only for the splitter to drop it.
    """
    kept: list[_Hit] = []
    end = -1  # of the line of the last hit
    skip = False
    for hit in hits:
        if hit[0] > end:  # the first hit on its line
            start = data.rfind(b"\n", 0, hit[0]) + 1
            end = line_end(data, hit[0], size)
            skip = dropped(data, start, end)
        if not skip:
            kept.append(hit)
    return kept


def sample_pieces(data: Text, begin: int, size: int) -> list[tuple[int, int]]:
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


# Compiled when first needed, and kept: a file's gates name hundreds of phrases, of
# which only those near a hit are ever looked for (compiling them all took a third of
# the scan of a console log with 1,000 signatures).
@functools.lru_cache(maxsize=8192)
def _phrase_pattern(terms: tuple[str, ...]) -> re.Pattern[bytes]:
    # Each word begins and ends with [a-z0-9], which the separator class excludes, so
    # the pattern cannot backtrack more than one separator run per attempt.
    return re.compile(b"[^a-z0-9]*".join(re.escape(term.encode("ascii")) for term in terms))


def raw_separator(tags: Sequence[str]) -> re.Pattern[bytes]:
    """What may stand between two words of a phrase in a file's raw text.

    In the text ``FileGate.admits`` checks, only ``[^a-z0-9]`` (lowercased, the lines
    the splitter drops removed: ``removed_lines``); in the raw text also those dropped
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


def phrase_suffixes(
    located: tuple[str, ...],
    phrases: tuple[tuple[tuple[str, ...], ...], ...],
    ids: dict[str, int],
    separator: re.Pattern[bytes],
) -> dict[int, list[tuple[tuple[str, ...], re.Pattern[bytes]]]] | None:
    """For ``FileGate.suffixes``: from the first phrase conjunct each of whose
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


def file_gates(
    plan: FilePlan,
    dropped: StartTest | None,
    first: Chunk,
    ids: dict[str, int],
    database: Callable[[frozenset[int]], LiteralDatabase],
    made: MadeGates,
) -> list[FileGate]:
    """The gates of ``plan``'s signatures in its file, whose ``first`` chunk tells which
    conjunct of each to locate; ``ids`` numbers the literals, ``database`` finds them.
    ``made`` keeps the gates of small files, which are the same in every file of a kind:
    a build of thousands of small files makes them once, not once a file."""
    # An apache access log's message joins fields that are not next to each other.
    phrases_apart = "apachecombined" in plan.tags
    separator = raw_separator(plan.tags)

    def file_gate(index: int, gate: Gate, located: tuple[str, ...]) -> FileGate:
        return FileGate(
            index,
            [frozenset(ids[lit] for lit in alts) for alts in gate.conjuncts],
            frozenset(ids[lit] for lit in located),
            () if phrases_apart else gate.phrases,
            None if phrases_apart else phrase_suffixes(located, gate.phrases, ids, separator),
        )

    if first[2] - first[1] <= SMALL_CHUNK_BYTES:
        gates: list[FileGate] = []
        for index, gate in plan.gates.items():
            key = (index, id(gate), phrases_apart, separator)
            known = made.get(key)
            if known is None:
                known = made[key] = file_gate(index, gate, gate.conjuncts[gate.best])
            gates.append(known)
        return gates

    # Which conjunct of each signature to locate: the one whose literals are the
    # rarest in the file's first lines. Length alone is a poor guess: "devstack" is
    # long and on every other line of a devstack log. A hit on a line the splitter
    # drops (DEBUG) is passed over cheaply; any other costs ~10 times more: finding
    # its event and checking it. Counted in one hyperscan pass over the sample.
    every = {lit for gate in plan.gates.values() for alts in gate.conjuncts for lit in alts}
    # Words of up to 3 letters ("a", "in", "to") are on most lines: counted apart,
    # lest their hits make the sample's pass cost as much as a chunk's.
    short = {lit for lit in every if len(lit) <= 3}
    counted = database(frozenset(ids[lit] for lit in every - short))
    counts: Counter[int] = Counter()
    for start, end in sample_pieces(first[0], first[1], first[2]):
        hits = sorted(counted.scan(first[0], end, start)[0])
        live = hits if dropped is None else kept_hits(first[0], end, hits, dropped)
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

    return [file_gate(index, gate, located_of[index]) for index, gate in plan.gates.items()]
