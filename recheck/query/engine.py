"""Lucene query_string queries: parse once, evaluate against many events.

The parser follows Lucene 8's classic QueryParser grammar rule for rule (its quirks are
what Elasticsearch users get): no operator precedence but Lucene's clause list, where
``AND`` makes its neighbours required and ``OR`` leaves them optional; ``NOT``, ``!`` and
``-`` prohibit; a lone ``-`` or ``!`` followed by space is a (meaningless) term. As in
Elasticsearch, a boolean group whose clauses are all prohibited also matches everything
else, ``_exists_:f`` and ``f:*`` test that a field is present, and leading wildcards are
allowed. Terms are analyzed like StandardAnalyzer (see ``analysis``).

The result is a tree of small query objects, each with ``matches(doc)``, plus a
``Query`` wrapper that holds the tree, the text and what a prefilter can use.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from recheck.query import analysis
from recheck.query.lexer import Kind, LexError, Token, tokenize_query

DEFAULT_FIELD = "message"
MAX_EDITS = 2  # LevenshteinAutomata.MAXIMUM_SUPPORTED_DISTANCE
DEFAULT_FUZZY_MIN_SIM = 2.0
# Lucene has no limit, but Python's stack does: refuse absurd nesting with a clear error
# rather than crash on hostile input.
MAX_NESTING = 100

FieldValue = str | Sequence[str]
Event = Mapping[str, FieldValue]


class QuerySyntaxError(ValueError):
    """A query Lucene would reject; ``position`` is a 0-based offset into the query."""

    def __init__(self, message: str, position: int | None = None) -> None:
        where = f" at character {position + 1}" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.message = message
        self.position = position


# --------------------------------------------------------------------------- documents


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


# --------------------------------------------------------------------------- query tree


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


_OR_CHOICES = 3


def scannable(literal: str) -> str:
    """The longest part of ``literal`` without a NUL: what a necessary substring may be.

    Multi-literal scanners (hyperscan) take C strings, so a NUL would cut a literal short
    or leave it empty; any part of a necessary substring is necessary too."""
    return max(literal.split("\0"), key=len) if "\0" in literal else literal


"""How many necessary OR-sets an OR query offers (see ``Bool.required_literals``)."""


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


# --------------------------------------------------------------------------- term tests


def _glob_test(pattern: str) -> tuple[Callable[[str], bool], str]:
    """A WildcardQuery matcher: ``*`` any run, ``?`` one code point, ``\\x`` literal x.

    Matched with the classic two-pointer algorithm: O(len(token) * len(pattern)) at
    worst, never exponential whatever the pattern.
    """
    parts: list[str | None] = []  # None = '*', '' never used, '?' marker = '\0?' below
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            parts.append(pattern[i + 1])
            i += 2
            continue
        if ch == "*":
            parts.append(None)
        elif ch == "?":
            parts.append("")
        else:
            parts.append(ch)
        i += 1
    # Longest literal run: every matching token contains it.
    best = ""
    run = ""
    for p in parts:
        if p:
            run += p
            best = max(best, run, key=len)
        else:
            run = ""
    pat = tuple(parts)

    def test(token: str) -> bool:
        t, p = 0, 0
        star_p, star_t = -1, 0
        n, m = len(token), len(pat)
        while t < n:
            if p < m and pat[p] is not None and (pat[p] == "" or pat[p] == token[t]):
                t += 1
                p += 1
            elif p < m and pat[p] is None:
                star_p, star_t = p, t
                p += 1
            elif star_p >= 0:
                star_t += 1
                t = star_t
                p = star_p + 1
            else:
                return False
        while p < m and pat[p] is None:
            p += 1
        return p == m

    return test, best


def _damerau_within(a: str, b: str, k: int) -> int | None:
    """Optimal-string-alignment distance between a and b if <= k, else None."""
    if abs(len(a) - len(b)) > k:
        return None
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        row_min = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            row_min = min(row_min, v)
        if row_min > k:
            return None
        prev2, prev = prev, cur
    return prev[-1] if prev[-1] <= k else None


def _fuzzy_test(term: str, max_edits: int) -> Callable[[str], bool]:
    """FuzzyQuery: Damerau (optimal string alignment) distance <= max_edits, by code point."""

    def test(token: str) -> bool:
        if token == term:
            return True
        return max_edits > 0 and _damerau_within(token, term, max_edits) is not None

    return test


def _range_test(
    lower: str | None, upper: str | None, include_lower: bool, include_upper: bool
) -> Callable[[str], bool]:
    # Python compares str by code point, the same order as Lucene's UTF-8 bytes.
    def test(token: str) -> bool:
        if lower is not None and (token < lower or (token == lower and not include_lower)):
            return False
        return not (upper is not None and (token > upper or (token == upper and not include_upper)))

    return test


# --------------------------------------------------------------------------- parser

CONJ_NONE, CONJ_AND, CONJ_OR = 0, 1, 2
MOD_NONE, MOD_NOT, MOD_REQ = 0, 1, 2
MUST, SHOULD, MUST_NOT = "must", "should", "must_not"

Clause = tuple[str, Node]
_MULTITERM_STOPPERS = {Kind.COLON, Kind.STAR, Kind.FUZZY_SLOP, Kind.CARAT, Kind.AND, Kind.OR}


def discard_escape_char(text: str) -> str:
    """Drop backslashes, keeping what they escape; ``\\uXXXX`` is a code unit.

    Mirrors QueryParserBase.discardEscapeChar, errors included.
    """
    if "\\" not in text:
        return text
    units: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "\\":
            units.append(text[i])
            i += 1
            continue
        if i + 1 >= len(text):
            raise QuerySyntaxError("term can not end with escape character")
        if text[i + 1] != "u":
            units.append(text[i + 1])
            i += 2
            continue
        digits = text[i + 2 : i + 6]
        if len(digits) < 4:
            bad = next((c for c in digits if c not in _HEX), None)
            if bad is not None:
                raise QuerySyntaxError(f"non-hex character in unicode escape sequence: {bad}")
            raise QuerySyntaxError("truncated unicode escape sequence")
        bad = next((c for c in digits if c not in _HEX), None)
        if bad is not None:
            raise QuerySyntaxError(f"non-hex character in unicode escape sequence: {bad}")
        units.append(chr(int(digits, 16)))
        i += 6
    # \uD83D\uDE00 pairs form one code point, as in Java's UTF-16 strings
    return "".join(units).encode("utf-16", "surrogatepass").decode("utf-16", "replace")


_HEX = set("0123456789abcdefABCDEF")


class _Parser:
    def __init__(self, text: str, default_field: str) -> None:
        self.text = text
        self.default_field = default_field
        try:
            tokens = tokenize_query(text)
        except LexError as e:
            raise QuerySyntaxError(e.message, e.position) from None
        # The grammar looks at most two tokens past the current one, which is never past
        # the EOF token: two more EOFs let ``peek`` index without bounds checks.
        self.tokens = [*tokens, tokens[-1], tokens[-1]]
        self.i = 0
        self.warnings: list[str] = []
        self.fields: set[str] = set()
        self.depth = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[self.i + ahead]

    def take(self, *kinds: Kind) -> Token:
        tok = self.peek()
        if tok.kind not in kinds:
            raise self.error(tok, kinds)
        self.i += 1
        return tok

    def error(self, tok: Token, expected: Iterable[Kind] = ()) -> QuerySyntaxError:
        names = " or ".join(_KIND_NAMES.get(k, k.name.lower()) for k in expected)
        what = "unexpected end of query" if tok.kind is Kind.EOF else f"unexpected {tok.image!r}"
        hint = f" (expected {names})" if names else ""
        return QuerySyntaxError(what + hint, tok.position)

    def note_field(self, fld: str) -> None:
        self.fields.add(fld)

    def warn_if_split(self, fld: str, image: str, text: str) -> None:
        """The classic trap: an unquoted term of several tokens is an OR of them."""
        tokens = analysis.tokenize(text)
        if len(tokens) > 1:
            self.warnings.append(
                f"unquoted term {fld}:{image} is split into {len(tokens)} tokens "
                f"({', '.join(tokens)}) and matches ANY of them; "
                f'quote it to match the phrase: {fld}:"{text}"'
            )

    # -- grammar
    def top_level(self) -> Node:
        q = self.query(self.default_field)
        self.take(Kind.EOF)
        return q if q is not None else Bool()

    def _multiterm_ahead(self) -> bool:
        return (
            self.peek().kind is Kind.TERM
            and self.peek(1).kind is Kind.TERM
            and self.peek(2).kind not in _MULTITERM_STOPPERS
        )

    def query(self, fld: str) -> Node | None:
        clauses: list[Clause] = []
        first: Node | None = None
        if self._multiterm_ahead():
            first = self.multi_term(fld, clauses)
        else:
            mods = self.modifiers()
            q = self.clause(fld)
            add_clause(clauses, CONJ_NONE, mods, q)
            if mods == MOD_NONE:
                first = q
        while True:
            if self._multiterm_ahead():
                self.multi_term(fld, clauses)
                continue
            if self.peek().kind not in _CLAUSE_START:
                break
            conj = self.conjunction()
            mods = self.modifiers()
            q = self.clause(fld)
            add_clause(clauses, conj, mods, q)
        if len(clauses) == 1 and first is not None:
            return first
        return boolean_query(clauses)

    def conjunction(self) -> int:
        kind = self.peek().kind
        if kind is Kind.AND:
            self.i += 1
            return CONJ_AND
        if kind is Kind.OR:
            self.i += 1
            return CONJ_OR
        return CONJ_NONE

    def modifiers(self) -> int:
        kind = self.peek().kind
        if kind is Kind.PLUS:
            self.i += 1
            return MOD_REQ
        if kind in (Kind.MINUS, Kind.NOT):
            self.i += 1
            return MOD_NOT
        return MOD_NONE

    def multi_term(self, fld: str, clauses: list[Clause]) -> Node | None:
        self.note_field(fld)
        texts = [self.take(Kind.TERM).image]
        while self.peek().kind is Kind.TERM and self.peek(1).kind not in _MULTITERM_STOPPERS:
            texts.append(self.take(Kind.TERM).image)
        for image in texts:
            self.warn_if_split(fld, image, discard_escape_char(image))
        q = field_query(fld, discard_escape_char(" ".join(texts)), quoted=False)
        add_multi_term_clauses(clauses, q)
        return q

    def clause(self, fld: str) -> Node | None:
        tok = self.peek()
        if tok.kind in (Kind.TERM, Kind.STAR) and self.peek(1).kind is Kind.COLON:
            fld = "*" if tok.kind is Kind.STAR else discard_escape_char(tok.image)
            self.i += 2
        if self.peek().kind is Kind.LPAREN:
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise QuerySyntaxError(
                    f"query nested more than {MAX_NESTING} parentheses deep", self.peek().position
                )
            self.i += 1
            q = self.query(fld)
            self.take(Kind.RPAREN)
            self.depth -= 1
            if self.peek().kind is Kind.CARAT:
                self.i += 1
                self.take(Kind.NUMBER)
            return q
        return self.term(fld)

    def _suffixes(self) -> Token | None:
        """Optional ``^boost`` and ``~slop`` in either order; returns the slop token."""
        slop: Token | None = None
        kind = self.peek().kind
        if kind is Kind.CARAT:
            self.i += 1
            self.take(Kind.NUMBER)
            if self.peek().kind is Kind.FUZZY_SLOP:
                slop = self.take(Kind.FUZZY_SLOP)
        elif kind is Kind.FUZZY_SLOP:
            slop = self.take(Kind.FUZZY_SLOP)
            if self.peek().kind is Kind.CARAT:
                self.i += 1
                self.take(Kind.NUMBER)
        return slop

    def term(self, fld: str) -> Node | None:
        tok = self.peek()
        kind = tok.kind
        self.note_field(fld)
        if kind in _BARE_TOKENS:
            self.i += 1
            slop = self._suffixes()
            return self.bare_token(fld, tok, slop)
        if kind in (Kind.RANGEIN_START, Kind.RANGEEX_START):
            self.i += 1
            include_lower = kind is Kind.RANGEIN_START
            goop1 = self.take(Kind.RANGE_GOOP, Kind.RANGE_QUOTED, Kind.RANGE_TO)
            self.take(Kind.RANGE_TO)
            goop2 = self.take(Kind.RANGE_GOOP, Kind.RANGE_QUOTED, Kind.RANGE_TO)
            end = self.take(Kind.RANGEIN_END, Kind.RANGEEX_END)
            if self.peek().kind is Kind.CARAT:
                self.i += 1
                self.take(Kind.NUMBER)
            return range_query(
                fld,
                _range_bound(goop1),
                _range_bound(goop2),
                include_lower,
                end.kind is Kind.RANGEIN_END,
            )
        if kind is Kind.QUOTED:
            self.i += 1
            slop_token = self._suffixes()
            phrase_slop = 0
            if slop_token is not None:
                parsed = _parse_float(slop_token.image[1:])
                if parsed is not None:
                    phrase_slop = int(parsed)
            text = discard_escape_char(tok.image[1:-1])
            query = field_query(fld, text, quoted=True, slop=phrase_slop)
            if isinstance(query, Phrase) and phrase_slop < 0:
                raise QuerySyntaxError("phrase slop must be zero or positive", tok.position)
            return query
        raise self.error(tok)

    def bare_token(self, fld: str, tok: Token, slop: Token | None) -> Node | None:
        kind = tok.kind
        image = tok.image[:1] if kind is Kind.BAREOPER else tok.image
        # Lucene unescapes every bare token first, so a bad \u escape is an error even
        # in a wildcard or a regexp, which then go on from the raw image.
        text = discard_escape_char(image)
        if kind in (Kind.STAR, Kind.WILDTERM):
            if image[:1] in ("*", "?") and image != "*":
                self.warnings.append(
                    f"leading wildcard in {fld}:{image} must test every token of the field"
                )
            return wildcard_query(fld, image)
        if kind is Kind.PREFIXTERM:
            return prefix_query(fld, discard_escape_char(image[:-1]))
        if kind is Kind.REGEXPTERM:
            self.warnings.append(
                f"regular expression {fld}:{image} matches whole tokens, not text: check it "
                "with 'recheck match' against real events"
            )
            return regexp_query(fld, image[1:-1], tok.position)
        if fld == "_exists_":
            self.note_field(text)
        if slop is not None:
            similarity = _parse_float(slop.image[1:])
            fms = DEFAULT_FUZZY_MIN_SIM if similarity is None else similarity
            if fms < 0.0:
                raise QuerySyntaxError(
                    "minimum similarity for a fuzzy query has to be between 0.0 and 1.0",
                    slop.position,
                )
            if fms >= 1.0 and fms != int(fms):
                raise QuerySyntaxError("fractional edit distances are not allowed", slop.position)
            return fuzzy_query(fld, text, fms)
        self.warn_if_split(fld, image, text)
        return field_query(fld, text, quoted=False)


_KIND_NAMES = {
    Kind.RPAREN: "')'",
    Kind.EOF: "end of query",
    Kind.NUMBER: "a number",
    Kind.RANGE_TO: "'TO'",
    Kind.RANGE_GOOP: "a range bound",
    Kind.RANGE_QUOTED: "a quoted range bound",
    Kind.RANGEIN_END: "']'",
    Kind.RANGEEX_END: "'}'",
    Kind.TERM: "a term",
    Kind.FUZZY_SLOP: "'~'",
}

_BARE_TOKENS = frozenset(
    {
        Kind.TERM,
        Kind.STAR,
        Kind.PREFIXTERM,
        Kind.WILDTERM,
        Kind.REGEXPTERM,
        Kind.NUMBER,
        Kind.BAREOPER,
    }
)
# Tokens that can begin a further clause of a Query (conjunction, modifier or clause).
_CLAUSE_START = _BARE_TOKENS | {
    Kind.AND,
    Kind.OR,
    Kind.PLUS,
    Kind.MINUS,
    Kind.NOT,
    Kind.RANGEIN_START,
    Kind.RANGEEX_START,
    Kind.QUOTED,
    Kind.LPAREN,
}


def _parse_float(text: str) -> float | None:
    """Java's Float.parseFloat for the digits-and-dot strings a slop can hold."""
    try:
        value = float(text)
    except ValueError:
        return None
    # Java rejects what Python accepts here ("inf", "nan", "1_0", " 1"): only allow
    # plain decimal literals with an optional type suffix Java also takes.
    stripped = text[:-1] if text[-1:] in ("f", "F", "d", "D") else text
    if not stripped or any(c not in "0123456789.eE+-" for c in stripped) or "_" in text:
        return None
    return value


