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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

MAX_CODE_POINT = 0x10FFFF
MAX_STATES = 10_000
MAX_REPEAT = 1_000  # beyond this, expansion is refused as too complex
MAX_WORK = 200_000  # derivative steps and parts copied for one pattern: about a second
MAX_EXPANDED_SIZE = 10_000
"""Nodes a pattern may have once its repetitions are written out, checked before each is
expanded: ``(a{1000}){1000}`` is refused at once, not after building a million nodes."""


class RegexpError(ValueError):
    pass


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Re:
    # Computed once, in __post_init__, from the children's: the dataclass hash walked the
    # whole term on every dict or set lookup, most of a hostile pattern's cost.
    size: int = field(init=False, repr=False, compare=False)
    """Nodes in the term written out as a tree: repetitions expanded, shared parts counted
    each time they occur."""
    nullable: bool = field(init=False, repr=False, compare=False)
    """Whether the term matches the empty string."""
    _hash: int = field(init=False, repr=False, compare=False)

    def _children(self) -> tuple[Re, ...]:
        return ()

    def _nullable(self) -> bool:
        return False

    def _key(self) -> tuple[object, ...]:
        return (type(self).__name__, *self._children())

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", 1 + sum(child.size for child in self._children()))
        object.__setattr__(self, "nullable", self._nullable())
        object.__setattr__(self, "_hash", hash(self._key()))

    def __hash__(self) -> int:
        return self._hash


# Each node class restates ``__hash__``: a frozen dataclass would otherwise get a generated
# one that walks the term again.


@dataclass(frozen=True, slots=True)
class Nothing(Re):  # the empty language
    __hash__ = Re.__hash__


