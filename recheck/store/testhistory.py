"""Test-level history: what ``recheck tests``, the tests page and the run view report.

Every store answers with these records; the rules that turn counts into verdicts live
here once: which tests are **flaky**, how they sort (worst first), and what a ``--test``
pattern matches.

A test is flaky when it

- failed and passed on the same change and patchset in the same job (a recheck that
  passed: the code did not change, the result did), or
- failed at least twice, passed more often than it failed, and has no clear start:
  a test that broke on some day and mostly fails from then on (half of its runs or
  more since its first failure in the window) is a regression, not a flake.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from recheck.store.base import StoredBuild

__all__ = [
    "BuildTests",
    "DayCount",
    "TestFailure",
    "TestSummary",
    "flaky_by_rate",
    "sort_worst_first",
    "summaries_of",
    "test_pattern",
]

CLEAR_START_RATE = 0.5
"""From its first failure on, a test failing at least this share of its runs broke then."""


@dataclass(frozen=True)
class DayCount:
    """A test's runs and failures on one day (UTC)."""

    day: date
    runs: int
    failures: int


@dataclass(frozen=True)
class TestSummary:
    """One test over a window: ``recheck tests``' row, the tests page's line."""

    __test__ = False  # not a pytest test class

    test: str
    runs: int
    failures: int
    flaky: bool
    last_failure: datetime | None
    days: tuple[DayCount, ...] = ()
    """Per day with runs, oldest first (the page's sparkline)."""
    last_build: str | None = None
    """The uuid of the newest build it failed in (the run view to link)."""

    @property
    def failure_rate(self) -> float:
        return self.failures / self.runs if self.runs else 0.0

    def as_json(self) -> dict[str, object]:
        """``recheck tests --format json``'s object for this test."""
        return {
            "test": self.test,
            "runs": self.runs,
            "failures": self.failures,
            "failure_rate": round(self.failure_rate, 6),
            "flaky": self.flaky,
            "last_failure": None if self.last_failure is None else self.last_failure.isoformat(),
        }


@dataclass(frozen=True)
class TestFailure:
    """A failed test of one build, with its attachments (traceback first)."""

    __test__ = False

    test: str
    start: float | None
    duration: float | None
    worker: str | None
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BuildTests:
    """Everything stored about one build's test run: the run view's data."""

    build: StoredBuild
    tests: tuple[tuple[str, str, float | None, float | None, str | None], ...]
    """Every test: (id, status, start in seconds since the epoch, duration, worker)."""
    failures: tuple[TestFailure, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def flaky_by_rate(days: Sequence[DayCount]) -> bool:
    """Whether a test's daily counts say flaky (see the module docstring)."""
    runs = sum(d.runs for d in days)
    failures = sum(d.failures for d in days)
    if failures < 2 or failures * 2 > runs:
        return False
    first = next(i for i, d in enumerate(days) if d.failures)
    since_runs = sum(d.runs for d in days[first:])
    since_failures = sum(d.failures for d in days[first:])
    return since_failures < CLEAR_START_RATE * since_runs


def summaries_of(
    days: dict[str, list[DayCount]],
    last: dict[str, tuple[datetime, str]],
    rechecked: set[str],
    chosen: Collection[str],
) -> list[TestSummary]:
    """The summaries of the ``chosen`` tests, worst first, from each test's counts per
    day, its newest failure (time, build uuid) and whether it passed on a recheck."""
    found = []
    for test in chosen:
        counts = tuple(sorted(days.get(test, ()), key=lambda d: d.day))
        when, build = last.get(test, (None, None))
        found.append(
            TestSummary(
                test=test,
                runs=sum(d.runs for d in counts),
                failures=sum(d.failures for d in counts),
                flaky=test in rechecked or flaky_by_rate(counts),
                last_failure=when,
                days=counts,
                last_build=build,
            )
        )
    return sort_worst_first(found)


def sort_worst_first(tests: list[TestSummary]) -> list[TestSummary]:
    """Most failures first, then the highest failure rate, then by name."""
    return sorted(tests, key=lambda t: (-t.failures, -t.failure_rate, t.test))


def test_pattern(pattern: str) -> Callable[[str], bool]:
    """What ``--test PATTERN`` matches: test ids containing it; ``*`` stands for any text.

    Pieces between stars are found in order, each at its leftmost place: linear in the
    id's length, whatever the pattern (no backtracking).
    """
    pieces = [p for p in pattern.split("*") if p]

    def matches(test_id: str) -> bool:
        at = 0
        for piece in pieces:
            found = test_id.find(piece, at)
            if found < 0:
                return False
            at = found + len(piece)
        return True

    return matches


test_pattern.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
