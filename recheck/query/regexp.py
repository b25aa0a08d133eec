"""Lucene regular expressions (``/.../`` terms), matched against whole tokens.

Lucene's RegExp syntax is not Python's: ``~`` complements, ``&`` intersects, ``@`` is any
string, ``#`` the empty language, ``<1-10>`` a numeric interval, ``"..."`` a literal,
``\\`` escapes any character, and there are no ``\\d``-style classes or anchors. Lucene
compiles it to a deterministic automaton, so no pattern can make matching slow; we do
the same (Brzozowski derivatives over character-class intervals), with Lucene's cap of
10,000 states for patterns too complex to determinize.
"""

from __future__ import annotations

import bisect
import sys
from dataclasses import dataclass
from functools import lru_cache

MAX_CODE_POINT = 0x10FFFF
MAX_STATES = 10_000
MAX_REPEAT = 1_000  # beyond this, expansion is refused as too complex
MAX_WORK = 200_000  # derivative steps for one pattern: about a second at worst


class RegexpError(ValueError):
    pass


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Re:
    pass


@dataclass(frozen=True, slots=True)
class Nothing(Re):  # the empty language
    pass


@dataclass(frozen=True, slots=True)
class Eps(Re):  # the empty string
    pass


@dataclass(frozen=True, slots=True)
class Chars(Re):
    ranges: tuple[tuple[int, int], ...]  # sorted, disjoint, inclusive


@dataclass(frozen=True, slots=True)
class Cat(Re):
    left: Re
    right: Re


@dataclass(frozen=True, slots=True)
class Alt(Re):
    parts: frozenset[Re]


@dataclass(frozen=True, slots=True)
class And(Re):
    parts: frozenset[Re]


@dataclass(frozen=True, slots=True)
class Star(Re):
    inner: Re


@dataclass(frozen=True, slots=True)
class Not(Re):
    inner: Re


NOTHING = Nothing()
EPS = Eps()
ANY_CHAR = Chars(((0, MAX_CODE_POINT),))
ANY_STRING = Star(ANY_CHAR)
EVERYTHING = Not(NOTHING)


def chars(ranges: list[tuple[int, int]]) -> Re:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return Chars(tuple(merged)) if merged else NOTHING


def cat(a: Re, b: Re) -> Re:
    if a is NOTHING or b is NOTHING or isinstance(a, Nothing) or isinstance(b, Nothing):
        return NOTHING
    if isinstance(a, Eps):
        return b
    if isinstance(b, Eps):
        return a
    if isinstance(a, Cat):  # keep concatenations right-nested: one canonical form
        return cat(a.left, cat(a.right, b))
    return Cat(a, b)


def alt(*items: Re) -> Re:
    parts: set[Re] = set()
    for item in items:
        if isinstance(item, Alt):
            parts |= item.parts
        elif not isinstance(item, Nothing):
            parts.add(item)
    if EVERYTHING in parts:
        return EVERYTHING
    # merge all plain character sets into one
    sets = [p for p in parts if isinstance(p, Chars)]
    if len(sets) > 1:
        parts -= set(sets)
        parts.add(chars([r for s in sets for r in s.ranges]))
    if not parts:
        return NOTHING
    if len(parts) == 1:
        return next(iter(parts))
    return Alt(frozenset(parts))


def inter(*items: Re) -> Re:
    parts: set[Re] = set()
    for item in items:
        if isinstance(item, Nothing):
            return NOTHING
        if isinstance(item, And):
            parts |= item.parts
        elif item != EVERYTHING:
            parts.add(item)
    if not parts:
        return EVERYTHING
    if len(parts) == 1:
        return next(iter(parts))
    return And(frozenset(parts))


def star(a: Re) -> Re:
    if isinstance(a, Star):
        return a
    if isinstance(a, (Eps, Nothing)):
        return EPS
    return Star(a)


def neg(a: Re) -> Re:
    if isinstance(a, Not):
        return a.inner
    return Not(a)


