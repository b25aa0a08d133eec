"""The test pages: the tests page (OpenStack-Health's view) and a build's run view
(Stackviz's), as plain data with their SVG geometry; no HTML.

The tests page lists the tests that failed most in the window, each with its daily
failure rate as a sparkline and the signatures whose ``test_ids`` cover it; failing
tests no signature covers are the "uncategorized test failures". The run view draws a
build's tests on a timeline, one row per worker, lists its failed tests first with
their tracebacks, and names the bugs the build matched. Geometry is numbers only: every
text reaches the HTML through the autoescaping templates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from recheck.logs.testresults import matching_failures
from recheck.query.signatures import Signature
from recheck.store.base import Store
from recheck.store.testhistory import DayCount, TestSummary
from recheck.web.pages import Header, web_url

__all__ = [
    "RUNS",
    "TESTS",
    "RunPage",
    "TestsPage",
    "run_name",
    "run_page",
    "tests_page",
]

TESTS = "tests"
RUNS = "runs/"
TOP_TESTS = 50
"""Tests listed in each part of the tests page."""
SPARK_WIDTH, SPARK_HEIGHT = 120, 24
TIMELINE_WIDTH, ROW_HEIGHT = 900, 18
MAX_RUN_FAILURES = 50
"""Failed tests shown with their tracebacks in a run view (the others are counted)."""
_SAFE_UUID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def run_name(uuid: str) -> str | None:
    """The page name of a build's run view; None for a uuid unfit for a file name."""
    return f"{RUNS}{uuid}" if _SAFE_UUID.fullmatch(uuid) else None


# --------------------------------------------------------------------------- tests page


@dataclass(frozen=True)
class Sparkline:
    """A test's daily failure rate: one point per day of the window (numbers only)."""

    width: int
    height: int
    path: str
    """An SVG path of the rate, scaled to the test's own highest daily rate."""
    dots: list[tuple[float, float]]
    """Days with failures: (x, y) of a dot each."""
    peak: float
    """The highest daily failure rate (0 to 1)."""


@dataclass(frozen=True)
class TestLine:
    """One test on the tests page."""

    __test__ = False

    test: str
    runs: int
    failures: int
    failure_rate: float
    flaky: bool
    last_failure: datetime | None
    run: str | None
    """The page name of the run view of its newest failure, when it has one."""
    signatures: list[str]
    """The bugs whose signatures' ``test_ids`` name this test."""
    spark: Sparkline


@dataclass(frozen=True)
class TestsPage:
    """The tests that failed most in the window: covered by a signature, and not."""

    header: Header
    days: float
    covered: list[TestLine]
    uncategorized: list[TestLine]
    failing: int
    """Tests with at least one failure in the window."""
    problem: str | None = None
    """Why the store gave no test history (a cluster store keeps none)."""


def tests_page(
    store: Store, signatures: Sequence[Signature], top: Header, *, days: float
) -> TestsPage:
    """The tests page from ``store``'s test history of the last ``days``."""
    from recheck.store.base import StoreError

    try:
        found = store.test_summaries(days, now=top.generated)
    except StoreError as exc:
        return TestsPage(top, days, [], [], 0, exc.message)
    first = (top.generated - timedelta(days=days)).date()
    span = [first + timedelta(days=i) for i in range((top.generated.date() - first).days + 1)]
    with_ids = [s for s in signatures if s.test_ids]
    covered: list[TestLine] = []
    uncategorized: list[TestLine] = []
    for summary in found:
        bugs = [s.bug for s in with_ids if matching_failures(s.test_ids, [summary.test])]
        part = covered if bugs else uncategorized
        if len(part) < TOP_TESTS:
            part.append(_line(summary, bugs, span))
    return TestsPage(top, days, covered, uncategorized, len(found))


def _line(summary: TestSummary, bugs: list[str], span: list[date]) -> TestLine:
    return TestLine(
        summary.test,
        summary.runs,
        summary.failures,
        summary.failure_rate,
        summary.flaky,
        summary.last_failure,
        None if summary.last_build is None else run_name(summary.last_build),
        bugs,
        sparkline(summary.days, span),
    )


def sparkline(days: Sequence[DayCount], span: Sequence[date]) -> Sparkline:
    """The daily failure rate over ``span`` (days without runs are drawn at 0)."""
    by_day = {d.day: d for d in days}
    rates = [
        (by_day[day].failures / by_day[day].runs) if day in by_day and by_day[day].runs else 0.0
        for day in span
    ]
    peak = max(rates, default=0.0)
    step = SPARK_WIDTH / max(len(span) - 1, 1)
    points = [
        (
            round(i * step, 1),
            round(SPARK_HEIGHT - 2 - (r / peak if peak else 0) * (SPARK_HEIGHT - 4), 1),
        )
        for i, r in enumerate(rates)
    ]
    path = "".join(f"{'M' if i == 0 else 'L'}{x} {y}" for i, (x, y) in enumerate(points))
    dots = [point for point, rate in zip(points, rates, strict=True) if rate > 0]
    return Sparkline(SPARK_WIDTH, SPARK_HEIGHT, path, dots, peak)