def _range_bound(tok: Token) -> str | None:
    if tok.kind is Kind.RANGE_QUOTED:
        return discard_escape_char(tok.image[1:-1])
    if tok.image == "*":
        return None
    return discard_escape_char(tok.image)


def add_clause(clauses: list[Clause], conj: int, mods: int, q: Node | None) -> None:
    """QueryParserBase.addClause for the default OR operator."""
    if clauses and conj == CONJ_AND:
        occur, prev = clauses[-1]
        if occur != MUST_NOT:
            clauses[-1] = (MUST, prev)
    if q is None:
        return
    prohibited = mods == MOD_NOT
    required = mods == MOD_REQ or (conj == CONJ_AND and not prohibited)
    clauses.append((MUST_NOT if prohibited else MUST if required else SHOULD, q))


def add_multi_term_clauses(clauses: list[Clause], q: Node | None) -> None:
    if q is None:
        return
    if isinstance(q, Bool) and not q.must and not q.must_not and q.should:
        clauses.extend((SHOULD, c) for c in q.should)
    else:
        clauses.append((SHOULD, q))


def boolean_query(clauses: list[Clause]) -> Node | None:
    """getBooleanQuery, with Elasticsearch's fix for purely negative groups."""
    if not clauses:
        return None
    must = tuple(q for o, q in clauses if o == MUST)
    should = tuple(q for o, q in clauses if o == SHOULD)
    must_not = tuple(q for o, q in clauses if o == MUST_NOT)
    if must_not and not must and not should:
        must = (MatchAll(),)
    return Bool(must, should, must_not)


