"""The search page of ``recheck serve`` (``/search?q=<query>&days=N``): Kibana's Discover
for triagers, computed from the store's evidence (``recheck.store.evidence``).

Hits per day, facets (job, project, status, file) whose values filter the search when
clicked (exact values, as ``?build_name=...``), the newest matching lines with the
query's words highlighted (``recheck.query.highlight``) and links to them, and the query's
lint warnings. A bad query is no error page: the page says what is wrong and points at
the column. On a cluster store the cluster answers (one search).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from recheck.models import EVENT_FIELDS
from recheck.query import Query, QuerySyntaxError, compile_query, lint_query
from recheck.query.highlight import Parts, excerpt
from recheck.store.base import Store
from recheck.store.elastic.cluster import QueryRejected
from recheck.store.evidence import EventHit, evidence_from
from recheck.web.pages import Header, web_url

__all__ = [
    "FACETS",
    "LIMIT",
    "MAX_DAYS",
    "MAX_QUERY_CHARS",
    "SearchPage",
    "day_choices",
    "search_href",
    "search_page",
    "tick_every",
]

FACETS: tuple[str, ...] = ("build_name", "project", "build_status", "filename")
"""The fields whose top values are shown, each a filter when clicked."""
FACET_VALUES = 10
"""Values listed per facet."""
LIMIT = 50
"""Matching lines listed, newest first."""
MAX_DAYS = 90
"""The widest window a search may ask for."""
MAX_QUERY_CHARS = 10_000
"""A longer ``q`` is refused (the longest shipped signature is under 2,000)."""
_CHART_WIDTH = 720
_CHART_HEIGHT = 80


@dataclass(frozen=True)
class QueryProblem:
    """Why the query cannot run: the message, and the query's line it is on with the
    0-based column, when known."""

    message: str
    line: str | None = None
    column: int | None = None


def _problem(message: str, query: str, position: int | None) -> QueryProblem:
    if position is None:
        return QueryProblem(message)
    start = query.rfind("\n", 0, position) + 1
    end = query.find("\n", position)
    line = query[start : end if end >= 0 else len(query)]
    return QueryProblem(message, line.replace("\r", " ").replace("\t", " "), position - start)


@dataclass(frozen=True)
class FacetValue:
    value: str
    share: float
    href: str
    """The search with this value as a filter."""


@dataclass(frozen=True)
class Facet:
    name: str
    values: list[FacetValue]
    active: str | None = None
    """The value this search is filtered on, if any."""
    clear_href: str | None = None
    """The search without that filter."""


@dataclass(frozen=True)
class Line:
    """A matching event as the page lists it."""

    hit: EventHit
    lines: list[Parts]
    """The message's lines worth showing, cut into (text, highlighted) parts."""
    url: str | None


@dataclass(frozen=True)
class DayBar:
    day: str
    hits: int
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class SearchPage:
    """One search: what was asked, and what the store answered."""

    header: Header
    query: str
    days: float
    filters: dict[str, str]
    problem: QueryProblem | None = None
    warnings: list[str] = field(default_factory=list)
    hits: int = 0
    builds: dict[str, int] = field(default_factory=dict)
    by_day: dict[str, int] = field(default_factory=dict)
    bars: list[DayBar] = field(default_factory=list)
    peak: int = 0
    facets: list[Facet] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    chart_width: int = _CHART_WIDTH
    chart_height: int = _CHART_HEIGHT

    @property
    def params(self) -> str:
        """This search as a URL query string (for its JSON and its links)."""
        return _params(self.query, self.days, self.filters)


def search_href(query: str, days: float | None = None, filters: Mapping[str, str] = {}) -> str:
    """The relative link to the search page for ``query`` (a bug page's link)."""
    return "search?" + _params(query, days, filters)


def _params(query: str, days: float | None, filters: Mapping[str, str]) -> str:
    values: list[tuple[str, str]] = [("q", query)]
    if days is not None:
        values.append(("days", f"{days:g}"))
    values += sorted(filters.items())
    return urlencode(values)


def search_page(
    store: Store,
    top: Header,
    query: str,
    days: float,
    filters: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    limit: int = LIMIT,
) -> SearchPage:
    """The search page of ``query`` over the last ``days`` of ``store``; raises StoreError
    when the store cannot be read (a query the cluster refuses is a problem shown)."""
    chosen = {name: value for name, value in (filters or {}).items() if name in FACETS}
    page = SearchPage(top, query, days, chosen)
    if not query.strip():
        return page
    try:
        compiled = compile_query(query)
        warnings = lint_query(query, known_fields=EVENT_FIELDS)
    except QuerySyntaxError as exc:
        return _replace(page, problem=_problem(f"bad query: {exc}", query, exc.position))
    try:
        found = evidence_from(
            store, compiled, days, now=now or top.generated, limit=limit,
            quantity=FACET_VALUES, filters=chosen,
        )  # fmt: skip
    except QueryRejected as exc:
        return _replace(page, problem=QueryProblem(f"the cluster refused the query: {exc}"))
    return _replace(
        page,
        warnings=warnings,
        hits=found.stats.hits,
        builds=found.stats.builds,
        by_day=found.by_day,
        bars=_bars(found.by_day),
        peak=max(found.by_day.values(), default=0),
        facets=[_facet(name, found.stats.fields.get(name, []), page) for name in FACETS],
        lines=[_line(hit, compiled) for hit in found.events],
    )


def _replace(page: SearchPage, **changes: object) -> SearchPage:
    from dataclasses import replace

    return replace(page, **changes)  # type: ignore[arg-type]


def _facet(name: str, top: list[tuple[str, float]], page: SearchPage) -> Facet:
    values = [
        FacetValue(value, share, search_href(page.query, page.days, {**page.filters, name: value}))
        for value, share in top
    ]
    active = page.filters.get(name)
    if active is None:
        return Facet(name, values)
    rest = {key: value for key, value in page.filters.items() if key != name}
    return Facet(name, values, active, search_href(page.query, page.days, rest))


def _line(hit: EventHit, query: Query) -> Line:
    return Line(hit, excerpt(query.root, hit.message), web_url(hit.url))


def day_choices(days: float) -> list[float]:
    """The windows the form offers, with ``days`` among them."""
    return sorted({1.0, 2.0, 7.0, 10.0, 30.0, float(MAX_DAYS), days})


def tick_every(bars: list[DayBar]) -> int:
    """Label every n-th day of the chart, so labels never overlap (about 12 at most)."""
    return max(1, -(-len(bars) // 12))


def _bars(by_day: Mapping[str, int]) -> list[DayBar]:
    """One bar per day of ``by_day``, scaled to the busiest, across the chart's width."""
    if not by_day:
        return []
    peak = max(by_day.values()) or 1
    width = max(1, _CHART_WIDTH // len(by_day))
    bars = []
    for index, (day, hits) in enumerate(by_day.items()):
        height = round(hits * _CHART_HEIGHT / peak)
        if hits and not height:
            height = 1
        bars.append(DayBar(day, hits, index * width, _CHART_HEIGHT - height, width - 1, height))
    return bars
