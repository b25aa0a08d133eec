"""The compiled query tree and how it decides one event.

``Doc`` is an event as the index sees it (tokens and positions, computed lazily); the
``Node`` classes evaluate against it, and tell the necessary literals a prefilter or
scanner can look for (``required_literals``) and what is left once some fields are known
(``specialize``). The parser (``parser``) builds these trees; the cache stores them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from recheck.models import Event
from recheck.query import analysis


class Doc:
    """An event as the index sees it: per field, tokens with positions (computed lazily)."""

    __slots__ = ("_event", "_positions", "_terms", "_tokens")

    def __init__(self, event: Event) -> None:
        self._event = event
        self._tokens: dict[str, list[list[str]]] = {}
        self._terms: dict[str, frozenset[str]] = {}
        self._positions: dict[str, dict[str, list[int]]] = {}

    def values(self, name: str) -> list[str]:
        value = self._event.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return [v for v in value if v is not None]

    def has_field(self, name: str) -> bool:
        return bool(self.values(name))

    def tokens(self, name: str) -> list[list[str]]:
        """Each value's tokens, in order: one list per value."""
        found = self._tokens.get(name)
        if found is None:
            found = self._tokens[name] = [analysis.tokenize(v) for v in self.values(name)]
        return found

    def terms(self, name: str) -> frozenset[str]:
        found = self._terms.get(name)
        if found is None:
            found = frozenset(t for tokens in self.tokens(name) for t in tokens)
            self._terms[name] = found
        return found

    def positions(self, name: str) -> dict[str, list[int]]:
        """Token -> its positions, as Lucene's indexing chain numbers them: consecutive
        within a value, and POSITION_INCREMENT_GAP more between values."""
        found = self._positions.get(name)
        if found is None:
            found = {}
            position = -1
            for index, tokens in enumerate(self.tokens(name)):
                if index:
                    position += analysis.POSITION_INCREMENT_GAP
                for token in tokens:
                    position += 1
                    found.setdefault(token, []).append(position)
            self._positions[name] = found
        return found


class Node:
    """A compiled query; ``matches`` decides one document."""

    def matches(self, doc: Doc) -> bool:
        raise NotImplementedError

    def required_literals(self) -> list[list[tuple[str, str]]] | None:
        """A necessary condition as AND of ORs of (field, lowercase substring).

        None means "no cheap necessary condition" (e.g. under negation).
        """
        return None

    def specialize(self, docs: Sequence[Doc], constant: Callable[[str], bool]) -> Node:
        """This query with the conditions on ``constant`` fields decided in advance.

        ``docs`` are the possible values of the constant fields (e.g. a log file's tags,
        with and without the per-event ``_truncated`` tag); a condition that is true for
        all of them becomes MatchAll, false for all MatchNone, and stays as it is
        otherwise. The result matches exactly the same events that agree with one of
        ``docs`` on the constant fields.
        """
        name = getattr(self, "field", None)
        if name is None or not constant(name):
            return self
        verdicts = {self.matches(doc) for doc in docs}
        if len(verdicts) != 1:
            return self
        return MatchAll() if verdicts.pop() else MatchNone()


@dataclass(frozen=True)
class MatchAll(Node):
    def matches(self, doc: Doc) -> bool:
        return True


@dataclass(frozen=True)
class MatchNone(Node):
    def matches(self, doc: Doc) -> bool:
        return False

    def required_literals(self) -> list[list[tuple[str, str]]] | None:
        return [[]]


@dataclass(frozen=True)
class Exists(Node):
    field: str

    def matches(self, doc: Doc) -> bool:
        return doc.has_field(self.field)


@dataclass(frozen=True)
class Term(Node):
    field: str
    term: str

    def matches(self, doc: Doc) -> bool:
        return self.term in doc.terms(self.field)

    def required_literals(self) -> list[list[tuple[str, str]]] | None:
        piece = scannable(self.term)
        return [[(self.field, piece)]] if piece else None


