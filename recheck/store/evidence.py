"""A query's evidence in the stored history: its newest matching events (with a link to
each line) and its hits per day, beside ``recheck.store.stats``' counts and breakdown.

What ``recheck query`` prints and the search page shows. ``evidence_from`` makes one pass
over the store's search (the engine decides every hit) feeding the summary, the per-day
counts and the newest events at once; a store that can answer itself (``Evidencing``: the
cluster, with a sorted search and a date histogram) does. ``filters`` keep only hits whose
field has exactly that value (a facet clicked on the search page).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from recheck.models import Event
from recheck.query import Query
from recheck.query.signatures import Signature
from recheck.store.base import days_before, utc
from recheck.store.stats import QueryStats, summarize

if TYPE_CHECKING:
    from recheck.store.base import Store, StoredBuild

__all__ = [
    "DEFAULT_LIMIT",
    "EventHit",
    "Evidence",
    "Evidencing",
    "event_hit",
    "every_day",
    "evidence_from",
    "line_url",
    "matches_filters",
]

DEFAULT_LIMIT = 20
"""Matching events listed when no ``--limit`` is given."""
FULL_WINDOW_DAYS = 92
"""Windows up to this long list every day of theirs in ``by_day``; longer ones the days
from the first hit to the last (a 100,000-day window would list 274 years of zeros)."""


def line_url(log_url: str | None, filename: str | None, line: int | None) -> str | None:
    """A link to a line of a build's log: ``<log root>/<filename>#<line>``; when
    ``log_url`` already names the file (logstash's events), ``<log_url>#<line>``; the
    best the event allows otherwise (no line: the file; no file: the log root)."""
    if not log_url:
        return None
    root = log_url.rstrip("/")
    if filename and not root.endswith("/" + filename.lstrip("/")):
        root = f"{root}/{filename.lstrip('/')}"
    elif not filename:
        return log_url
    return f"{root}#{line}" if line is not None else root


@dataclass(frozen=True)
class EventHit:
    """One matching event: its build, where it is, its text and a link to its line."""

    build_uuid: str | None
    build_name: str | None
    build_status: str | None
    filename: str | None
    line: int | None
    """None when the source does not number lines (events logstash indexed)."""
    message: str
    url: str | None
    time: datetime | None = None
    """The build's time (the embedded store), or the event's (a cluster's @timestamp)."""
    project: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Exactly ``{"build_uuid", "build_name", "build_status", "filename", "line",
        "message", "url"}``."""
        return {
            "build_uuid": self.build_uuid,
            "build_name": self.build_name,
            "build_status": self.build_status,
            "filename": self.filename,
            "line": self.line,
            "message": self.message,
            "url": self.url,
        }


@dataclass(frozen=True)
class Evidence:
    """A query's hits: the summary, the newest events and the hits per day."""

    stats: QueryStats
    events: list[EventHit]
    """Newest first (by build, then in log order), at most the limit asked for."""
    by_day: dict[str, int] = field(default_factory=dict)
    """``YYYY-MM-DD`` (UTC) -> hits, every day of the window, oldest first."""


@runtime_checkable
class Evidencing(Protocol):
    """A store that finds a query's evidence itself (``ElasticStore.evidence``)."""

    def evidence(
        self,
        query: Query | Signature,
        days: float,
        queue: str | None = None,
        now: datetime | None = None,
        *,
        limit: int = DEFAULT_LIMIT,
        quantity: int = 5,
        verbose: bool = False,
        filters: Mapping[str, str] | None = None,
    ) -> Evidence:
        """What ``evidence_from`` reports, counted where the events are."""
        ...


def evidence_from(
    store: Store,
    query: Query | Signature,
    days: float,
    queue: str | None = None,
    now: datetime | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    quantity: int = 5,
    verbose: bool = False,
    filters: Mapping[str, str] | None = None,
) -> Evidence:
    """The evidence of ``query`` in ``store`` over the last ``days`` (see the module)."""
    moment = utc(now)
    if isinstance(store, Evidencing):
        found = store.evidence(
            query, days, queue, moment,
            limit=limit, quantity=quantity, verbose=verbose, filters=filters,
        )  # fmt: skip
        return replace(found, by_day=every_day(found.by_day, days_before(moment, days), moment))
    builds = {b.uuid: b for b in store.builds(since=days_before(moment, days + 1))}
    hits = store.search(query, days=days, queue=queue, now=moment)
    collector = _Collector(builds, limit)
    kept = ((i, event) for i, event in hits if matches_filters(event, filters))
    stats = summarize(collector.counted(kept), quantity, verbose)
    days_seen = every_day(collector.days(), days_before(moment, days), moment)
    return Evidence(stats, collector.newest(), days_seen)


def every_day(by_day: Mapping[str, int], since: datetime, until: datetime) -> dict[str, int]:
    """``by_day`` with its quiet days too (0 hits), oldest first: every day of the window
    when it is at most ``FULL_WINDOW_DAYS`` long, else the days from the first hit to
    the last."""
    start, end = since.date(), until.date()
    if (until - since).days > FULL_WINDOW_DAYS:
        if not by_day:
            return {}
        start, end = date.fromisoformat(min(by_day)), date.fromisoformat(max(by_day))
    out = {}
    day = start
    while day <= end:
        key = day.isoformat()
        out[key] = by_day.get(key, 0)
        day += timedelta(days=1)
    for key, count in by_day.items():  # hits dated outside the window (event times)
        out.setdefault(key, count)
    return dict(sorted(out.items()))


def matches_filters(event: Event, filters: Mapping[str, str] | None) -> bool:
    """Whether each field ``filters`` names has exactly its value (one of its values)."""
    for name, wanted in (filters or {}).items():
        value = event.get(name)
        if value != wanted and not (isinstance(value, list) and wanted in value):
            return False
    return True


class _Collector:
    """Watches hits go by: remembers the newest ``limit`` and counts hits per day."""

    def __init__(self, builds: Mapping[str, StoredBuild], limit: int) -> None:
        self._builds = builds
        self._limit = limit
        self._recent: deque[tuple[datetime | None, int, EventHit]] = deque()
        self._by_day: Counter[str] = Counter()
        self._seen = 0

    def counted(self, hits: Iterable[tuple[str, Event]]) -> Iterator[Event]:
        """The events of ``hits``, counted and the newest kept as they go by."""
        # A bounded list, trimmed to the newest now and then: no sort of every hit.
        for event_id, event in hits:
            stored = self._builds.get(_text(event.get("build_uuid")))
            when = stored.time if stored is not None else None
            if when is not None:
                self._by_day[when.strftime("%Y-%m-%d")] += 1
            self._seen += 1
            self._recent.append((when, self._seen, event_hit(event_id, event, stored)))
            if len(self._recent) > self._limit * 4:
                self._trim()
            yield event

    def _trim(self) -> None:
        ranked = sorted(self._recent, key=_newest_first)[: self._limit]
        self._recent = deque(sorted(ranked, key=lambda item: item[1]))

    def newest(self) -> list[EventHit]:
        return [hit for _, _, hit in sorted(self._recent, key=_newest_first)[: self._limit]]

    def days(self) -> dict[str, int]:
        return dict(sorted(self._by_day.items()))


def _stamp(when: datetime | None) -> float:
    return when.timestamp() if when is not None else float("-inf")


def _newest_first(item: tuple[datetime | None, int, EventHit]) -> tuple[float, int]:
    """Newest build first; a build's own lines in log order."""
    return (-_stamp(item[0]), item[1])


def event_hit(
    event_id: str, event: Event, stored: StoredBuild | None, when: datetime | None = None
) -> EventHit:
    """The hit of ``event`` (id ``<filename>:<line>`` as ingested), of the build ``stored``
    when known (its log URL and time), else from the event's own fields."""
    named, _, number = event_id.rpartition(":")
    line = int(number) if number.isdigit() and named else None
    filename = (named if line is not None else "") or _text(event.get("filename")) or None
    log_url = stored.build.log_url if stored is not None else None
    log_url = log_url or _text(event.get("log_url")) or None
    return EventHit(
        _text(event.get("build_uuid")) or None,
        _text(event.get("build_name")) or None,
        _text(event.get("build_status")) or None,
        filename,
        line,
        _text(event.get("message")),
        line_url(log_url, filename, line),
        stored.time if stored is not None else when,
        _text(event.get("project")) or None,
    )


def _text(value: str | list[str] | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(value)
