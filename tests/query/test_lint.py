"""``recheck check``'s warnings about broad signatures (issue 16): a clause that needs
nothing of an event's own text matches every event of the files or builds it selects."""

from __future__ import annotations

import pytest

from recheck.query import lint_query

BROAD = [
    # The implicit OR: tags:"console" alone is an alternative.
    ('(message:"A" AND message:"B") OR message:"C" tags:"console"', "clause 'tags:console'"),
    ('message:"Traceback" OR filename:"job-output.txt"', "clause 'filename:"),
    ("message:x OR (tags:a AND NOT message:y)", "clause 'tags:a AND NOT message:y'"),
    ('(NOT message:"ok") AND build_status:"FAILURE"', "the query needs no word"),
    ('message:* AND tags:"syslog"', "the query needs no word"),
    ("_exists_:build_name", "the query needs no word"),
    ("*", "the query matches every event"),
    ("message:* OR tags:x", "the query matches every event"),
    ('voting:false OR build_patchset:"3"', "the query needs no word"),
    ("message:x OR tags:a OR filename:b", "clauses 'tags:a', 'filename:b' need no word"),
]


@pytest.mark.parametrize(("query", "where"), BROAD)
def test_a_broad_signature_is_named_with_its_clause(query: str, where: str) -> None:
    warnings = [w for w in lint_query(query) if w.startswith("broad: ")]
    assert len(warnings) == 1, warnings
    assert where in warnings[0]


@pytest.mark.parametrize(
    "query",
    [
        'message:"failed"',
        "loglevel:ERROR",
        "message:fail* AND tags:console",
        '_exists_:build_name AND message:"error"',
        # Lucene: a negated clause beside an OR applies to all of it (x AND NOT y).
        "message:x OR NOT message:y",
        "message:x AND (tags:a OR NOT message:y)",
        'message:"java.io.InterruptedIOException" AND '
        '(tags:"console.html" OR tags:"job-output.txt")',
    ],
)
def test_a_signature_that_needs_text_is_not_broad(query: str) -> None:
    assert not [w for w in lint_query(query) if w.startswith("broad: ")]


def test_a_clause_on_an_unknown_field_never_matches_so_is_not_broad() -> None:
    warnings = lint_query("message:x OR id:console", known_fields={"message"})
    assert warnings == ["unknown field 'id': no event has it, so it never matches"]


def test_a_not_only_query_is_warned_about_once() -> None:
    warnings = lint_query("NOT message:foo AND NOT message:bar")
    assert len(warnings) == 1 and "no positive clause" in warnings[0]


def test_the_scanner_and_the_lint_agree_on_the_events_own_fields() -> None:
    from recheck.query.lint import EVENT_TEXT_FIELDS
    from recheck.scan.plan import FORMAT_FIELDS, RAW_FIELDS

    assert RAW_FIELDS == EVENT_TEXT_FIELDS
    assert set().union(*FORMAT_FIELDS.values()) < EVENT_TEXT_FIELDS
