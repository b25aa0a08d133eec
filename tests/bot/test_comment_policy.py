"""Who gets a comment (issue 17 items 1 and 6): as elastic-recheck, only failures a known bug
explains, of the jobs bot.job_filter selects; problems of the operator's side go to the log
and the metrics, never to Gerrit or IRC.

Recorded Jenkins events go through the bot's service in process; their logs are the real
builds of tests/fixtures/builds/ served by ``LogSite``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bot_world import JENKINS_EVENTS, JENKINS_ROUTES, ROOT
from gerrit_fake import LogSite

from recheck.bot.history import History
from recheck.bot.irc.notifier import IrcPrinter
from recheck.bot.outcome import FailureReport, JobOutcome, Notifier
from recheck.bot.queue import BotQueue
from recheck.bot.service import Service, ServiceOptions
from recheck.bot.triage import SignatureSet, Triage
from recheck.config.bot import DEFAULT_MESSAGES, BotSettings, bot_settings
from recheck.config.files import Config, ConfigError, FetchConfig, parse_config
from recheck.config.irc import ChannelRule, IrcSettings
from recheck.models import UrlOnlyTracker
from recheck.store import StoreError

BUGS = "https://bugs.example.org/{bug}"
CONFIG = Config(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), retries=0))
REQUIREMENTS = 1
"""Change 65361: check-requirements-integration-dsvm (bugs demo-1, demo-2) and the
non-voting check-grenade-dsvm-neutron (bug demo-3, an allow-nonvoting signature)."""
TEMPEST = 2
"""Change 63078: check-tempest-dsvm-full (bugs demo-1, demo-2)."""
KEYSTONE = 6
"""Change 64750, gate: gate-keystone-python26 (demo-1, demo-2), gate-keystone-python27."""
STORE_TROUBLE = "/var/lib/recheck: database disk image is malformed"


class Recorder:
    """A Notifier that keeps what it is told."""

    def __init__(self) -> None:
        self.reports: list[FailureReport] = []

    def notify(self, report: FailureReport) -> None:
        self.reports.append(report)


@dataclass
class Run:
    """What the service did with some events: its dry-run lines, queue and metrics."""

    printed: list[dict[str, str]]
    service: Service
    heard: list[FailureReport] = field(default_factory=list)

    @property
    def notes(self) -> list[tuple[str, str | None]]:
        """Each row's state and note (the queue keeps notes for people: no reader API)."""
        rows = self.service.queue._conn.execute("SELECT state, note FROM inbox ORDER BY id")
        return [(state, note) for state, note in rows]


def _run(
    events: Sequence[int],
    queries: Path = ROOT / "queries",
    settings: BotSettings | None = None,
    store: Any = None,
    config: Config = CONFIG,
    notifiers: Sequence[Notifier] = (),
) -> Run:
    recorder = Recorder()
    out = io.StringIO()
    with LogSite() as logs:
        for path, build in JENKINS_ROUTES.items():
            logs.serve(path, build)
        signatures = SignatureSet(queries, print)
        history = None if store is None else History(config, signatures, store)
        service = Service(
            settings or BotSettings(), BotQueue(":memory:"),
            Triage(config, signatures), None, UrlOnlyTracker(BUGS),
            notifiers=[recorder, *notifiers], options=ServiceOptions(dry_run=True), out=out,
            history=history,
        )  # fmt: skip
        for index in events:
            line = json.dumps(JENKINS_EVENTS[index])
            service.enqueue(
                "gerrit", line.replace("http://logs.openstack.org/", f"{logs.url}/logs/")
            )
        service.drain()
        service.drain_history()
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    return Run(printed, service, recorder.reports)


def _queries(tmp_path: Path, *bugs: str) -> Path:
    directory = tmp_path / "queries"
    directory.mkdir()
    for bug in bugs:
        (directory / f"{bug}.yaml").write_text((ROOT / "queries" / f"{bug}.yaml").read_text())
    return directory


def _job_lines(message: str) -> list[str]:
    return [line for line in message.splitlines() if line.startswith("- ")]


# --- item 1: elastic-recheck's comment policy ------------------------------------------


def test_an_unexplained_failure_gets_no_comment_by_default(tmp_path: Path) -> None:
    run = _run([TEMPEST], queries=_queries(tmp_path))
    assert run.printed == []
    assert run.notes == [
        ("done", "no comment: no known bug (bot.comment_on_unrecognized is off, or "
                 "messages.no_bugs_found is empty)"),
    ]  # fmt: skip
    # Still classified and handed on (IRC's negative channels, the uncategorized page).
    [report] = run.heard
    assert [(job.name, job.recognized) for job in report.jobs] == [
        ("check-tempest-dsvm-full", False)
    ]
    assert run.service.metrics.get("builds_classified") == 1


