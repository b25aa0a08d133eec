"""New or known (issue 19 item 4): a comment on a failure no signature explains says
whether its most unusual line also showed in other changes' failures this week (likely
an intermittent bug, not this patch) or in none. Real logs through triage to the text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from recheck.bot.comment import comment_text, job_line
from recheck.bot.gerrit.events import FailedJob, FailureEvent
from recheck.bot.history import History
from recheck.bot.outcome import FailureReport, JobOutcome
from recheck.bot.queue import report_from_json, report_to_json
from recheck.bot.triage import SignatureSet, Triage
from recheck.cli.main import main
from recheck.config.bot import DEFAULT_MESSAGES
from recheck.config.files import Config, FetchConfig
from recheck.models import UrlOnlyTracker
from recheck.store import open_store

ROOT = Path(__file__).parents[2]
EXCERPT = ROOT / "tests" / "fixtures" / "logs" / "neutron-server.excerpt.log"
TRACKER = UrlOnlyTracker("https://bugs/{bug}")
LOGS = "https://logs.example.org/"
# The real log, dated today (builds are stored at the time their logs end, and "this
# week" counts from now); a passing run logs it without its errors and tracebacks.
TEXT = EXCERPT.read_text(encoding="utf-8").replace(
    "2015-10-29", (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
)
PASSING = "".join(
    line
    for line in TEXT.splitlines(keepends=True)
    if not any(level in line for level in (" ERROR ", " TRACE ", " CRITICAL "))
)


def _report(job: JobOutcome) -> FailureReport:
    return FailureReport("k", "300", "1", "openstack/neutron", "master", "gate", "u", (job,))


def test_the_job_line_says_known_elsewhere_or_only_here() -> None:
    line = job_line(JobOutcome("tempest", "u", "FAILURE", seen_elsewhere=7), TRACKER, 60)
    assert line == (
        "- tempest: unrecognized error; its most unusual line was also seen in 7 other "
        "changes this week: likely an intermittent bug, not this change"
    )
    only = job_line(JobOutcome("tempest", "u", "FAILURE", seen_elsewhere=0), TRACKER, 60)
    assert only.endswith(
        "unrecognized error; its most unusual line was seen in no other change this week"
    )
    assert (
        job_line(JobOutcome("tempest", "u", "FAILURE"), TRACKER, 60)
        == "- tempest: unrecognized error"
    )
    recognized = JobOutcome("tempest", "u", "FAILURE", bugs=("1",), seen_elsewhere=3)
    assert "seen" not in job_line(recognized, TRACKER, 60)
    queued = _report(JobOutcome("tempest", "u", "FAILURE", seen_elsewhere=2))
    assert report_from_json(report_to_json(queued)) == queued


def _ingest(store: Path, path: Path, status: str, uuid: str, change: str) -> None:
    argv = ["ingest", str(path), "--store", str(store), "--queries", str(path.parent)]
    argv += ["--build-name", "neutron-job", "--build-status", status, "--build-uuid", uuid]
    argv += ["--build-change", change]
    assert main(argv) == 0


def _triaged(tmp_path: Path, store_path: Path, logs: Path, change: str) -> JobOutcome:
    fetch = FetchConfig(allowed_hosts=("logs.example.org",), local_roots=((LOGS, logs),))
    config = Config(fetch=fetch, path=tmp_path / "bot.yaml")
    with open_store(store_path) as store:
        signatures = SignatureSet(ROOT / "queries", print)
        history = History(config, signatures, store)
        triage = Triage(config, signatures, None, history.elsewhere)
        job = FailedJob("neutron-job", LOGS, "FAILURE")
        event = FailureEvent("k", change, "1", "openstack/neutron", "master", "gate", "u", (job,))
        looked = triage.look(event)
        try:
            [outcome] = triage.outcomes(event, looked, print)
        finally:
            triage.close(looked)
    return outcome


def test_triage_counts_the_other_changes_whose_failures_share_the_top_anomaly(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    builds = {"pass": (PASSING, "SUCCESS", "100"), "f1": (TEXT, "FAILURE", "101"),
              "f2": (TEXT, "FAILURE", "102"), "f3": (TEXT, "FAILURE", "300")}  # fmt: skip
    for uuid, (text, status, change) in builds.items():
        log = tmp_path / uuid / "screen-q-svc.txt"
        log.parent.mkdir()
        log.write_text(text, encoding="utf-8")
        _ingest(store, log, status, uuid * 8, change)
    # Change 300 fails with the same traceback: seen in 101 and 102, not counting itself.
    logs = tmp_path / "new" / "controller" / "logs"
    logs.mkdir(parents=True)
    (logs / "screen-q-svc.txt").write_text(TEXT, encoding="utf-8")
    outcome = _triaged(tmp_path, store, tmp_path / "new", "300")
    assert outcome.bugs == () and outcome.seen_elsewhere == 2
    text = comment_text(_report(outcome), DEFAULT_MESSAGES, TRACKER, 1200)
    assert text is not None and "also seen in 2 other changes this week" in text
    # A failure of its own: its line is in no other change.
    (logs / "screen-q-svc.txt").write_text(
        PASSING + "2015-10-29 10:59:00.000 1 ERROR neutron.db [-] quota table corrupt\n",
        encoding="utf-8",
    )
    assert _triaged(tmp_path, store, tmp_path / "new", "301").seen_elsewhere == 0


def test_without_a_passing_build_of_the_job_nothing_is_said(tmp_path: Path) -> None:
    store = tmp_path / "store"
    log = tmp_path / "f1" / "screen-q-svc.txt"
    log.parent.mkdir()
    log.write_text(TEXT, encoding="utf-8")
    _ingest(store, log, "FAILURE", "f1" * 16, "101")
    logs = tmp_path / "new" / "controller" / "logs"
    logs.mkdir(parents=True)
    (logs / "screen-q-svc.txt").write_text(TEXT, encoding="utf-8")
    assert _triaged(tmp_path, store, tmp_path / "new", "300").seen_elsewhere is None
