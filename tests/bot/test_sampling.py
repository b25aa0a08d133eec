"""Passing builds sampled for ``recheck stats``: which jobs of a CI report are chosen, and
the bot scanning a chosen one's real logs (served by a local logs server) and recording
the build with its matches and no events."""

from __future__ import annotations

import io
import json
from pathlib import Path

from bot_world import JENKINS_EVENTS, ROOT, ZUUL_BUILD
from gerrit_fake import LogSite

from recheck.bot.history import History
from recheck.bot.queue import BotQueue
from recheck.bot.sampling import SampledJob, fetchable, sampled_jobs, sampled_zuul_jobs
from recheck.bot.service import Service
from recheck.bot.triage import SignatureSet, Triage
from recheck.config.bot import BotSettings
from recheck.config.files import Config, FetchConfig
from recheck.models import UrlOnlyTracker
from recheck.store import open_store
from recheck.store.anomalybook import AnomalyBook

CI = ("jenkins",)
NOOP = 4
"""The recorded 'Build succeeded' report of one passing job, gate-noop."""
NOOP_PATH = "78/65378/15/check/gate-noop/05e95c4"


def test_only_passing_voting_jobs_of_ci_reports_are_sampled() -> None:
    everything = [job for event in JENKINS_EVENTS for job in sampled_jobs(event, CI, 1.0)]
    failed = JENKINS_EVENTS[5]  # two failed jobs, the others passed

    assert sampled_jobs(JENKINS_EVENTS[NOOP], CI, 1.0) == [
        SampledJob("gate-noop", f"http://logs.openstack.org/{NOOP_PATH}", "65378", "15",
                   JENKINS_EVENTS[NOOP]["change"]["project"], "master")
    ]  # fmt: skip
    names = {job.name for job in sampled_jobs(failed, CI, 1.0)}
    assert "gate-keystone-pep8" in names and "gate-keystone-python26" not in names
    assert sampled_jobs(JENKINS_EVENTS[NOOP], ("zuul",), 1.0) == []  # not a CI account
    assert sampled_jobs(JENKINS_EVENTS[NOOP], CI, 0.0) == []
    assert sampled_jobs({"type": "patchset-created"}, CI, 1.0) == []
    # The same jobs every time, and about the share asked for.
    half = [job for event in JENKINS_EVENTS for job in sampled_jobs(event, CI, 0.5)]
    assert half == [job for event in JENKINS_EVENTS for job in sampled_jobs(event, CI, 0.5)]
    assert 0.25 * len(everything) < len(half) < 0.75 * len(everything)
    assert set(half) < set(everything)
    # Only logs the bot may fetch: docs drafts are passing jobs of another host.
    config = Config(fetch=FetchConfig(allowed_hosts=("logs.openstack.org",)))
    fetched = [
        job
        for event in JENKINS_EVENTS
        for job in sampled_jobs(event, CI, 1.0, lambda url: fetchable(url, config))
    ]
    assert fetched and all(job.url.startswith("http://logs.openstack.org/") for job in fetched)
    assert any("docs-draft" in job.url for job in everything)


def run_bot(tmp_path: Path, share: float, *, served: bool = True) -> Path:
    store_dir = tmp_path / "store"
    with LogSite() as logs, open_store(store_dir) as store:
        if served:
            logs.serve(NOOP_PATH, ZUUL_BUILD)
        config = Config(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), retries=0))
        signatures = SignatureSet(ROOT / "queries", print)
        service = Service(
            BotSettings(log_timeout=5 if served else 0, success_sample=share), BotQueue(":memory:"),
            Triage(config, signatures), None, UrlOnlyTracker("https://bugs/{bug}"),
            history=History(config, signatures, store), out=io.StringIO(),
        )  # fmt: skip
        line = json.dumps(JENKINS_EVENTS[NOOP])
        service.enqueue("gerrit", line.replace("http://logs.openstack.org/", f"{logs.url}/logs/"))
        service.drain()
        service.drain_history()
        rows = [(row.source, row.state) for row in service.queue.rows()]
        history = [row.history for row in service.queue.rows() if row.source == "sample"]
        assert history == ([] if not share else ["stored"] if served else ["failed"])
        assert service.metrics.get("success_builds_sampled") == (1 if share and served else 0)
        assert service.metrics.get("errors") == 0
    expected = [("gerrit", "skipped")] + ([("sample", "done")] if share else [])
    assert rows == expected  # the report is no failure; its passing job was sampled
    return store_dir


