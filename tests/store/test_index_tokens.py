"""The event index's tokenizer gives the engine's tokens (StandardAnalyzer's), whichever
form a value is handed to it in: the index must find every event the engine matches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recheck.query.analysis import tokenize
from recheck.store.embedded.index import _ANALYZER, _indexed_text

ASCII_WORDISH = st.text(alphabet="aZ09_.:',;- \t\"x/", max_size=40)


@settings(max_examples=2000, deadline=None)
@given(text=st.one_of(ASCII_WORDISH, st.text(max_size=40)))
def test_the_index_tokens_are_the_engines(text: str) -> None:
    assert _ANALYZER.analyze(_indexed_text(text)) == tokenize(text)


def test_long_words_are_cut_as_lucene_cuts_them() -> None:
    text = "x" * 600 + " tail a.b.c 10.0.0.1"
    assert _ANALYZER.analyze(_indexed_text(text)) == tokenize(text)
    assert len(tokenize(text)[0]) == 255


def test_tokens_of_version_1_values_read_the_same() -> None:
    # Version 1 wrote every value as the engine's tokens joined by spaces.
    for text in [
        "Caf\u00e9 o'Neil 10.0.0.1 a_b",
        '\u4e2d\u6587 \u05d0"\u05d1 x.y',
        "N\u00e9 \u2014 ok",
    ]:
        assert _ANALYZER.analyze(" ".join(tokenize(text))) == tokenize(text)
