"""Warnings about broad signatures: queries that can match every event of a file or build.

A clause made only of field filters (``tags:"console"``), negations or ``*`` matches
every event where it applies; joined by OR (often an implicit one) to the rest of a
query, it makes the whole signature match every such event. ``lint_query`` reports each.
"""

from __future__ import annotations

from recheck.query.nodes import Bool, Exists, MatchAll, MatchNone, Node, Phrase, Term, TokenTest

__all__ = ["EVENT_TEXT_FIELDS", "broad_clauses"]

EVENT_TEXT_FIELDS = frozenset(
    {"message", "loglevel", "module", "pid", "syslog_program", "syslog_pid", "syslog_host",
     "verb", "request", "response"}
)  # fmt: skip
"""Fields taken from each event's own text (the scanner's ``RAW_FIELDS``); every other
field (tags, filename, the build's fields) is the same for all events of a file."""


def broad_clauses(root: Node) -> list[str]:
    """A warning for each clause of ``root`` that lets it match every event of a file
    (or every event at all) without any condition on the event's own text."""
    warnings: list[str] = []
    _visit(root, warnings, top=True)
    return list(dict.fromkeys(warnings))


def _visit(node: Node, warnings: list[str], top: bool) -> None:
    if _is_specific(node):
        return  # every match needs some text: nothing under it matters
    if isinstance(node, Bool) and not node.must and node.should:
        # An OR: each alternative that needs no text makes the whole one broad.
        for child in node.should:
            _visit(child, warnings, top=False)
        return
    where = "the query" if top else f"clause {render(node)!r}"
    if _is_every_event(node):
        warnings.append(f"broad: {where} matches every event")
        return
    hint = "" if top else "; if an implicit OR joins it to the rest, join it with AND"
    warnings.append(
        f"broad: {where} needs no word of an event's text (only field filters such as "
        "tags or filename, negations, _exists_): it matches every event of the files or "
        f"builds it selects{hint}"
    )


def _is_specific(node: Node) -> bool:
    """Whether every match of ``node`` needs a positive test of the event's own text."""
    if isinstance(node, Term | Phrase | TokenTest):
        return node.field in EVENT_TEXT_FIELDS
    if isinstance(node, MatchNone):
        return True
    if isinstance(node, Bool):
        if node.must:
            return any(_is_specific(child) for child in node.must)
        return bool(node.should) and all(_is_specific(child) for child in node.should)
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
