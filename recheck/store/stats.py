"""What ``recheck query`` reports about a query's hits: counts and the top field values.

Pure functions over events, as elastic-recheck-query counted them (a field's share among
the hits that have it; each value of a multi-valued field once per hit); ``stats_from``
lets a store that can count for itself (the cluster's aggregations) do so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from recheck.models import Event
from recheck.query import Query
from recheck.query.signatures import Signature

if TYPE_CHECKING:
    from recheck.store.base import Store, StoredMatch

__all__ = [
    "NOISY_FIELDS",
    "QueryStats",
    "Summarizing",
    "hourly_builds",
    "stats_from",
    "summarize",
]

NOISY_FIELDS: frozenset[str] = frozenset(
    {
        "build_uuid",
        "build_short_uuid",
        "build_patchset",
        "build_ref",
        "build_newrev",
        "build_master",
        "build_zuul_url",
        "log_url",
        "host",
        "received_at",
        "pid",
        "syslog_pid",
        "type",
        "error_pr",
    }
)
"""Fields left out of the report unless ``verbose``: elastic-recheck's list, plus the
per-build URLs and refs and per-process ids, whose top values say nothing."""

UNKNOWN_STATUS = "UNKNOWN"
"""The build_status key for hits whose event has no build_status."""


@dataclass(frozen=True)
class QueryStats:
    """Summary of a query's hits."""

    hits: int
    builds: dict[str, int]
    """build_status -> number of distinct builds (by build_uuid) with a hit."""
    fields: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    """field -> its top values with their share (0-1) of the hits that have the field,
    most common first."""

    def to_json(self) -> dict[str, Any]:
        """``{"hits": N, "builds": {status: count}, "fields": {field: [[value, share]]}}``."""
        return {
            "hits": self.hits,
            "builds": dict(self.builds),
            "fields": {
                name: [[value, share] for value, share in top] for name, top in self.fields.items()
            },
        }

    def lines(self) -> list[str]:
        """The report as text lines, as elastic-recheck-query printed it."""
        out = [f"total hits: {self.hits}"]
        builds = ", ".join(f"{status} {count}" for status, count in self.builds.items())
        out.append(f"builds: {builds}" if builds else "builds: none")
        for name, top in self.fields.items():
            out.append(name)
            out.extend(f"  {int(share * 100)}% {value}" for value, share in top)
        return out


def summarize(events: Iterable[Event], quantity: int = 5, verbose: bool = False) -> QueryStats:
    """Summarize hits: total, distinct builds per build_status, top ``quantity`` values.

    Builds are told apart by ``build_uuid`` (else ``build_short_uuid``, else ``log_url``).
    Fields and statuses are listed in name order; values by share, then by value.
    """
    hits = 0
    builds: dict[str, set[str]] = {}
    # Each counted field's values, gathered in a list and counted once at the end
    # (Counter counts a list in C); None for a field that is never counted. A query
    # hitting 100,000 events spends most of its Python time here.
    values: dict[str, list[str] | None] = {}
    surplus: dict[str, int] = {}  # values beyond one per hit, from multi-valued fields
    for event in events:
        hits += 1
        status = _text(event.get("build_status")) or UNKNOWN_STATUS
        builds.setdefault(status, set()).add(_build_key(event))
        for name, value in event.items():
            gathered = values.get(name, _NEW)
            if gathered is _NEW:
                counted = not (name == "message" or name.startswith("@"))
                counted = counted and (verbose or name not in NOISY_FIELDS)
                gathered = values[name] = [] if counted else None
            if gathered is None or value is None:
                continue
            if value.__class__ is str:
                gathered.append(value)
                continue
            distinct = {item for item in value if item is not None}
            if distinct:
                gathered.extend(distinct)
                surplus[name] = surplus.get(name, 0) + len(distinct) - 1
    fields = {
        name: _top(Counter(found), len(found) - surplus.get(name, 0), quantity)
        for name, found in sorted(values.items())
        if found
    }
    return QueryStats(
        hits=hits,
        builds={status: len(keys) for status, keys in sorted(builds.items())},
        fields=fields,
    )


_NEW: list[str] = []
"""A marker: ``values`` has no entry for the field yet."""


@runtime_checkable
class Summarizing(Protocol):
    """A store that summarizes a query's hits itself (``ElasticStore.summary``)."""

    def summary(
        self,
        query: Query | Signature,
        days: float = ...,
        queue: str | None = None,
        now: datetime | None = None,
        *,
        quantity: int = 5,
        verbose: bool = False,
    ) -> QueryStats:
        """What ``summarize`` would report about the hits, counted where they are."""
        ...


def stats_from(
    store: Store,
    query: Query | Signature,
    days: float,
    queue: str | None = None,
    *,
    quantity: int = 5,
    verbose: bool = False,
) -> QueryStats:
    """``recheck query``'s report on ``query``'s hits in ``store`` over the last ``days``.

    A ``Summarizing`` store counts them itself (a cluster: aggregations, without
    sending a single hit); any other store's search is summarized here, hit by hit.
    """
    if isinstance(store, Summarizing):
        return store.summary(query, days, queue, quantity=quantity, verbose=verbose)
    hits = store.search(query, days=days, queue=queue)
    return summarize((event for _, event in hits), quantity, verbose)


def _top(counts: Counter[str], having: int, quantity: int) -> list[tuple[str, float]]:
    """The ``quantity`` most common values, each with its share of the ``having`` hits
    that have the field."""
    total = max(having, 1)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:quantity]
    return [(value, round(count / total, 4)) for value, count in ranked]


def _text(value: str | list[str] | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(value)


def _build_key(event: Mapping[str, str | list[str]]) -> str:
    for name in ("build_uuid", "build_short_uuid", "log_url"):
        value = _text(event.get(name))
        if value:
            return value
    return ""


def hourly_builds(matches: Iterable[StoredMatch]) -> dict[datetime, dict[str, int]]:
    """Distinct builds with a match per hour (build time, truncated) and build_status.

    What a bug's graph plots: one build with many matching lines counts once.
    """
    seen: dict[datetime, dict[str, set[str]]] = {}
    for match in matches:
        hour = match.build.time.replace(minute=0, second=0, microsecond=0)
        status = match.build.build.build_status or UNKNOWN_STATUS
        seen.setdefault(hour, {}).setdefault(status, set()).add(match.build.uuid)
    return {
        hour: {status: len(uuids) for status, uuids in sorted(by_status.items())}
        for hour, by_status in sorted(seen.items())
    }