# --------------------------------------------------------------------------- leaf queries


def field_query(fld: str, text: str, quoted: bool, slop: int = 0) -> Node | None:
    """getFieldQuery: analyze the text; one token is a term, several a phrase or an OR."""
    if fld == "_exists_":
        return Exists(text)
    tokens = analysis.tokenize(text)
    if not tokens:
        return None
    if len(tokens) == 1:
        return Term(fld, tokens[0])
    if quoted:
        return Phrase(fld, tuple(tokens), slop)
    return Bool(should=tuple(Term(fld, t) for t in tokens))


def wildcard_query(fld: str, image: str) -> Node:
    if image == "*":
        return MatchAll() if fld == "*" else Exists(fld)
    pattern = _normalize_wildcard(image)
    test, literal = _glob_test(pattern)
    return TokenTest(fld, "wildcard", image, test, literal)


def _normalize_wildcard(image: str) -> str:
    """Lowercase the text between wildcards, leaving ``*``, ``?`` and escapes as written."""
    out: list[str] = []
    chunk: list[str] = []
    i = 0
    while i < len(image):
        ch = image[i]
        if (ch == "\\" and i + 1 < len(image)) or ch in "*?":
            out.append(analysis.lowercase("".join(chunk)))
            chunk = []
            if ch == "\\":
                out.append(image[i : i + 2])
                i += 2
                continue
            # a run of wildcards is kept as one piece, like Lucene's WILDCARD_PATTERN
            out.append(ch)
        else:
            chunk.append(ch)
        i += 1
    out.append(analysis.lowercase("".join(chunk)))
    return "".join(out)


