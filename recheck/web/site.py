"""The pages of the site, by name, built from one read of the store.

Page names (``index``, ``gate``, ``uncategorized-24h``, ``bugs/<bug>``...) are the same
for the static report and the live server: ``<name>.html`` and ``<name>.json``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property

from recheck.config.files import PagesConfig
from recheck.models import BugInfo, BugTracker
from recheck.query.signatures import Signature
from recheck.store.anomalybook import AnomalyBook, Cluster, clusters_of
from recheck.store.base import Store, StoredBuild, utc
from recheck.store.freshness import freshness
from recheck.store.precision import SignatureStats, signature_stats
from recheck.web.errorline import error_line
from recheck.web.pages import (
    WINDOWS,
    BugPage,
    Header,
    MatchLine,
    TrendsPage,
    UncategorizedPage,
    bug_page,
    header,
    trends_page,
    uncategorized_page,
)
from recheck.web.testpages import RUNS, TESTS, RunPage, TestsPage, run_name, run_page, tests_page

__all__ = ["Page", "Snapshot", "bug_name"]

Page = TrendsPage | UncategorizedPage | BugPage | TestsPage | RunPage

UNCATEGORIZED = "uncategorized"
MAX_CLUSTERS = 25
"""Clusters the uncategorized page shows, biggest first."""
BUGS = "bugs/"


def bug_name(bug: str) -> str:
    """The page name of a bug's page."""
    return f"{BUGS}{bug}"


@dataclass
class Snapshot:
    """The store as the pages see it at ``now``: builds are read once, pages on demand."""

    store: Store
    signatures: Sequence[Signature]
    tracker: BugTracker
    settings: PagesConfig
    now: datetime = field(default_factory=lambda: utc(None))

    def __post_init__(self) -> None:
        self.now = utc(self.now)
        self._by_bug = {s.bug: s for s in self.signatures}

    @cached_property
    def header(self) -> Header:
        """The header every page of this snapshot shares."""
        return header(self.settings, self.now, freshness(self.store, self.now))

    @cached_property
    def builds(self) -> list[StoredBuild]:
        """Every build of the widest window any page shows."""
        days = max(self.settings.days, *(days for _, days in WINDOWS))
        # One hour more: the trend graphs start on the hour.
        return self.store.builds(since=self.now - timedelta(days=days, hours=1))

    def names(self) -> Iterator[str]:
        """Every page name, for the static report."""
        yield "index"
        yield self.settings.queue
        yield UNCATEGORIZED
        for label, _ in WINDOWS:
            yield f"{UNCATEGORIZED}-{label}"
        for signature in self.signatures:
            yield bug_name(signature.bug)
        yield TESTS
        yield from self.run_names()

    def run_names(self) -> list[str]:
        """The run views the static report writes: failed builds of the window with
        stored test results (those the other pages link to)."""
        since = self.now - timedelta(days=self.settings.days)
        failed = [
            b.uuid for b in self.builds if b.time >= since and b.build.build_status != "SUCCESS"
        ]
        return sorted(self._runs(failed).values())

    def _runs(self, uuids: Sequence[str]) -> dict[str, str]:
        """Build uuid -> run view page name, for the builds with stored test results."""
        found = {}
        for uuid in self.store.tested_builds(uuids):
            name = run_name(uuid)
            if name is not None:
                found[uuid] = name
        return found

    def page(self, name: str) -> Page | None:
        """The page called ``name``, or None when there is no such page.

        Raises StoreError when the store cannot be read.
        """
        if name == "index":
            return self.trends(None)
        if name == self.settings.queue:
            return self.trends(self.settings.queue)
        if name == UNCATEGORIZED:
            return self.uncategorized(WINDOWS[-1][0])
        if name.startswith(f"{UNCATEGORIZED}-"):
            return self.uncategorized(name.removeprefix(f"{UNCATEGORIZED}-"))
        if name.startswith(BUGS):
            return self.bug(name.removeprefix(BUGS))
        if name == TESTS:
            return tests_page(self.store, self.signatures, self.header, days=self.settings.days)
        if name.startswith(RUNS) and run_name(name.removeprefix(RUNS)) == name:
            return run_page(self.store, name.removeprefix(RUNS), self.signatures, self.header)
        return None

    def uncategorized(self, window: str) -> UncategorizedPage | None:
        """The uncategorized failures of ``window`` (``24h``, ``2d``...); None if unknown."""
        if window not in dict(WINDOWS):
            return None
        page = uncategorized_page(
            self.builds, self.signatures, self.settings, self.header, window, self.error_line
        )
        listed = [b.uuid for g in page.groups for j in g.jobs for b in j.uncategorized]
        return replace(page, runs=self._runs(listed), clusters=self._clusters(listed))

    def _clusters(self, uuids: Sequence[str]) -> list[Cluster]:
        """The builds ``uuids`` grouped by their top anomaly (none without a book)."""
        book = AnomalyBook.of(self.store)
        if book is None or not uuids:
            return []
        with book:
            tops = book.top_anomalies(uuids)
        wanted = set(uuids)
        return clusters_of([b for b in self.builds if b.uuid in wanted], tops)[:MAX_CLUSTERS]

    def error_line(self, stored: StoredBuild) -> MatchLine | None:
        """The build's most telling error line (searched once per build and ingest)."""
        return error_line(self.store, stored)

    def bug(self, bug: str) -> BugPage | None:
        """The page of the signature of ``bug``; None when no signature has that id."""
        signature = self._by_bug.get(bug)
        if signature is None:
            return None
        days = self.settings.days
        matches = self.store.matches_for(bug, days=days + 1, now=self.now)
        page = bug_page(signature, matches, self.tracker, self.header, days=days)
        return replace(page, runs=self._runs([b.uuid for b in page.builds]))

    def trends(self, queue: str | None) -> TrendsPage:
        """The trends of every pipeline (``queue`` None) or of one."""
        return trends_page(
            self.builds, self.signatures, self.tracker, self.header,
            days=self.settings.days, queue=queue, stats=self.stats,
        )  # fmt: skip

    @cached_property
    def stats(self) -> dict[str, SignatureStats]:
        """Each signature's precision and flags over the pages' window, all pipelines
        (``recheck stats``; bug statuses are the tracker's, as the cards show them)."""
        days = self.settings.days
        since = self.now - timedelta(days=days)
        matches = self.store.matches_between(since)
        bugs = {s.bug: self._bug_info(s.bug) for s in self.signatures}
        measured = signature_stats(self.signatures, matches, since, days=days, bugs=bugs)
        return {entry.bug: entry for entry in measured}

    def _bug_info(self, bug: str) -> BugInfo | None:
        try:
            return self.tracker.lookup(bug)
        except Exception:  # the tracker promises not to raise; a page must render anyway
            return None