def repeat(a: Re, low: int, high: int | None) -> Re:
    """a{low,high}; high None = unbounded."""
    if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
        raise RegexpError(f"repetition count over {MAX_REPEAT} is too complex")
    if high is not None and low > high:
        return NOTHING
    out: Re = EPS
    for _ in range(low):
        out = cat(out, a)
    if high is None:
        return cat(out, star(a))
    optional = alt(EPS, a)
    tail: Re = EPS
    for _ in range(high - low):
        tail = cat(optional, tail) if tail is not EPS else optional
    return cat(out, tail)


def literal(text: str) -> Re:
    out: Re = EPS
    for ch in reversed(text):
        out = cat(Chars(((ord(ch), ord(ch)),)), out)
    return out


def interval(low: int, high: int, digits: int) -> Re:
    """Decimal numbers in [low, high]; zero-padded to ``digits`` if > 0, else any leading 0s."""
    if low > high:
        low, high = high, low
    if digits > 0:
        return _padded_range(str(low).zfill(digits), str(high).zfill(digits))
    zeros = star(literal("0"))
    parts = [
        _padded_range(str(max(low, 10 ** (w - 1) if w > 1 else 0)), str(min(high, 10**w - 1)))
        for w in range(len(str(low)), len(str(high)) + 1)
    ]
    return cat(zeros, alt(*parts))


def _padded_range(lo: str, hi: str) -> Re:
    """Strings of len(lo) digits between lo and hi (same length) in numeric order."""
    if not lo:
        return EPS
    if lo[0] == hi[0]:
        return cat(literal(lo[0]), _padded_range(lo[1:], hi[1:]))
    n = len(lo) - 1
    any_digits: Re = EPS
    for _ in range(n):
        any_digits = cat(chars([(48, 57)]), any_digits)
    options = [
        cat(literal(lo[0]), _padded_range(lo[1:], "9" * n)),
        cat(literal(hi[0]), _padded_range("0" * n, hi[1:])),
    ]
    first, last = int(lo[0]) + 1, int(hi[0]) - 1
    if first <= last:
        options.append(cat(chars([(48 + first, 48 + last)]), any_digits))
    return alt(*options)


# --------------------------------------------------------------------------- parser


