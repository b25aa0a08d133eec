"""Which channel hears what: a FailureReport and the channel rules into IRC lines.

``positive`` channels hear the known bugs of their projects, ``negative`` channels the
unrecognized failures and missing logs of theirs; only the configured queues are
announced. Every text is sanitized here, once, whatever it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from recheck.bot.irc.text import sanitize
from recheck.bot.outcome import FailureReport
from recheck.config.irc import ChannelRule
from recheck.models import BugInfo, BugTracker

__all__ = ["Line", "lines_for", "project_names"]


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
    unrecognized = [
        job.name for job in report.voting_jobs if not job.recognized and not job.logs_missing
    ]
    missing = [job.name for job in report.jobs if job.logs_missing]
    negative = [rule for rule in rules if rule.wants("negative", change_projects)]
    if unrecognized:
        text = sanitize(
            f"{_change(report)} failed {_names(unrecognized)} in the {report.queue} queue "
            "with an unrecognized error"
        )
        lines += [Line(rule.name, text) for rule in negative]
    if missing:
        text = sanitize(
            f"{_change(report)}: logs never appeared for {_names(missing)}, so recheck could "
            "not classify them"
        )
        lines += [Line(rule.name, text) for rule in negative]
    return lines


def _bug_message(
    report: FailureReport, jobs: list[str], bug: str, info: BugInfo | None, url: str
) -> str:
    title = f" ({sanitize(info.title)})" if info is not None and info.title.strip() else ""
    return sanitize(f"{_change(report)} failed {_names(jobs)} because of bug {bug}{title} {url}")


def _change(report: FailureReport) -> str:
    name = project_names(report.project)[-1]
    return f"{name} change {report.url or report.change}"


def _names(jobs: list[str]) -> str:
    return ", ".join(jobs)