@dataclass(frozen=True, slots=True)
class Eps(Re):  # the empty string
    __hash__ = Re.__hash__

    def _nullable(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Chars(Re):
    ranges: tuple[tuple[int, int], ...]  # sorted, disjoint, inclusive
    __hash__ = Re.__hash__

    def _key(self) -> tuple[object, ...]:
        return ("Chars", self.ranges)


@dataclass(frozen=True, slots=True)
class Cat(Re):
    left: Re
    right: Re
    __hash__ = Re.__hash__

    def _nullable(self) -> bool:
        return self.left.nullable and self.right.nullable

    def _children(self) -> tuple[Re, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Alt(Re):
    parts: frozenset[Re]
    __hash__ = Re.__hash__

    def _nullable(self) -> bool:
        return any(part.nullable for part in self.parts)

    def _children(self) -> tuple[Re, ...]:
        return tuple(self.parts)

    def _key(self) -> tuple[object, ...]:
        return ("Alt", self.parts)


@dataclass(frozen=True, slots=True)
class And(Re):
    parts: frozenset[Re]
    __hash__ = Re.__hash__

    def _nullable(self) -> bool:
        return all(part.nullable for part in self.parts)

    def _children(self) -> tuple[Re, ...]:
        return tuple(self.parts)

    def _key(self) -> tuple[object, ...]:
        return ("And", self.parts)


@dataclass(frozen=True, slots=True)
class Star(Re):
    inner: Re
    __hash__ = Re.__hash__

    def _nullable(self) -> bool:
        return True

    def _children(self) -> tuple[Re, ...]:
        return (self.inner,)


@dataclass(frozen=True, slots=True)
class Not(Re):
    inner: Re
    __hash__ = Re.__hash__

    def _nullable(self) -> bool:
        return not self.inner.nullable

    def _children(self) -> tuple[Re, ...]:
        return (self.inner,)


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
    if isinstance(a, Star) and (a == b or (isinstance(b, Cat) and a == b.left)):
        return b  # r*r* is r*: (.*){999} is one state, as Lucene's minimized automaton
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
    if isinstance(a, Alt) and EPS in a.parts:
        # (ε|y){low,high} is y{0,high}, and y{0,high} nests (below) where copies of
        # (ε|y) side by side would make every derivative branch into each of them.
        return repeat(alt(*(a.parts - {EPS})), 0, high)
    # Built from the right (``cat`` walks its left operand: appending to a growing
    # concatenation would cost the square of the count), the optional copies nested,
    # a(a(a)?)? rather than a?a?a?, so that a derivative continues in one copy.
    out: Re = star(a) if high is None else EPS
    for _ in range(0 if high is None else high - low):
        out = alt(EPS, cat(a, out))
    for _ in range(low):
        out = cat(a, out)
    return out


def repeat_size(a: Re, low: int, high: int | None) -> int:
    """The size (``Re.size``) ``repeat(a, low, high)`` would have, without building it."""
    copies = low + 1 if high is None else max(low, high)
    return a.size * copies + copies


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
        self.expanded = 0  # nodes written out by repetitions so far (see MAX_EXPANDED_SIZE)

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
        plus = False  # e is r+ for some r: (r+)+ is r+, where ee* would double e each time
        while self.peek("?*+{"):
            if self.match("+"):
                if not plus:
                    e = cat(e, star(e))
                plus = True
                continue
            plus = False
            if self.match("?"):
                e = alt(EPS, e)
            elif self.match("*"):
                e = star(e)
            elif self.match("{"):
                n = self.integer()
                m: int | None
                m = (self.integer() if self.peek("0123456789") else None) if self.match(",") else n
                if not self.match("}"):
                    raise RegexpError(f"expected '}}' at position {self.pos}")
                self.expanded += repeat_size(e, n, m)
                if self.expanded > MAX_EXPANDED_SIZE:
                    raise RegexpError(
                        f"pattern too complex: its repetitions expand to more than "
                        f"{MAX_EXPANDED_SIZE} nodes"
                    )
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
        low, high = int(low_text), int(high_text)
        if max(low, high) > 2**31 - 1:  # Lucene's Integer.parseInt fails: the same error
            raise RegexpError(f"interval syntax error at position {self.pos - 1}")
        digits = len(low_text) if len(low_text) == len(high_text) else 0
        return interval(low, high, digits)

    def char_exp(self) -> int:
        self.match("\\")
        return self.next()


# --------------------------------------------------------------------------- automaton


def nullable(r: Re) -> bool:
    """Whether r matches the empty string."""
    return r.nullable


class _Budget:
    """Bounds the work of building one automaton, so no pattern can stall a caller."""

    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise RegexpError("pattern too complex to compile (work limit reached)")


def derive(r: Re, c: int, budget: _Budget) -> Re:
    """The derivative of r by code point c: what is left to match after c."""
    budget.spend(1)
    if isinstance(r, (Eps, Nothing)):
        return NOTHING
    if isinstance(r, Chars):
        for lo, hi in r.ranges:
            if lo <= c <= hi:
                return EPS
        return NOTHING
    if isinstance(r, Cat):
        head = derive(r.left, c, budget)
        if isinstance(head, Cat):
            budget.spend(head.size)  # cat re-nests it: a copy of its spine, charged
        first = cat(head, r.right)
        if not r.left.nullable:
            return first
        return _joined(alt, [first, derive(r.right, c, budget)], budget)
    if isinstance(r, Star):
        return cat(derive(r.inner, c, budget), r)
    if isinstance(r, Alt):
        return _joined(alt, [derive(p, c, budget) for p in r.parts], budget)
    if isinstance(r, And):
        return _joined(inter, [derive(p, c, budget) for p in r.parts], budget)
    assert isinstance(r, Not)
    return neg(derive(r.inner, c, budget))


def _joined(join: Callable[..., Re], items: list[Re], budget: _Budget) -> Re:
    """``join(*items)``, its cost charged: it copies every part of the items it flattens."""
    budget.spend(sum(len(i.parts) if isinstance(i, (Alt, And)) else 1 for i in items))
    return join(*items)


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
