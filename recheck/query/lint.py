"""Warnings about broad signatures: queries that can match every event of a file or build.

A clause made only of field filters (``tags:"console"``), negations or ``*`` matches
every event where it applies; joined by OR (often an implicit one) to the rest of a
query, it makes the whole signature match every such event. ``lint_query`` reports each.
"""

from __future__ import annotations

from collections.abc import Collection

from recheck.query.nodes import Bool, Exists, MatchAll, MatchNone, Node, Phrase, Term, TokenTest

__all__ = ["EVENT_TEXT_FIELDS", "broad_clauses"]

EVENT_TEXT_FIELDS = frozenset(
    {"message", "loglevel", "module", "pid", "syslog_program", "syslog_pid", "syslog_host",
     "verb", "request", "response"}
)  # fmt: skip
"""Fields taken from each event's own text (the scanner's ``RAW_FIELDS``); every other
field (tags, filename, the build's fields) is the same for all events of a file."""


def broad_clauses(root: Node, unknown: Collection[str] = ()) -> list[str]:
    """A warning naming the clauses of ``root`` that let it match every event of a file
    (or every event at all) without any condition on the event's own text; none if
    there are none. Clauses on ``unknown`` fields never match: they are not broad."""
    found: list[Node] = []
    _collect(root, found, frozenset(unknown))
    if not found:
        return []
    one = len(found) == 1
    if found == [root]:
        where = "the query"
    else:
        names = ", ".join(repr(render(node)) for node in found)
        where = f"clause {names}" if one else f"clauses {names}"
    if all(_is_every_event(node) for node in found):
        return [f"broad: {where} {'matches' if one else 'match'} every event"]
    what = "the signature" if found != [root] else "it"
    hint = "" if found == [root] else "; if an implicit OR joins it to the rest, join with AND"
    return [
        f"broad: {where} {'needs' if one else 'need'} no word of an event's text (only field "
        f"filters such as tags or filename, negations, _exists_): {what} matches every event "
        f"of the files or builds it selects{hint}"
    ]


def _collect(node: Node, found: list[Node], unknown: frozenset[str]) -> None:
    if _is_specific(node, unknown):
        return  # every match needs some text: nothing under it matters
    if (
        isinstance(node, Bool)
        and not node.must
        and any(_is_specific(child, unknown) for child in node.should)
    ):
        # An OR with specific alternatives: each other one makes the whole one broad.
        for child in node.should:
            _collect(child, found, unknown)
        return
    found.append(node)


def _is_specific(node: Node, unknown: frozenset[str]) -> bool:
    """Whether every match of ``node`` needs a positive test of the event's own text
    (or it never matches: a field no event has)."""
    if isinstance(node, Term | Phrase | TokenTest | Exists) and node.field in unknown:
        return True
    if isinstance(node, Term | Phrase | TokenTest):
        return node.field in EVENT_TEXT_FIELDS
    if isinstance(node, MatchNone):
        return True
    if isinstance(node, Bool):
        if node.must:
            return any(_is_specific(child, unknown) for child in node.must)
        return bool(node.should) and all(_is_specific(child, unknown) for child in node.should)
    return False  # MatchAll, Exists


def _is_every_event(node: Node) -> bool:
    """MatchAll, or ``*`` (every event has a message), with nothing negated."""
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, Exists):
        return node.field == "message"
    if isinstance(node, Bool) and not node.must_not:
        if node.must:
            return all(_is_every_event(child) for child in node.must)
        return any(_is_every_event(child) for child in node.should)
    return False


def render(node: Node) -> str:
    """``node`` written back as query text (for messages)."""
    if isinstance(node, Term):
        return f"{node.field}:{node.term}"
    if isinstance(node, Phrase):
        slop = f"~{node.slop}" if node.slop else ""
        return f'{node.field}:"{" ".join(node.terms)}"{slop}'
    if isinstance(node, TokenTest):
        return f"{node.field}:{node.text}"
    if isinstance(node, Exists):
        return f"_exists_:{node.field}"
    if isinstance(node, MatchAll):
        return "*:*"
    if isinstance(node, Bool):
        parts = [render(child) for child in node.must] or [
            " OR ".join(render(child) for child in node.should)
        ]
        text = " AND ".join(f"({part})" if " " in part else part for part in parts)
        if node.must_not:
            negated = " AND ".join(f"NOT {render(child)}" for child in node.must_not)
            text = negated if text == "*:*" else f"{text} AND {negated}"
        return text
    return type(node).__name__