@dataclass(frozen=True)
class Phrase(Node):
    field: str
    terms: tuple[str, ...]
    slop: int

    def matches(self, doc: Doc) -> bool:
        if self.slop == 0:
            # Positions are consecutive within a value and a phrase never spans two
            # values: an exact phrase is a run of tokens in one value.
            return any(_has_run(tokens, self.terms) for tokens in doc.tokens(self.field))
        positions = doc.positions(self.field)
        if not all(t in positions for t in self.terms):
            return False
        return _sloppy_phrase(self.terms, positions, self.slop)

    def required_literals(self) -> list[list[tuple[str, str]]] | None:
        return [[(self.field, piece)] for t in self.terms if (piece := scannable(t))] or None


@dataclass(frozen=True)
class TokenTest(Node):
    """Any token of the field passes a test: wildcard, prefix, regexp, fuzzy, range."""

    field: str
    kind: str
    text: str
    test: Callable[[str], bool] = dataclasses.field(compare=False, repr=False)
    literal: str = ""  # a substring every passing token contains, for prefilters

    def matches(self, doc: Doc) -> bool:
        test = self.test
        return any(test(t) for t in doc.terms(self.field))

    def required_literals(self) -> list[list[tuple[str, str]]] | None:
        piece = scannable(self.literal)
        return [[(self.field, piece)]] if piece else None


@dataclass(frozen=True)
class Bool(Node):
    must: tuple[Node, ...] = ()
    should: tuple[Node, ...] = ()
    must_not: tuple[Node, ...] = ()

    def matches(self, doc: Doc) -> bool:
        for q in self.must:
            if not q.matches(doc):
                return False
        for q in self.must_not:
            if q.matches(doc):
                return False
        if self.must:
            return True
        return any(q.matches(doc) for q in self.should)

    def specialize(self, docs: Sequence[Doc], constant: Callable[[str], bool]) -> Node:
        must = _specialize_all(self.must, docs, constant, decisive=MatchNone, dropped=MatchAll)
        if must is None:
            return MatchNone()
        must_not = _specialize_all(
            self.must_not, docs, constant, decisive=MatchAll, dropped=MatchNone
        )
        if must_not is None:
            return MatchNone()
        if self.must:
            # SHOULD clauses are ignored when there is a MUST clause (see ``matches``), and
            # a MatchAll kept in ``must`` preserves that even if all else was decided.
            if not must and not must_not:
                return MatchAll()
            if must is self.must and must_not is self.must_not:
                return self  # nothing decided: callers can tell and reuse what they derived
            return Bool(must=must or (MatchAll(),), must_not=must_not)
        should = _specialize_all(self.should, docs, constant, decisive=MatchAll, dropped=MatchNone)
        if should is None:
            return Bool(must=(MatchAll(),), must_not=must_not) if must_not else MatchAll()
        if not should:
            return MatchNone()
        if should is self.should and must_not is self.must_not:
            return self
        return Bool(should=should, must_not=must_not)

    def required_literals(self) -> list[list[tuple[str, str]]] | None:
        if self.must:
            out: list[list[tuple[str, str]]] = []
            for q in self.must:
                lits = q.required_literals()
                if lits is not None:
                    out.extend(lits)
            return out or None
        if not self.should:
            return [[]]  # matches nothing
        # OR of the children: any choice of one conjunct per child gives a necessary
        # OR-set. Offer a few choices (each child's best, second best, ...): a user
        # such as the scanner can then pick the one whose words are rare in its data.
        ranked: list[list[list[tuple[str, str]]]] = []
        for q in self.should:
            lits = q.required_literals()
            if not lits:
                return None
            ranked.append(sorted(lits, key=selectivity, reverse=True))
        choices = max(len(lits) for lits in ranked)
        return [
            [alt for lits in ranked for alt in lits[min(k, len(lits) - 1)]]
            for k in range(min(choices, _OR_CHOICES))
        ]


