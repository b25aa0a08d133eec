"""Leaf queries: how one term, phrase, wildcard, prefix, regexp, fuzzy or range of a
query_string becomes a node, with Lucene's normalization and per-token tests.

The tests never backtrack exponentially, whatever the pattern.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from recheck.query import analysis
from recheck.query.nodes import Bool, Exists, MatchAll, MatchNone, Node, Phrase, Term, TokenTest

MAX_EDITS = 2  # LevenshteinAutomata.MAXIMUM_SUPPORTED_DISTANCE


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
    if _fixed_length(pattern) > analysis.MAX_TOKEN_LENGTH:
        return MatchNone()  # no token is that long (and hyperscan refuses such a literal)
    return TokenTest(fld, "wildcard", image, test, literal)


def _fixed_length(pattern: str) -> int:
    """The characters every token a wildcard pattern matches has at least."""
    fixed = i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            i += 1  # an escaped character is one fixed character
        elif pattern[i] == "*":
            fixed -= 1
        fixed += 1
        i += 1
    return fixed


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
    if len(normalized) > analysis.MAX_TOKEN_LENGTH:
        return MatchNone()  # no token is that long (and hyperscan refuses such a literal)
    return TokenTest(fld, "prefix", prefix, lambda t: t.startswith(normalized), normalized)


def regexp_query(fld: str, pattern: str) -> Node:
    """Raises RegexpError for a pattern Lucene rejects (the parser says where)."""
    # Imported here: few signatures hold a regexp, and its engine takes ~5 ms to import.
    from recheck.query.regexp import compile_regexp

    matcher = compile_regexp(analysis.lowercase(pattern))
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
