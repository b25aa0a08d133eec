"""Lucene query_string parsing: lexer tokens to a query tree, ``compile_query`` and ``Query``.

It follows Lucene 8's classic QueryParser rule for rule, quirks included (they are what
Elasticsearch users get), plus Elasticsearch's own rules; ``lint_query`` warns about
valid queries that probably do not mean what their author thinks.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from recheck.lib.errors import RecheckError
from recheck.models import Event
from recheck.query import analysis
from recheck.query.lexer import Kind, LexError, Token, tokenize_query
from recheck.query.lint import broad_clauses
from recheck.query.nodes import Bool, Doc, MatchAll, Node, Phrase, leaf_count
from recheck.query.terms import (
    field_query,
    fuzzy_query,
    prefix_query,
    range_query,
    regexp_query,
    wildcard_query,
)

DEFAULT_FIELD = "message"
DEFAULT_FUZZY_MIN_SIM = 2.0
# Lucene has no limit, but Python's stack does: refuse absurd nesting with a clear error
# rather than crash on hostile input.
MAX_NESTING = 100
# Elasticsearch refuses queries over indices.query.bool.max_clause_count clauses (1,024,
# then 4,096 counted over the whole query since 8.0): a signature of 500,000 terms took
# 34 s and 465 MB to check. Real signatures have at most a few dozen clauses and a few
# hundred characters; these limits are far above them and far below what hurts.
MAX_CLAUSES = 4_096
"""Leaf queries (terms, each word of a phrase, wildcards...) in one query at most."""
MAX_QUERY_CHARS = 32_768
"""Characters of one query at most: refused before it is even cut into tokens."""


class QuerySyntaxError(RecheckError, ValueError):
    """A query Lucene would reject; ``position`` is a 0-based offset into the query."""

    def __init__(self, message: str, position: int | None = None) -> None:
        message = printable(message)
        where = f" at character {position + 1}" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.message = message
        self.position = position


class QueryTooLarge(QuerySyntaxError):
    """A query over MAX_QUERY_CHARS or MAX_CLAUSES: valid, but refused as Elasticsearch
    would refuse it, so that one signature cannot stall every command."""


def printable(text: str) -> str:
    """``text`` with each lone surrogate (a query's ``\\udfff`` escape can hold one) written
    as that escape: messages quote the query, and must be writable as UTF-8."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
        if len(text) > MAX_QUERY_CHARS:
            raise QueryTooLarge(
                f"query is {len(text):,} characters long, over the limit of "
                f"{MAX_QUERY_CHARS:,}: split it into several signatures",
                MAX_QUERY_CHARS,
            )
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
        self.clauses = 0
        self.sources: dict[int, str] | None = None
        """When a dict: id of each clause's node -> its text in the query (``sources``)."""

    def count(self, node: Node | None, position: int) -> Node | None:
        """Count ``node``'s leaves toward MAX_CLAUSES; ``position`` is where it began."""
        if node is not None:
            self.clauses += leaf_count(node)
            if self.clauses > MAX_CLAUSES:
                raise QueryTooLarge(
                    f"query has more than {MAX_CLAUSES:,} clauses (terms, words of phrases, "
                    "wildcards...), the most Elasticsearch accepts: split it into several "
                    "signatures or make it more specific",
                    position,
                )
        return node

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
        taken = [self.take(Kind.TERM)]
        while self.peek().kind is Kind.TERM and self.peek(1).kind not in _MULTITERM_STOPPERS:
            taken.append(self.take(Kind.TERM))
        texts = [tok.image for tok in taken]
        for image in texts:
            self.warn_if_split(fld, image, discard_escape_char(image))
        q = field_query(fld, discard_escape_char(" ".join(texts)), quoted=False)
        if q is not None and self.clauses + leaf_count(q) > MAX_CLAUSES:
            # Point at the term that crosses the limit, not at the start of the run.
            for tok in taken:
                self.count(field_query(fld, discard_escape_char(tok.image), False), tok.position)
        self.count(q, taken[0].position)
        add_multi_term_clauses(clauses, q)
        return q

    def clause(self, fld: str) -> Node | None:
        if self.sources is None:
            return self._clause(fld)
        start = self.peek().position
        node = self._clause(fld)
        if node is not None:
            last = self.tokens[self.i - 1]
            self.sources[id(node)] = self.text[start : last.position + len(last.image)]
        return node

    def _clause(self, fld: str) -> Node | None:
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
        position = self.peek().position
        return self.count(self.term(fld), position)

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
                    phrase_slop = _java_int(parsed)
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
            # Imported here: few signatures hold a regexp, and its engine takes ~5 ms to import.
            from recheck.query.regexp import RegexpError

            pattern = image[1:-1]
            try:
                return regexp_query(fld, pattern)
            except RegexpError as e:
                raise QuerySyntaxError(
                    f"invalid regular expression /{pattern}/: {e}", tok.position
                ) from None
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
            if fms >= 1.0 and fms != _java_int(fms):
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
    """Java's Float.parseFloat for the digits-and-dot strings a slop can hold: a 32-bit
    float, so ``~2.9999999999`` is 3 and ``~1e39`` infinity, as in Lucene."""
    stripped = text[:-1] if text[-1:] in ("f", "F", "d", "D") else text
    try:
        value = float(stripped)
    except ValueError:
        return None
    # Java rejects what Python accepts here ("inf", "nan", "1_0", " 1"): only allow
    # plain decimal literals with an optional type suffix Java also takes.
    if not stripped or any(c not in "0123456789.eE+-" for c in stripped):
        return None
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:  # beyond the largest float: Java rounds to infinity
        return math.copysign(math.inf, value)


def _java_int(value: float) -> int:
    """Java's ``(int)`` cast of a float: toward zero, saturating, NaN is 0."""
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return _INT_MAX if value > 0 else -_INT_MAX - 1
    return max(-_INT_MAX - 1, min(_INT_MAX, int(value)))


_INT_MAX = 2**31 - 1


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


def sources(text: str, default_field: str = DEFAULT_FIELD) -> tuple[Node, dict[int, str]]:
    """The query tree of ``text`` (parsed afresh, not cached) and each clause's text as
    written in it (by ``id`` of the clause's node), for messages that quote the query.

    Raises QuerySyntaxError for an invalid query, like compile_query.
    """
    if not text.strip():
        raise QuerySyntaxError("empty query")
    parser = _Parser(text, default_field)
    parser.sources = {}
    root = parser.top_level()
    parser.sources.setdefault(id(root), text.strip())
    return root, parser.sources


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
    unknown: set[str] = set()
    if known_fields is not None:
        unknown = parser.fields - set(known_fields) - {"*", "_exists_"}
        for name in sorted(unknown):
            warnings.append(f"unknown field {name!r}: no event has it, so it never matches")
    if not _has_positive_clause(root):
        warnings.append(
            "no positive clause: the query matches every event that lacks the negated terms"
        )
    else:
        warnings += broad_clauses(root, unknown)
    return [printable(warning) for warning in warnings]


def _has_positive_clause(node: Node) -> bool:
    if isinstance(node, MatchAll):
        return False
    if isinstance(node, Bool):
        return any(_has_positive_clause(q) for q in node.must + node.should)
    return True
