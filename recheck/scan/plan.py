"""Per-file planning: which signatures can match in a file, and what its text must hold.

Every field but the splitter's own (``RAW_FIELDS``) is constant over a file, so each
query is specialized to the file once; what is left yields a ``Gate``, the literals and
phrases a match's raw text must contain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from recheck.logs.logfiles import logical_name
from recheck.logs.split import PARSE_FAILURE_TAG, TRUNCATED_TAG, file_format
from recheck.models import Event
from recheck.query import Doc, Query
from recheck.query.lint import EVENT_TEXT_FIELDS
from recheck.query.nodes import Bool, Node, Phrase, Term, selectivity
from recheck.query.parser import DEFAULT_FIELD
from recheck.query.signatures import Signature

RAW_FIELDS = EVENT_TEXT_FIELDS
"""Fields the splitter takes from a file's text: each value is a substring of its lines."""

FORMAT_FIELDS: dict[str | None, frozenset[str]] = {
    None: frozenset(),
    "console": frozenset(),
    "oslofmt": frozenset({"loglevel", "module", "pid", "syslog_pid", "syslog_program"}),
    "apacheerror": frozenset({"loglevel"}),
    "libvirt": frozenset({"loglevel", "pid"}),
    "syslog": frozenset({"syslog_host", "syslog_pid", "syslog_program"}),
    "apachecombined": frozenset({"request", "response", "verb"}),
}
"""The raw fields besides message that the splitter may give an event of each format
(``split.file_format``): any other is absent from every event of such a file, so a
condition on it is decided per file too (``loglevel:ERROR`` never matches in a console
log, however often its text says "error")."""


@dataclass
class FilePlan:
    """What to do with one file: which signatures can match in it, and how to find them."""

    path: str
    tags: list[str]
    filename: str
    queries: dict[int, Query] = field(default_factory=dict)
    """Signature index -> its query specialized to this file (those that can match)."""
    gates: dict[int, Gate] = field(default_factory=dict)
    """Signature index -> the literals its text must contain (not every query has one:
    ``NOT x`` has none, nor has a query decided true for the whole file)."""


@dataclass(frozen=True)
class Gate:
    """A necessary condition on a file's raw text: each conjunct needs one of its literals.

    Literals are lowercase ASCII, looked for case-insensitively in the raw bytes; the
    ``best`` conjunct (the most selective) is the one whose occurrences are located.
    """

    conjuncts: tuple[tuple[str, ...], ...]
    best: int
    phrases: tuple[tuple[tuple[str, ...], ...], ...] = ()
    """AND of ORs of exact phrases (ASCII words) the text must hold."""


def plan_file(
    path: str,
    tags: list[str],
    signatures: Sequence[Signature],
    build_fields: Mapping[str, str],
    whole_gates: dict[str, Gate | None],
) -> FilePlan:
    """The plan of the file ``path`` with ``tags``, in a build with ``build_fields``.

    ``whole_gates`` (query text -> the gate of its whole tree) is kept by the caller
    across files: most queries are decided nowhere in advance, and their gate is the same
    in every file.
    """
    filename = logical_name(path)
    plan = FilePlan(path, tags, filename)
    constants: Event = {**build_fields, "filename": filename}
    # The splitter adds these two tags to some events; a tag condition that they
    # could change is left to be decided per event.
    docs = [
        Doc({**constants, "tags": [*tags, *extra]})
        for extra in ([], [PARSE_FAILURE_TAG], [TRUNCATED_TAG],
                      [PARSE_FAILURE_TAG, TRUNCATED_TAG])
    ]  # fmt: skip
    # Query -> (its query in this file, its gate there), or None if it cannot match.
    cache: dict[str, tuple[Query, Gate | None] | None] = {}
    produced = FORMAT_FIELDS[file_format(tags)] | {DEFAULT_FIELD}

    def is_constant(name: str) -> bool:
        return name not in RAW_FIELDS or name not in produced

    for index, signature in enumerate(signatures):
        key = signature.query
        if key not in cache:
            compiled = signature.compiled
            root = compiled.root.specialize(docs, is_constant)
            if cannot_match(root):
                cache[key] = None
            elif root is compiled.root:  # nothing decided here: as in other files
                if compiled.text not in whole_gates:  # worked out once for all files
                    whole_gates[compiled.text] = find_gate(compiled.root)
                cache[key] = (compiled, whole_gates[compiled.text])
            else:
                cache[key] = (Query(key, root, compiled.default_field), find_gate(root))
        planned = cache[key]
        if planned is None:
            continue
        query, gate = planned
        plan.queries[index] = query
        if gate is not None:
            plan.gates[index] = gate
    return plan


def cannot_match(root: Node) -> bool:
    return type(root).__name__ == "MatchNone"


def find_gate(root: Node) -> Gate | None:
    """The literals of raw fields that a match's text must contain; None if none."""
    conjuncts = root.required_literals()
    if not conjuncts:
        return None
    usable = [
        tuple(sorted({lit for _, lit in alternatives}))
        for alternatives in conjuncts
        if alternatives
        and all(name in RAW_FIELDS and lit.isascii() and lit for name, lit in alternatives)
    ]
    if not usable:
        return None
    usable = list(dict.fromkeys(usable))
    best = max(range(len(usable)), key=lambda i: selectivity([("", lit) for lit in usable[i]]))
    phrases = tuple(dict.fromkeys(tuple(alts) for alts in _required_phrases(root)))
    # One-word phrases alone add nothing to the literal conjuncts.
    phrases = tuple(alts for alts in phrases if any(len(terms) > 1 for terms in alts))
    return Gate(tuple(usable), best, phrases)


_ALNUM_EDGES = re.compile(r"[a-z0-9](?:.*[a-z0-9])?", re.ASCII | re.DOTALL)


def _required_phrases(node: Node) -> list[list[tuple[str, ...]]]:
    """Exact phrases a match contains, as AND of ORs, of words with alphanumeric edges.

    Between two words at adjacent positions there is no ASCII letter or digit (those are
    always part of a token), so ``w1[^a-z0-9]*w2`` must occur in the lowercased text.
    A single word is a one-word phrase.
    """
    if isinstance(node, Phrase | Term):
        terms = node.terms if isinstance(node, Phrase) else (node.term,)
        if (
            (isinstance(node, Term) or node.slop == 0)
            and node.field in RAW_FIELDS
            and all(term.isascii() and _ALNUM_EDGES.fullmatch(term) for term in terms)
        ):
            return [[terms]]
        return []
    if not isinstance(node, Bool):
        return []
    if node.must:
        return [alts for child in node.must for alts in _required_phrases(child)]
    alternatives: list[tuple[str, ...]] = []
    for child in node.should:
        conjuncts = _required_phrases(child)
        if not conjuncts:
            return []  # this branch can match without any phrase we know of
        # The branch's most telling condition: its longest phrase, fewest alternatives.
        alternatives += max(conjuncts, key=_telling)
    return [alternatives] if alternatives else []


def _telling(alternatives: Iterable[tuple[str, ...]]) -> tuple[int, int]:
    alternatives = list(alternatives)
    return (min(len(terms) for terms in alternatives), -len(alternatives))
