"""What each page shows (trends, uncategorized failures, one bug), computed from the
store's builds and matches: plain data, no HTML.

Pages read what ingest stored; nothing is searched again. Every page is a dataclass
(``as_json`` gives its JSON); URLs are kept only when they are http or https.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from recheck.config.files import PagesConfig
from recheck.models import BugTracker, Match
from recheck.pipeline import Classification
from recheck.query.signatures import Signature
from recheck.store.anomalybook import Cluster
from recheck.store.base import StoredBuild, StoredMatch
from recheck.store.freshness import Freshness
from recheck.store.precision import SignatureStats

__all__ = [
    "WINDOWS",
    "BugPage",
    "Header",
    "TrendsPage",
    "UncategorizedPage",
    "as_json",
    "bug_page",
    "header",
    "trends_page",
    "uncategorized_page",
    "web_url",
]

FAILURE = "FAILURE"
SUCCESS = "SUCCESS"
UNKNOWN = "UNKNOWN"
"""The status shown for a build stored without one."""

WINDOWS: tuple[tuple[str, float], ...] = (("24h", 1), ("2d", 2), ("7d", 7), ("10d", 10))
"""The uncategorized page's filters: label (as in page names and ``?window=``), days."""

LINES_PER_BUILD = 5
"""Matching lines listed per build on a bug page; the others are counted."""

_HOUR = timedelta(hours=1)


def web_url(text: str | None) -> str | None:
    """``text`` if it is an http(s) URL with a host, else None: never a ``javascript:`` link."""
    if not text:
        return None
    text = text.strip()
    # No spaces or control characters anywhere: they are how link filters get fooled,
    # and a real log URL never holds them.
    return text if _WEB_URL.fullmatch(text) else None


_WEB_URL = re.compile(r"https?://[^\x00-\x20\x7f/?#@]+(?:[/?#][^\x00-\x20\x7f]*)?", re.IGNORECASE)


@dataclass(frozen=True)
class Header:
    """What every page says at the top: its title, when it was made, how fresh the data is."""

    title: str
    generated: datetime
    newest_event: datetime | None
    """The newest build whose events are indexed; None when the store is empty."""
    queue: str
    """The gate pipeline's name, which the navigation links to."""
    health: str | None = None
    """A cluster store's status (green, yellow, red); None for the embedded store."""
    problem: str | None = None
    """Why the store could not say how fresh it is (a cluster that is down...)."""

    @property
    def behind(self) -> timedelta | None:
        """How far the newest indexed event is behind the generation time."""
        if self.newest_event is None:
            return None
        return max(self.generated - self.newest_event, timedelta(0))


def header(settings: PagesConfig, now: datetime, fresh: Freshness) -> Header:
    """The header of pages generated at ``now``, with how fresh the store said it is."""
    return Header(
        settings.title, now, fresh.newest_event, settings.queue, fresh.health, fresh.problem
    )


@dataclass(frozen=True)
class Bug:
    """A signature's bug as the pages name it: the id, a link, what the tracker knows."""

    bug: str
    url: str | None
    title: str | None = None
    status: str | None = None
    projects: tuple[str, ...] = ()


def _bug(signature: Signature, tracker: BugTracker) -> Bug:
    try:
        url, info = tracker.url(signature.bug), tracker.lookup(signature.bug)
    except Exception:  # the tracker promises not to raise; a page must render anyway
        return Bug(signature.bug, None)
    if info is None:
        return Bug(signature.bug, web_url(url))
    return Bug(signature.bug, web_url(url), info.title, info.status or None, info.projects)


# --------------------------------------------------------------------------- trends