class _RegexpParser:
    """Lucene 8 RegExp grammar with all optional syntax flags on (RegExp.ALL)."""

    def __init__(self, pattern: str) -> None:
        self.s = [ord(c) for c in pattern]
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.s)

    def peek(self, chars_: str) -> bool:
        return self.more() and chr(self.s[self.pos]) in chars_

    def match(self, ch: str) -> bool:
        if self.more() and self.s[self.pos] == ord(ch):
            self.pos += 1
            return True
        return False

    def next(self) -> int:
        if not self.more():
            raise RegexpError("unexpected end of pattern")
        c = self.s[self.pos]
        self.pos += 1
        return c

    def parse(self) -> Re:
        if not self.s:
            return EPS
        e = self.union()
        if self.more():
            raise RegexpError(f"end of pattern expected at position {self.pos}")
        return e

    def union(self) -> Re:
        e = self.intersection()
        if self.match("|"):
            e = alt(e, self.union())
        return e

    def intersection(self) -> Re:
        e = self.concatenation()
        if self.match("&"):
            e = inter(e, self.intersection())
        return e

    def concatenation(self) -> Re:
        # Iterative, not recursive as in Lucene: long patterns must not exhaust the stack.
        items = [self.repetition()]
        while self.more() and not self.peek(")|") and not self.peek("&"):
            items.append(self.repetition())
        e = items[-1]
        for item in reversed(items[:-1]):
            e = cat(item, e)
        return e

    def repetition(self) -> Re:
        e = self.complement()
        while self.peek("?*+{"):
            if self.match("?"):
                e = alt(EPS, e)
            elif self.match("*"):
                e = star(e)
            elif self.match("+"):
                e = cat(e, star(e))
            elif self.match("{"):
                n = self.integer()
                m: int | None
                m = (self.integer() if self.peek("0123456789") else None) if self.match(",") else n
                if not self.match("}"):
                    raise RegexpError(f"expected '}}' at position {self.pos}")
                e = repeat(e, n, m)
        return e

    def integer(self) -> int:
        start = self.pos
        while self.peek("0123456789"):
            self.pos += 1
        if start == self.pos:
            raise RegexpError(f"integer expected at position {self.pos}")
        return int("".join(chr(c) for c in self.s[start : self.pos]))

    def complement(self) -> Re:
        if self.match("~"):
            return neg(self.complement())
        return self.char_class_exp()

    def char_class_exp(self) -> Re:
        if self.match("["):
            negate = self.match("^")
            ranges = self.char_classes()
            if not self.match("]"):
                raise RegexpError(f"expected ']' at position {self.pos}")
            e = chars(ranges)
            return inter(ANY_CHAR, neg(e)) if negate else e
        return self.simple()

    def char_classes(self) -> list[tuple[int, int]]:
        ranges = [self.char_class()]
        while self.more() and not self.peek("]"):
            ranges.append(self.char_class())
        return ranges

    def char_class(self) -> tuple[int, int]:
        c = self.char_exp()
        if self.match("-"):
            d = self.char_exp()
            if c > d:
                raise RegexpError(f"invalid range: from ({c}) cannot be > to ({d})")
            return (c, d)
        return (c, c)

    def simple(self) -> Re:
        if self.match("."):
            return ANY_CHAR
        if self.match("#"):
            return NOTHING
        if self.match("@"):
            return ANY_STRING
        if self.match('"'):
            return literal(self.until('"'))
        if self.match("("):
            if self.match(")"):
                return EPS
            e = self.union()
            if not self.match(")"):
                raise RegexpError(f"expected ')' at position {self.pos}")
            return e
        if self.match("<"):
            return self.interval(self.until(">"))
        c = self.char_exp()
        return Chars(((c, c),))

    def until(self, delimiter: str) -> str:
        """The text up to ``delimiter``, which is consumed; it must come."""
        start = self.pos
        while self.more() and not self.peek(delimiter):
            self.pos += 1
        if not self.match(delimiter):
            raise RegexpError(f"expected '{delimiter}' at position {self.pos}")
        return "".join(chr(c) for c in self.s[start : self.pos - 1])

    def interval(self, body: str) -> Re:
        i = body.find("-")
        if i == -1:
            raise RegexpError(f"unknown automaton <{body}>: named automata are not supported")
        if i == 0 or i == len(body) - 1 or i != body.rfind("-"):
            raise RegexpError(f"interval syntax error at position {self.pos - 1}")
        low_text, high_text = body[:i], body[i + 1 :]
        if not (low_text.isdigit() and high_text.isdigit() and low_text.isascii()):
            raise RegexpError(f"interval syntax error at position {self.pos - 1}")
        digits = len(low_text) if len(low_text) == len(high_text) else 0
        return interval(int(low_text), int(high_text), digits)

    def char_exp(self) -> int:
        self.match("\\")
        return self.next()


# --------------------------------------------------------------------------- automaton


def nullable(r: Re) -> bool:
    if isinstance(r, (Eps, Star)):
        return True
    if isinstance(r, (Nothing, Chars)):
        return False
    if isinstance(r, Cat):
        return nullable(r.left) and nullable(r.right)
    if isinstance(r, Alt):
        return any(nullable(p) for p in r.parts)
    if isinstance(r, And):
        return all(nullable(p) for p in r.parts)
    assert isinstance(r, Not)
    return not nullable(r.inner)


class _Budget:
    """Bounds the work of building one automaton, so no pattern can stall a caller."""

    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise RegexpError("pattern too complex to compile (work limit reached)")


