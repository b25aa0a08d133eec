"""What the bot found for one failure event: the nouns its reporters (Gerrit, IRC) read.

``JobOutcome`` is what classification said about one failed job, ``FailureReport`` the
event with the outcomes of all its jobs, ``Notifier`` a reporter handed every finished
report, ``DryRunOutput`` where reporters say what they would do in a dry run. Kept apart
from the service so reporters do not import it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import ClassVar, Protocol, TextIO

__all__ = ["DryRunOutput", "FailureReport", "JobOutcome", "Notifier"]


@dataclass(frozen=True)
class JobOutcome:
    """One failed job of an event and what recheck made of it."""

    name: str
    """The job name, e.g. ``tempest-full-py3``."""
    url: str
    """The build's log URL or Zuul build page, as the CI reported it."""
    result: str
    """The CI's verdict: FAILURE, TIMED_OUT, POST_FAILURE, RETRY_LIMIT, NODE_FAILURE..."""
    voting: bool = True
    bugs: tuple[str, ...] = ()
    """Bug ids of the matching signatures, without ``suppress-notification`` ones."""
    logs_missing: bool = False
    """The job's logs never appeared within the wait: it could not be classified."""
    error: str | None = None
    """Why the job was not checked, as a fact about the job (it never ran, it has no
    logs): the comment says it."""
    problem: str | None = None
    """What on recheck's side kept it from checking the job (the store, the fetch
    policy, a log server, an exception): logged and counted, never published; the
    comment says only "not checked"."""
    failed_tests: tuple[str, ...] = ()
    """The ids of the tests that failed in the build (its subunit stream), sorted."""
    flaky_tests: tuple[str, ...] = ()
    """Those of ``failed_tests`` the test history knows as flaky."""
    seen_elsewhere: int | None = None
    """For an unrecognized job: in how many other changes' failures of the last week its
    top anomaly was a top anomaly too (None: not known)."""

    @property
    def recognized(self) -> bool:
        """Whether a known bug explains this job."""
        return bool(self.bugs)


@dataclass(frozen=True)
class FailureReport:
    """A failure event with the outcome of each of its failed jobs."""

    event_id: str
    """Stable id of the event (the key that makes comments exactly-once)."""
    change: str
    """Change number, e.g. ``"98765"``."""
    patchset: str
    project: str
    branch: str
    queue: str
    """Zuul pipeline: ``gate``, ``check``..."""
    url: str
    """The change's web page."""
    jobs: tuple[JobOutcome, ...]
    author: str = ""
    """The change owner's name, when the event names one."""

    @property
    def voting_jobs(self) -> tuple[JobOutcome, ...]:
        """The failed jobs that count for the verdict."""
        return tuple(job for job in self.jobs if job.voting)

    @property
    def fully_recognized(self) -> bool:
        """Every failed voting job is explained by a known bug (then: "recheck")."""
        voting = self.voting_jobs
        return bool(voting) and all(job.recognized for job in voting)

    @property
    def bugs(self) -> tuple[str, ...]:
        """Every bug any job hit, in first-seen order, without repeats."""
        return tuple(dict.fromkeys(bug for job in self.jobs for bug in job.bugs))


class Notifier(Protocol):
    """Told of every finished report; queues its message and returns at once."""

    def notify(self, report: FailureReport) -> None:
        """Queue what this report means for this notifier's audience."""
        ...


class DryRunOutput:
    """What a dry run would do, one JSON object a line (``recheck bot --dry-run``: stdout).

    One lock for every writer of the process: the workers' comments and the IRC lines
    are each written whole, never interleaved.
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def say(self, **fields: str) -> None:
        """Write ``fields`` as one JSON line."""
        line = json.dumps(fields) + "\n"
        with self._lock:
            self.out.write(line)
            self.out.flush()