def prefix_query(fld: str, prefix: str) -> Node:
    normalized = analysis.lowercase(prefix)
    return TokenTest(fld, "prefix", prefix, lambda t: t.startswith(normalized), normalized)


def regexp_query(fld: str, pattern: str, position: int) -> Node:
    # Imported here: few signatures hold a regexp, and its engine takes ~5 ms to import.
    from recheck.query.regexp import RegexpError, compile_regexp

    try:
        matcher = compile_regexp(analysis.lowercase(pattern))
    except RegexpError as e:
        raise QuerySyntaxError(f"invalid regular expression /{pattern}/: {e}", position) from None
    return TokenTest(fld, "regexp", pattern, matcher.fullmatch, matcher.literal)


def fuzzy_query(fld: str, text: str, min_similarity: float) -> Node:
    term = analysis.lowercase(text)
    length = len(term)
    if min_similarity >= 1.0:
        edits = int(min(min_similarity, MAX_EDITS))
    elif min_similarity == 0.0:
        edits = 0
    else:
        # Java keeps the similarity as a float: 0.9f is 0.89999998, so "~0.9" on a
        # 10-letter term allows one edit there; round through float32 the same way.
        as_float32 = struct.unpack("f", struct.pack("f", min_similarity))[0]
        edits = min(int((1.0 - as_float32) * length), MAX_EDITS)
    return TokenTest(fld, "fuzzy", text, _fuzzy_test(term, edits), "")


