"""Behind the comments: a classified event's builds go into the history store.

The comment is decided by the scanner (``recheck.bot.triage``) and sent first; the
service then stores each classified build with every event and its matches
(``recheck.pipeline.ingest_build``), from the queue's ``history`` column, so that
storing never delays a comment and resumes after a crash. New or changed signatures
are re-run over the stored history (``Store.reclassify``) by the same worker, never by
the one about to comment.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from recheck.bot.gerrit.events import FailureEvent
from recheck.bot.outcome import JobOutcome
from recheck.bot.triage import SignatureSet, build_options, notified
from recheck.config.files import Config
from recheck.logs.build import Build
from recheck.logs.buildlogs import build_end_time, read_build_info
from recheck.logs.logfiles import FileRule, rules_in_force
from recheck.logs.source import LogSource
from recheck.logs.sources import open_source
from recheck.pipeline import ingest_build
from recheck.query.signatures import Signature
from recheck.scan.anomaly.reading import BuildLogs
from recheck.store.anomalies import seen_elsewhere
from recheck.store.base import ReclassifyCounts, Store, StoreError

__all__ = ["History", "Stored", "to_store"]


def to_store(job: JobOutcome) -> bool:
    """Whether ``job``'s build was classified, so that it is to be stored."""
    return not job.logs_missing and job.error is None and job.problem is None


@dataclass(frozen=True)
class Stored:
    """One build stored: its events, and its bugs as a comment would name them."""

    events: int
    bugs: tuple[str, ...]


class History:
    """The history store as the bot feeds it; see the module docstring."""

    def __init__(self, config: Config, signatures: SignatureSet, store: Store) -> None:
        self.config = config
        self.signatures = signatures
        self.store = store
        self._lock = threading.Lock()
        self._wanted: list[Signature] | None = None
        self._no_tests = False

    def want_reclassify(self, signatures: list[Signature]) -> None:
        """``SignatureSet.on_load``: re-run ``signatures`` over the history, later (the
        latest set wins). Nothing is lost if the bot stops first: the set loaded when it
        starts again is compared with the stored signatures."""
        with self._lock:
            self._wanted = signatures

    def flaky(self, tests: Sequence[str]) -> set[str]:
        """Which of ``tests`` the stored test history knows as flaky (the comment marks
        them). Raises StoreError once when the store keeps no test history (a cluster),
        then answers none."""
        if self._no_tests:
            return set()
        try:
            found = self.store.test_summaries(names=tests)
        except StoreError:
            self._no_tests = True
            raise
        return {summary.test for summary in found if summary.flaky}

    def elsewhere(self, source: LogSource, rules: tuple[FileRule, ...], build: Build) -> int | None:
        """In how many other changes' failures of the last week the top anomaly of this
        failed build (``build``, its logs in ``source``) was a top anomaly too; None when
        the store keeps no anomaly book (a cluster) or the build has no anomaly."""
        found = seen_elsewhere(self.store, BuildLogs(source, rules, build, source.location))
        return None if found is None else found[1]

    def reclassify(self) -> ReclassifyCounts | None:
        """Re-run the new or changed signatures of the wanted set; None if none is wanted.
        Raises StoreError."""
        with self._lock:
            wanted, self._wanted = self._wanted, None
        return None if wanted is None else self.store.reclassify(wanted)

    def store_job(
        self,
        event: FailureEvent,
        job: JobOutcome,
        received: float,
        on_problem: Callable[[str], None],
        pause: Callable[[], None],
    ) -> Stored:
        """Read ``job``'s logs again and store its build (replacing an earlier copy).

        The build's time is Zuul's end time when the job names its Zuul build, else when
        its failure was ``received``. ``pause`` is called before each read of a log file
        and now and then while its events are stored: the service waits there while a
        comment is being made (the two share the CPUs and one interpreter lock). Raises
        SourceError, BuildInfoError, StoreError or OSError.
        """
        source = open_source(job.url, self.config)
        _pause_reads(source, pause)
        try:
            build = read_build_info(source, build_options(event, job))
            rules = rules_in_force(self.config.files)
            when = build_end_time(source, rules, read_logs=False)
            signatures = self.signatures.current()
            ingested = ingest_build(
                self.store, source, build, signatures, rules=rules,
                keep_debug=self.config.keep_debug,
                on_problem=lambda problem: on_problem(f"{job.name}: {problem}"),
                on_count=lambda _: pause(), when=when or datetime.fromtimestamp(received, UTC),
            )  # fmt: skip
        finally:
            source.close()
        bugs = dict.fromkeys(match.bug for match in ingested.matches)
        return Stored(ingested.events, notified(list(bugs), signatures))


def _pause_reads(source: LogSource, pause: Callable[[], None]) -> None:
    """Make every file ``source`` opens call ``pause`` before each read. The instance's
    ``open`` is replaced, not the source wrapped: it stays what it is (a DirSource...)
    for the stages that look."""
    opener = source.open

    def open_pausing(path: str) -> BinaryIO:
        return _PausingReader(opener(path), pause)  # type: ignore[return-value]

    setattr(source, "open", open_pausing)  # noqa: B010 (mypy refuses assigning a method)


class _PausingReader(io.RawIOBase):
    """A log file's bytes, each read waiting first for ``pause`` to return."""

    def __init__(self, raw: BinaryIO, pause: Callable[[], None]) -> None:
        super().__init__()
        self._raw = raw
        self._pause = pause
        limit = getattr(raw, "max_text_bytes", None)  # a fetched file's limit goes along
        if limit is not None:
            self.max_text_bytes = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._pause()
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()
