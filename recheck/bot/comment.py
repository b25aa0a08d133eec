"""A FailureReport -> the text of its Gerrit comment, from bot.yaml's ``messages``.

Assembled as elastic-recheck assembled it (``found_bug`` with one line per failed job,
then ``recheck_instructions`` or ``unrecognized``, then ``footer``; or ``no_bugs_found``),
so that the comments read as they always did. The README's "The bot" has the details.
"""

from __future__ import annotations

import re

from recheck.bot.outcome import FailureReport, JobOutcome
from recheck.config.bot import Messages
from recheck.models import BugTracker

__all__ = ["comment_text", "job_line"]

# Event and error text is untrusted: no control characters (newlines would let a job
# name forge lines of the comment).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def comment_text(
    report: FailureReport, messages: Messages, tracker: BugTracker, log_timeout: float
) -> str | None:
    """The comment for ``report``; None when there is nothing to post."""
    lines = "\n".join(job_line(job, tracker, log_timeout) for job in report.jobs)
    if report.bugs:
        parts = [
            _with_bugs(messages.found_bug, lines),
            messages.recheck_instructions if report.fully_recognized else messages.unrecognized,
            messages.footer,
        ]
    elif messages.no_bugs_found.strip():
        parts = [messages.no_bugs_found, lines]
    else:
        return None
    return "\n\n".join(part.strip("\n") for part in parts if part.strip())


def job_line(job: JobOutcome, tracker: BugTracker, log_timeout: float) -> str:
    """``- <job>: <what recheck made of it>``."""
    if job.bugs:
        verdict = " ".join(tracker.url(bug) for bug in job.bugs)
    elif job.logs_missing:
        verdict = f"its logs did not appear within {_duration(log_timeout)}, so it was not checked"
    elif job.error:
        verdict = f"not checked: {_clean(job.error)[:300]}"
    else:
        verdict = "unrecognized error"
    voting = "" if job.voting else " (non-voting)"
    return f"- {_clean(job.name)}{voting}: {verdict}"


def _with_bugs(template: str, lines: str) -> str:
    # Plain replacement, not str.format or %: a template holding other braces or
    # percent signs must not fail. %(bugs)s lets elastic-recheck's messages be pasted in.
    return template.replace("{bugs}", lines).replace("%(bugs)s", lines)


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"
