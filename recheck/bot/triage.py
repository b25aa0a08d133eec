"""A FailureEvent's jobs -> JobOutcomes: are the logs there yet, and what do they show.

Jobs whose logs are there are classified by the scanner, as ``recheck classify`` does
(``recheck.pipeline.classify_build``): the comment waits for nothing else. Storing the
builds in the history store follows behind the comment (``recheck.bot.history``).
Only hosts in ``fetch.allowed_hosts`` are fetched from. A job whose logs hold no file
recheck reads is reported as having no logs, never as an unrecognized failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from recheck.bot.gerrit.events import NO_LOG_RESULTS, FailedJob, FailureEvent
from recheck.bot.outcome import JobOutcome
from recheck.config.files import Config
from recheck.lib.errors import RecheckError
from recheck.logs.build import Build, BuildInfoError
from recheck.logs.buildlogs import NoLogFilesError
from recheck.logs.http import Fetcher, FetchError
from recheck.logs.logfiles import FileRule, rules_in_force
from recheck.logs.source import LogSource, SourceError
from recheck.logs.sources import open_source
from recheck.logs.zuul import NoLogUrlError
from recheck.pipeline import classify_build
from recheck.query.signatures import Signature, load_signatures

__all__ = ["NO_LOGS", "NO_LOG_URL", "SignatureSet", "Triage", "build_options", "notified"]

NO_LOGS = "no logs: none of its files is a log recheck reads"
"""The error of a job whose log root holds no file the file rules select."""

NO_LOG_URL = "no logs: Zuul recorded no log URL for its build"
"""The error of a job whose Zuul build record has no ``log_url`` (it uploaded none)."""


class SignatureSet:
    """The signatures of a directory, loaded again when a file there changes.

    ``on_load`` is told each set loaded (the first one too) before any job is
    classified with it: the bot re-runs new or changed signatures over the stored
    history there, so the pages show a new bug's past hits at once.
    """

    def __init__(
        self,
        directory: Path,
        on_error: Callable[[str], None],
        on_load: Callable[[list[Signature]], None] | None = None,
    ) -> None:
        self.directory = directory
        self._on_error = on_error
        self.on_load = on_load
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, float], ...] | None = None
        self._signatures: list[Signature] = []

    def current(self) -> list[Signature]:
        """The signatures as the files are now (reloaded if any was added or changed)."""
        with self._lock:
            try:
                stamp = tuple(
                    sorted((p.name, p.stat().st_mtime) for p in self.directory.glob("*.yaml"))
                )
            except OSError:
                stamp = ()
            if stamp != self._stamp:
                try:
                    signatures, errors = load_signatures(self.directory)
                except OSError as exc:
                    self._on_error(f"{exc}; keeping the {len(self._signatures)} loaded before")
                    return self._signatures
                for error in errors:
                    self._on_error(f"skipped {error}")
                self._signatures, self._stamp = signatures, stamp
                if self.on_load is not None:
                    self.on_load(signatures)
            return self._signatures


@dataclass
class _Ready:
    job: FailedJob
    source: LogSource | None = None
    outcome: JobOutcome | None = None
    """Set when the job's fate is known without classifying (no logs possible, refused)."""
    waiting: str | None = None
    """Why its logs are not there yet."""


