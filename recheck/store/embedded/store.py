"""The embedded store: a SQLite catalog and a tantivy event index in one directory.

Ingests are all or nothing and readers never block nor see half a build, without a
transaction spanning both files: ``EmbeddedStore`` says how.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid as uuidlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from recheck.lib.locking import FileLock, LockBusy
from recheck.logs.build import Build
from recheck.models import Event
from recheck.query import Doc, Query
from recheck.query.signatures import Signature
from recheck.store.base import (
    DEFAULT_BUILD_DAYS,
    DEFAULT_EVENT_DAYS,
    GcCounts,
    ReclassifyCounts,
    Retention,
    StoredBuild,
    StoredClassification,
    StoredMatch,
    StoreError,
    days_before,
    signature_hash,
    utc,
)
from recheck.store.embedded import catalog, testcatalog, testqueries
from recheck.store.embedded.documents import DocumentMaker
from recheck.store.embedded.index import (
    INDEX_VERSION,
    WORDS_VERSION,
    EventIndex,
    candidate_query,
)
from recheck.store.testhistory import BuildTests, TestSummary, test_pattern

if TYPE_CHECKING:
    import tantivy

    from recheck.logs.testresults import SubunitResults
    from recheck.models import Match

__all__ = ["GARBAGE_GRACE", "GC_INTERVAL", "AlreadyStored", "EmbeddedStore", "generated_uuid"]

GARBAGE_GRACE = timedelta(minutes=5)
"""How long replaced or orphaned events stay in the index: longer than any reader takes
between reading the catalog and opening its index snapshot."""
GC_INTERVAL = timedelta(hours=1)
"""With ``auto_gc``, an ingest runs retention when the last pass is older than this."""
LOCK_TIMEOUT_S = 600.0
"""How long a write waits for another process's write before giving up."""
_RECLASSIFY_BATCH = 500
"""Builds whose matches are replaced per catalog transaction during ``reclassify``."""

_T = TypeVar("_T")

_CATALOG = "catalog.sqlite"
_INDEX = "index"
_LOCK = "writer.lock"


class AlreadyStored(StoreError):
    """Another process stored the build while this one prepared it: it is not stored twice."""


def generated_uuid(build: Build) -> str:
    """The uuid given to a build that has none.

    A build with a log URL gets a name-based uuid (UUID5 of the URL), so ingesting the
    same logs again replaces the build instead of adding a copy; a build with neither
    uuid nor log URL gets a random one (each ingest then adds a new build).
    """
    if build.log_url:
        return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, build.log_url))
    return str(uuidlib.uuid4())


