"""What every store offers: the ``Store`` interface, the records it returns, ``StoreError``.

Also the rules every store shares with the pipeline: which signatures apply to a build
(``applicable``) and the matches kept for events (``classify_events``). Times are aware
UTC datetimes (naive means UTC); an event's time is its build's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from recheck.lib.errors import RecheckError
from recheck.logs.build import Build
from recheck.models import Event, Match
from recheck.query import Query
from recheck.query.matcher import match_events
from recheck.query.signatures import Signature

if TYPE_CHECKING:
    from recheck.logs.testresults import SubunitResults
    from recheck.store.testhistory import BuildTests, TestSummary

__all__ = [
    "DEFAULT_BUILD_DAYS",
    "DEFAULT_EVENT_DAYS",
    "GcCounts",
    "ReclassifyCounts",
    "Retention",
    "Store",
    "StoreError",
    "StoredBuild",
    "StoredClassification",
    "StoredMatch",
    "applicable",
    "classify_events",
    "signature_hash",
    "utc",
]

DEFAULT_EVENT_DAYS = 10
"""Events (log lines) are kept this long: enough for ``recheck query --days 10``."""
DEFAULT_BUILD_DAYS = 90
"""Builds and their matches are kept longer, so the bug graphs show trends."""


class StoreError(RecheckError):
    """The store cannot be opened or used; the message names the path and what to do."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = Path(path)
        self.message = message


@dataclass(frozen=True)
class Retention:
    """How long a store keeps events, and builds with their matches."""

    event_days: float = DEFAULT_EVENT_DAYS
    build_days: float = DEFAULT_BUILD_DAYS


@dataclass(frozen=True)
class StoredBuild:
    """A build as the store knows it: its fields, its time, and what was found in it."""

    build: Build
    """The build's fields; ``build_uuid`` is always set (generated if it had none)."""
    time: datetime
    """When the build ran (the ``when`` given at ingest)."""
    ingested_at: datetime
    events: int
    """How many events were indexed for it."""
    events_kept: bool
    """False once retention dropped its events (its matches are still there)."""
    bugs: tuple[str, ...] = ()
    """The bugs with at least one match in this build, sorted."""

    @property
    def uuid(self) -> str:
        """The build's uuid (never None for a stored build)."""
        assert self.build.build_uuid is not None
        return self.build.build_uuid


@dataclass(frozen=True)
class StoredMatch:
    """One event of a stored build that a signature matched."""

    bug: str
    filename: str
    line: int
    message: str
    """The start of the event's message, as the classification reported it."""
    build: StoredBuild


@dataclass
class StoredClassification:
    """Which signatures match the events a store holds for one build (``Store.classify``)."""

    build: Build
    matches: list[Match] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    """bug -> matching events in the store (a cluster keeps ``max_hits`` of them in
    ``matches``)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Signatures not evaluated for this build: bug -> why (as the pipeline decides)."""
    errors: dict[str, str] = field(default_factory=dict)
    """Signatures the store could not evaluate: bug -> why (a cluster's reason)."""

    @property
    def bugs(self) -> list[str]:
        """The bugs with at least one matching event, in signature order."""
        return list(dict.fromkeys(match.bug for match in self.matches))


@dataclass(frozen=True)
class GcCounts:
    """What one retention pass removed."""

    events: int = 0
    builds: int = 0
    matches: int = 0
    tests: int = 0
    """Builds whose test results were dropped (they go with the events)."""


@dataclass(frozen=True)
class ReclassifyCounts:
    """What ``reclassify`` did: which signatures it re-ran, over how many builds."""

    signatures: tuple[str, ...] = ()
    """Bug ids of the signatures that were re-run (new or changed)."""
    builds: int = 0
    """Stored builds whose events were searched again."""
    matches: int = 0
    """Matches the re-run signatures have now over those builds."""