def _specialize_all(
    clauses: tuple[Node, ...],
    docs: Sequence[Doc],
    constant: Callable[[str], bool],
    decisive: type[Node],
    dropped: type[Node],
) -> tuple[Node, ...] | None:
    """The clauses specialized, without those that became ``dropped``; None as soon as
    one becomes ``decisive``: the others need not be specialized (this runs for every
    signature and file of a build). ``clauses`` itself when none changed."""
    out: list[Node] = []
    changed = False
    for clause in clauses:
        q = clause.specialize(docs, constant)
        if isinstance(q, decisive):
            return None
        if not isinstance(q, dropped):
            out.append(q)
        changed = changed or q is not clause
    return tuple(out) if changed else clauses


def leaf_count(node: Node) -> int:
    """The clauses ``node`` counts for, as Lucene 9 counts them against its clause limit:
    each leaf query one, each word of a phrase one."""
    if isinstance(node, Bool):
        return sum(leaf_count(q) for q in (*node.must, *node.should, *node.must_not))
    if isinstance(node, Phrase):
        return len(node.terms)
    return 1


def leaves(node: Node) -> Iterator[Node]:
    """The conditions of ``node`` that are not AND/OR/NOT of others."""
    if isinstance(node, Bool):
        for q in (*node.must, *node.should, *node.must_not):
            yield from leaves(q)
    else:
        yield node


_OR_CHOICES = 3
"""How many necessary OR-sets an OR query offers (see ``Bool.required_literals``)."""


def scannable(literal: str) -> str:
    """The longest part of ``literal`` without a NUL or a lone surrogate: what a necessary
    substring may be.

    Multi-literal scanners (hyperscan) take C strings, so a NUL would cut a literal short
    or leave it empty; a lone surrogate (a query can hold one, as a Java string can) has
    no UTF-8 to look for. Any part of a necessary substring is necessary too."""
    if "\0" not in literal and (literal.isascii() or not _SURROGATE.search(literal)):
        return literal
    return max(_UNSCANNABLE.split(literal), key=len)


_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSCANNABLE = re.compile("[\0\ud800-\udfff]")


def selectivity(alternatives: Sequence[tuple[str, str]]) -> tuple[int, int]:
    """How selective an OR-set of literals is: its weakest literal's length, then fewness.

    An empty set (nothing can match) is the most selective of all.
    """
    if not alternatives:
        return (10**9, 0)
    return (min(len(lit) for _, lit in alternatives), -len(alternatives))


def _has_run(tokens: list[str], terms: tuple[str, ...]) -> bool:
    """Whether ``terms`` occur one after another somewhere in ``tokens``."""
    first, size = terms[0], len(terms)
    start = 0
    while True:
        try:
            start = tokens.index(first, start)
        except ValueError:
            return False
        if size == 1 or tuple(tokens[start : start + size]) == terms:
            return True
        start += 1


def _sloppy_phrase(terms: tuple[str, ...], positions: dict[str, list[int]], slop: int) -> bool:
    """Is there a choice of positions, distinct for repeated terms, within ``slop``?

    Lucene's sloppy phrase distance: with p_i the document position chosen for query
    term i, the match length is max(p_i - i) - min(p_i - i); it must be <= slop.
    """
    groups: dict[str, list[int]] = {}
    for offset, term in enumerate(terms):
        groups.setdefault(term, []).append(offset)
    candidates = sorted({p - i for i, t in enumerate(terms) for p in positions[t]})
    for low in candidates:
        high = low + slop
        if all(_assign(offsets, positions[term], low, high) for term, offsets in groups.items()):
            return True
    return False


def _assign(offsets: list[int], term_positions: list[int], low: int, high: int) -> bool:
    """Give each query offset a distinct position p with low <= p - offset <= high."""
    # Intervals [low + o, high + o] all have the same length, so their ends sort like
    # their starts: assigning the smallest free position in order is optimal.
    used = 0
    ordered = sorted(term_positions)
    for offset in sorted(offsets):
        start, end = low + offset, high + offset
        while used < len(ordered) and ordered[used] < start:
            used += 1
        if used >= len(ordered) or ordered[used] > end:
            return False
        used += 1
    return True