class Triage:
    """Finds and classifies the logs of failed jobs."""

    def __init__(
        self,
        config: Config,
        signatures: SignatureSet,
        flaky: Callable[[Sequence[str]], Collection[str]] | None = None,
        elsewhere: Callable[[LogSource, tuple[FileRule, ...], Build], int | None] | None = None,
    ) -> None:
        self.config = config
        self.signatures = signatures
        self._flaky = flaky
        """Which of some failed tests the history knows as flaky (``flaky_tests``)."""
        self._elsewhere = elsewhere
        """In how many other changes an unrecognized build's top anomaly was seen lately
        (``seen_elsewhere``)."""
        self._policy = Fetcher(config.fetch, config_file=config.path)

    def look(self, event: FailureEvent) -> list[_Ready]:
        """Each job of ``event`` with its opened logs, its known outcome, or why it waits."""
        found: list[_Ready] = []
        try:
            for job in event.jobs:
                found.append(self._look(job))
        except BaseException:
            self.close(found)
            raise
        return found

    @staticmethod
    def waiting(looked: list[_Ready]) -> list[str]:
        """Why some jobs' logs are not there yet (empty when all are)."""
        return [f"{item.job.name}: {item.waiting}" for item in looked if item.waiting]

    def outcomes(
        self, event: FailureEvent, looked: list[_Ready], on_problem: Callable[[str], None]
    ) -> list[JobOutcome]:
        """Classify the jobs whose logs are there; the others' logs are missing."""
        outcomes: list[JobOutcome] = []
        for item in looked:
            if item.outcome is not None:
                outcomes.append(item.outcome)
            elif item.source is None:
                outcomes.append(_outcome(item.job, logs_missing=True))
            else:
                outcomes.append(self._classify(event, item.job, item.source, on_problem))
        return outcomes

    @staticmethod
    def close(looked: list[_Ready]) -> None:
        """Close the HTTP connections of the opened logs."""
        for item in looked:
            if item.source is not None:
                item.source.close()

    def _look(self, job: FailedJob) -> _Ready:
        if job.result in NO_LOG_RESULTS:
            return _Ready(job, outcome=_outcome(job, error=f"the job never ran ({job.result})"))
        if not job.url:
            return _Ready(job, outcome=_outcome(job, error="the CI gave no link to its logs"))
        try:
            self._policy.check(job.url)
        except FetchError as exc:  # fetch.allowed_hosts refused it: ours to fix, not public
            return _Ready(job, outcome=_outcome(job, problem=str(exc)))
        try:
            source = open_source(job.url, self.config)
        except NoLogUrlError:
            # The job was reported, so its build is over: a log URL will never come.
            return _Ready(job, outcome=_outcome(job, error=NO_LOG_URL))
        except SourceError as exc:
            return _Ready(job, waiting=str(exc))
        try:
            source.paths()  # lists the log root: raises SourceError until logs are there
        except SourceError as exc:
            source.close()  # its connections: the bot asks again until the logs are there
            return _Ready(job, waiting=str(exc))
        except BaseException:
            source.close()
            raise
        return _Ready(job, source=source)

    def _classify(
        self,
        event: FailureEvent,
        job: FailedJob,
        source: LogSource,
        on_problem: Callable[[str], None],
    ) -> JobOutcome:
        signatures = self.signatures.current()
        rules = rules_in_force(self.config.files)
        try:
            result = classify_build(
                source, signatures, build_options(event, job), rules=rules,
                keep_debug=self.config.keep_debug, with_tests=True,
            )  # fmt: skip
        except NoLogFilesError:
            return _outcome(job, error=NO_LOGS)
        except (SourceError, BuildInfoError, OSError) as exc:
            return _outcome(job, problem=str(exc))  # logged, never published
        for problem in result.problems:
            on_problem(f"{job.name}: {problem}")
        failed = tuple(sorted(result.tests.failed)) if result.tests is not None else ()
        flaky = self._known_flaky(failed, on_problem)
        bugs = notified(result.bugs, signatures)
        outcome = _outcome(job, bugs=bugs, tests=(failed, flaky))
        if bugs or self._elsewhere is None:
            return outcome
        try:  # reads the logs once more: only for a failure no known bug explains
            return replace(outcome, seen_elsewhere=self._elsewhere(source, rules, result.build))
        except (RecheckError, OSError) as exc:  # the comment goes without it
            on_problem(f"{job.name}: new or known unknown: {exc}")
            return outcome

    def _known_flaky(
        self, failed: tuple[str, ...], on_problem: Callable[[str], None]
    ) -> tuple[str, ...]:
        if not failed or self._flaky is None:
            return ()
        try:
            known = self._flaky(failed)
        except RecheckError as exc:  # the history store: the comment goes without marks
            on_problem(f"flaky tests unknown: {exc}")
            return ()
        return tuple(test for test in failed if test in known)


class _JobLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def result(self) -> str: ...
    @property
    def voting(self) -> bool: ...


def build_options(event: FailureEvent, job: _JobLike) -> Build:
    """What the event says of the build of ``job`` (a FailedJob or its JobOutcome)."""
    return Build().updated(
        {
            "build_name": job.name,
            "build_status": job.result,
            "build_queue": event.queue or None,
            "build_change": event.change,
            "build_patchset": event.patchset,
            "build_branch": event.branch or None,
            "project": event.project or None,
            "voting": "1" if job.voting else "0",
        }
    )


def notified(bugs: Sequence[str], signatures: Sequence[Signature]) -> tuple[str, ...]:
    """``bugs`` without those whose signature says ``suppress-notification``."""
    quiet = {signature.bug for signature in signatures if signature.suppress_notification}
    return tuple(bug for bug in bugs if bug not in quiet)


def _outcome(
    job: FailedJob,
    *,
    bugs: tuple[str, ...] = (),
    logs_missing: bool = False,
    error: str | None = None,
    problem: str | None = None,
    tests: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
) -> JobOutcome:
    return JobOutcome(
        name=job.name,
        url=job.url,
        result=job.result,
        voting=job.voting,
        bugs=bugs,
        logs_missing=logs_missing,
        error=error,
        problem=problem,
        failed_tests=tests[0],
        flaky_tests=tests[1],
    )