def test_the_bot_records_a_sampled_passing_build_without_its_events(tmp_path: Path) -> None:
    with open_store(run_bot(tmp_path, 1.0)) as store:
        (build,) = store.builds()
        matches = store.matches_between()

    assert build.build.build_status == "SUCCESS"
    assert build.build.build_name == "gate-noop"
    assert build.build.build_change == "65378"
    assert build.events == 0
    assert build.bugs == ("demo-3",)  # the devstack build's eventlet error: a false alarm
    assert [(m.bug, m.filename, m.line) for m in matches] == [
        ("demo-3", "controller/logs/screen-c-vol.txt", 9)
    ]


def test_a_sampled_passing_build_is_a_baseline_in_the_anomaly_book(tmp_path: Path) -> None:
    """Its line keys are what a failure of the job is compared with (clusters, the
    comment's "new or known"), though its events are not stored."""
    with open_store(run_bot(tmp_path, 1.0)) as store:
        book = AnomalyBook.of(store)
        assert book is not None
        with book:
            keys, builds = book.baseline_digests("gate-noop")
            assert (len(keys) > 10, builds) == (True, 1)
            assert book.baseline_digests("another-job") == (set(), 0)


def test_nothing_is_sampled_at_a_share_of_zero(tmp_path: Path) -> None:
    with open_store(run_bot(tmp_path, 0.0)) as store:
        assert store.builds() == []


def test_a_sampled_job_whose_logs_never_come_is_given_up_quietly(tmp_path: Path) -> None:
    with open_store(run_bot(tmp_path, 1.0, served=False)) as store:
        assert store.builds() == []


def test_passing_builds_of_a_zuul_buildset_are_sampled() -> None:
    """bot.source: zuul lists failed builds only; the passing voting builds of a failed
    change's buildset are the Zuul poller's sample."""
    zuul = "https://zuul.example.org"
    record = json.loads((ROOT / "tests/fixtures/zuul-api/buildset-758776-4.json").read_text())
    passing = next(b for b in record["builds"] if b["result"] == "SUCCESS")

    assert sampled_zuul_jobs(record, zuul, "openstack", 1.0) == [
        SampledJob(
            "publish-openstack-releasenotes-python3",
            f"{zuul}/t/openstack/build/{passing['uuid']}",
            str(record["change"]), str(record["patchset"]), record["project"], record["branch"],
        )
    ]  # fmt: skip
    assert sampled_zuul_jobs(record, zuul, "openstack", 0.0) == []
    assert sampled_zuul_jobs(record, zuul, "openstack", 1.0, lambda url: False) == []
    retried = {**record, "builds": [{**passing, "final": False}]}
    non_voting = {**record, "builds": [{**passing, "voting": False}]}
    assert sampled_zuul_jobs(retried, zuul, "openstack", 1.0) == []
    assert sampled_zuul_jobs(non_voting, zuul, "openstack", 1.0) == []
    # A single build record (the poller lists failures) and malformed ones: no sample.
    assert sampled_zuul_jobs(passing, zuul, "openstack", 1.0) == []
    assert sampled_zuul_jobs({"builds": [None, {"result": "SUCCESS"}]}, zuul, "t", 1.0) == []
    assert sampled_zuul_jobs("junk", zuul, "t", 1.0) == []
