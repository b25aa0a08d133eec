"""The query engine's own contract: tokens, errors, warnings, hostile input.

Verdicts against real Lucene live in test_lucene_differential.py; these tests pin what
that suite cannot see: token lists, error positions and messages, lint warnings, and
that hostile queries end in a clear error instead of a hang or a crash.
"""

from __future__ import annotations

import pytest

from recheck.models import Event
from recheck.query import QuerySyntaxError, compile_query, lint_query
from recheck.query.analysis import positions, tokenize
from recheck.query.prefilter import Prefilter


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("vol.txt", ["vol.txt"]),
        ("nova.compute.manager", ["nova.compute.manager"]),
        ("10.0.0.1", ["10.0.0.1"]),
        ("foo_bar", ["foo_bar"]),
        ("fatal:the", ["fatal:the"]),
        ("don't", ["don't"]),
        ("req-3f2a", ["req", "3f2a"]),
        ("12:00:00.123", ["12", "00", "00.123"]),  # ':' joins letters only
        ("a.1 1.a", ["a", "1", "1", "a"]),
        ("Timed OUT", ["timed", "out"]),
        ("中文 アイウ ひら", ["中", "文", "アイウ", "ひ", "ら"]),
        ("ไทยภาษา café", ["ไทยภาษา", "café"]),
        ("İstanbul \u03a3\u0391\u03a3", ["istanbul", "\u03c3\u03b1\u03c3"]),  # as Java
        ("😀 👍🏽", ["😀", "👍🏽"]),
        ("x" * 300, ["x" * 255, "x" * 45]),  # Lucene chops at 255
        ("a" * 254 + ".b", ["a" * 254, "b"]),
        ("!!! --- ...", []),
    ],
)
def test_tokenize_like_standard_tokenizer(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_multi_valued_positions_leave_a_gap_of_100() -> None:
    assert positions(["a b", "c"]) == [("a", 0), ("b", 1), ("c", 102)]


@pytest.mark.parametrize(
    ("query", "position", "fragment"),
    [
        ("(a", 2, "end of query"),
        ("a)", 1, "')'"),
        ("NOT +x", 4, "'+'"),
        ('message:"unterminated', 8, "unterminated"),
        ("foo^", 4, "a number"),
        ("a~1.5", 1, "fractional"),
        ("/a{/", 0, "integer expected"),
        ("/[z-a]/", 0, "invalid range"),
    ],
)
def test_syntax_errors_say_what_and_where(query: str, position: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        compile_query(query)
    assert caught.value.position == position
    assert fragment in str(caught.value)


def test_empty_query_is_an_error() -> None:
    with pytest.raises(QuerySyntaxError, match="empty query"):
        compile_query("  \n ")


@pytest.mark.parametrize(
    ("query", "warning"),
    [
        ("build_name:gate-nova-python27", "split into 3 tokens"),
        ("message:*rror", "leading wildcard"),
        ("message:/err.*/", "regular expression"),
        ("NOT message:foo", "no positive clause"),
        ("mesage:foo", "unknown field 'mesage'"),
    ],
)
def test_lint_warns(query: str, warning: str) -> None:
    warnings = lint_query(query, known_fields={"message", "build_name", "tags"})
    assert any(warning in w for w in warnings), warnings


def test_lint_is_quiet_on_a_good_query() -> None:
    query = 'message:"Timed out waiting for" AND tags:"console"'
    assert lint_query(query, known_fields={"message", "tags"}) == []


@pytest.mark.parametrize(
    "query",
    [
        "(" * 150 + "a" + ")" * 150,
        "/" + "(" * 300 + "a" + ")" * 300 + "/",
        "/" + "a?" * 240 + "/",
        "/" + "x" * 600 + "/",
    ],
)
def test_hostile_queries_end_in_a_clear_error(query: str) -> None:
    with pytest.raises(QuerySyntaxError):
        compile_query(query)


@pytest.mark.parametrize(
    ("query", "token", "expected"),
    [
        ("/(a*)*b/", "a" * 250, False),
        ("/(a|aa)*c/", "a" * 250 + "c", True),
        ("/" + "a" * 400 + "/", "a" * 400, False),  # a token is at most 255 chars
        ("*a*a*a*a*a*a*a*a*c", "a" * 250, False),
    ],
)
def test_patterns_cannot_backtrack(query: str, token: str, expected: bool) -> None:
    assert compile_query(query).matches({"message": token}) is expected


def test_huge_event_field_is_handled() -> None:
    line = "x " * 500_000 + "Timed out waiting for reply"
    query = compile_query('message:"timed out waiting for"')
    assert query.matches({"message": line})


@pytest.mark.parametrize("use_hyperscan", [True, False])
def test_prefilter_never_drops_a_match(use_hyperscan: bool) -> None:
    queries = [
        compile_query(q)
        for q in [
            'message:"Timed out" AND tags:console',
            "NOT message:foo",
            "build_name:*nova*",
            "message:(alpha OR beta) AND message:gamma",
            "message:nothing AND NOT message:nothing",
        ]
    ]
    events: list[Event] = [
        {"message": "timed OUT here", "tags": ["console"]},
        {"message": "alpha gamma", "build_name": "gate-nova-py3"},
        {"message": "beta", "tags": []},
        {"message": "foo"},
    ]
    prefilter = Prefilter(queries, use_hyperscan=use_hyperscan)
    for event in events:
        candidates = set(prefilter.candidates(event))
        for index, query in enumerate(queries):
            if query.matches(event):
                assert index in candidates, (query.text, event)


def test_specialize_returns_the_same_query_when_it_decides_nothing() -> None:
    # recheck.scan.scanner reuses a signature's compiled query (and what it derived from it) in
    # every file where this holds.
    from recheck.query import Doc

    root = compile_query('message:"timed out" AND (tags:console OR tags:screen)').root
    docs = [Doc({"tags": ["console"], "filename": "job-output.txt"})]
    assert root.specialize(docs, lambda name: name == "filename") is root
    decided = root.specialize(docs, lambda name: name != "message")
    assert decided is not root
    assert decided.matches(Doc({"message": "it timed out", "tags": ["console"]}))
