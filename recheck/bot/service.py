"""The bot's work on its queue: raw event -> FailureEvent -> FailureReport -> comment.

Workers take due rows of the durable queue (``recheck.bot.queue``) and move each one
step at a time, recording every step before the next, so a crash or a slow build never
loses or blocks an event. The comment is decided by the scanner and sent first; one
history worker then stores the event's builds (``recheck.bot.history``), pausing
whenever a comment worker is busy. ``RECHECK_BOT_CRASH_AT=<step>`` exits at a step
(crash tests).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from recheck.bot.comment import comment_text
from recheck.bot.gerrit.events import (
    FailureEvent,
    MalformedEvent,
    decode_event,
    failure_from_gerrit,
    failure_from_zuul,
)
from recheck.bot.gerrit.review import PostError, Reviewer
from recheck.bot.history import History, to_store
from recheck.bot.log import log
from recheck.bot.metrics import Metrics
from recheck.bot.outcome import DryRunOutput, FailureReport, JobOutcome, Notifier
from recheck.bot.queue import BotQueue, QueueRow, report_from_json, report_to_json
from recheck.bot.sampling import (
    SAMPLE_SOURCE,
    SampledJob,
    fetchable,
    record_sample,
    sampled_jobs,
    sampled_zuul_jobs,
)
from recheck.bot.triage import Triage
from recheck.config.bot import BotSettings
from recheck.lib.backoff import Backoff
from recheck.lib.errors import RecheckError
from recheck.logs.buildlogs import NoLogFilesError
from recheck.logs.source import SourceError
from recheck.models import BugTracker

__all__ = ["CRASH_ENV", "Service", "ServiceOptions"]

CRASH_ENV = "RECHECK_BOT_CRASH_AT"
MAX_STEP_FAILURES = 5
"""Unexpected errors on one row before it is given up."""
POST_GIVE_UP = 86400.0
"""Seconds after which a comment Gerrit keeps refusing (5xx, down) is given up; storing
an event's builds in the history store too (the logs gone, the store broken)."""
KEEP_FINISHED = 14 * 86400.0
"""Finished rows are forgotten after this long (the key of a re-sent event is too)."""
RAW_IN_LOG = 2000
"""Characters of a malformed raw event shown in the log."""


@dataclass(frozen=True)
class ServiceOptions:
    """How the bot reports: ``comment`` False is --no-comment; ``dry_run`` prints each
    comment as a JSON line (``{"change", "patchset", "message"}``) instead of posting."""

    comment: bool = True
    dry_run: bool = False