def derive(r: Re, c: int, budget: _Budget) -> Re:
    """The derivative of r by code point c: what is left to match after c."""
    budget.spend()
    if isinstance(r, (Eps, Nothing)):
        return NOTHING
    if isinstance(r, Chars):
        for lo, hi in r.ranges:
            if lo <= c <= hi:
                return EPS
        return NOTHING
    if isinstance(r, Cat):
        first = cat(derive(r.left, c, budget), r.right)
        return alt(first, derive(r.right, c, budget)) if nullable(r.left) else first
    if isinstance(r, Star):
        return cat(derive(r.inner, c, budget), r)
    if isinstance(r, Alt):
        return alt(*(derive(p, c, budget) for p in r.parts))
    if isinstance(r, And):
        return inter(*(derive(p, c, budget) for p in r.parts))
    assert isinstance(r, Not)
    return neg(derive(r.inner, c, budget))


def _boundaries(r: Re, out: set[int]) -> None:
    if isinstance(r, Chars):
        for lo, hi in r.ranges:
            out.add(lo)
            out.add(hi + 1)
    elif isinstance(r, Cat):
        _boundaries(r.left, out)
        _boundaries(r.right, out)
    elif isinstance(r, (Alt, And)):
        for p in r.parts:
            _boundaries(p, out)
    elif isinstance(r, (Star, Not)):
        _boundaries(r.inner, out)


def _is_single(c: Chars) -> bool:
    return c.ranges[0][0] == c.ranges[0][1]


def _required_literal(r: Re) -> str:
    """The longest run of fixed characters every match contains (for prefilters)."""
    best, run = "", ""
    node: Re = r
    while True:
        head, rest = (node.left, node.right) if isinstance(node, Cat) else (node, None)
        if isinstance(head, Chars) and len(head.ranges) == 1 and _is_single(head):
            run += chr(head.ranges[0][0])
            best = max(best, run, key=len)
        else:
            run = ""
        if rest is None:
            return best
        node = rest


class Regexp:
    """A deterministic automaton for one Lucene regexp; ``fullmatch(token)``."""

    def __init__(self, pattern: str) -> None:
        root = _RegexpParser(pattern).parse()
        points: set[int] = {0}
        _boundaries(root, points)
        self.starts = sorted(p for p in points if p <= MAX_CODE_POINT)
        self.literal = _required_literal(root)
        budget = _Budget(MAX_WORK)
        index: dict[Re, int] = {root: 0}
        states = [root]
        self.accept: list[bool] = []
        self.table: list[list[int]] = []
        dead = -1
        i = 0
        while i < len(states):
            state = states[i]
            self.accept.append(nullable(state))
            row = []
            for start in self.starts:
                nxt = derive(state, start, budget)
                if isinstance(nxt, Nothing):
                    row.append(dead)
                    continue
                j = index.get(nxt)
                if j is None:
                    if len(states) >= MAX_STATES:
                        raise RegexpError(
                            f"pattern too complex: more than {MAX_STATES} automaton states"
                        )
                    j = index[nxt] = len(states)
                    states.append(nxt)
                row.append(j)
            self.table.append(row)
            i += 1

    def fullmatch(self, token: str) -> bool:
        state = 0
        starts, table = self.starts, self.table
        for ch in token:
            state = table[state][bisect.bisect_right(starts, ord(ch)) - 1]
            if state < 0:
                return False
        return self.accept[state]


MAX_PATTERN_LENGTH = 500


@lru_cache(maxsize=1024)
def compile_regexp(pattern: str) -> Regexp:
    """Compile a Lucene regexp (already lowercased by the caller, as Lucene normalizes)."""
    # The parser and the derivatives recurse along the pattern: bound it so hostile
    # input gets an error instead of exhausting the stack.
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexpError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    # Hashing a long concatenation recurses once per character: allow for that.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 8 * MAX_PATTERN_LENGTH))
    try:
        return Regexp(pattern)
    except RecursionError:
        raise RegexpError("pattern too deeply nested") from None
    finally:
        sys.setrecursionlimit(limit)
