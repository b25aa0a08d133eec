"""Which channel hears what: a FailureReport and the channel rules into IRC lines.

``positive`` channels hear the known bugs of their projects, ``negative`` channels the
unrecognized failures and missing logs of theirs; only the configured queues are
announced. Every text is sanitized here, once, whatever it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from recheck.bot.irc.text import sanitize, shorten
from recheck.bot.outcome import FailureReport
from recheck.config.irc import ChannelRule
from recheck.models import BugInfo, BugTracker

__all__ = ["Line", "lines_for", "project_names"]

# Bug titles (Launchpad's), job names and URLs are not ours: each is cut so that one
# report is a line or two on IRC (a line holds about 400 bytes of text), not hundreds.
MESSAGE_MAX_BYTES = 700
"""A whole message, in UTF-8 bytes: two IRC lines at most."""

TITLE_MAX_BYTES = 160
"""A bug title, in UTF-8 bytes."""

NAME_MAX_BYTES = 100
"""A job or project name, a change URL, in UTF-8 bytes."""

JOBS_NAMED = 5
"""Jobs named in one message; more are counted ("and 3 more")."""


@dataclass(frozen=True)
class Line:
    """One message for one channel (sanitized, not yet split to fit IRC lines)."""

    channel: str
    text: str


def project_names(project: str) -> tuple[str, ...]:
    """The names a channel may use for a project: ``openstack/nova`` and ``nova``."""
    short = project.rsplit("/", 1)[-1]
    return (project, short) if short != project else (project,)


def lines_for(
    report: FailureReport,
    rules: Iterable[ChannelRule],
    tracker: BugTracker,
    queues: frozenset[str],
) -> list[Line]:
    """Every message ``report`` means for the channels of ``rules``, in a stable order."""
    if report.queue not in queues:
        return []
    rules = tuple(rules)
    change_projects = project_names(report.project)
    lines: list[Line] = []
    positive_rules = [rule for rule in rules if "positive" in rule.events]
    for bug in report.bugs if positive_rules else ():
        info = tracker.lookup(bug)
        projects = change_projects + (info.projects if info is not None else ())
        jobs = [job.name for job in report.jobs if bug in job.bugs]
        text = _bug_message(report, jobs, bug, info, tracker.url(bug))
        lines += [Line(rule.name, text) for rule in rules if rule.wants("positive", projects)]
    # A job a problem of ours kept from being checked is not known to be unrecognized:
    # it is not announced (the log has the problem).
    unrecognized = [
        job.name
        for job in report.voting_jobs
        if not job.recognized and not job.logs_missing and job.problem is None
    ]
    missing = [job.name for job in report.jobs if job.logs_missing]
    negative = [rule for rule in rules if rule.wants("negative", change_projects)]
    if unrecognized:
        text = _message(
            f"{_change(report)} failed {_names(unrecognized)} in the "
            f"{shorten(sanitize(report.queue), NAME_MAX_BYTES)} queue with an unrecognized error"
        )
        lines += [Line(rule.name, text) for rule in negative]
    if missing:
        text = _message(
            f"{_change(report)}: logs never appeared for {_names(missing)}, so recheck could "
            "not classify them"
        )
        lines += [Line(rule.name, text) for rule in negative]
    return lines


def _bug_message(
    report: FailureReport, jobs: list[str], bug: str, info: BugInfo | None, url: str
) -> str:
    title = ""
    if info is not None and info.title.strip():
        title = f" ({shorten(sanitize(info.title), TITLE_MAX_BYTES)})"
    bug = shorten(sanitize(bug), NAME_MAX_BYTES)
    url = shorten(sanitize(url), MESSAGE_MAX_BYTES // 2)
    return _message(f"{_change(report)} failed {_names(jobs)} because of bug {bug}{title} {url}")


def _message(text: str) -> str:
    return shorten(sanitize(text), MESSAGE_MAX_BYTES)


def _change(report: FailureReport) -> str:
    name = shorten(sanitize(project_names(report.project)[-1]), NAME_MAX_BYTES)
    return f"{name} change {shorten(sanitize(report.url or report.change), NAME_MAX_BYTES)}"


def _names(jobs: list[str]) -> str:
    named = [shorten(sanitize(job), NAME_MAX_BYTES) for job in jobs[:JOBS_NAMED]]
    more = f" and {len(jobs) - JOBS_NAMED} more" if len(jobs) > JOBS_NAMED else ""
    return ", ".join(named) + more