class Service:
    """Moves queued events through their steps; see the module docstring."""

    def __init__(
        self,
        settings: BotSettings,
        queue: BotQueue,
        triage: Triage,
        reviewer: Reviewer | None,
        tracker: BugTracker,
        *,
        notifiers: Sequence[Notifier] = (),
        metrics: Metrics | None = None,
        history: History | None = None,
        options: ServiceOptions | None = None,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.triage = triage
        self.reviewer = reviewer
        self.tracker = tracker
        self.notifiers = list(notifiers)
        self.metrics = metrics or Metrics()
        self.metrics.queue_counts = queue.counts
        self.history = history
        if history is not None:
            self.metrics.history_backlog = queue.history_backlog
        self.options = options or ServiceOptions()
        self.out = out or sys.stdout
        self.clock = clock
        self.log_backoff = Backoff(initial=settings.log_poll, maximum=300.0)
        self.retry_backoff = Backoff(initial=settings.retry, maximum=600.0)
        self._projects = re.compile(settings.projects)
        self._jobs = re.compile(settings.job_filter)
        self._crash_at = os.environ.get(CRASH_ENV, "")
        self._wake = threading.Condition()
        self._busy_rows: set[int] = set()
        self._busy_changes: set[str] = set()
        self._stopping = False
        self._failures: dict[int, int] = {}
        self._print_lock = threading.Lock()
        self._dry_run = DryRunOutput(self.out)
        self._pruned = 0.0
        self._history_lock = threading.Lock()
        self._paused = 0.0
        """Seconds the build being stored has waited for comment workers so far."""

    # --- the reader's side -----------------------------------------------------------

    def enqueue(self, source: str, raw: str) -> int:
        """Store a raw event (before anything reads it) and wake a worker."""
        row = self.queue.add(source, raw, self.clock())
        self.metrics.add("events_received")
        self._crash("after-enqueue")
        with self._wake:
            self._wake.notify()
        return row

    # --- workers ---------------------------------------------------------------------

    def work_forever(self) -> None:
        """A worker: handle due rows until ``stop``."""
        while not self._stopping:
            if not self.work_once():
                self._sleep_until_due()

    def stop(self) -> None:
        """Ask the workers to finish the step they are on and return."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()

    def drain(self) -> None:
        """Handle rows until none needs work (``--once``), waiting for due times."""
        while not self._stopping:
            if self.work_once():
                continue
            if self.queue.wake_time() is None and not self._busy_rows:
                return
            self._sleep_until_due()

    def work_once(self) -> bool:
        """Take one due row and move it as far as it can go now; False if none was due."""
        row = self._claim()
        if row is None:
            return False
        try:
            self._advance(row)
        finally:
            change = self.queue.get(row.id).change  # set by parsing when it was None
            with self._wake:
                self._busy_rows.discard(row.id)
                self._busy_changes.discard(row.change or "")
                self._busy_changes.discard(change or "")
                self._wake.notify_all()
        self._prune()
        return True

    def _claim(self) -> QueueRow | None:
        with self._wake:
            for row in self.queue.due(self.clock()):
                change = row.change
                if row.id in self._busy_rows or (change and change in self._busy_changes):
                    continue
                self._busy_rows.add(row.id)
                if change:
                    self._busy_changes.add(change)
                return row
        return None

    def _sleep_until_due(self) -> None:
        with self._wake:
            if self._stopping:
                return
            due = self.queue.wake_time()
            wait = 5.0 if due is None else max(0.0, min(5.0, due - self.clock()))
            self._wake.wait(timeout=max(wait, 0.01))

    def _advance(self, row: QueueRow) -> None:
        """Run the row's steps while it stays due (parse, then triage, then post...)."""
        while not self._stopping:
            before = row.state
            try:
                if row.state == "received":
                    self._parse(row)
                elif row.state == "pending":
                    self._triage(row)
                elif row.state in ("reported", "posting"):
                    self._post(row)
                else:
                    return
            except Exception as exc:  # a bug of ours must not stop the bot: log, retry, give up
                self._unexpected(row, exc)
                return
            row = self.queue.get(row.id)
            if row.state == before or row.next_attempt > self.clock():
                return
            if row.change is not None and row.change not in self._busy_changes:
                with self._wake:  # parsed just now: other workers must leave its change alone
                    self._busy_changes.add(row.change)

    def _unexpected(self, row: QueueRow, exc: Exception) -> None:
        self.metrics.add("errors")
        count = self._failures.get(row.id, 0) + 1
        self._failures[row.id] = count
        problem = f"{type(exc).__name__}: {exc}"
        log("step_failed", logging.ERROR, row=row.id, state=row.state, key=row.key,
            problem=problem, attempt=count, exc_info_text=_traceback(exc))  # fmt: skip
        if count >= MAX_STEP_FAILURES:
            self.queue.fail(row.id, f"gave up after {count} errors; last: {problem}")
        else:
            self.queue.later(row.id, self.clock() + self.retry_backoff.delay(count - 1), problem)

    # --- step 1: parse ---------------------------------------------------------------

    def _parse(self, row: QueueRow) -> None:
        try:
            data = decode_event(row.raw)
            if row.source == "zuul":
                event = failure_from_zuul(data["build"], data["zuul_url"], data["tenant"])
                self._sample_zuul(data["build"], data["zuul_url"], data["tenant"])
            else:
                event = failure_from_gerrit(data, self.settings.gerrit.ci_users)
                self._sample(data)
        except (ValueError, MalformedEvent, KeyError, TypeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            self.metrics.add("errors")
            self.metrics.add("events_skipped")
            log("event_malformed", logging.WARNING, row=row.id, source=row.source,
                problem=problem, raw=row.raw[:RAW_IN_LOG])  # fmt: skip
            self.queue.skip(row.id, f"malformed: {problem}")
            return
        if event is None:
            self.metrics.add("events_skipped")
            self.queue.skip(row.id, "not a failure reported by a CI account")
            return
        if not self._projects.search(event.project):
            self.metrics.add("events_skipped")
            self.queue.skip(row.id, f"project {event.project} does not match bot.projects")
            return
        # As elastic-recheck's job filter: the other failed jobs are not looked at at all.
        jobs = tuple(job for job in event.jobs if self._jobs.search(job.name))
        if not any(job.voting for job in jobs):
            self.metrics.add("events_skipped")
            self.queue.skip(row.id, "no failed voting job matches bot.job_filter")
            return
        event = replace(event, jobs=jobs)
        deadline = row.received + self.settings.log_timeout
        if not self.queue.parsed(row.id, event.key, event.change, event.to_json(), deadline):
            self.metrics.add("events_skipped")
            log("event_duplicate", row=row.id, key=event.key)
            return
        self.metrics.add("failures")
        log("failure_received", row=row.id, key=event.key, change=event.change,
            patchset=event.patchset, project=event.project, queue=event.queue,
            jobs=[job.name for job in event.jobs])  # fmt: skip
        self._crash("after-parse")

    # --- step 2: logs and classification ---------------------------------------------

    def _triage(self, row: QueueRow) -> None:
        assert row.event is not None
        event = FailureEvent.from_json(row.event)
        now = self.clock()
        looked = self.triage.look(event)
        try:
            waiting = self.triage.waiting(looked)
            deadline = row.deadline if row.deadline is not None else now
            if waiting and now < deadline:
                wait = min(self.log_backoff.delay(row.attempts), deadline - now)
                self.queue.later(row.id, now + wait, "; ".join(waiting)[:2000])
                log("logs_not_ready", row=row.id, key=event.key, waiting=waiting,
                    retry_in=round(wait, 2))  # fmt: skip
                return
            outcomes = self.triage.outcomes(event, looked, self._problem(event))
        finally:
            self.triage.close(looked)
        report = FailureReport(
            event_id=event.key,
            change=event.change,
            patchset=event.patchset,
            project=event.project,
            branch=event.branch,
            queue=event.queue,
            url=event.url,
            jobs=tuple(outcomes),
            author=event.author,
        )
        for job in outcomes:
            if job.logs_missing:
                self.metrics.add("logs_missing")
            elif job.error is None and job.problem is None:
                self.metrics.add("builds_classified")
            else:
                self.metrics.add("errors")
            if job.problem is not None:
                log("job_not_checked", logging.WARNING, row=row.id, key=event.key,
                    job=job.name, problem=job.problem)  # fmt: skip
        text = self._comment(report)
        self._crash("after-classify")
        history = self.history is not None and any(to_store(job) for job in outcomes)
        self.queue.reported(row.id, report_to_json(report), text, history=history)
        log("failure_classified", row=row.id, key=event.key, bugs=list(report.bugs),
            jobs={job.name: _verdict(job) for job in outcomes},
            fully_recognized=report.fully_recognized)  # fmt: skip
        for notifier in self.notifiers:
            try:
                notifier.notify(report)
            except Exception as exc:  # a notifier's bug must not lose the Gerrit comment
                self.metrics.add("errors")
                log("notifier_failed", logging.ERROR, notifier=type(notifier).__name__,
                    key=event.key, problem=f"{type(exc).__name__}: {exc}")  # fmt: skip
        self._crash("after-report")

    def _comment(self, report: FailureReport) -> str | None:
        """The comment for ``report``, or None: without a known bug there is none unless
        bot.comment_on_unrecognized says so (elastic-recheck's way)."""
        if not (report.bugs or self.settings.comment_on_unrecognized):
            return None
        settings = self.settings
        return comment_text(report, settings.messages, self.tracker, settings.log_timeout)

    def _problem(self, event: FailureEvent) -> Callable[[str], None]:
        def warn(problem: str) -> None:
            log("log_file_problem", logging.WARNING, key=event.key, problem=problem)

        return warn

    # --- step 3: the comment ---------------------------------------------------------

    def _post(self, row: QueueRow) -> None:
        assert row.event is not None
        event = FailureEvent.from_json(row.event)
        text = row.comment
        if text is None:
            self.queue.done(row.id, "no comment: no known bug (bot.comment_on_unrecognized is "
                            "off, or messages.no_bugs_found is empty)")  # fmt: skip
            return
        if not self.options.comment:
            self.queue.done(row.id, "not posted: --no-comment")
            return
        if self.options.dry_run:
            self._dry_run.say(change=event.change, patchset=event.patchset, message=text)
            self.queue.done(row.id, "printed, not posted: --dry-run")
            return
        if self.reviewer is None:
            with self._print_lock:
                print(f"--- comment on change {event.change} patchset {event.patchset} "
                      f"({event.key})", file=self.out)  # fmt: skip
                print(text, file=self.out, flush=True)
            self.queue.done(row.id, "printed, not posted: gerrit.post is none")
            return
        now = self.clock()
        try:
            existing = self.reviewer.count(event, text)
            if row.state == "posting" and row.baseline is not None and existing > row.baseline:
                self.queue.done(row.id, "found posted after a restart")
                log("comment_found_posted", row=row.id, key=event.key, change=event.change,
                    patchset=event.patchset)  # fmt: skip
                return
            self.queue.posting(row.id, existing)
            self._crash("before-post")
            self.reviewer.post(event, text)
            self._crash("after-post")
        except PostError as exc:
            self.metrics.add("errors")
            if exc.transient and now - row.received < POST_GIVE_UP:
                wait = self.retry_backoff.delay(row.attempts)
                self.queue.later(row.id, now + wait, str(exc))
                log("comment_retry", logging.WARNING, row=row.id, key=event.key,
                    problem=str(exc), retry_in=round(wait, 2))  # fmt: skip
            else:
                self.queue.fail(row.id, f"comment not posted: {exc}")
                log("comment_failed", logging.ERROR, row=row.id, key=event.key, problem=str(exc))
            return
        self.queue.done(row.id, "posted")
        self.metrics.add("comments_posted")
        log("comment_posted", row=row.id, key=event.key, change=event.change,
            patchset=event.patchset, latency=round(self.clock() - row.received, 3))  # fmt: skip

    # --- behind the comments: the history store ---------------------------------------

    def history_forever(self) -> None:
        """The history worker: store builds until ``stop`` (one such thread is enough)."""
        while not self._stopping:
            if not self.history_once():
                self._sleep_for_history()

    def drain_history(self) -> None:
        """``--once``: store builds while comments are on their way or rows are due;
        a row waiting for a retry is left for the next run."""
        while self.history is not None and not self._stopping:
            if self.history_once():
                continue
            with self._wake:
                idle = not self._busy_rows
            if idle and self.queue.wake_time() is None and not self.history_once():
                return
            self._sleep_for_history()

    def history_once(self) -> bool:
        """Re-run changed signatures, or store one row's builds; False if nothing was due."""
        if self.history is None:
            return False
        with self._history_lock:
            try:
                counts = self.history.reclassify()
            except RecheckError as exc:  # the store: said, and tried again at the next start
                self.metrics.add("errors")
                log("reclassify_failed", logging.ERROR, problem=str(exc))
                return True
            if counts is not None:
                if counts.signatures:
                    log("history_reclassified", signatures=list(counts.signatures),
                        builds=counts.builds, matches=counts.matches)  # fmt: skip
                return True
            row = self.queue.history_due(self.clock())
            if row is None:
                return False
            if row.source == SAMPLE_SOURCE:
                self._record_sample(row, self.history)
            else:
                self._store(row, self.history)
        return True

    def _sample(self, data: object) -> None:
        """Queue the report's sampled passing jobs for the history worker (bot.success_sample:
        ``recheck stats`` counts their hits as false alarms)."""
        if self.history is None:
            return
        settings, config = self.settings, self.history.config
        share = settings.success_sample
        chosen = sampled_jobs(data, settings.gerrit.ci_users, share, lambda u: fetchable(u, config))
        self._queue_samples(chosen)

    def _sample_zuul(self, record: object, zuul_url: str, tenant: str) -> None:
        """The same for a buildset the Zuul poller queued: its passing builds."""
        if self.history is None:
            return
        config = self.history.config
        share = self.settings.success_sample
        accept = functools.partial(fetchable, config=config)
        self._queue_samples(sampled_zuul_jobs(record, zuul_url, tenant, share, accept))

    def _queue_samples(self, jobs: list[SampledJob]) -> None:
        for job in jobs:
            self.queue.add_history(SAMPLE_SOURCE, job.to_json(), "passing job sampled")

    def _record_sample(self, row: QueueRow, history: History) -> None:
        job = SampledJob.from_json(row.raw)
        try:
            signatures = history.signatures.current()
            bugs = record_sample(job, history.config, history.store, signatures)
        except SourceError as exc:  # the logs are not there yet, or never will be
            now = self.clock()
            if (
                not isinstance(exc, NoLogFilesError)
                and now - row.received < self.settings.log_timeout
            ):
                wait = self.log_backoff.delay(row.history_attempts)
                self.queue.history_later(row.id, now + wait, str(exc)[:2000])
            else:
                self.queue.history_done(row.id, f"not scanned: {exc}"[:2000], failed=True)
            return
        except (RecheckError, OSError) as exc:
            self._store_failed(row, exc)
            return
        self.metrics.add("success_builds_sampled")
        self.queue.history_done(row.id, "recorded: " + (" ".join(bugs) or "no signature matched"))
        log("success_sampled", row=row.id, job=job.name, url=job.url, bugs=bugs)

    def _store(self, row: QueueRow, history: History) -> None:
        assert row.event is not None and row.report is not None
        event = FailureEvent.from_json(row.event)
        report = report_from_json(row.report)
        self._crash("before-history")
        try:
            for job in report.jobs:
                if not to_store(job):
                    continue
                started, self._paused = time.monotonic(), 0.0
                stored = history.store_job(
                    event, job, row.received, self._problem(event), self._pause_for_comments
                )
                self.metrics.add("builds_stored")
                log("build_stored", row=row.id, key=event.key, job=job.name,
                    events=stored.events, bugs=list(stored.bugs),
                    seconds=round(time.monotonic() - started, 3),
                    paused=round(self._paused, 3))  # fmt: skip
                if stored.bugs != job.bugs:  # the signatures changed in between
                    log("stored_bugs_differ", logging.WARNING, row=row.id, key=event.key,
                        job=job.name, commented=list(job.bugs),
                        stored=list(stored.bugs))  # fmt: skip
        except _Stopping:
            return  # stored again when the bot starts again
        except Exception as exc:
            self._store_failed(row, exc)
            return
        self._crash("after-history")
        self.queue.history_done(row.id, "stored")

    def _store_failed(self, row: QueueRow, exc: Exception) -> None:
        self.metrics.add("errors")
        problem = f"{type(exc).__name__}: {exc}"
        expected = isinstance(exc, RecheckError | OSError)  # the logs, the store: retried
        now = self.clock()
        if now - row.received < POST_GIVE_UP and (
            expected or row.history_attempts + 1 < MAX_STEP_FAILURES
        ):
            wait = self.retry_backoff.delay(row.history_attempts)
            self.queue.history_later(row.id, now + wait, problem[:2000])
            log("store_retry", logging.WARNING, row=row.id, key=row.key, problem=problem,
                retry_in=round(wait, 2),
                exc_info_text=None if expected else _traceback(exc))  # fmt: skip
        else:
            self.queue.history_done(row.id, f"not stored: {problem}"[:2000], failed=True)
            log("store_failed", logging.ERROR, row=row.id, key=row.key, problem=problem)

    def _pause_for_comments(self) -> None:
        """Storing waits here while a comment worker is busy (they share the CPUs and,
        in Python, one interpreter lock); raises _Stopping when the bot stops."""
        with self._wake:
            since = time.monotonic()
            while self._busy_rows and not self._stopping:
                self._wake.wait(1.0)
            self._paused += time.monotonic() - since
            if self._stopping:
                raise _Stopping

    def _sleep_for_history(self) -> None:
        with self._wake:
            if not self._stopping:
                self._wake.wait(timeout=1.0)

    # --- housekeeping ----------------------------------------------------------------

    def _prune(self) -> None:
        now = self.clock()
        if now - self._pruned < 3600:
            return
        self._pruned = now
        removed = self.queue.prune(now - KEEP_FINISHED)
        if removed:
            log("queue_pruned", rows=removed)

    def _crash(self, step: str) -> None:
        if self._crash_at == step:
            log("crash_injected", logging.WARNING, step=step)
            os._exit(70)


class _Stopping(BaseException):
    """Raised into a build being stored when the bot stops: it is stored next time. Not
    an Exception, so that no handler of a stage takes it for a problem of one file."""


def _verdict(job: JobOutcome) -> str:
    if job.bugs:
        return " ".join(job.bugs)
    if job.logs_missing:
        return "logs missing"
    if job.problem:
        return f"not checked: {job.problem}"
    return f"error: {job.error}" if job.error else "unrecognized"


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-4000:]
