"""The cluster store's test results: one document per build in ``tests_index``.

A build's document (``_id`` its uuid, written with its other documents, so a re-ingest
replaces it) holds its job, change and patchset, the ids of the tests that ran
(``ran``) and failed (``failed``) as keywords, and the run view's data as one JSON text
neither indexed nor aggregated (``record``). ``recheck tests`` then asks the cluster
for runs per test and day (a ``terms`` aggregation on ``ran`` with a daily
``date_histogram``) and pages through the few builds with failures for the rest; the
verdicts (flaky, order) are ``recheck.store.testhistory``'s, as for the embedded store.
The aggregation returns at most ``MAX_TESTS`` tests, within Elasticsearch's default
bucket limit for ten days.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from recheck.store.base import DEFAULT_EVENT_DAYS, days_before, utc
from recheck.store.elastic.documents import build_of, parse_time
from recheck.store.elastic.writes import Writes
from recheck.store.testhistory import (
    BuildTests,
    DayCount,
    TestFailure,
    TestSummary,
    summaries_of,
    test_pattern,
)

__all__ = ["MAX_TESTS", "TestResults"]

MAX_TESTS = 5000
"""Tests whose runs one ``recheck tests`` aggregates (their daily buckets included, ten
days stay under Elasticsearch's default ``search.max_buckets`` of 65,536)."""


class TestResults(Writes):
    """The test-history part of the ``Store`` interface, on a cluster (on ``Writes``:
    the run view reads the build document as an ingest does)."""

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
        """Per test, runs and failures of the last ``days`` (``Store.test_summaries``)."""
        self._ensure_indices()
        first = days_before(utc(now), days)
        since = first.replace(hour=0, minute=0, second=0, microsecond=0)
        Q = self._dsl.Q
        window = [self._range("time", gte=since)]
        if job is not None:
            window.append(self._term("job", job))
        per_day = self._runs_per_day(Q("bool", filter=window))
        failures: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
        last: dict[str, tuple[datetime, str]] = {}
        failed_in: dict[tuple[str, str, str], list[tuple[str, frozenset[str]]]] = {}
        fields = ["build_uuid", "time", "job", "change", "patchset", "failed"]
        failing = Q("bool", filter=[*window, Q("range", failures={"gte": 1})])
        for hit in self._pages([self.settings.tests_index], failing, [{"build_uuid": "asc"}],
                               source=fields):  # fmt: skip
            doc = hit["_source"]
            when = parse_time(doc["time"])
            failed = frozenset(doc.get("failed") or ())
            for test in failed:
                failures[test][when.date()] += 1
                if test not in last or last[test][0] < when:
                    last[test] = (when, str(doc["build_uuid"]))
            if doc.get("change") and doc.get("patchset"):
                key = (str(doc["change"]), str(doc["patchset"]), str(doc["job"]))
                failed_in.setdefault(key, []).append((str(doc["build_uuid"]), failed))
        rechecked = self._passed_on_recheck(failed_in, window)
        counts = {
            test: [
                DayCount(day, runs, failures.get(test, {}).get(day, 0))
                for day, runs in by_day.items()
            ]
            for test, by_day in per_day.items()
        }
        if names is not None:
            chosen: Collection[str] = set(names) & set(counts)
        elif pattern is not None:
            matcher = test_pattern(pattern)
            chosen = [test for test in counts if matcher(test)]
        else:
            chosen = set(failures) & set(counts)
        return summaries_of(counts, last, rechecked, chosen)

    def _runs_per_day(self, query: Any) -> dict[str, dict[date, int]]:
        body = {
            "size": 0,
            "query": query.to_dict(),
            "aggs": {
                "tests": {
                    "terms": {"field": "ran", "size": MAX_TESTS},
                    "aggs": {
                        "days": {
                            "date_histogram": {
                                "field": "time",
                                "calendar_interval": "1d",
                                "format": "yyyy-MM-dd",
                                "min_doc_count": 1,
                            }
                        }
                    },
                }
            },
        }
        answer = self._call(
            "POST", f"/{self.settings.tests_index}/_search",
            {"ignore_unavailable": "true"}, body,
        )  # fmt: skip
        found: dict[str, dict[date, int]] = {}
        for bucket in answer.get("aggregations", {}).get("tests", {}).get("buckets", []):
            found[str(bucket["key"])] = {
                date.fromisoformat(day["key_as_string"]): int(day["doc_count"])
                for day in bucket["days"]["buckets"]
            }
        return found

    def _passed_on_recheck(
        self,
        failed_in: dict[tuple[str, str, str], list[tuple[str, frozenset[str]]]],
        window: list[Any],
    ) -> set[str]:
        """Tests that failed in a build and not in another build of the same job, change
        and patchset whose tests ran (as the embedded store decides)."""
        Q = self._dsl.Q
        found: set[str] = set()
        changes = sorted({change for change, _, _ in failed_in})
        for start in range(0, len(changes), 500):
            query = Q("bool", filter=[Q("terms", change=changes[start : start + 500])])
            fields = ["build_uuid", "job", "change", "patchset", "failed", "runs"]
            for hit in self._pages([self.settings.tests_index], query, [{"build_uuid": "asc"}],
                                   source=fields):  # fmt: skip
                doc = hit["_source"]
                key = (str(doc.get("change")), str(doc.get("patchset")), str(doc.get("job")))
                if not int(doc.get("runs") or 0):
                    continue
                other = frozenset(doc.get("failed") or ())
                for uuid, failed in failed_in.get(key, ()):
                    if uuid != doc["build_uuid"]:
                        found.update(failed - other)
        return found

    def build_tests(self, uuid: str) -> BuildTests | None:
        """The stored test run of build ``uuid``; None when it has none."""
        from recheck.store.elastic.cluster import ClusterError

        self._ensure_indices()
        try:
            answer = self._call("GET", f"/{self.settings.tests_index}/_doc/{_quoted(uuid)}")
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise
        build = self._build_source(uuid)  # None, or a first ingest's placeholder
        if build is None or build.get("generation") is None:
            return None
        if not answer.get("found") or "record" not in answer["_source"]:
            return None
        record = json.loads(answer["_source"]["record"])
        tests = sorted(
            (tuple(t) for t in record["tests"]), key=lambda t: (t[2] is None, t[2] or 0.0)
        )
        return BuildTests(
            build=build_of(build),
            tests=tuple(tests),
            failures=tuple(
                TestFailure(t, s, d, w, tuple((str(n), str(x)) for n, x in details))
                for t, s, d, w, details in record["failures"]
            ),
            counts={str(k): int(v) for k, v in record["counts"].items()},
            problems=tuple(str(p) for p in record["problems"]),
        )

    def tested_builds(self, uuids: Collection[str]) -> dict[str, int]:
        """Of ``uuids``, the builds with stored test results -> their failed tests."""
        self._ensure_indices()
        chosen = sorted(uuids)
        found: dict[str, int] = {}
        for start in range(0, len(chosen), 500):
            query = self._dsl.Q(
                "bool",
                filter=[
                    self._dsl.Q("terms", build_uuid=chosen[start : start + 500]),
                    self._term("stream", True),
                ],
            )
            for hit in self._pages([self.settings.tests_index], query, [{"build_uuid": "asc"}],
                                   source=["build_uuid", "failures"]):  # fmt: skip
                found[str(hit["_source"]["build_uuid"])] = int(hit["_source"]["failures"])
        return found


def _quoted(uuid: str) -> str:
    from urllib.parse import quote

    return quote(uuid, safe="")
