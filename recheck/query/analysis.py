"""Text analysis as Lucene's StandardAnalyzer does it: UAX#29 word tokens, lowercased.

Elasticsearch indexes logstash fields as analyzed ``text``; a signature only means what
its author saw in Kibana if we split text into exactly the same tokens. The rules below
follow Lucene 8's StandardTokenizer grammar (UAX#29 word boundaries, Unicode 9 era):

- word tokens join letters and digits, and keep ``.`` ``:`` ``'`` between two letters
  (``vol.txt``, ``fatal:the``, ``don't``) and ``.`` ``,`` ``;`` ``'`` between two digits
  (``10.0.0.1``); ``_`` joins anything (``foo_bar``); every other punctuation splits;
- each CJK ideograph and each hiragana character is a token of its own; runs of
  South-East Asian script (Thai, Lao, ...) are one token; emoji sequences are tokens;
- a token longer than 255 UTF-16 units is chopped into pieces, as Lucene does.

Most log text is ASCII, so that case takes one stdlib regex; anything else goes through
the full rule set, choosing the longest rule match at each position like JFlex does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex

MAX_TOKEN_LENGTH = 255
# Elasticsearch's position_increment_gap for text fields: a phrase never spans two
# values of a multi-valued field (unless its slop is at least this large).
POSITION_INCREMENT_GAP = 100

_ASCII_WORD = re.compile(
    r"_*[A-Za-z0-9][A-Za-z0-9_]*"
    r"(?:(?:(?<=[A-Za-z])[:.'](?=[A-Za-z])|(?<=[0-9])[,;.'](?=[0-9]))[A-Za-z0-9_]+)*"
)

# Full Unicode rules. Each "Ex" class absorbs trailing Extend/Format/ZWJ marks (UAX#29 WB4).
# Skin-tone modifiers were WB=E_Modifier in Unicode 9 (Lucene's tables), not Extend as
# in today's: they do not attach to letters, only to emoji.
_X = r"[[\p{WB=Format}\p{WB=Extend}\p{WB=ZWJ}]--\p{Emoji_Modifier}]*"
_AHLETTER = rf"[\p{{WB=ALetter}}\p{{WB=Hebrew_Letter}}]{_X}"
_HEBREW = rf"\p{{WB=Hebrew_Letter}}{_X}"
_NUMERIC = rf"[\p{{WB=Numeric}}[\p{{Block=Halfwidth_And_Fullwidth_Forms}}&&\p{{Nd}}]]{_X}"
_KATAKANA = rf"\p{{WB=Katakana}}{_X}"
_MIDLETTER = rf"[\p{{WB=MidLetter}}\p{{WB=MidNumLet}}\p{{WB=Single_Quote}}]{_X}"
_MIDNUM = rf"[\p{{WB=MidNum}}\p{{WB=MidNumLet}}\p{{WB=Single_Quote}}]{_X}"
_EXTENDNUMLET = rf"\p{{WB=ExtendNumLet}}{_X}"
_SQUOTE = rf"\p{{WB=Single_Quote}}{_X}"
_DQUOTE = rf"\p{{WB=Double_Quote}}{_X}"
_UNIT = (
    rf"(?:{_KATAKANA}(?:(?:{_EXTENDNUMLET})*{_KATAKANA})*"
    rf"|(?:{_HEBREW}(?:{_SQUOTE}|{_DQUOTE}{_HEBREW})"
    rf"|{_NUMERIC}(?:(?:(?:{_EXTENDNUMLET})*|{_MIDNUM}){_NUMERIC})*"
    rf"|{_AHLETTER}(?:(?:(?:{_EXTENDNUMLET})*|{_MIDLETTER}){_AHLETTER})*)+)"
)
_WORD = rf"(?:{_EXTENDNUMLET})*{_UNIT}(?:(?:{_EXTENDNUMLET})+{_UNIT})*(?:{_EXTENDNUMLET})*"

_X_SANS_PRESENTATION = (
    r"[[\p{WB=Format}\p{WB=Extend}\p{WB=ZWJ}]--[\uFE0E\uFE0F\p{Emoji_Modifier}]]*"
)
_EMOJI_CHAR = (
    r"(?:\p{Extended_Pictographic}"
    r"|[\p{Emoji}--[\p{WB=Regional_Indicator}0-9#*\u00a9\u00ae\u2122\u3030\u303d\p{Emoji_Modifier}]])"
)
_EMOJI_ELEMENT = (
    rf"(?:(?:\p{{WB=ZWJ}}*\p{{Emoji_Modifier_Base}}{_X_SANS_PRESENTATION})?"
    rf"\p{{Emoji_Modifier}}{_X_SANS_PRESENTATION}"
    rf"|\p{{WB=ZWJ}}*{_EMOJI_CHAR}{_X_SANS_PRESENTATION}\uFE0F?)"
)
_EMOJI = (
    rf"{_EMOJI_ELEMENT}(?:[\U000E0020-\U000E007E]+\U000E007F|(?:\p{{WB=ZWJ}}{_EMOJI_ELEMENT})*)"
    rf"|[0-9#*]{_X_SANS_PRESENTATION}\uFE0F?\u20E3{_X_SANS_PRESENTATION}"
    rf"|(?:\p{{WB=Regional_Indicator}}{_X}){{2}}"
)


@lru_cache(maxsize=1)
def _unicode_rules() -> tuple[list[regex.Pattern[str]], regex.Pattern[str]]:
    """The full rules, and the characters that can start one, compiled on first use:
    ``regex`` and these patterns take ~15 ms to load, and most log text is ASCII."""
    import regex

    # Order matters only for ties, which produce the same text.
    # POSIX flag: leftmost-longest matching inside each rule, as JFlex's DFA does (an
    # ordered alternation could stop early, e.g. at a Hebrew letter followed by a quote).
    rules = [
        regex.compile(_EMOJI, regex.V1 | regex.POSIX),
        regex.compile(_WORD, regex.V1 | regex.POSIX),
        regex.compile(rf"(?:\p{{LB=Complex_Context}}{_X})+", regex.V1),
        regex.compile(rf"\p{{Script=Han}}{_X}", regex.V1),
        regex.compile(rf"\p{{Script=Hiragana}}{_X}", regex.V1),
    ]
    # Characters that can start some rule: everything else is skipped in one step.
    rule_start = regex.compile(
        r"[\p{Extended_Pictographic}\p{Emoji}\p{Emoji_Modifier_Base}\p{WB=ZWJ}\p{WB=ALetter}"
        r"\p{WB=Hebrew_Letter}\p{WB=Numeric}\p{WB=Katakana}\p{WB=ExtendNumLet}\p{Nd}"
        r"\p{LB=Complex_Context}\p{Script=Han}\p{Script=Hiragana}\p{WB=Regional_Indicator}]",
        regex.V1,
    )
    return rules, rule_start


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _window_end(text: str, start: int) -> int:
    """End index so that text[start:end] holds at most MAX_TOKEN_LENGTH UTF-16 units."""
    end = min(len(text), start + MAX_TOKEN_LENGTH)
    while _utf16_len(text[start:end]) > MAX_TOKEN_LENGTH:
        end -= 1
    return end


def _unicode_spans(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """Token spans by the full rule set, longest rule match first (JFlex semantics)."""
    rules, rule_start = _unicode_rules()
    stop = len(text) if end is None else end
    pos = start
    while pos < stop:
        found = rule_start.search(text, pos, stop)
        if found is None:
            return
        pos = found.start()
        limit = min(stop, _window_end(text, pos))
        best = 0
        if text[pos:limit].isascii():
            # ASCII alone, as in an all-ASCII text: the rules' POSIX matching cost ~0.5 s
            # on 255 letters, so a long run of letters in a text with one accent took
            # minutes (benchmarks/fuzz.py, seed 20, log input 20006604).
            m = _ASCII_WORD.match(text, pos, limit)
            best = 0 if m is None else m.end() - pos
        else:
            for rule in rules:
                m = rule.match(text, pos, limit)
                if m is not None and m.end() - pos > best:
                    best = m.end() - pos
        if best == 0:
            pos += 1
            continue
        yield pos, pos + best
        pos += best


def _ascii_spans(text: str) -> Iterator[tuple[int, int]]:
    for m in _ASCII_WORD.finditer(text):
        start, end = m.span()
        if end - start <= MAX_TOKEN_LENGTH:
            yield start, end
            continue
        # Lucene's scanner buffer holds 255 chars: the token is the longest match
        # inside that window, and scanning resumes right after it.
        pos = start
        while pos < end:
            piece = _ASCII_WORD.match(text, pos, min(end, pos + MAX_TOKEN_LENGTH))
            if piece is None:
                pos += 1
                continue
            yield piece.span()
            pos = piece.end()


@lru_cache(maxsize=4096)
def _lower_char(ch: str) -> str:
    low = ch.lower()
    # Java's Character.toLowerCase maps one code point to one code point; Python's
    # full case mapping can expand (U+0130 -> "i̇"): keep the simple mapping.
    return low if len(low) == 1 else ("i" if ch == "\u0130" else ch)


def lowercase(text: str) -> str:
    """Lowercase per code point, as Lucene's LowerCaseFilter (no context rules)."""
    if text.isascii():
        return text.lower()
    return "".join(_lower_char(ch) for ch in text)