class EmbeddedStore:
    """A store in a local directory: no server, several processes may read at once.

    Layout of the store directory (``$RECHECK_HOME``, default ``./.recheck/``)::

        catalog.sqlite   builds, matches, signature versions (recheck.store.embedded.catalog)
        index/           every event of every stored build (recheck.store.embedded.index)
        writer.lock      held by the one process writing at a time

    **Ingesting a build is all or nothing** without a transaction spanning both files:

    1. in the catalog, take a fresh index *generation* and record it as garbage;
    2. add the build's events to the index, tagged with that generation, and commit the
       index (tantivy's commit is atomic);
    3. in one catalog transaction, write the build row (pointing at the new generation)
       and its matches, un-garbage the new generation and mark the replaced one garbage;
    4. delete garbage generations from the index once no reader can still need them.

    Readers see only the generations the catalog names, so a build appears at step 3
    whole, and a crash or Ctrl-C anywhere leaves either the old build or no build: the
    orphaned events are garbage, deleted by a later write. Re-ingesting the same uuid
    replaces the build the same way.

    **Readers never block and never see half a build.** A reader reads the catalog first
    (which generations are visible) and opens an index snapshot right after; a replaced
    generation stays in the index for ``GARBAGE_GRACE`` after the catalog switched, far
    longer than that gap, so the snapshot still holds whichever generation the reader
    chose. SQLite's WAL journal lets readers read while a writer commits, and tantivy
    readers work on immutable segments.

    Writers (ingest, gc) are serialized by ``writer.lock`` (an ``flock``: released by the
    kernel if the process dies) and, within a process, by a thread lock. ``reclassify``
    writes only the catalog, guarded per build by its generation.

    **Two ingests of one build store it once.** When ``has_build`` said a build was not
    stored (``recheck ingest`` asks, unless ``--force``) and another process stored it
    since, ``ingest`` waits for that process's write lock, then raises ``AlreadyStored``
    without reading the events, so the logs are not fetched and stored a second time.
    """

    def __init__(
        self,
        path: Path,
        *,
        retention: Retention | None = None,
        auto_gc: bool = False,
        lock_timeout: float = LOCK_TIMEOUT_S,
    ) -> None:
        """Open (creating if needed) the store in directory ``path``.

        ``auto_gc`` runs retention after an ingest when the last pass is older than
        ``GC_INTERVAL``. Raises StoreError when the directory cannot be created or its
        files are damaged or from a newer recheck.
        """
        self._path = Path(path)
        self.retention = retention or Retention()
        self.auto_gc = auto_gc
        self.lock_timeout = lock_timeout
        if self._path.exists() and not self._path.is_dir():
            raise StoreError(
                self._path, "exists and is not a directory; choose another place with RECHECK_HOME"
            )
        try:
            self._path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                self._path,
                f"cannot create the store directory ({exc.strerror or exc}); choose "
                "another place with RECHECK_HOME",
            ) from None
        self._writer_conn = catalog.connect(self._path / _CATALOG)
        self._check_index_version()
        self._index = EventIndex(self._path / _INDEX)
        self._thread_lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._on_step: Callable[[str], None] | None = None
        """Test seam: called with the name of each ingest step as it completes."""

    @property
    def path(self) -> str:
        """The store directory."""
        return str(self._path)

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the catalog connections; the store cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        with self._thread_lock, self._readers_lock:
            for conn in [self._writer_conn, *self._readers]:
                with suppress(sqlite3.Error):
                    conn.close()

    # ------------------------------------------------------------------ connections

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (sqlite3 connections are not shared by threads)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = catalog.connect(self._path / _CATALOG)
            self._local.conn = conn
            with self._readers_lock:  # not the write lock: readers never wait for writers
                self._readers.append(conn)
        return conn

    def _read(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        """``query`` on this thread's read connection; SQLite's errors become StoreError."""
        try:
            return query(self._reader())
        except sqlite3.Error as exc:
            raise StoreError(
                self._path / _CATALOG,
                f"cannot read the catalog ({exc}); if the file is damaged, move the store "
                "directory away and ingest the builds again",
            ) from None

    def _check_index_version(self) -> None:
        conn = self._writer_conn
        stored = catalog.get_meta(conn, "index_version")
        if stored is None:  # a new store: written once, so readers never wait on a lock here
            with catalog.transaction(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('index_version', ?)",
                    (str(INDEX_VERSION),),
                )
        elif int(stored) > INDEX_VERSION:
            raise StoreError(
                self._path / _INDEX,
                f"written by a newer recheck (index version {stored}, this recheck "
                f"knows up to {INDEX_VERSION}); upgrade recheck or use another RECHECK_HOME",
            )

    def _legacy(self, generations: Iterable[int]) -> bool:
        """Whether one of ``generations`` was written before the index held words
        (version 3): its terms are tokens (``candidate_query``'s ``legacy``)."""
        oldest = min(generations, default=None)
        if oldest is None:
            return False

        def first_with_words(conn: sqlite3.Connection) -> float:
            if int(catalog.get_meta(conn, "index_version") or 0) < WORDS_VERSION:
                return float("inf")  # nothing written since the upgrade
            since = catalog.get_meta(conn, "words_since")
            return 0 if since is None else int(since)  # None: a store born with words

        return oldest < self._read(first_with_words)

    @staticmethod
    def exists(path: Path) -> bool:
        """Whether ``path`` holds a store (its catalog), without creating anything."""
        return (Path(path) / _CATALOG).is_file()

    @contextmanager
    def _writing(self) -> Iterator[tantivy.IndexWriter]:
        """Hold the write lock (thread and process) and an index writer for one write."""
        with self._thread_lock:
            if self._closed:
                raise StoreError(self._path, "the store is closed")
            with _process_lock(self._path / _LOCK, self.lock_timeout), self._index.writer() as w:
                yield w

    def _step(self, name: str) -> None:
        if self._on_step is not None:
            self._on_step(name)

    # ------------------------------------------------------------------ writing

    def has_build(self, uuid: str) -> bool:
        """Whether a build with this uuid is stored."""
        stored = self._read(lambda conn: catalog.has_build(conn, uuid))
        if not stored:
            self._absent().add(uuid)
        return stored

    def _absent(self) -> set[str]:
        """Builds this thread's ``has_build`` found missing: stored by the time its
        ``ingest`` writes them, another process (or thread) stored them meanwhile. Per
        thread: a reader thread asking must not turn a writer thread's ingest away."""
        absent: set[str] | None = getattr(self._local, "absent", None)
        if absent is None:
            absent = self._local.absent = set()
        return absent

    def ingest(
        self,
        build: Build,
        events: Iterable[tuple[str, Event]],
        matches: Iterable[Match],
        when: datetime | None = None,
        *,
        tests: SubunitResults | None = None,
    ) -> str:
        """Store ``build`` with its events and matches, replacing an earlier copy; all or none.

        ``tests`` (its subunit results) go in the same catalog transaction as the build row.

        ``when`` is the build's time (its start or end; default now): time windows and
        retention go by it. A build without a uuid gets one from ``generated_uuid``,
        and every stored event lacking ``build_uuid`` gets the build's, so each event
        names its build. ``events`` and ``matches`` are read once, in that order.
        Returns the build's uuid.
        """
        maker = self.document_maker(build)
        documents = (
            maker.document(rank, event_id, event)
            for rank, (event_id, event) in enumerate(events, start=1)
        )
        return self.ingest_documents(build, documents, matches, when, tests=tests)

    @staticmethod
    def document_maker(build: Build) -> DocumentMaker:
        """What makes the index documents of ``build``'s events for ``ingest_documents``
        (where the events are split: in forked workers too)."""
        uuid = build.build_uuid or generated_uuid(build)
        return DocumentMaker(uuid, replace(build, build_uuid=uuid).event_fields())

    def ingest_documents(
        self,
        build: Build,
        documents: Iterable[str],
        matches: Iterable[Match],
        when: datetime | None = None,
        *,
        tests: SubunitResults | None = None,
    ) -> str:
        """``ingest`` for events already made into documents by ``document_maker(build)``,
        in the build's order."""
        moment = utc(when)
        uuid = build.build_uuid or generated_uuid(build)
        build = replace(build, build_uuid=uuid)
        conn = self._writer_conn
        was_absent = uuid in self._absent()
        self._absent().discard(uuid)
        with self._writing() as writer:
            if was_absent and catalog.has_build(conn, uuid):
                raise AlreadyStored(
                    self._path,
                    f"build {uuid} is already stored: another process stored it while this "
                    "one was preparing it; skipped (--force ingests it again)",
                )
            started = utc(None)
            with catalog.transaction(conn):
                generation = catalog.new_generation(conn, started)
                # Events of this version go in: an older recheck must no longer read it.
                version = int(catalog.get_meta(conn, "index_version") or 0)
                if version < INDEX_VERSION:
                    catalog.set_meta(conn, "index_version", str(INDEX_VERSION))
                if version < WORDS_VERSION:
                    catalog.set_meta(conn, "words_since", str(generation))
            stamp = catalog.seconds(moment)
            count = self._index.add_documents(writer, generation, stamp, documents)
            rows = [(m.bug, m.filename, int(m.line), m.message) for m in matches]
            self._step("events-added")
            writer.commit()
            self._step("index-committed")
            with catalog.transaction(conn):
                catalog.put_build(
                    conn,
                    build,
                    time=moment,
                    ingested_at=started,
                    generation=generation,
                    events=count,
                    matches=rows,
                )
                testcatalog.put_tests(conn, build, moment, tests)
            self._step("catalog-committed")
            self._collect_garbage(writer, started)
            self._step("garbage-collected")
        if self.auto_gc and self._gc_due(utc(None)):
            self.gc()
        return uuid

    def _collect_garbage(self, writer: tantivy.IndexWriter, now: datetime) -> int:
        """Delete the garbage generations older than the grace period; returns how many."""
        conn = self._writer_conn
        generations = catalog.garbage(conn, now - GARBAGE_GRACE)
        if not generations:
            return 0
        self._index.delete_generations(writer, generations)
        writer.commit()
        with catalog.transaction(conn):
            catalog.forget_garbage(conn, generations)
        return len(generations)

    def _gc_due(self, now: datetime) -> bool:
        last = catalog.get_meta(self._reader(), "last_gc")
        return last is None or catalog.moment(int(last)) <= now - GC_INTERVAL

    def gc(
        self,
        now: datetime | None = None,
        event_days: float | None = None,
        build_days: float | None = None,
    ) -> GcCounts:
        """Drop events older than ``event_days``, builds and matches older than ``build_days``.

        Defaults come from the store's ``retention``. Events go first from the catalog's
        view (the builds are marked as having no events), then from the index, so a
        crash in between leaves only invisible events that the next pass deletes.
        """
        moment = utc(now)
        event_cut = days_before(
            moment, self.retention.event_days if event_days is None else event_days
        )
        build_cut = days_before(
            moment, self.retention.build_days if build_days is None else build_days
        )
        # Retention never keeps the events of a build it drops.
        event_cut = max(event_cut, build_cut)
        conn = self._writer_conn
        with self._writing() as writer:
            with catalog.transaction(conn):
                catalog.drop_events_before(conn, event_cut)
                tested = testcatalog.drop_tests_before(conn, event_cut)
                builds, matches = catalog.drop_builds_before(conn, build_cut, moment)
                catalog.set_meta(conn, "last_gc", str(catalog.seconds(utc(None))))
            events = self._index.count_before(catalog.seconds(event_cut))
            if events:
                self._index.delete_before(writer, catalog.seconds(event_cut))
                writer.commit()
            self._collect_garbage(writer, max(moment, utc(None)))
        return GcCounts(events=events, builds=builds, matches=matches, tests=tested)

    # ------------------------------------------------------------------ reading

    def search(
        self,
        query: Query | Signature,
        days: float = DEFAULT_EVENT_DAYS,
        queue: str | None = None,
        now: datetime | None = None,
    ) -> Iterator[tuple[str, Event]]:
        """The events of builds of the last ``days`` that ``query`` matches, oldest first.

        The index finds candidates (restricted to the visible generations of the window,
        and to ``queue`` if given); the engine decides each one.
        """
        compiled = query.compiled if isinstance(query, Signature) else query
        since = days_before(utc(now), days)
        visible = self._read(lambda conn: catalog.visible_generations(conn, since, queue))
        # Catalog first, then the index snapshot: see the module docstring.
        searcher = self._index.searcher()
        generations = {g: visible[g][1] for g in sorted(visible, key=lambda g: (visible[g][0], g))}
        candidates = candidate_query(compiled.root, self._legacy(generations))
        for _, _, event_id, event in self._index.events(generations, candidates, searcher):
            if compiled.matches(Doc(event)):
                yield event_id, event

    def classify(
        self, build: Build, signatures: Sequence[Signature], since: datetime | None = None
    ) -> StoredClassification:
        """Which ``signatures`` match the stored events of the build ``build.build_uuid``
        names; the stored build's fields fill in those ``build`` leaves unknown.

        The index finds each signature's candidates among that build's events and the
        engine decides, as for ``search``. Raises StoreError when the build is not
        stored or its events are no longer kept.
        """
        from recheck.models import Match
        from recheck.store.base import applicable

        uuid = build.build_uuid
        stored = self._read(lambda conn: catalog.build_with_events(conn, uuid)) if uuid else None
        if stored is None:
            raise StoreError(
                self._path,
                f"no stored events of build {uuid!r}: ingest it first (recheck ingest), or "
                "its events were dropped by retention (store.event_days)",
            )
        generation, known = stored
        build = known.build.updated(build.event_fields())
        result = StoredClassification(build)
        chosen, result.skipped = applicable(signatures, build)
        shared = {generation: known.build.event_fields()}
        searcher = self._index.searcher()
        legacy = self._legacy(shared)
        for signature in chosen:
            compiled = signature.compiled
            candidates = candidate_query(compiled.root, legacy)
            result.totals[signature.bug] = 0
            for _, _, event_id, event in self._index.events(shared, candidates, searcher):
                if compiled.matches(Doc(event)):
                    result.matches.append(Match.of(signature.bug, event_id, event))
                    result.totals[signature.bug] += 1
        return result

    def matches_for(
        self, bug: str, days: float = DEFAULT_BUILD_DAYS, now: datetime | None = None
    ) -> list[StoredMatch]:
        """The matches of ``bug`` in builds of the last ``days``, oldest build first."""
        since = days_before(utc(now), days)
        return self._read(lambda conn: catalog.matches_for(conn, bug, since))

    def matches_between(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredMatch]:
        """Every bug's matches in builds with ``since <= time < until``, oldest build first."""
        low = None if since is None else utc(since)
        high = None if until is None else utc(until)
        return self._read(lambda conn: catalog.matches_between(conn, low, high))

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
        """Stored builds with ``since <= time < until``, newest first.

        ``status`` and ``queue`` filter on the build fields; ``uncategorized`` keeps
        the builds without any match.
        """
        return self._read(
            lambda conn: catalog.list_builds(
                conn,
                None if since is None else utc(since),
                None if until is None else utc(until),
                status=status,
                queue=queue,
                uncategorized=uncategorized,
                limit=limit,
            )
        )

    def newest_event_time(self) -> datetime | None:
        """The time of the newest build whose events are stored; None when there is none."""
        return self._read(catalog.newest_time)

    # ------------------------------------------------------------------ tests

    def test_summaries(
        self,
        days: float = DEFAULT_EVENT_DAYS,
        *,
        job: str | None = None,
        pattern: str | None = None,
        names: Collection[str] | None = None,
        now: datetime | None = None,
    ) -> list[TestSummary]:
        """Per test, runs and failures of the last ``days`` (``Store.test_summaries``)."""
        since = days_before(utc(now), days)
        matcher = None if pattern is None else test_pattern(pattern)
        return self._read(
            lambda conn: testqueries.summaries(conn, since, job=job, pattern=matcher, names=names)
        )

    def build_tests(self, uuid: str) -> BuildTests | None:
        """The stored test run of build ``uuid``; None when it has none."""
        return self._read(lambda conn: testqueries.build_tests(conn, uuid))

    def tested_builds(self, uuids: Collection[str]) -> dict[str, int]:
        """Of ``uuids``, the builds with stored test results -> their failed tests."""
        return self._read(lambda conn: testqueries.tested_builds(conn, uuids))

    # ------------------------------------------------------------------ reclassify

    def reclassify(
        self,
        signatures: Sequence[Signature],
        since: datetime | None = None,
        *,
        only_changed: bool = True,
    ) -> ReclassifyCounts:
        """Re-run new or changed signatures over stored events and replace their matches.

        A signature is new or changed when its ``signature_hash`` was never recorded
        by a reclassify (``only_changed=False`` re-runs them all). Only builds whose
        events are still stored (and of ``since`` or later) are re-run; older builds
        keep the matches they had. Builds are classified as an ingest would: the
        pipeline's rules for non-voting builds apply; signatures with test ids are not
        re-run (the store does not keep test results), so they keep their matches.
        """
        # Imported here: the pipeline will import the store to ingest, and the store
        # needs the pipeline's classification rules only for this.
        from recheck.store.base import applicable, classify_events

        reader = self._reader()
        recorded = catalog.recorded_hashes(reader)
        versions = {s.bug: signature_hash(s) for s in signatures}
        # Signatures with test_ids need the build's subunit results, which the store does
        # not keep: re-running them would wrongly drop their matches, so they keep the
        # ones their ingest found.
        rerun = [
            s
            for s in signatures
            if not s.test_ids and (not only_changed or (s.bug, versions[s.bug]) not in recorded)
        ]
        if not rerun:
            return ReclassifyCounts()
        builds = catalog.builds_with_events(reader, None if since is None else utc(since))
        generations = {generation: stored.build.event_fields() for generation, stored in builds}
        searcher = self._index.searcher()
        legacy = self._legacy(generations)
        hits: dict[int, dict[int, tuple[str, Event]]] = {}
        for signature in rerun:
            compiled = signature.compiled
            candidates = candidate_query(compiled.root, legacy)
            for generation, rank, event_id, event in self._index.events(
                generations, candidates, searcher
            ):
                if compiled.matches(Doc(event)):
                    hits.setdefault(generation, {})[rank] = (event_id, event)
        bugs = [s.bug for s in rerun]
        total = 0
        conn = self._writer_conn
        for start in range(0, len(builds), _RECLASSIFY_BATCH):
            with self._thread_lock, catalog.transaction(conn):
                for generation, stored in builds[start : start + _RECLASSIFY_BATCH]:
                    found = hits.get(generation, {})
                    chosen, _ = applicable(rerun, stored.build)
                    events = [found[rank] for rank in sorted(found)]
                    rows = [
                        (m.bug, m.filename, m.line, m.message)
                        for m in classify_events(chosen, events)
                    ]
                    if catalog.replace_matches(conn, stored.uuid, generation, bugs, rows):
                        total += len(rows)
        with self._thread_lock, catalog.transaction(conn):
            catalog.record_versions(conn, ((s.bug, versions[s.bug]) for s in rerun), utc(None))
        return ReclassifyCounts(signatures=tuple(bugs), builds=len(builds), matches=total)

    # ------------------------------------------------------------------ diagnostics

    def indexed_documents(self) -> int:
        """Documents in the event index, visible or not (for benchmarks and tests)."""
        return self._index.num_docs()

    def index_bytes(self) -> int:
        """Size of the event index on disk."""
        return sum(p.stat().st_size for p in (self._path / _INDEX).rglob("*") if p.is_file())


@contextmanager
def _process_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``, waiting up to ``timeout`` seconds for it."""
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except LockBusy as busy:
        raise StoreError(
            path,
            f"the store is busy: {busy.holder or 'another process'} has been writing to it "
            f"for more than {timeout:.0f} s; wait for it to finish and try again",
        ) from None
    except OSError as exc:
        raise StoreError(path, f"cannot open the write lock ({exc.strerror or exc})") from None
    try:
        yield
    finally:
        lock.release()
