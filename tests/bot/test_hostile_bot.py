"""Hostile event and report text (issue 20, items 5 and 8): a line nested too deep is a
malformed event, and no field of a report makes a Gerrit comment or an IRC message huge."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from recheck.bot.comment import COMMENT_MAX_BYTES, JOB_NAME_MAX_CHARS, comment_text
from recheck.bot.gerrit.events import MalformedEvent, decode_event
from recheck.bot.irc.routing import MESSAGE_MAX_BYTES, lines_for
from recheck.bot.irc.text import payload_budget, shorten, split_message
from recheck.bot.outcome import FailureReport, JobOutcome
from recheck.config.bot import DEFAULT_MESSAGES
from recheck.config.irc import ChannelRule
from recheck.models import BugInfo, UrlOnlyTracker

GERRIT_DEFAULT_COMMENT_SIZE_LIMIT = 16 * 1024


def _report(*jobs: JobOutcome, project: str = "openstack/nova") -> FailureReport:
    return FailureReport(
        event_id="1", change="42", patchset="1", project=project, branch="master",
        queue="gate", url="https://review.opendev.org/42", jobs=jobs,
    )  # fmt: skip


# --- item 5: a stream-events line nested 100k deep -------------------------------------


@pytest.mark.parametrize("raw", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1"])
def test_deeply_nested_line_is_a_malformed_event(raw: str) -> None:
    with pytest.raises(MalformedEvent, match="nested too deeply"):
        decode_event(raw)


def test_decode_event_reads_json_and_refuses_other_text_as_before() -> None:
    assert decode_event('{"type": "comment-added"}') == {"type": "comment-added"}
    with pytest.raises(json.JSONDecodeError):
        decode_event("not json")


# --- item 8: Gerrit comment size -------------------------------------------------------


def _size(text: str | None) -> int:
    assert text is not None
    return len(text.encode("utf-8"))


def test_a_huge_job_name_is_cut_with_an_ellipsis() -> None:
    tracker = UrlOnlyTracker("https://bugs/{bug}")
    job = JobOutcome("j" * 100_000, "u", "FAILURE", bugs=("7",))
    text = comment_text(_report(job), DEFAULT_MESSAGES, tracker, 1200)
    assert _size(text) < GERRIT_DEFAULT_COMMENT_SIZE_LIMIT
    assert text is not None
    line = next(line for line in text.splitlines() if line.startswith("- j"))
    assert line == "- " + "j" * (JOB_NAME_MAX_CHARS - 1) + "…: https://bugs/7"


def test_a_huge_error_is_cut_with_an_ellipsis() -> None:
    tracker = UrlOnlyTracker("https://bugs/{bug}")
    job = JobOutcome("j", "u", "FAILURE", error="é" * 50_000)
    text = comment_text(_report(job), DEFAULT_MESSAGES, tracker, 1200)
    assert text is not None and "- j: not checked: " + "é" * 299 + "…" in text
    assert _size(text) < 2_000


def test_many_jobs_keep_the_comment_under_gerrits_limit() -> None:
    tracker = UrlOnlyTracker("https://bugs/{bug}")
    jobs = [JobOutcome(f"job-{i}-" + "x" * 150, "u", "FAILURE", bugs=("7",)) for i in range(2000)]
    text = comment_text(_report(*jobs), DEFAULT_MESSAGES, tracker, 1200)
    assert _size(text) <= COMMENT_MAX_BYTES < GERRIT_DEFAULT_COMMENT_SIZE_LIMIT
    assert text is not None
    listed = [line for line in text.splitlines() if line.startswith("- job-")]
    assert listed and listed == [line for line in text.splitlines() if "xxx" in line]
    more = f"- ... and {2000 - len(listed)} more jobs, not listed to keep the comment short"
    assert more in text.splitlines()
    assert text.rstrip().endswith(DEFAULT_MESSAGES.footer.strip())


def test_an_ordinary_comment_is_unchanged() -> None:
    tracker = UrlOnlyTracker("https://bugs/{bug}")
    job = JobOutcome("tempest-full", "u", "FAILURE", bugs=("7",))
    text = comment_text(_report(job), DEFAULT_MESSAGES, tracker, 1200)
    assert text is not None and "- tempest-full: https://bugs/7" in text.splitlines()
    assert "…" not in text and "more jobs" not in text


# --- item 8: IRC messages --------------------------------------------------------------


@dataclass
class TitledTracker:
    title: str

    def url(self, bug: str) -> str:
        return f"https://bugs.launchpad.net/bugs/{bug}"

    def lookup(self, bug: str) -> BugInfo | None:
        return BugInfo(bug, self.title, projects=("nova",))


CHANNELS = (ChannelRule("#nova", frozenset({"all"}), frozenset({"positive", "negative"})),)
BUDGET = payload_budget("PRIVMSG #nova :", "recheck")


def _irc_lines(report: FailureReport, title: str) -> list[str]:
    lines = lines_for(report, CHANNELS, TitledTracker(title), frozenset({"gate"}))
    assert lines
    return [piece for line in lines for piece in split_message(line.text, BUDGET)]


@pytest.mark.parametrize("title", ["t" * 90_000, "日本語 " * 20_000])
def test_a_huge_bug_title_is_a_line_or_two_on_irc(title: str) -> None:
    job = JobOutcome("tempest-full", "u", "FAILURE", bugs=("demo-1",))
    pieces = _irc_lines(_report(job), title)
    assert len(pieces) <= 2
    assert "…" in pieces[-1] or "…" in pieces[0]
    assert pieces[-1].endswith("https://bugs.launchpad.net/bugs/demo-1")


def test_huge_job_names_and_many_jobs_are_a_line_or_two_on_irc() -> None:
    jobs = [JobOutcome("j" * 100_000 + str(i), "u", "FAILURE") for i in range(500)]
    report = _report(*jobs, project="openstack/" + "n" * 100_000)
    for line in lines_for(report, CHANNELS, TitledTracker("t"), frozenset({"gate"})):
        assert len(line.text.encode("utf-8")) <= MESSAGE_MAX_BYTES
        assert len(split_message(line.text, BUDGET)) <= 2
        assert "and 495 more" in line.text


def test_an_ordinary_irc_message_is_unchanged() -> None:
    job = JobOutcome("tempest-full", "u", "FAILURE", bugs=("demo-1",))
    assert _irc_lines(_report(job), "Instance failed to spawn") == [
        "nova change https://review.opendev.org/42 failed tempest-full because of bug "
        "demo-1 (Instance failed to spawn) https://bugs.launchpad.net/bugs/demo-1"
    ]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("short", 10, "short"), ("abcdefghij", 8, "abcde…"), ("日本語日本語", 10, "日本…")],
)
def test_shorten(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit).encode("utf-8")) <= limit


def test_a_deeply_nested_stream_line_is_skipped_once_as_malformed() -> None:
    # Issue 20, item 5: it was retried five times as a step failure.
    from bot_world import ROOT

    from recheck.bot.queue import BotQueue
    from recheck.bot.service import Service, ServiceOptions
    from recheck.bot.triage import SignatureSet, Triage
    from recheck.config.bot import BotSettings
    from recheck.config.files import Config

    queue = BotQueue(":memory:")
    service = Service(
        BotSettings(), queue, Triage(Config(), SignatureSet(ROOT / "queries", print)), None,
        UrlOnlyTracker("https://bugs/{bug}"), options=ServiceOptions(dry_run=True),
    )  # fmt: skip
    service.enqueue("gerrit", "[" * 100_000 + "]" * 100_000)
    service.drain()
    [row] = queue.rows()
    assert row.state == "skipped"
    assert service.metrics.get("events_skipped") == 1
