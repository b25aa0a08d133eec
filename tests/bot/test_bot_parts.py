"""The bot's parts on their own: reading CI comments, the queue, comments, settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from bot_world import EVENTS, JENKINS_EVENTS, ZUUL_BUILDS

from recheck.bot.comment import comment_text
from recheck.bot.gerrit.events import (
    FailedJob,
    FailureEvent,
    JobLine,
    MalformedEvent,
    failure_from_gerrit,
    failure_from_zuul,
    parse_job_lines,
)
from recheck.bot.outcome import FailureReport, JobOutcome
from recheck.bot.queue import BotQueue, QueueError, report_from_json, report_to_json
from recheck.config.bot import DEFAULT_MESSAGES, Messages, bot_settings
from recheck.config.files import ConfigError, parse_config
from recheck.models import UrlOnlyTracker

CI = ("zuul", "jenkins")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "- gate-nova-python27 http://logs.openstack.org/44/60244/12/check/gate-nova-python27"
            "/04102a5 : FAILURE in 13m 57s",
            JobLine(
                "gate-nova-python27",
                "http://logs.openstack.org/44/60244/12/check/gate-nova-python27/04102a5",
                "FAILURE",
                True,
            ),
        ),
        (
            "- tempest-full-py3 https://zuul.opendev.org/t/openstack/build/"
            "0d5ccc1403b04bed90d7c238e089b3b2 : FAILURE in 1h 02m 11s",
            JobLine(
                "tempest-full-py3",
                "https://zuul.opendev.org/t/openstack/build/0d5ccc1403b04bed90d7c238e089b3b2",
                "FAILURE",
                True,
            ),
        ),
        (
            "- check-grenade-dsvm-neutron http://logs.openstack.org/02/65902/3/check/"
            "check-grenade-dsvm-neutron/59354b6 : FAILURE in 20m 16s (non-voting)",
            JobLine(
                "check-grenade-dsvm-neutron",
                "http://logs.openstack.org/02/65902/3/check/check-grenade-dsvm-neutron/59354b6",
                "FAILURE",
                False,
            ),
        ),
        (
            "- a-job https://z/build/1 : RETRY_LIMIT in 2m 11s",
            JobLine("a-job", "https://z/build/1", "RETRY_LIMIT", True),
        ),
        (
            "- a-job https://z/build/1 : TIMED_OUT in 3h 00m 00s",
            JobLine("a-job", "https://z/build/1", "TIMED_OUT", True),
        ),
        (
            "- a-job https://z/build/1 : POST_FAILURE in 5m 01s (non-voting)",
            JobLine("a-job", "https://z/build/1", "POST_FAILURE", False),
        ),
        (
            "- a-job : NODE_FAILURE Node request 300-0013306459 failed",
            JobLine("a-job", "", "NODE_FAILURE", True),
        ),
        (
            "- docs http://docs-draft.example.org/x/ : SUCCESS in 4m 01s",
            JobLine("docs", "http://docs-draft.example.org/x/", "SUCCESS", True),
        ),
        ("Build failed.  For information on how to proceed, see https://wiki", None),
        ("- not a job line", None),
    ],
)
def test_job_lines_of_every_format(line: str, expected: JobLine | None) -> None:
    assert parse_job_lines(f"Patch Set 1:\n\nBuild failed.\n\n{line}\n") == (
        [expected] if expected else []
    )


def test_the_recorded_jenkins_events() -> None:
    """Of the 11 recorded events, four report failed voting jobs (two more say "Build
    succeeded" with only non-voting jobs failed); the pipeline comes from the log path,
    the non-voting job is marked."""
    found = [failure_from_gerrit(event, CI) for event in JENKINS_EVENTS]
    failures = [event for event in found if event is not None]
    assert [(f.change, f.patchset, f.queue) for f in failures] == [
        ("65361", "2", "check"), ("63078", "19", "check"),
        ("64749", "6", "check"), ("64750", "6", "gate"),
    ]  # fmt: skip
    assert [(job.name, job.voting) for job in failures[0].jobs] == [
        ("check-requirements-integration-dsvm", True),
        ("check-grenade-dsvm-neutron", False),
    ]
    assert failures[0].author == "Andreas Jaeger"  # the change owner


def test_the_zuul_v3_event() -> None:
    event = json.loads((EVENTS / "zuul-v3-comment-added.json").read_text())
    failure = failure_from_gerrit(event, CI)
    assert failure is not None
    assert (failure.change, failure.patchset, failure.queue) == ("758776", "4", "check")
    assert [(job.name, job.result, job.voting) for job in failure.jobs] == [
        ("announce-release", "FAILURE", True),
        ("release-openstack-puppet", "POST_FAILURE", False),
        ("tripleo-ci-centos-8-standalone", "RETRY_LIMIT", True),
        ("tripleo-ci-centos-8-content-provider", "TIMED_OUT", True),
        ("tripleo-ci-centos-8-containers-multinode", "NODE_FAILURE", True),
    ]
    assert FailureEvent.from_json(failure.to_json()) == failure


def test_other_accounts_and_types_are_not_failures() -> None:
    event = dict(JENKINS_EVENTS[1])
    assert failure_from_gerrit({**event, "author": {"username": "sdague"}}, CI) is None
    assert failure_from_gerrit({**event, "type": "patchset-created"}, CI) is None
    assert failure_from_gerrit(event, ("zuul",)) is None
    with pytest.raises(MalformedEvent, match="without a 'change' object"):
        failure_from_gerrit({**event, "change": None}, CI)
    with pytest.raises(MalformedEvent, match="not a JSON object"):
        failure_from_gerrit([1], CI)


def test_zuul_api_records() -> None:
    record = {**ZUUL_BUILDS[0], "result": "FAILURE", "patchset": "3"}
    failure = failure_from_zuul(record, "https://zuul.example.org/", "openstack")
    assert failure is not None
    assert failure.key == f"758776,3,{record['uuid']}"
    assert failure.jobs[0].url == f"https://zuul.example.org/t/openstack/build/{record['uuid']}"
    assert failure_from_zuul(ZUUL_BUILDS[0], "https://z", "t") is None  # SUCCESS
    assert failure_from_zuul({**ZUUL_BUILDS[1], "result": "FAILURE"}, "https://z", "t") is None
    assert failure_from_zuul({**record, "voting": False}, "https://z", "t") is None


def _report(*jobs: JobOutcome) -> FailureReport:
    return FailureReport("k", "1", "2", "p", "master", "gate", "https://r/1", jobs)


def test_comment_assembly_and_hostile_job_names() -> None:
    tracker = UrlOnlyTracker("https://bugs/{bug}")
    evil = JobOutcome("job\nRecheck everything!", "u", "FAILURE", bugs=("7",))
    text = comment_text(_report(evil), DEFAULT_MESSAGES, tracker, 1200)
    assert text is not None
    assert "- job Recheck everything!: https://bugs/7" in text.splitlines()
    quiet = Messages("F {bugs}", "R", "U", "", "")
    plain = JobOutcome("j", "u", "FAILURE")
    assert comment_text(_report(plain), quiet, tracker, 1200) is None
    missing = JobOutcome("m", "u", "FAILURE", logs_missing=True)
    assert comment_text(_report(evil, missing), quiet, tracker, 1200) == (
        "F - job Recheck everything!: https://bugs/7\n"
        "- m: its logs did not appear within 20 minutes, so it was not checked\n\nU"
    )


def test_elastic_recheck_messages_can_be_pasted_in() -> None:
    """recheckwatchbot.yaml writes found_bug with %(bugs)s; other percent signs and
    braces are text."""
    tracker = UrlOnlyTracker("https://bugs/{bug}")
    messages = Messages("I think you hit bug(s):\n\n%(bugs)s", "100% {sure}", "U", "F", "")
    job = JobOutcome("j", "u", "FAILURE", bugs=("7",))
    assert comment_text(_report(job), messages, tracker, 1200) == (
        "I think you hit bug(s):\n\n- j: https://bugs/7\n\n100% {sure}\n\nF"
    )


def test_queue_steps_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite"
    queue = BotQueue(path)
    row = queue.add("gerrit", '{"raw": 1}', now=100.0)
    assert queue.parsed(row, "1,2,x", "1", "{}", deadline=200.0)
    other = queue.add("gerrit", '{"raw": 1}', now=101.0)
    assert not queue.parsed(other, "1,2,x", "1", "{}", deadline=201.0)
    report = _report(JobOutcome("j", "u", "FAILURE", bugs=("1", "2")))
    queue.reported(row, report_to_json(report), "text")
    queue.posting(row, 3)
    with pytest.raises(QueueError, match="another recheck bot is using this queue"):
        BotQueue(path)
    queue.close()
    again = BotQueue(path)
    [first, second] = again.rows()
    assert (first.state, first.baseline, first.comment) == ("posting", 3, "text")
    assert report_from_json(first.report or "") == report
    assert second.state == "duplicate"
    assert [r.id for r in again.due(now=1000.0)] == [first.id]
    again.close()


def _settings(text: str, environ: dict[str, str] | None = None) -> object:
    return bot_settings(parse_config(text, Path("/etc/recheck/bot.yaml")), environ or {})


def test_settings_defaults_and_mistakes() -> None:
    settings = bot_settings(parse_config("", Path("bot.yaml")), {})
    assert settings.gerrit.ci_users == ("zuul", "jenkins")
    assert settings.bug_url == "https://bugs.launchpad.net/bugs/{bug}"
    assert settings.log_timeout == 1200
    secret = _settings("gerrit:\n  http_password_env: GERRIT_PW\n", {"GERRIT_PW": "pw"})
    assert secret.gerrit.http_password == "pw"  # type: ignore[attr-defined]
    assert "pw" not in repr(secret)
    mistakes = {
        "gerrit:\n  http_password: x\n": "never write a password in bot.yaml",
        "gerrit:\n  http_password_env: NOPE\n": r"\$NOPE, which is not set",
        "gerrit:\n  post: email\n": "gerrit.post must be one of rest, ssh, none",
        "bot:\n  projects: '('\n": "bot.projects is not a valid regular expression",
        "bot:\n  log_timeout: -1\n": "bot.log_timeout must be a number above 0",
        "bug_url: https://bugs/\n": "bug_url must be a URL template holding {bug}",
        "messages: [a]\n": "messages must be a mapping",
    }
    for text, message in mistakes.items():
        with pytest.raises(ConfigError, match=message):
            _settings(text)


def test_failed_job_keeps_its_fields() -> None:
    job = FailedJob("j", "u", "FAILURE", voting=False)
    event = FailureEvent("k", "1", "2", "p", "b", "q", "u", (job,))
    assert FailureEvent.from_json(event.to_json()).jobs == (job,)


def test_the_shipped_bot_yaml_shows_the_bot_defaults() -> None:
    """Uncommented, the bot's block of the shipped bot.yaml gives the built-in defaults."""
    text = (Path(__file__).parents[2] / "bot.yaml").read_text()
    block = text[text.index("# --- recheck bot") :].splitlines()
    lines = [
        line[2:] if line.startswith("# ") else ""
        for line in block
        if re.match(r"#( [a-z_]+:| {2}|$)", line)
    ]
    config = parse_config("\n".join(lines), Path("bot.yaml"))
    settings = bot_settings(config, {"RECHECK_GERRIT_PASSWORD": "x"})
    assert settings.messages == DEFAULT_MESSAGES
    defaults = bot_settings(parse_config("", Path("bot.yaml")), {})
    assert (settings.source, settings.projects, settings.log_timeout, settings.workers) == (
        defaults.source, defaults.projects, defaults.log_timeout, defaults.workers,
    )  # fmt: skip
    assert settings.gerrit.ci_users == defaults.gerrit.ci_users
    assert settings.zuul.results == defaults.zuul.results
    assert settings.bug_url == defaults.bug_url
    assert (settings.job_filter, settings.comment_on_unrecognized) == (".*", False)
    assert (defaults.job_filter, defaults.comment_on_unrecognized) == (".*", False)


def _history_service(store: Any, signatures: Any) -> Any:
    """A service whose history worker feeds ``store`` (nothing in its queue)."""
    from recheck.bot.history import History
    from recheck.bot.queue import BotQueue
    from recheck.bot.service import Service
    from recheck.bot.triage import Triage
    from recheck.config.bot import BotSettings
    from recheck.config.files import Config
    from recheck.models import UrlOnlyTracker

    history = History(Config(), signatures, store)
    signatures.on_load = history.want_reclassify
    return Service(
        BotSettings(), BotQueue(":memory:"), Triage(Config(), signatures), None,
        UrlOnlyTracker("https://bugs/{bug}"), history=history,
    )  # fmt: skip


def test_changed_signatures_are_rerun_over_the_stored_history(tmp_path: Path) -> None:
    # The bot loads the signatures at start and again when a file changes; each time its
    # history worker (never the one commenting) re-runs the new or changed ones over the
    # history, so pages show their past hits.
    import os
    import shutil

    from recheck.bot.triage import SignatureSet
    from recheck.logs.build import Build
    from recheck.logs.localdir import DirSource
    from recheck.pipeline import ingest_build
    from recheck.query.signatures import load_signatures
    from recheck.store import open_store

    root = Path(__file__).resolve().parents[2]
    build_dir = root / "tests" / "fixtures" / "builds" / "gate-tempest-devstack-vm-neutron"
    queries = tmp_path / "queries"
    queries.mkdir()
    shutil.copy(root / "queries" / "demo-2.yaml", queries)
    with open_store(tmp_path / "store") as store:
        first, _ = load_signatures(queries)
        build = Build(build_uuid="a" * 32, build_status="FAILURE")
        ingest_build(store, DirSource(build_dir), build, first)
        assert store.matches_for("demo-1", days=100_000) == []
        signatures = SignatureSet(queries, print)
        service = _history_service(store, signatures)
        signatures.current()  # the bot's start: nothing new yet
        assert service.history_once()
        assert not service.history_once()  # nothing more to do
        new = queries / "demo-1.yaml"
        shutil.copy(root / "queries" / "demo-1.yaml", new)
        assert {s.bug for s in signatures.current()} == {"demo-1", "demo-2"}
        assert store.matches_for("demo-1", days=100_000) == []  # not by the loader itself
        assert service.history_once()
        found = store.matches_for("demo-1", days=100_000)
        assert [(m.filename, m.line) for m in found] == [("logs/screen-q-svc.txt", 20)]
        # A signature changed so that it no longer matches: its stored matches go.
        new.write_text('query: message:"no such text anywhere"\n')
        os.utime(new, (1, 1))  # a new mtime even within the file system's resolution
        signatures.current()
        assert service.history_once()
        assert store.matches_for("demo-1", days=100_000) == []


def test_a_store_error_while_rerunning_signatures_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from recheck.bot.triage import SignatureSet
    from recheck.store import StoreError

    class Broken:
        def reclassify(self, signatures: object) -> object:
            raise StoreError("/var/lib/recheck", "database is locked")

    signatures = SignatureSet(tmp_path, print)
    service = _history_service(Broken(), signatures)
    signatures.current()
    assert service.history_once()
    [record] = [r for r in caplog.records if r.getMessage() == "reclassify_failed"]
    assert "database is locked" in record.fields["problem"]  # type: ignore[attr-defined]
    assert service.metrics.get("errors") == 1


def test_storing_a_build_asks_to_pause_before_each_read(tmp_path: Path) -> None:
    """The history worker waits at each read of a log file while a comment is made."""
    from recheck.bot.gerrit.events import FailureEvent
    from recheck.bot.history import History
    from recheck.bot.triage import SignatureSet
    from recheck.config.files import Config, FetchConfig
    from recheck.store import open_store

    root = Path(__file__).resolve().parents[2]
    url = "https://logs.example.org/42/1/check/job/abc/"
    build = root / "tests" / "fixtures" / "builds" / "gate-tempest-devstack-vm-neutron"
    config = Config(
        fetch=FetchConfig(allowed_hosts=("logs.example.org",), local_roots=((url, build),))
    )
    job = JobOutcome("job", url, "FAILURE", bugs=("demo-1", "demo-2"))
    event = FailureEvent("42,1,x", "42", "1", "p", "master", "check", "", ())
    pauses: list[int] = []
    with open_store(tmp_path / "store") as store:
        history = History(config, SignatureSet(root / "queries", print), store)
        stored = history.store_job(event, job, 1.7e9, print, lambda: pauses.append(1))
        [kept] = store.builds()
    assert stored.bugs == ("demo-1", "demo-2") and stored.events > 0
    assert kept.bugs == ("demo-1", "demo-2") and kept.events == stored.events
    assert len(pauses) >= 3  # the build's log files, each read at least once


def test_a_bot_stopping_while_a_build_waits_to_be_stored_keeps_it_pending(
    tmp_path: Path,
) -> None:
    """Storing waits while a comment worker is busy; stopping the bot then abandons the
    build (nothing of it stored, the row still pending), to be stored at the next start."""
    import threading

    from recheck.bot.gerrit.events import FailedJob, FailureEvent
    from recheck.bot.history import History
    from recheck.bot.service import Service
    from recheck.bot.triage import SignatureSet, Triage
    from recheck.config.bot import BotSettings
    from recheck.config.files import Config, FetchConfig
    from recheck.store import open_store

    root = Path(__file__).resolve().parents[2]
    url = "https://logs.example.org/42/1/check/job/abc/"
    build = root / "tests" / "fixtures" / "builds" / "gate-tempest-devstack-vm-neutron"
    config = Config(
        fetch=FetchConfig(allowed_hosts=("logs.example.org",), local_roots=((url, build),))
    )
    event = FailureEvent(
        "42,1,x", "42", "1", "p", "master", "check", "", (FailedJob("job", url, "FAILURE"),)
    )
    report = FailureReport(
        "42,1,x",
        "42",
        "1",
        "p",
        "master",
        "check",
        "",
        (JobOutcome("job", url, "FAILURE", bugs=("demo-1",)),),
    )
    queue = BotQueue(":memory:")
    row = queue.add("gerrit", "{}", 1.7e9)
    assert queue.parsed(row, event.key, "42", event.to_json(), deadline=1.7e9)
    queue.reported(row, report_to_json(report), "text", history=True)
    queue.done(row, "posted")
    with open_store(tmp_path / "store") as store:
        signatures = SignatureSet(root / "queries", print)
        service = Service(
            BotSettings(), queue, Triage(config, signatures), None,
            UrlOnlyTracker("https://bugs/{bug}"), history=History(config, signatures, store),
        )  # fmt: skip
        service._busy_rows.add(999)  # a comment worker at work
        worker = threading.Thread(target=service.history_once)
        worker.start()
        worker.join(2)
        assert worker.is_alive()  # waiting for the comment, before its first read
        service.stop()
        worker.join(30)
        assert not worker.is_alive()
        assert store.builds() == []
    assert (queue.get(row).history, service.metrics.get("builds_stored")) == ("pending", 0)
