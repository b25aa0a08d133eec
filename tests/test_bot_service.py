"""The bot's service in process: notifiers hear every finished report, once."""

from __future__ import annotations

import io
import json

from bot_world import JENKINS_EVENTS, JENKINS_ROUTES, ROOT
from gerrit_fake import LogSite

from recheck.bot.queue import BotQueue
from recheck.bot.service import Service, ServiceOptions
from recheck.bot.settings import BotSettings
from recheck.bot.triage import SignatureSet, Triage
from recheck.bugs import UrlOnlyTracker
from recheck.config import Config, FetchConfig
from recheck.outcome import FailureReport


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
        ("65361", ("1999001", "1999002", "1999003")),
        ("63078", ("1999001", "1999002")),
    ]
    assert out.getvalue().count("--- comment on change") == 2
    assert service.metrics.get("errors") == 2  # the broken notifier, twice
    assert problems == []
