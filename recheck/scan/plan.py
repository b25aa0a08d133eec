"""Per-file planning: which signatures can match in a file, and what its text must hold.

Every field but the splitter's own (``RAW_FIELDS``) is constant over a file, so each
query is specialized to the file once; what is left yields a ``Gate``, the literals and
phrases a match's raw text must contain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from recheck.logs.logfiles import logical_name
from recheck.logs.split import PARSE_FAILURE_TAG, TRUNCATED_TAG, file_format
from recheck.models import Event
from recheck.query import Doc, Query
from recheck.query.lint import EVENT_TEXT_FIELDS
from recheck.query.nodes import Bool, Node, Phrase, Term, leaves, selectivity
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


class Planner:
    """Plans the files of one build (``plan``), reusing what files of one kind share.

    A query's specialization to a file depends only on the file's constant fields: the
    build's (the same in every file), the file's tags (the same for every file of one
    name) and its filename. Most queries have no condition on ``filename``: they are
    specialized once per set of tags, so that a build of 20,000 small files of three
    kinds specializes them three times, not 20,000 (it was most of ``classify``'s cost
    per file). The few that name ``filename`` are specialized for each file.
    """

    def __init__(
        self,
        signatures: Sequence[Signature],
        build_fields: Mapping[str, str],
        on_gate: Callable[[Gate], None],
    ) -> None:
        """``on_gate`` is told every gate a plan may hold, once, before a plan holds it."""
        self._signatures = signatures
        self._build_fields = dict(build_fields)
        self._on_gate = on_gate
        # Signature -> its conditions on ``filename``, for those that have some.
        self._named: dict[int, list[Node]] = {}
        for index, signature in enumerate(signatures):
            named = [
                leaf
                for leaf in leaves(signature.compiled.root)
                if getattr(leaf, "field", None) == "filename"
            ]
            if named:
                self._named[index] = named
        # (query, tags, its conditions on filename decided in a file) -> the query and
        # gate in such files: what specializing it gives depends on nothing else.
        self._by_verdicts: dict[
            tuple[str, tuple[str, ...], tuple[bool, ...]], tuple[Query, Gate | None] | None
        ] = {}
        # Query -> the gate of its whole tree: most queries are decided nowhere in
        # advance, and their gate is the same in every file.
        self._whole_gates: dict[str, Gate | None] = {}
        # Equal gates made for different files are one object: what the scanner derives
        # from a gate is then worked out once (``on_gate``, ``gates.file_gates``).
        self._gates: dict[Gate, Gate] = {}
        # Tags -> the queries and gates of the signatures not naming ``filename``.
        self._by_tags: dict[tuple[str, ...], tuple[dict[int, Query], dict[int, Gate]]] = {}

    def plan(self, path: str, tags: list[str]) -> FilePlan:
        """The plan of the file ``path`` with ``tags``. Plans of files with the same tags
        share their ``queries`` and ``gates`` when no query names ``filename`` there:
        read-only."""
        filename = logical_name(path)
        key = tuple(tags)
        shared = self._by_tags.get(key)
        if shared is None:
            everyone = [i for i in range(len(self._signatures)) if i not in self._named]
            shared = self._by_tags[key] = self._specialize(everyone, filename, tags)
        if not self._named:
            return FilePlan(path, tags, filename, *shared)
        queries, gates = self._specialize_named(filename, tags)
        if queries:  # in signature order, as without the sharing
            queries = dict(sorted({**shared[0], **queries}.items()))
            gates = dict(sorted({**shared[1], **gates}.items()))
            return FilePlan(path, tags, filename, queries, gates)
        return FilePlan(path, tags, filename, *shared)

    def _specialize_named(
        self, filename: str, tags: list[str]
    ) -> tuple[dict[int, Query], dict[int, Gate]]:
        """``_specialize`` for the signatures naming ``filename``: specialized once per
        set of tags and verdicts of their conditions on the file's name."""
        doc = Doc({"filename": filename})
        kind = tuple(tags)
        queries: dict[int, Query] = {}
        gates: dict[int, Gate] = {}
        for index, named in self._named.items():
            key = (self._signatures[index].query, kind, tuple(q.matches(doc) for q in named))
            if key not in self._by_verdicts:
                planned = self._specialize([index], filename, tags)
                self._by_verdicts[key] = (
                    (planned[0][index], planned[1].get(index)) if planned[0] else None
                )
            known = self._by_verdicts[key]
            if known is not None:
                queries[index] = known[0]
                if known[1] is not None:
                    gates[index] = known[1]
        return queries, gates

    def _specialize(
        self, indexes: list[int], filename: str, tags: list[str]
    ) -> tuple[dict[int, Query], dict[int, Gate]]:
        """The queries of the signatures ``indexes`` specialized to a file, and their
        gates: of those that can match there."""
        constants: Event = {**self._build_fields, "filename": filename}
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

        queries: dict[int, Query] = {}
        gates: dict[int, Gate] = {}
        for index in indexes:
            signature = self._signatures[index]
            key = signature.query
            if key not in cache:
                cache[key] = self._specialized(key, signature.compiled, docs, is_constant)
            planned = cache[key]
            if planned is None:
                continue
            query, gate = planned
            queries[index] = query
            if gate is not None:
                gates[index] = gate
        return queries, gates

    def _specialized(
        self, key: str, compiled: Query, docs: list[Doc], is_constant: Callable[[str], bool]
    ) -> tuple[Query, Gate | None] | None:
        root = compiled.root.specialize(docs, is_constant)
        if cannot_match(root):
            return None
        if root is compiled.root:  # nothing decided here: as in other files
            if compiled.text not in self._whole_gates:  # worked out once for all files
                self._whole_gates[compiled.text] = self._interned(find_gate(compiled.root))
            return compiled, self._whole_gates[compiled.text]
        return Query(key, root, compiled.default_field), self._interned(find_gate(root))

    def _interned(self, gate: Gate | None) -> Gate | None:
        if gate is None:
            return None
        known = self._gates.get(gate)
        if known is None:
            known = self._gates[gate] = gate
            self._on_gate(gate)
        return known


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