def test_comment_on_unrecognized_posts_no_bugs_found(tmp_path: Path) -> None:
    settings = BotSettings(comment_on_unrecognized=True)
    run = _run([TEMPEST], queries=_queries(tmp_path), settings=settings)
    assert run.printed == [
        {
            "change": "63078",
            "patchset": "19",
            "message": f"{DEFAULT_MESSAGES.no_bugs_found}\n\n"
            "- check-tempest-dsvm-full: unrecognized error",
        }
    ]


def test_a_known_bug_is_commented_on_by_default() -> None:
    run = _run([TEMPEST])
    [comment] = run.printed
    assert _job_lines(comment["message"]) == [
        "- check-tempest-dsvm-full: https://bugs.example.org/demo-1 https://bugs.example.org/demo-2"
    ]
    assert DEFAULT_MESSAGES.recheck_instructions in comment["message"]


def test_an_unexplained_non_voting_job_does_not_count_against_recheck(tmp_path: Path) -> None:
    queries = _queries(tmp_path, "demo-1", "demo-2")  # not demo-3: grenade unexplained
    [comment] = _run([REQUIREMENTS], queries=queries).printed
    assert _job_lines(comment["message"]) == [
        "- check-requirements-integration-dsvm: https://bugs.example.org/demo-1 "
        "https://bugs.example.org/demo-2",
        "- check-grenade-dsvm-neutron (non-voting): unrecognized error",
    ]
    assert DEFAULT_MESSAGES.recheck_instructions in comment["message"]
    assert DEFAULT_MESSAGES.unrecognized not in comment["message"]


def test_an_unexplained_voting_job_asks_for_a_signature(tmp_path: Path) -> None:
    queries = _queries(tmp_path, "demo-1", "demo-2")
    [comment] = _run([KEYSTONE], queries=queries).printed
    assert _job_lines(comment["message"]) == [
        "- gate-keystone-python26: https://bugs.example.org/demo-1 https://bugs.example.org/demo-2",
        "- gate-keystone-python27: unrecognized error",
    ]
    assert DEFAULT_MESSAGES.unrecognized in comment["message"]


def test_the_job_filter_leaves_other_jobs_out_entirely() -> None:
    settings = BotSettings(job_filter="-integration-")
    run = _run([REQUIREMENTS], settings=settings)
    [comment] = run.printed
    assert _job_lines(comment["message"]) == [
        "- check-requirements-integration-dsvm: https://bugs.example.org/demo-1 "
        "https://bugs.example.org/demo-2"
    ]
    [report] = run.heard
    assert [job.name for job in report.jobs] == ["check-requirements-integration-dsvm"]
    assert run.service.metrics.get("builds_classified") == 1  # grenade's logs not even read


def test_an_event_whose_selected_jobs_do_not_vote_is_skipped() -> None:
    # Only the non-voting grenade job matches: the change did not fail because of it.
    run = _run([REQUIREMENTS, TEMPEST], settings=BotSettings(job_filter="grenade|tempest"))
    assert [comment["change"] for comment in run.printed] == ["63078"]
    assert run.notes[0] == ("skipped", "no failed voting job matches bot.job_filter")
    assert [report.change for report in run.heard] == ["63078"]


def test_job_filter_and_comment_on_unrecognized_in_bot_yaml() -> None:
    path = Path("/etc/recheck/bot.yaml")
    defaults = bot_settings(parse_config("", path), {})
    assert (defaults.job_filter, defaults.comment_on_unrecognized) == (".*", False)
    text = "bot:\n  job_filter: '^(tempest|grenade)-'\n  comment_on_unrecognized: true\n"
    settings = bot_settings(parse_config(text, path), {})
    assert (settings.job_filter, settings.comment_on_unrecognized) == ("^(tempest|grenade)-", True)
    with pytest.raises(ConfigError) as bad:
        bot_settings(parse_config("bot:\n  workers: 1\n  job_filter: '(tempest'\n", path), {})
    assert str(bad.value).startswith(
        "/etc/recheck/bot.yaml:3:15: bot.job_filter is not a valid regular expression"
    )
    with pytest.raises(ConfigError, match=r"bot.yaml:2:28: bot.comment_on_unrecognized must be"):
        bot_settings(parse_config("bot:\n  comment_on_unrecognized: often\n", path), {})


# --- item 6: the operator's problems stay in the log and the metrics -------------------


