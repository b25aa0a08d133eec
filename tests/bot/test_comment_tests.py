"""The comment names each failed job's failed tests and marks the known flaky ones: from
a real build's logs with a real tempest stream, through triage, to the comment text."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from subunit_streams import stream_bytes, tempest_ids

from recheck.bot.comment import COMMENT_MAX_BYTES, comment_text
from recheck.bot.gerrit.events import FailedJob, FailureEvent
from recheck.bot.history import History
from recheck.bot.outcome import FailureReport, JobOutcome
from recheck.bot.queue import report_from_json, report_to_json
from recheck.bot.triage import SignatureSet, Triage
from recheck.config.bot import DEFAULT_MESSAGES
from recheck.config.files import Config, FetchConfig
from recheck.logs.build import Build
from recheck.logs.testresults import failed_tests
from recheck.models import UrlOnlyTracker
from recheck.store import open_store

ROOT = Path(__file__).parents[2]
NEUTRON = ROOT / "tests" / "fixtures" / "builds" / "gate-tempest-devstack-vm-neutron"
SUBUNIT = ROOT / "tests" / "fixtures" / "subunit" / "tempest-failures.subunit"
PLUGIN = "neutron_tempest_plugin.scenario.test_dns_integration."
FIP = f"{PLUGIN}DNSIntegrationTests.test_fip[id-a8f2fade-8d5c-40f9-80f0-3de4b8d91985]"
SETUP = f"setUpClass ({PLUGIN}DNSIntegrationDomainPerProjectTests)"
TRACKER = UrlOnlyTracker("https://bugs/{bug}")
LOGS = "https://logs.example.org/77/1/"


def _report(*jobs: JobOutcome) -> FailureReport:
    return FailureReport(
        "k", "77", "1", "openstack/neutron", "master", "gate", "https://r/77", jobs
    )


def test_triage_names_the_failed_tests_and_the_history_marks_the_flaky_ones(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(NEUTRON, logs)
    shutil.copy(SUBUNIT, logs / "testrepository.subunit")
    fetch = FetchConfig(allowed_hosts=("logs.example.org",), local_roots=((LOGS, logs),))
    config = Config(fetch=fetch, path=tmp_path / "bot.yaml")
    # The history: test_fip failed on a patchset, then passed on its recheck.
    with open_store(tmp_path / "store") as store:
        ids = [FIP, *tempest_ids(5)]
        now = datetime.now(UTC)
        for uuid, failed in (("first", [FIP]), ("recheck", [])):
            status = "FAILURE" if failed else "SUCCESS"
            build = Build(build_uuid=uuid, build_name="neutron-tempest", build_change="5",
                          build_patchset="2", build_status=status)  # fmt: skip
            tests = failed_tests(io.BytesIO(stream_bytes(ids, failed=failed)))
            store.ingest(build, [], [], when=now - timedelta(hours=1), tests=tests)
        history = History(config, SignatureSet(ROOT / "queries", print), store)
        triage = Triage(config, SignatureSet(ROOT / "queries", print), history.flaky)
        job = FailedJob("gate-tempest-devstack-vm-neutron", LOGS, "FAILURE")
        event = FailureEvent("k", "77", "1", "openstack/neutron", "master", "gate", "u", (job,))
        looked = triage.look(event)
        try:
            [outcome] = triage.outcomes(event, looked, print)
        finally:
            triage.close(looked)

    assert outcome.bugs == ("demo-1", "demo-2"), outcome
    assert outcome.failed_tests == (FIP, SETUP)
    assert outcome.flaky_tests == (FIP,)
    text = comment_text(_report(outcome), DEFAULT_MESSAGES, TRACKER, 1200)
    assert text is not None
    assert (
        "- gate-tempest-devstack-vm-neutron: https://bugs/demo-1 https://bugs/demo-2\n"
        f"  failed tests: {PLUGIN}DNSIntegrationTests.test_fip (known flaky), {SETUP}\n"
    ) in text
    assert report_from_json(report_to_json(_report(outcome))) == _report(outcome)


def test_a_few_tests_are_named_then_counted_and_the_comment_stays_under_the_limit() -> None:
    many = tuple(sorted(tempest_ids(40)))
    job = JobOutcome("tempest-full", "u", "FAILURE", failed_tests=many, flaky_tests=many[7:8])
    text = comment_text(_report(job), DEFAULT_MESSAGES, TRACKER, 1200)
    assert text is not None
    [tests_line] = [line for line in text.splitlines() if "failed tests:" in line]
    named = tests_line.removeprefix("  failed tests: ").split(", ")
    assert named[0] == many[7].split("[")[0] + " (known flaky)"  # the flaky ones first
    assert named[-1] == many[1].split("[")[0] + " and 37 more"
    # Hostile ids are one line of text, and many jobs with long ids stay under Gerrit's limit.
    evil = JobOutcome("j", "u", "FAILURE", failed_tests=("x\nRecheck everything!" + "y" * 500,))
    assert "\nRecheck" not in (comment_text(_report(evil), DEFAULT_MESSAGES, TRACKER, 1) or "")
    jobs = [
        JobOutcome(f"job-{i}", "u", "FAILURE", bugs=("7",), failed_tests=many) for i in range(300)
    ]
    big = comment_text(_report(*jobs), DEFAULT_MESSAGES, TRACKER, 1200)
    assert big is not None and len(big.encode()) <= COMMENT_MAX_BYTES
    assert "more jobs, not listed to keep the comment short" in big
