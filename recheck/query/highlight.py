"""Which words of an event's text a query matched: spans to highlight, as the engine sees
them.

A field's text is split by the analyzer (``analysis.token_spans``: the same tokens the
engine matches, with their places in the original text), and each positive clause of the
compiled query on that field marks the tokens it accepts: a term its token, a phrase its
run of tokens (from the first word's start to the last one's end), a wildcard, prefix,
regexp, fuzzy or range clause every token its own test passes. Negated clauses mark
nothing. So highlights agree with matching by construction: no second, looser matcher.
"""

from __future__ import annotations

from recheck.query.analysis import token_spans
from recheck.query.nodes import Bool, Node, Phrase, Term, TokenTest

__all__ = ["Parts", "excerpt", "highlight_spans", "segments"]

Parts = list[tuple[str, bool]]
"""A line cut into (text, highlighted) pieces."""


def highlight_spans(root: Node, field: str, text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` character spans of ``text`` (a value of ``field``) that the
    positive clauses of ``root`` match, sorted and merged."""
    leaves: list[Node] = []
    _positive_leaves(root, field, leaves)
    if not leaves or not text:
        return []
    tokens = token_spans(text)
    words = [token for _, _, token in tokens]
    marked: list[tuple[int, int]] = []
    for leaf in leaves:
        if isinstance(leaf, Term):
            marked += [(s, e) for s, e, token in tokens if token == leaf.term]
        elif isinstance(leaf, TokenTest):
            test = leaf.test
            marked += [(s, e) for s, e, token in tokens if test(token)]
        elif isinstance(leaf, Phrase):
            marked += _phrase_spans(leaf, tokens, words)
    return _merged(marked)


def segments(text: str, spans: list[tuple[int, int]]) -> Parts:
    """``text`` cut into (piece, highlighted) parts by ``spans`` (sorted, disjoint)."""
    out: Parts = []
    position = 0
    for start, end in spans:
        if start > position:
            out.append((text[position:start], False))
        out.append((text[start:end], True))
        position = end
    if position < len(text):
        out.append((text[position:], False))
    return out


def excerpt(root: Node, message: str, lines: int = 3, chars: int = 300) -> list[Parts]:
    """The lines of ``message`` worth showing, highlighted by ``root``: its first line and
    those holding a highlight, at most ``lines``, each cut to ``chars`` around its first
    highlight (``…`` marks a cut)."""
    text = message.replace("\r\n", "\n")
    spans = highlight_spans(root, "message", text)
    shown: list[Parts] = []
    start = 0
    for number, line in enumerate(text.split("\n")):
        end = start + len(line)
        inside = _within(spans, start, end)
        if number == 0 or inside:
            shown.append(_cut(line, inside, chars))
        start = end + 1
        if len(shown) == lines:
            break
    return shown


def _within(spans: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of ``spans`` inside ``start:end``, relative to ``start``."""
    return [(max(s, start) - start, min(e, end) - start) for s, e in spans if s < end and e > start]


def _cut(line: str, spans: list[tuple[int, int]], chars: int) -> Parts:
    if len(line) <= chars:
        return segments(line, spans)
    first = spans[0][0] if spans else 0
    begin = max(0, min(first - chars // 4, len(line) - chars))
    end = begin + chars
    parts = segments(line[begin:end], _within(spans, begin, end))
    if begin:
        parts.insert(0, ("…", False))
    if end < len(line):
        parts.append(("…", False))
    return parts


def _positive_leaves(node: Node, field: str, found: list[Node]) -> None:
    if isinstance(node, Bool):
        for child in node.must + node.should:
            _positive_leaves(child, field, found)
    elif getattr(node, "field", None) == field:
        found.append(node)


def _phrase_spans(
    phrase: Phrase, tokens: list[tuple[int, int, str]], words: list[str]
) -> list[tuple[int, int]]:
    terms = list(phrase.terms)
    if not terms:
        return []
    width = len(terms)
    if phrase.slop == 0:
        return [
            (tokens[i][0], tokens[i + width - 1][1])
            for i in range(len(words) - width + 1)
            if words[i : i + width] == terms
        ]
    # A sloppy phrase: its words where they stand close enough together (within the
    # phrase's length plus its slop), each word marked on its own.
    wanted = set(terms)
    window = width + phrase.slop
    spots = [i for i, word in enumerate(words) if word in wanted]
    return [
        tokens[i][:2] for i in spots if wanted <= {words[j] for j in spots if abs(j - i) < window}
    ]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
