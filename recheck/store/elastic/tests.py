"""The cluster store and test results: not kept there (yet).

The test history (``recheck tests``, the tests page, the run view) lives in the
embedded store's catalog (``recheck.store.embedded.testcatalog``); a cluster store
ingests a build's events and matches but not its test results. Asking it for the
history is an error that says so, instead of an empty answer that would read as "no
test ever failed"; the pages, which only link run views, get "none stored".
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from recheck.store.base import DEFAULT_EVENT_DAYS, StoreError
from recheck.store.elastic.client import StoreClient
from recheck.store.testhistory import BuildTests, TestSummary

__all__ = ["NEEDS_EMBEDDED", "TestResults"]

NEEDS_EMBEDDED = (
    "test results are kept only by the embedded store; this cluster store keeps events "
    "and matches. Run the command on an embedded store (--store DIR, or bot.yaml "
    "without store.backend) that ingested the builds"
)


class TestResults(StoreClient):
    """The test-history part of the ``Store`` interface, for a cluster."""

    __test__ = False  # not a pytest test class

    def test_summaries(
        self,
        days: float = DEFAULT_EVENT_DAYS,
        *,
        job: str | None = None,
        pattern: str | None = None,
        names: Collection[str] | None = None,
        now: datetime | None = None,
    ) -> list[TestSummary]:
        """Always a StoreError: a cluster store keeps no test results."""
        raise StoreError(self.path, NEEDS_EMBEDDED)

    def build_tests(self, uuid: str) -> BuildTests | None:
        """None: a cluster store keeps no build's test run."""
        return None

    def tested_builds(self, uuids: Collection[str]) -> dict[str, int]:
        """Empty: a cluster store keeps no test results."""
        return {}
