"""The bot's service in process: notifiers hear every finished report, once; comments
with the same text on one change are each posted once, whatever fails in between."""

from __future__ import annotations

import io
import json

from bot_world import JENKINS_EVENTS, JENKINS_ROUTES, ROOT
from gerrit_fake import LogSite

from recheck.bot.gerrit.events import FailedJob, FailureEvent
from recheck.bot.gerrit.review import PostError
from recheck.bot.outcome import FailureReport
from recheck.bot.queue import BotQueue
from recheck.bot.service import Service, ServiceOptions
from recheck.bot.triage import SignatureSet, Triage
from recheck.config.bot import BotSettings
from recheck.config.files import Config, FetchConfig
from recheck.models import UrlOnlyTracker


class Recorder:
    """A Notifier that keeps what it is told."""

    def __init__(self) -> None:
        self.reports: list[FailureReport] = []

    def notify(self, report: FailureReport) -> None:
        self.reports.append(report)


class Broken:
    """A Notifier with a bug: it must not cost the Gerrit comment."""

    def notify(self, report: FailureReport) -> None:
        raise RuntimeError("IRC is on fire")


def test_notifiers_hear_each_report_and_a_broken_one_costs_nothing() -> None:
    with LogSite() as logs:
        for path, build in JENKINS_ROUTES.items():
            logs.serve(path, build)
        config = Config(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), retries=0))
        problems: list[str] = []
        recorder = Recorder()
        out = io.StringIO()
        service = Service(
            BotSettings(log_timeout=5), BotQueue(":memory:"),
            Triage(config, SignatureSet(ROOT / "queries", problems.append)), None,
            UrlOnlyTracker("https://bugs/{bug}"), notifiers=[Broken(), recorder],
            options=ServiceOptions(dry_run=True), out=out,
        )  # fmt: skip
        for index in (1, 2, 1):
            line = json.dumps(JENKINS_EVENTS[index])
            local = line.replace("http://logs.openstack.org/", f"{logs.url}/logs/")
            service.enqueue("gerrit", local)
        service.drain()
    assert [(r.change, r.bugs) for r in recorder.reports] == [
        ("65361", ("demo-1", "demo-2", "demo-3")),
        ("63078", ("demo-1", "demo-2")),
    ]
    assert [json.loads(line)["change"] for line in out.getvalue().splitlines()] == [
        "65361", "63078"
    ]  # fmt: skip
    assert service.metrics.get("errors") == 2  # the broken notifier, twice
    assert problems == []


def test_only_changes_of_the_configured_projects_are_handled() -> None:
    with LogSite() as logs:
        for path, build in JENKINS_ROUTES.items():
            logs.serve(path, build)
        config = Config(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), retries=0))
        out = io.StringIO()
        queue = BotQueue(":memory:")
        service = Service(
            BotSettings(projects="^openstack/keystone$"), queue,
            Triage(config, SignatureSet(ROOT / "queries", print)), None,
            UrlOnlyTracker("https://bugs/{bug}"), options=ServiceOptions(dry_run=True), out=out,
        )  # fmt: skip
        for index in (1, 6):  # openstack/requirements, openstack/keystone
            line = json.dumps(JENKINS_EVENTS[index])
            service.enqueue(
                "gerrit", line.replace("http://logs.openstack.org/", f"{logs.url}/logs/")
            )
        service.drain()
    assert [row.state for row in queue.rows()] == ["skipped", "done"]
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["change"], line["patchset"]) for line in printed] == [("64750", "6")]


class FlakyGerrit:
    """A Reviewer whose first post is refused (503, nothing stored)."""

    def __init__(self) -> None:
        self.comments: list[tuple[str, str]] = []
        self.refuse = 1

    def count(self, event: FailureEvent, text: str) -> int:
        return self.comments.count((event.change, text))

    def post(self, event: FailureEvent, text: str) -> None:
        if self.refuse:
            self.refuse -= 1
            raise PostError("HTTP 503; Gerrit is failing", transient=True)
        self.comments.append((event.change, text))


def test_a_refused_comment_is_not_mistaken_for_a_later_identical_one() -> None:
    """Two events of one change (a recheck failing the same way) give the same text.
    The first post is refused and retried later; the second event must wait, or the
    retry would count its comment as the first one's and skip it."""
    queue = BotQueue(":memory:")
    now = [1000.0]
    gerrit = FlakyGerrit()
    config = Config(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), retries=0))
    service = Service(
        BotSettings(retry=10.0), queue, Triage(config, SignatureSet(ROOT / "queries", print)),
        gerrit, UrlOnlyTracker("https://bugs/{bug}"), clock=lambda: now[0],
    )  # fmt: skip
    for key in ("1,2,first", "1,2,second"):
        job = FailedJob("j", "u", "FAILURE")
        event = FailureEvent(key, "1", "2", "p", "master", "gate", "", (job,))
        row = queue.add("gerrit", "{}", now[0])
        assert queue.parsed(row, key, "1", event.to_json(), deadline=now[0] + 60)
        queue.reported(row, "{}", "the same text")
    assert service.work_once()  # the first: refused, to be retried in 5-10 s
    assert not service.work_once()  # the second waits for the first to settle
    now[0] += 11
    while service.work_once():
        pass
    assert gerrit.comments == [("1", "the same text")] * 2
    assert [row.state for row in queue.rows()] == ["done", "done"]
    assert service.metrics.get("comments_posted") == 2