# --------------------------------------------------------------------------- run view


@dataclass(frozen=True)
class Bar:
    """One test on the timeline (numbers and its status; the id is the tooltip)."""

    x: float
    width: float
    css: str
    test: str
    status: str
    duration: float | None


@dataclass(frozen=True)
class WorkerRow:
    worker: str
    y: int
    bars: list[Bar]


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    seconds: float
    """The run's length, start of the first test to end of the last."""
    rows: list[WorkerRow]
    ticks: list[tuple[float, str]]


@dataclass(frozen=True)
class RunFailure:
    """A failed test of the build, with its attachments and the bugs covering it."""

    test: str
    worker: str | None
    duration: float | None
    details: list[tuple[str, str]]
    signatures: list[str]


@dataclass(frozen=True)
class RunPage:
    """One build's test run (the Stackviz view)."""

    header: Header
    uuid: str
    job: str
    status: str
    time: datetime
    project: str | None
    change: str | None
    patchset: str | None
    log_url: str | None
    bugs: list[str]
    """Bugs whose signatures matched the build."""
    failures: list[RunFailure]
    more_failures: int
    counts: dict[str, int]
    problems: list[str]
    timeline: Timeline
    tests: int = field(default=0)


def run_page(
    store: Store, uuid: str, signatures: Sequence[Signature], top: Header
) -> RunPage | None:
    """The run view of build ``uuid``; None when the store has no test run of it."""
    stored = store.build_tests(uuid)
    if stored is None:
        return None
    build = stored.build.build
    with_ids = [s for s in signatures if s.test_ids]
    failures = [
        RunFailure(
            f.test,
            f.worker,
            f.duration,
            [(name, text) for name, text in f.details],
            [s.bug for s in with_ids if matching_failures(s.test_ids, [f.test])],
        )
        for f in stored.failures
    ]
    return RunPage(
        top,
        stored.build.uuid,
        build.build_name or "unknown",
        build.build_status or "UNKNOWN",
        stored.build.time,
        build.project,
        build.build_change,
        build.build_patchset,
        web_url(build.log_url),
        list(stored.build.bugs),
        failures[:MAX_RUN_FAILURES],
        max(0, len(failures) - MAX_RUN_FAILURES),
        stored.counts,
        list(stored.problems),
        timeline(stored.tests),
        len(stored.tests),
    )


_CSS = {"success": "success", "fail": "failure", "skip": "skip", "incomplete": "other"}


def timeline(
    tests: Sequence[tuple[str, str, float | None, float | None, str | None]],
) -> Timeline:
    """Tests as bars, one row per worker (untagged tests on a row of their own)."""
    timed = [t for t in tests if t[2] is not None]
    start = min((t[2] for t in timed if t[2] is not None), default=0.0)
    end = max(((t[2] or 0.0) + (t[3] or 0.0) for t in timed), default=start)
    seconds = max(end - start, 1.0)
    scale = TIMELINE_WIDTH / seconds
    workers = sorted({t[4] or "" for t in timed}, key=_worker_order)
    rows = []
    for index, worker in enumerate(workers):
        bars = [
            Bar(
                round(((t[2] or start) - start) * scale, 2),
                round(max((t[3] or 0.0) * scale, 0.5), 2),
                _CSS.get(t[1], "other"),
                t[0],
                t[1],
                t[3],
            )
            for t in timed
            if (t[4] or "") == worker
        ]
        rows.append(WorkerRow(worker or "untagged", index * ROW_HEIGHT, bars))
    step = _tick_step(seconds)
    ticks = [(round(s * scale, 1), _clock(s)) for s in _frange(0.0, seconds, step)]
    return Timeline(TIMELINE_WIDTH, len(rows) * ROW_HEIGHT, seconds, rows, ticks)


def _worker_order(worker: str) -> tuple[int, int, str]:
    number = worker.removeprefix("worker-")
    return (worker == "", int(number) if number.isdigit() else 1 << 30, worker)


def _tick_step(seconds: float) -> float:
    for step in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if seconds / step <= 10:
            return float(step)
    return 14400.0


def _frange(start: float, stop: float, step: float) -> list[float]:
    count = int((stop - start) // step) + 1
    return [start + i * step for i in range(count)]


def _clock(seconds: float) -> str:
    """Time since the run's start: ``12:30`` (minutes), ``1:02:30`` past an hour."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