def tokenize(text: str) -> list[str]:
    """The lowercased tokens of ``text``, as StandardAnalyzer produces them."""
    if text.isascii():
        # Lowercasing ASCII first changes no boundary: the word pattern is case-blind.
        tokens: list[str] = _ASCII_WORD.findall(text.lower())
        if not tokens or max(map(len, tokens)) <= MAX_TOKEN_LENGTH:
            return tokens
        return [text[s:e].lower() for s, e in _ascii_spans(text)]
    if "\ud800" <= text[-1] <= "\udbff":
        # A value ending in a lone high surrogate (possible in JSON input, never in
        # decoded UTF-8) makes Lucene's scanner wait for the low half: no token at all.
        return []
    return [lowercase(text[s:e]) for s, e in _unicode_spans(text)]


def positions(values: Iterable[str]) -> list[tuple[str, int]]:
    """(token, position) pairs for a field's values, with the multi-value position gap.

    Positions follow Lucene's indexing chain: the first token is at 0, and each further
    value starts POSITION_INCREMENT_GAP positions after the previous value's last token.
    """
    out: list[tuple[str, int]] = []
    position = -1
    for index, value in enumerate(values):
        if index:
            position += POSITION_INCREMENT_GAP
        for token in tokenize(value):
            position += 1
            out.append((token, position))
    return out


def token_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, token) of each token of ``text``: where ``tokenize``'s tokens stand
    in the original text, for highlighting what a query matched."""
    if not text:
        return []
    if text.isascii():
        return [(s, e, text[s:e].lower()) for s, e in _ascii_spans(text)]
    if "\ud800" <= text[-1] <= "\udbff":
        return []
    return [(s, e, lowercase(text[s:e])) for s, e in _unicode_spans(text)]