@dataclass(frozen=True)
class Hours:
    """Builds per hour and status over a window: what a graph plots."""

    start: datetime
    """The first hour of the window (on the hour)."""
    hours: int
    counts: dict[int, dict[str, int]] = field(default_factory=dict)
    """Hour index (0 = ``start``) -> build status -> distinct builds."""

    def add(self, moment: datetime, status: str) -> None:
        """Count one build of ``moment``, if the window holds it."""
        index = int((moment - self.start) // _HOUR)
        if 0 <= index < self.hours:
            by_status = self.counts.setdefault(index, {})
            by_status[status] = by_status.get(status, 0) + 1


def _window_hours(now: datetime, days: float) -> Hours:
    """The whole hours of the last ``days``, the current hour last."""
    hours = round(days * 24)
    end = now.replace(minute=0, second=0, microsecond=0) + _HOUR
    return Hours(end - hours * _HOUR, hours)


@dataclass(frozen=True)
class TrendCard:
    """One signature on a trends page."""

    bug: Bug
    query: str
    failures_24h: int
    failures: int
    """Failed builds matched in the whole window."""
    builds: int
    """Builds matched in the whole window, whatever their status."""
    hours: Hours
    precision: float | None = None
    """Share of the builds matched that failed (``recheck stats``); None if unknown."""
    flags: dict[str, str] = field(default_factory=dict)
    """``recheck stats``' flags (too_broad, stale, overlapping) -> why."""

    @property
    def quiet(self) -> bool:
        """No hits in the window: the card is greyed."""
        return self.builds == 0


@dataclass(frozen=True)
class TrendsPage:
    """The trends of every graphed signature, for all pipelines or one."""

    header: Header
    queue: str | None
    days: float
    cards: list[TrendCard]
    hidden: list[str]
    """Bugs left off because their signature says ``suppress-graph``."""

    @property
    def active(self) -> list[TrendCard]:
        """The cards of signatures with hits in the window: drawn in full."""
        return [card for card in self.cards if not card.quiet]

    @property
    def quiet(self) -> list[Bug]:
        """The signatures without a hit in the window: one compact list at the end."""
        return [card.bug for card in self.cards if card.quiet]


def trends_page(
    builds: Iterable[StoredBuild],
    signatures: Sequence[Signature],
    tracker: BugTracker,
    top: Header,
    *,
    days: float,
    queue: str | None = None,
    stats: Mapping[str, SignatureStats] | None = None,
) -> TrendsPage:
    """The trends over ``builds`` (those of the last ``days`` or more; ``queue`` keeps
    only builds of that pipeline); ``stats`` gives each card its precision and flags."""
    now = top.generated
    shown = [s for s in signatures if not s.suppress_graph]
    hours = {s.bug: _window_hours(now, days) for s in shown}
    day_ago = now - timedelta(days=1)
    fails24: Counter[str] = Counter()
    fails: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for stored in builds:
        if queue is not None and stored.build.build_queue != queue:
            continue
        status = stored.build.build_status or UNKNOWN
        for bug in stored.bugs:
            window = hours.get(bug)
            if window is None or stored.time < window.start:
                continue
            window.add(stored.time, status)
            total[bug] += 1
            if status == FAILURE:
                fails[bug] += 1
                if stored.time >= day_ago:
                    fails24[bug] += 1
    cards = []
    for s in shown:
        measured = (stats or {}).get(s.bug)
        cards.append(
            TrendCard(
                _bug(s, tracker), s.query, fails24[s.bug], fails[s.bug], total[s.bug],
                hours[s.bug], None if measured is None else measured.precision,
                {} if measured is None else measured.flags,
            )
        )  # fmt: skip
    cards.sort(key=lambda card: (-card.failures_24h, -card.failures, -card.builds, card.bug.bug))
    hidden = sorted(s.bug for s in signatures if s.suppress_graph)
    return TrendsPage(top, queue, days, cards, hidden)


# --------------------------------------------------------------------------- uncategorized


@dataclass(frozen=True)
class FailedBuild:
    """A failed build nobody has explained, with where to read its logs."""

    time: datetime
    job: str
    uuid: str
    status: str
    project: str | None
    branch: str | None
    change: str | None
    patchset: str | None
    log_url: str | None
    review_url: str | None = None
    """The change's review page (``pages.review_url``), when known."""
    build_url: str | None = None
    """The build's page on Zuul (``pages.build_url``), when known."""
    error: MatchLine | None = None
    """The build's most telling error line (``recheck.web.errorline``), when one is found."""


@dataclass(frozen=True)
class JobRate:
    """One job's failed builds in the window and how many a signature explains."""

    job: str
    failures: int
    classified: int
    uncategorized: list[FailedBuild]
    """Newest first."""

    @property
    def rate(self) -> float:
        """The share of failures a signature explains (0 to 1)."""
        return self.classified / self.failures if self.failures else 1.0


@dataclass(frozen=True)
class Group:
    """The jobs of one group of projects (the integrated gate, or the others)."""

    name: str
    failures: int
    classified: int
    jobs: list[JobRate]
    """Jobs with unexplained failures first (most first), then the rest by name."""

    @property
    def rate(self) -> float:
        """The group's classification rate (0 to 1)."""
        return self.classified / self.failures if self.failures else 1.0


@dataclass(frozen=True)
class UncategorizedPage:
    """Unexplained failures of the gate pipeline in one window."""

    header: Header
    queue: str
    window: str
    """The window's label, one of ``WINDOWS``."""
    days: float
    failures: int
    classified: int
    groups: list[Group]
    excluded_jobs: str | None
    runs: dict[str, str] = field(default_factory=dict)
    """Build uuid -> the page name of its run view, for the builds with test results."""
    clusters: list[Cluster] = field(default_factory=list)
    """The listed builds grouped by their top anomaly, biggest first (the anomaly book)."""

    @property
    def rate(self) -> float | None:
        """The overall classification rate (0 to 1); None without failed builds."""
        return self.classified / self.failures if self.failures else None


def window_days(label: str) -> float | None:
    """The days of the window called ``label`` (``24h``, ``2d``...); None if unknown."""
    return dict(WINDOWS).get(label)


def uncategorized_page(
    builds: Iterable[StoredBuild],
    signatures: Sequence[Signature],
    settings: PagesConfig,
    top: Header,
    window: str,
    error_line: Callable[[StoredBuild], MatchLine | None] = lambda stored: None,
) -> UncategorizedPage:
    """Failed voting builds of ``settings.queue`` in the ``window`` that no signature of
    ``signatures`` matched, among ``builds`` (which may hold any others); ``error_line``
    gives each listed build's most telling line."""
    days = window_days(window)
    if days is None:
        raise ValueError(f"unknown window {window!r}; one of {', '.join(dict(WINDOWS))}")
    since = top.generated - timedelta(days=days)
    known = {s.bug for s in signatures}
    excluded = re.compile(settings.excluded_jobs) if settings.excluded_jobs else None
    gate = [re.compile(pattern) for pattern in settings.integrated_gate]
    by_group: dict[bool, dict[str, list[tuple[StoredBuild, bool]]]] = {True: {}, False: {}}
    for stored in builds:
        build = stored.build
        if (
            stored.time < since
            or build.build_status != FAILURE
            or build.build_queue != settings.queue
            or not build.is_voting
        ):
            continue
        job = build.build_name or UNKNOWN
        if excluded is not None and excluded.search(job):
            continue
        integrated = any(p.fullmatch(build.project or "") for p in gate)
        explained = bool(known.intersection(stored.bugs))
        by_group[integrated].setdefault(job, []).append((stored, explained))

    def failed(stored: StoredBuild) -> FailedBuild:
        return _failed(stored, settings, error_line(stored))

    groups = [
        _group("integrated gate", by_group[True], failed),
        _group("other projects", by_group[False], failed),
    ]
    return UncategorizedPage(
        top,
        settings.queue,
        window,
        days,
        sum(g.failures for g in groups),
        sum(g.classified for g in groups),
        [g for g in groups if g.failures],
        settings.excluded_jobs,
    )


def _group(
    name: str,
    jobs: Mapping[str, list[tuple[StoredBuild, bool]]],
    failed: Callable[[StoredBuild], FailedBuild],
) -> Group:
    rates = []
    for job, found in jobs.items():
        newest_first = sorted(found, key=lambda item: item[0].time, reverse=True)
        unexplained = [failed(stored) for stored, explained in newest_first if not explained]
        rates.append(JobRate(job, len(found), len(found) - len(unexplained), unexplained))
    rates.sort(key=lambda rate: (-len(rate.uncategorized), rate.job))
    failures = sum(rate.failures for rate in rates)
    return Group(name, failures, sum(rate.classified for rate in rates), rates)


def _failed(stored: StoredBuild, settings: PagesConfig, error: MatchLine | None) -> FailedBuild:
    build = stored.build
    review = None
    if build.build_change and build.project:
        review = _link(
            settings.review_url,
            project=build.project,
            change=build.build_change,
            patchset=build.build_patchset or "",
        )
    found = _link(
        settings.build_url,
        uuid=stored.uuid,
        tenant=build.tenant,
        job=build.build_name,
        project=build.project,
    )
    return FailedBuild(
        stored.time,
        build.build_name or UNKNOWN,
        stored.uuid,
        build.build_status or UNKNOWN,
        build.project,
        build.build_branch,
        build.build_change,
        build.build_patchset,
        web_url(build.log_url),
        review,
        found,
        error,
    )


def _link(template: str | None, **values: str | None) -> str | None:
    """``template`` with ``values`` put in (URL-quoted); None when it is None, or needs a
    value the build lacks, or does not give a web URL."""
    if template is None:
        return None
    used = set(re.findall(r"{([^{}]*)}", template))
    if any(not values.get(name) for name in used if name != "patchset"):
        return None
    quoted = {name: quote(value or "", safe="/") for name, value in values.items()}
    try:
        text = template.format(**quoted).rstrip("/")
    except (KeyError, IndexError, ValueError):
        return None
    return web_url(text)


# --------------------------------------------------------------------------- bug page


@dataclass(frozen=True)
class MatchLine:
    """One matching event of a build, linked to its line when the log URL is known."""

    filename: str
    line: int
    message: str
    url: str | None


@dataclass(frozen=True)
class MatchedBuild:
    """A build a signature matched, with its first matching lines."""

    time: datetime
    job: str
    uuid: str
    status: str
    queue: str | None
    project: str | None
    branch: str | None
    change: str | None
    log_url: str | None
    lines: list[MatchLine]
    more_lines: int
    """Matching lines not listed (past ``LINES_PER_BUILD``)."""


@dataclass(frozen=True)
class Share:
    """A value (a job, a project...) and how many of the matched builds have it."""

    value: str
    builds: int
    share: float


@dataclass(frozen=True)
class BugPage:
    """One signature and every build it matched in the window."""

    header: Header
    bug: Bug
    query: str
    suppress_graph: bool
    suppress_notification: bool
    days: float
    builds: list[MatchedBuild]
    """Newest first."""
    statuses: list[Share]
    jobs: list[Share]
    projects: list[Share]
    branches: list[Share]
    queues: list[Share]
    hours: Hours
    runs: dict[str, str] = field(default_factory=dict)
    """Build uuid -> the page name of its run view, for the builds with test results."""

    @property
    def success_share(self) -> float:
        """The share of matched builds that succeeded: above 0, the query is too broad."""
        if not self.builds:
            return 0.0
        return sum(1 for b in self.builds if b.status == SUCCESS) / len(self.builds)


def bug_page(
    signature: Signature,
    matches: Iterable[StoredMatch],
    tracker: BugTracker,
    top: Header,
    *,
    days: float,
) -> BugPage:
    """The page of ``signature`` from its stored ``matches`` (those of the last ``days``)."""
    since = top.generated - timedelta(days=days)
    per_build: dict[str, list[StoredMatch]] = {}
    for match in matches:
        if match.build.time >= since:
            per_build.setdefault(match.build.uuid, []).append(match)
    hours = _window_hours(top.generated, days)
    found = []
    for lines in per_build.values():
        stored = lines[0].build
        hours.add(stored.time, stored.build.build_status or UNKNOWN)
        found.append(_matched(stored, lines))
    found.sort(key=lambda b: (b.time, b.uuid), reverse=True)
    builds = [m[0].build.build for m in per_build.values()]
    return BugPage(
        top,
        _bug(signature, tracker),
        signature.query,
        signature.suppress_graph,
        signature.suppress_notification,
        days,
        found,
        _shares(b.build_status or UNKNOWN for b in builds),
        _shares(b.build_name or UNKNOWN for b in builds),
        _shares(b.project or UNKNOWN for b in builds),
        _shares(b.build_branch or UNKNOWN for b in builds),
        _shares(b.build_queue or UNKNOWN for b in builds),
        hours,
    )


def _matched(stored: StoredBuild, matches: list[StoredMatch]) -> MatchedBuild:
    build = stored.build
    # The link classify prints, so a page and the command line point at the same line.
    classification = Classification(build)
    lines = [
        MatchLine(
            m.filename,
            m.line,
            m.message,
            web_url(classification.link(Match(m.bug, m.filename, m.line, m.message))),
        )
        for m in matches[:LINES_PER_BUILD]
    ]
    return MatchedBuild(
        stored.time,
        build.build_name or UNKNOWN,
        stored.uuid,
        build.build_status or UNKNOWN,
        build.build_queue,
        build.project,
        build.build_branch,
        build.build_change,
        web_url(build.log_url),
        lines,
        max(len(matches) - LINES_PER_BUILD, 0),
    )


def _shares(values: Iterable[str]) -> list[Share]:
    counts = Counter(values)
    total = sum(counts.values())
    return [
        Share(value, count, count / total)
        for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


# --------------------------------------------------------------------------- JSON


def as_json(page: object) -> Any:
    """A page as JSON-ready data: dataclass fields and properties, times in ISO 8601."""
    if page is None or isinstance(page, str | int | float):
        return page
    if isinstance(page, list | tuple):
        return [as_json(item) for item in page]
    if isinstance(page, dict):
        return {str(key): as_json(value) for key, value in page.items()}
    if isinstance(page, datetime):
        return page.isoformat()
    if isinstance(page, timedelta):
        return page.total_seconds()
    assert is_dataclass(page) and not isinstance(page, type), type(page)
    data = {f.name: as_json(getattr(page, f.name)) for f in fields(page)}
    for name in _PROPERTIES.get(type(page).__name__, ()):
        data[name] = as_json(getattr(page, name))
    return data


_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Header": ("behind",),
    "TrendCard": ("quiet",),
    "JobRate": ("rate",),
    "Group": ("rate",),
    "UncategorizedPage": ("rate",),
    "BugPage": ("success_share",),
}
"""Derived values the JSON includes too (the pages show them)."""