@runtime_checkable
class Store(Protocol):
    """History of builds, events and matches; the embedded store and Elasticsearch both fit.

    Writers (``ingest``, ``gc``, ``reclassify``) may run while readers query: a reader
    sees each build either whole or not at all.
    """

    @property
    def path(self) -> str:
        """Where the store lives (a directory or a URL), for messages."""
        ...

    def has_build(self, uuid: str) -> bool:
        """Whether a build with this uuid is stored (so ``recheck ingest`` can skip it)."""
        ...

    def ingest(
        self,
        build: Build,
        events: Iterable[tuple[str, Event]],
        matches: Iterable[Match],
        when: datetime | None = None,
        *,
        tests: SubunitResults | None = None,
    ) -> str:
        """Store a build with all its events and matches, replacing any earlier copy.

        ``tests`` are its test results (None: it has no subunit stream), kept with it.
        All or nothing: readers and a later ``open`` see the whole build or none of it.
        Returns the build's uuid (generated when ``build.build_uuid`` is None).
        """
        ...

    def search(
        self,
        query: Query | Signature,
        days: float = DEFAULT_EVENT_DAYS,
        queue: str | None = None,
        now: datetime | None = None,
    ) -> Iterator[tuple[str, Event]]:
        """The stored events of the last ``days`` that ``query`` matches, as (id, event).

        Exactly the events ``recheck match`` would report: the query engine decides.
        ``queue`` keeps only builds of that pipeline. Ids are ``<filename>:<line>`` as
        ingested, so they repeat across builds; each event names its ``build_uuid``.
        """
        ...

    def gc(
        self,
        now: datetime | None = None,
        event_days: float | None = None,
        build_days: float | None = None,
    ) -> GcCounts:
        """Drop events older than ``event_days`` and builds and matches older than
        ``build_days`` (defaults: the store's retention); returns what was removed."""
        ...

    def reclassify(
        self,
        signatures: Sequence[Signature],
        since: datetime | None = None,
        *,
        only_changed: bool = True,
    ) -> ReclassifyCounts:
        """Re-run the new or changed signatures over the stored events and replace their
        matches (all given signatures when ``only_changed`` is False)."""
        ...

    def classify(
        self, build: Build, signatures: Sequence[Signature], since: datetime | None = None
    ) -> StoredClassification:
        """Which ``signatures`` match the stored events of the build ``build.build_uuid``
        names: a build logstash (or ``recheck ingest``) indexed, classified without
        fetching its logs. ``build``'s other fields decide which signatures apply
        (non-voting...); ``since`` may narrow the search to events from then on.
        The embedded store raises StoreError when it holds no events of that build; a
        cluster, which cannot tell a build it never saw from one without matches,
        answers with no matches.
        """
        ...

    def matches_for(
        self, bug: str, days: float = DEFAULT_BUILD_DAYS, now: datetime | None = None
    ) -> list[StoredMatch]:
        """The matches of ``bug`` in builds of the last ``days``, oldest build first."""
        ...

    def matches_between(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredMatch]:
        """Every bug's matches in builds with ``since <= time < until`` (None: no bound),
        oldest build first: what ``recheck stats`` measures signatures by."""
        ...

    def builds(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        status: str | None = None,
        queue: str | None = None,
        uncategorized: bool = False,
        limit: int | None = None,
    ) -> list[StoredBuild]:
        """Stored builds with ``since <= time < until``, newest first; ``uncategorized``
        keeps those without any match (with ``status="FAILURE"``: the page of
        unexplained failures)."""
        ...

    def newest_event_time(self) -> datetime | None:
        """The time of the newest build whose events are stored; None when empty."""
        ...

    def test_summaries(
        self,
        days: float = DEFAULT_EVENT_DAYS,
        *,
        job: str | None = None,
        pattern: str | None = None,
        names: Collection[str] | None = None,
        now: datetime | None = None,
    ) -> list[TestSummary]:
        """Per test, its runs and failures in builds of the last ``days`` (whole UTC
        days), worst first (``recheck.store.testhistory``): the tests that failed, or
        those ``pattern`` (``testhistory.test_pattern``) or ``names`` (exact ids) name."""
        ...

    def build_tests(self, uuid: str) -> BuildTests | None:
        """The stored test run of build ``uuid`` (the run view); None without one."""
        ...

    def tested_builds(self, uuids: Collection[str]) -> dict[str, int]:
        """Of ``uuids``, the builds whose test results are stored -> failed tests."""
        ...

    def close(self) -> None:
        """Release files and locks; the store cannot be used afterwards."""
        ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...


def utc(moment: datetime | None) -> datetime:
    """``moment`` as an aware UTC datetime (naive means UTC); now when None."""
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def days_before(now: datetime, days: float) -> datetime:
    """``now`` minus ``days`` (which may be fractional)."""
    return now - timedelta(days=days)


def signature_hash(signature: Signature) -> str:
    """A digest of what decides a signature's matches: its query and matching flags.

    ``reclassify`` re-runs a signature when this changes; flags that only affect
    reporting (suppress-graph, resolved_at...) do not count.
    """
    what = [signature.query, signature.allow_nonvoting, list(signature.test_ids)]
    return hashlib.sha256(json.dumps(what).encode("utf-8")).hexdigest()


_BATCH = 5000
"""Events matched at a time: bounds memory while keeping each event's text for the match."""


def classify_events(
    signatures: Sequence[Signature], events: Iterable[tuple[str, Event]]
) -> Iterator[Match]:
    """The matches of ``signatures`` among events with ids ``<filename>:<line>``: what a
    store keeps for them, at ingest (``recheck.pipeline.ingest_build``) and reclassify."""
    batch: list[tuple[str, Event]] = []
    for item in events:
        batch.append(item)
        if len(batch) >= _BATCH:
            yield from _match_batch(signatures, batch)
            batch = []
    if batch:
        yield from _match_batch(signatures, batch)


def _match_batch(signatures: Sequence[Signature], batch: list[tuple[str, Event]]) -> list[Match]:
    by_id = dict(batch)
    found: list[Match] = []
    for bug, ids in match_events(signatures, batch).items():
        found.extend(Match.of(bug, event_id, by_id[event_id]) for event_id in ids)
    return found


def applicable(
    signatures: Sequence[Signature], build: Build, tests: SubunitResults | None = None
) -> tuple[list[Signature], dict[str, str]]:
    """The signatures to evaluate for ``build``, and why each other one is skipped.

    ``tests`` are the build's test results (None: it has no subunit stream); a
    signature with ``test_ids`` is evaluated only when one of those tests failed.
    The pipeline and every store decide by this one rule (it lives here, in the lowest
    layer that both use and that may read test results).
    """
    chosen: list[Signature] = []
    skipped: dict[str, str] = {}
    for signature in signatures:
        if not build.is_voting and not signature.allow_nonvoting:
            skipped[signature.bug] = "non-voting build; the signature lacks allow-nonvoting"
        elif signature.test_ids and (reason := _test_skip(signature, tests)) is not None:
            skipped[signature.bug] = reason
        else:
            chosen.append(signature)
    return chosen, skipped


def _test_skip(signature: Signature, tests: SubunitResults | None) -> str | None:
    # Imported here: most classifications need no test results (nor python-subunit).
    from recheck.logs.testresults import skip_reason

    return skip_reason(signature.test_ids, tests)