def range_query(
    fld: str, lower: str | None, upper: str | None, include_lower: bool, include_upper: bool
) -> Node:
    lo = analysis.lowercase(lower) if lower is not None else None
    hi = analysis.lowercase(upper) if upper is not None else None
    text = f"{lower or '*'} TO {upper or '*'}"
    return TokenTest(fld, "range", text, _range_test(lo, hi, include_lower, include_upper))


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Query:
    """A compiled query_string: ``matches(event)`` answers as Elasticsearch would."""

    text: str
    root: Node
    default_field: str = DEFAULT_FIELD

    def matches(self, event: Event | Doc) -> bool:
        doc = event if isinstance(event, Doc) else Doc(event)
        return self.root.matches(doc)

    def required_literals(self) -> list[list[tuple[str, str]]] | None:
        """AND of ORs of (field, lowercase substring) every matching event contains."""
        return self.root.required_literals()


def compile_query(text: str, default_field: str = DEFAULT_FIELD) -> Query:
    """Parse and compile a Lucene query_string; raises QuerySyntaxError if Lucene would."""
    if not text.strip():
        raise QuerySyntaxError("empty query")
    root = _Parser(text, default_field).top_level()
    return Query(text, root, default_field)


def lint_query(
    text: str, known_fields: Collection[str] | None = None, default_field: str = DEFAULT_FIELD
) -> list[str]:
    """Warnings about a valid query that probably does not mean what its author thinks.

    Raises QuerySyntaxError for an invalid query, like compile_query.
    """
    if not text.strip():
        raise QuerySyntaxError("empty query")
    parser = _Parser(text, default_field)
    root = parser.top_level()
    warnings = list(dict.fromkeys(parser.warnings))
    if known_fields is not None:
        for name in sorted(parser.fields - set(known_fields) - {"*", "_exists_"}):
            warnings.append(f"unknown field {name!r}: no event has it, so it never matches")
    if not _has_positive_clause(root):
        warnings.append(
            "no positive clause: the query matches every event that lacks the negated terms"
        )
    return warnings


def _has_positive_clause(node: Node) -> bool:
    if isinstance(node, MatchAll):
        return False
    if isinstance(node, Bool):
        return any(_has_positive_clause(q) for q in node.must + node.should)
    return True