class BrokenStore:
    """A history store that cannot be written (its disk image damaged)."""

    path = "/var/lib/recheck"

    def ingest(self, *args: object, **kwargs: object) -> str:
        raise StoreError("/var/lib/recheck", "database disk image is malformed")


def _irc() -> IrcSettings:
    rule = ChannelRule("#qa", frozenset({"all"}), frozenset({"positive", "negative"}))
    return IrcSettings(server="irc.example.org", channels=(rule,), queues=frozenset({"gate"}))


def test_an_unusable_store_costs_the_comment_nothing_and_only_the_log_has_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The comment comes from the scanner; the history store is written behind it, so a
    broken store is the operator's problem only: logged, counted, retried later."""
    irc = io.StringIO()
    printer = IrcPrinter(_irc(), UrlOnlyTracker(BUGS), irc)
    settings = BotSettings(comment_on_unrecognized=True)
    run = _run([KEYSTONE], settings=settings, store=BrokenStore(), notifiers=[printer])
    [comment] = run.printed
    assert _job_lines(comment["message"]) == [
        f"- gate-keystone-python26: {BUGS.format(bug='demo-1')} {BUGS.format(bug='demo-2')}",
        f"- gate-keystone-python27: {BUGS.format(bug='demo-3')}",
    ]
    assert "malformed" not in comment["message"] and "/var/lib" not in comment["message"]
    assert "malformed" not in irc.getvalue() and "gate-keystone-python26" in irc.getvalue()
    retries = [r.fields for r in caplog.records if r.getMessage() == "store_retry"]  # type: ignore[attr-defined]
    assert [p["problem"] for p in retries] == [f"StoreError: {STORE_TROUBLE}"]
    [row] = [row for row in run.service.queue.rows() if row.source != "sample"]
    assert (row.state, row.history, row.history_attempts) == ("done", "pending", 1)
    assert run.service.metrics.get("errors") == 1
    assert run.service.metrics.get("builds_classified") == 2
    assert run.service.metrics.get("builds_stored") == 0


def test_a_refused_log_host_is_not_said_in_the_comment(tmp_path: Path) -> None:
    """A host missing from fetch.allowed_hosts is bot.yaml's business, not the change's."""
    config = Config(fetch=FetchConfig(allowed_hosts=("logs.example.org",), retries=0))
    settings = BotSettings(comment_on_unrecognized=True)
    run = _run([TEMPEST], settings=settings, config=config)
    [comment] = run.printed
    assert _job_lines(comment["message"]) == ["- check-tempest-dsvm-full: not checked"]
    assert "allowed_hosts" not in comment["message"] and "127.0.0.1" not in comment["message"]
    # And without comment_on_unrecognized there is no comment at all.
    assert _run([TEMPEST], config=config).printed == []


def test_a_known_fact_about_a_job_is_still_said() -> None:
    """A job that never ran is known about the job itself, and said as before."""
    from recheck.bot.comment import job_line

    tracker = UrlOnlyTracker(BUGS)
    never = JobOutcome("j", "", "NODE_FAILURE", error="the job never ran (NODE_FAILURE)")
    ours = JobOutcome("j", "u", "FAILURE", problem="Traceback: KeyError 'x' in /srv/recheck")
    assert job_line(never, tracker, 1200) == "- j: not checked: the job never ran (NODE_FAILURE)"
    assert job_line(ours, tracker, 1200) == "- j: not checked"


def test_an_exception_while_classifying_reaches_no_one(caplog: pytest.LogCaptureFixture) -> None:
    class Exploding(SignatureSet):
        def current(self) -> list[Any]:
            raise RuntimeError("internal detail: /srv/recheck/queries is on fire")

    recorder = Recorder()
    out = io.StringIO()
    with LogSite() as logs:
        for path, build in JENKINS_ROUTES.items():
            logs.serve(path, build)
        service = Service(
            BotSettings(retry=0.001), BotQueue(":memory:"),
            Triage(CONFIG, Exploding(ROOT / "queries", print)), None, UrlOnlyTracker(BUGS),
            notifiers=[recorder], options=ServiceOptions(dry_run=True), out=out,
        )  # fmt: skip
        line = json.dumps(JENKINS_EVENTS[TEMPEST])
        service.enqueue("gerrit", line.replace("http://logs.openstack.org/", f"{logs.url}/logs/"))
        service.drain()
    assert out.getvalue() == "" and recorder.reports == []
    [row] = service.queue.rows()
    assert row.state == "failed"
    failed = [r for r in caplog.records if r.getMessage() == "step_failed"]
    assert "on fire" in failed[-1].fields["problem"]  # type: ignore[attr-defined]
    assert service.metrics.get("errors") == 5
