"""Skip the events a query cannot match, cheaply, before evaluating it in full.

Every compiled query can tell a necessary condition: an AND of ORs of (field, literal)
where each literal is a lowercase substring the field's text must contain (a required
term, each word of a required phrase...). We keep, per query, the one OR-set that is
most selective, then test all queries' literals against an event in one pass: hyperscan
when it is installed, else one substring test per distinct literal. Only queries whose
set is satisfied are evaluated, so an event that can match nothing costs almost nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from recheck.models import Event
from recheck.query.analysis import lowercase
from recheck.query.nodes import Doc, selectivity
from recheck.query.parser import DEFAULT_FIELD, Query

hyperscan: ModuleType | None
try:  # optional: `pip install 'recheck[fast]'`
    import hyperscan
except ImportError:  # pragma: no cover - exercised where hyperscan is missing
    hyperscan = None

__all__ = ["Prefilter", "hyperscan_available"]

log = logging.getLogger(__name__)


def hyperscan_available() -> bool:
    return hyperscan is not None


@dataclass(frozen=True)
class _Gate:
    """One query's chosen necessary condition: any of these (field, literal) pairs."""

    alternatives: tuple[tuple[str, str], ...]


def _choose(query: Query) -> _Gate | None:
    """The most selective OR-set of the query's condition; None if it has none."""
    conjuncts = query.required_literals()
    if conjuncts is None:
        return None
    if any(not alts for alts in conjuncts):
        return _Gate(())  # the query can match nothing at all

    def score(alts: list[tuple[str, str]]) -> tuple[int, int, int]:
        # Literals of the default field first: other fields (tags...) are rarely selective.
        in_default = all(f == query.default_field for f, _ in alts)
        return (int(in_default), *selectivity(alts))

    best = max(conjuncts, key=score)
    return _Gate(tuple(sorted(set(best))))


class Prefilter:
    """Which of ``queries`` may match an event: a superset of those that do."""

    def __init__(self, queries: Sequence[Query], use_hyperscan: bool = True) -> None:
        self.always: list[int] = []  # queries with no usable condition
        # (field, literal) -> indexes of the queries it opens
        self.opens: dict[tuple[str, str], list[int]] = {}
        for index, query in enumerate(queries):
            gate = _choose(query)
            if gate is None:
                self.always.append(index)
                continue
            for alternative in gate.alternatives:
                self.opens.setdefault(alternative, []).append(index)
        self.by_field: dict[str, list[str]] = {}
        for fld, lit in self.opens:
            self.by_field.setdefault(fld, []).append(lit)
        self._db = None
        self._db_literals: list[str] = []
        default_literals = self.by_field.get(DEFAULT_FIELD, [])
        if use_hyperscan and hyperscan is not None and default_literals:
            self._db_literals = sorted(default_literals)
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            try:
                self._db.compile(
                    expressions=[lit.encode("utf-8") for lit in self._db_literals],
                    ids=list(range(len(self._db_literals))),
                    elements=len(self._db_literals),
                    flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(self._db_literals),
                    literal=True,  # literals, not regexes: nothing to escape
                )
            except hyperscan.error as exc:
                # Never expected (literals are scannable); the substring test below is
                # exact too, only slower: one odd literal must not stop every signature.
                log.error("hyperscan refused the literals (%s); matching without it", exc)
                self._db = None
        self._scratch = (
            hyperscan.Scratch(self._db) if hyperscan is not None and self._db is not None else None
        )

    def candidates(self, event: Event | Doc) -> list[int]:
        """Indexes of the queries that may match ``event``, in order."""
        doc = event if isinstance(event, Doc) else Doc(event)
        found: set[int] = set(self.always)
        for fld, literals in self.by_field.items():
            values = doc.values(fld)
            if not values:
                continue
            text = lowercase("\n".join(values))
            if fld == DEFAULT_FIELD and self._db is not None:
                hits: list[int] = []
                self._db.scan(
                    text.encode("utf-8"),
                    match_event_handler=_collect,
                    context=hits,
                    scratch=self._scratch,
                )
                for pattern_id in hits:
                    found.update(self.opens[(fld, self._db_literals[pattern_id])])
                continue
            for lit in literals:
                if lit in text:
                    found.update(self.opens[(fld, lit)])
        return sorted(found)


def _collect(pattern_id: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    hits.append(pattern_id)
