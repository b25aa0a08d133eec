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

COMMENT_MAX_BYTES = 15 * 1024
"""Gerrit refuses a comment over ``change.commentSizeLimit`` (16 KiB by default, measured
"approximately, off by roughly 1%"): a comment is kept under this, in UTF-8 bytes."""

JOB_NAME_MAX_CHARS = 200
"""A job name longer than this (Zuul's are under 100) is cut, with an ellipsis."""

ERROR_MAX_CHARS = 300
"""Why a job was not checked, cut to this: one line of the comment, not a traceback."""

ELLIPSIS = "…"

FAILED_TESTS_NAMED = 3
"""Failed tests named per job; the others are counted ("and 12 more")."""
TEST_ID_MAX_CHARS = 150
"""A test id longer than this (after its ``[...]`` attributes are dropped) is cut."""
_ATTRIBUTES = re.compile(r"\[[^\[\]]*\]$")


def comment_text(
    report: FailureReport, messages: Messages, tracker: BugTracker, log_timeout: float
) -> str | None:
    """The comment for ``report``; None when there is nothing to post.

    Always under ``COMMENT_MAX_BYTES``: when the job lines do not all fit, as many as fit
    are listed and a last line says how many were left out.
    """
    lines = [job_line(job, tracker, log_timeout) for job in report.jobs]
    text = _assemble(report, messages, lines)
    if text is None or _fits(text):
        return text
    low, high = 0, len(lines) - 1  # the most job lines that fit: a binary search
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(_assemble(report, messages, _first(lines, middle)) or ""):
            low = middle
        else:
            high = middle - 1
    text = _assemble(report, messages, _first(lines, low)) or ""
    # Only templates (bot.yaml's messages) longer than the limit can leave it too long.
    return text if _fits(text) else _cut_bytes(text, COMMENT_MAX_BYTES)


def _assemble(report: FailureReport, messages: Messages, job_lines: list[str]) -> str | None:
    lines = "\n".join(job_lines)
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
        verdict = f"not checked: {_cut(_clean(job.error), ERROR_MAX_CHARS)}"
    elif job.problem:
        verdict = "not checked"  # a problem of ours: the log says what it was, not Gerrit
    else:
        verdict = "unrecognized error" + _new_or_known(job.seen_elsewhere)
    voting = "" if job.voting else " (non-voting)"
    line = f"- {_cut(_clean(job.name), JOB_NAME_MAX_CHARS)}{voting}: {verdict}"
    return line + _failed_tests(job)


def _new_or_known(changes: int | None) -> str:
    """Whether the job's most unusual line (``recheck.store.anomalies.seen_elsewhere``)
    also shows in other changes' failures: then the failure is likely not this change's."""
    if changes is None:
        return ""
    if changes:
        return (
            f"; its most unusual line was also seen in {changes} other "
            f"change{'s' if changes > 1 else ''} this week: likely an intermittent bug, "
            "not this change"
        )
    return "; its most unusual line was seen in no other change this week"


def _failed_tests(job: JobOutcome) -> str:
    """``\n  failed tests: a (flaky), b, c and 4 more``; empty when none failed.

    Ids without their ``[id-...,smoke]`` attributes (as signatures name tests); the
    known flaky ones first, so the marks are seen.
    """
    if not job.failed_tests:
        return ""
    flaky = set(job.flaky_tests)
    ordered = sorted(job.failed_tests, key=lambda test: test not in flaky)
    named = [
        _cut(_clean(_ATTRIBUTES.sub("", test)), TEST_ID_MAX_CHARS)
        + (" (known flaky)" if test in flaky else "")
        for test in ordered[:FAILED_TESTS_NAMED]
    ]
    more = len(ordered) - len(named)
    text = ", ".join(named) + (f" and {more} more" if more else "")
    return f"\n  failed tests: {text}"


def _with_bugs(template: str, lines: str) -> str:
    # Plain replacement, not str.format or %: a template holding other braces or
    # percent signs must not fail. %(bugs)s lets elastic-recheck's messages be pasted in.
    return template.replace("{bugs}", lines).replace("%(bugs)s", lines)


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def _first(lines: list[str], count: int) -> list[str]:
    """The first ``count`` job lines, and one saying how many more there are."""
    left = len(lines) - count
    return [*lines[:count], f"- ... and {left} more jobs, not listed to keep the comment short"]


def _fits(text: str) -> bool:
    return len(text.encode("utf-8")) <= COMMENT_MAX_BYTES


def _cut(text: str, limit: int) -> str:
    """``text``, or its first characters and an ellipsis, ``limit`` characters in all."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def _cut_bytes(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes, ellipsis included, at a whole character."""
    room = limit - len(ELLIPSIS.encode("utf-8"))
    return text.encode("utf-8")[:room].decode("utf-8", errors="ignore") + ELLIPSIS


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"
