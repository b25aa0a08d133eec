"""Highlights are what the engine matched: the analyzer's tokens, tested by the compiled
query's own clauses (phrases, wildcards, regexps, fuzzy terms, ranges)."""

from __future__ import annotations

import pytest

from recheck.query import Doc, compile_query
from recheck.query.analysis import token_spans, tokenize
from recheck.query.highlight import highlight_spans, segments


def marked(query: str, text: str, field: str = "message") -> list[str]:
    spans = highlight_spans(compile_query(query).root, field, text)
    return [text[s:e] for s, e in spans]


@pytest.mark.parametrize(
    ("query", "text", "words"),
    [
        # A phrase: its run of tokens, punctuation and case as written in the log.
        ('message:"delete failed"', "x: Delete  FAILED; delete ok", ["Delete  FAILED"]),
        # Tokens keep '.' between letters: vol.txt is one token, 'vol' is not in it.
        ("message:vol.txt", "screen-c-vol.txt vol", ["vol.txt"]),
        ("message:vol", "screen-c-vol.txt vol", ["vol"]),
        ("message:fail*", "Failure failed to fail xfail", ["Failure", "failed", "fail"]),
        ("message:f?il", "fail foil fial", ["fail", "foil"]),
        ("message:/fa[il]+/", "fail fal fil", ["fail", "fal"]),
        ("message:faild~1", "failed to fail fold", ["failed", "fail"]),
        ("message:[aa TO ab]", "aa ab ac", ["aa", "ab"]),
        # Only positive clauses, only the field asked about.
        ("message:boom AND NOT message:bang AND build_name:boom", "boom bong", ["boom"]),
        ("message:boom OR (message:bong AND NOT message:bang)", "boom bong", ["boom", "bong"]),
        ("boom", "BOOM!", ["BOOM"]),  # the default field is message
        # Non-ASCII text: the Unicode rules give the spans.
        ('message:"échec réseau"', "» Échec  réseau «", ["Échec  réseau"]),
    ],
)
def test_the_highlighted_words_are_the_tokens_the_query_matches(
    query: str, text: str, words: list[str]
) -> None:
    assert compile_query(query).matches(Doc({"message": text, "build_name": "boom"}))
    assert marked(query, text) == words


def test_a_sloppy_phrase_marks_its_words_where_they_stand_together() -> None:
    text = "still failed, then much later: failed"
    assert marked('message:"still failed"~1', text) == ["still", "failed"]


def test_nothing_is_marked_on_another_field_or_without_a_match() -> None:
    assert marked("filename:boom", "boom") == []
    assert marked("message:boom AND NOT message:bang", "boom bang") == ["boom"]
    assert marked('message:"a b"', "b a") == []


def test_token_spans_are_tokenize_s_tokens() -> None:
    for text in ("Traceback (most recent call last): x.y ValueError", "naïve café 10.0.0.1"):
        assert [token for _, _, token in token_spans(text)] == tokenize(text)


def test_segments_cut_the_text_at_the_spans() -> None:
    assert segments("a bc d", [(2, 4)]) == [("a ", False), ("bc", True), (" d", False)]
    assert segments("ab", [(0, 2)]) == [("ab", True)]


def test_every_real_signature_highlights_the_events_it_matches_by_their_text() -> None:
    """Over the shipped signatures (elastic-recheck's and the demo ones) and the sample's
    real events: when an event's message is what made a signature match it (without
    the message it would not match), at least one word of the message is highlighted."""
    import json
    from pathlib import Path

    from recheck.query.signatures import load_signatures

    root = Path(__file__).resolve().parents[2]
    signatures, _ = load_signatures(root / "queries")
    events = [
        json.loads(line)
        for line in (root / "examples" / "sample-events.jsonl").read_text().splitlines()
        if line.strip()
    ]
    checked = 0
    for signature in signatures:
        for event in events:
            if not signature.compiled.matches(Doc(event)):
                continue
            if signature.compiled.matches(Doc({**event, "message": ""})):
                continue  # matched without the message: nothing in it to mark
            text = str(event["message"])
            assert highlight_spans(signature.compiled.root, "message", text), signature.bug
            checked += 1
    assert checked >= 3
