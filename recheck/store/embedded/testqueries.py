"""Reading the embedded store's test results: ``recheck tests``, the tests page, the run
view and the flaky marks of the bot's comment (tables: ``testcatalog``).

Windows are whole UTC days, as the counts are kept: ``since`` counts from the start of
its day. Only tests with failures in the window are summed, unless a pattern or a list
of ids asks for others; the per-day table holds a few thousand rows a day whatever the
number of jobs, so ten days of the gate sum in a fraction of a second.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime

from recheck.store.embedded import catalog
from recheck.store.embedded.testcatalog import decode_timeline
from recheck.store.testhistory import (
    BuildTests,
    DayCount,
    TestFailure,
    TestSummary,
    summaries_of,
)

__all__ = ["build_tests", "summaries", "tested_builds"]

_DAY = 86400


def summaries(
    conn: sqlite3.Connection,
    since: datetime,
    *,
    job: str | None = None,
    pattern: Callable[[str], bool] | None = None,
    names: Collection[str] | None = None,
) -> list[TestSummary]:
    """Each test's runs and failures since ``since`` (its whole day), worst first.

    Without ``pattern`` or ``names``: the tests that failed. ``pattern`` keeps the test
    ids it matches (failed or not); ``names`` those exact ids. ``job`` counts only that
    job's builds.
    """
    first_day = int(since.timestamp()) // _DAY
    if job is None:
        counts = conn.execute(
            "SELECT test, day, runs, failures FROM test_days WHERE day >= ?", (first_day,)
        )
    else:
        counts = conn.execute(
            "SELECT test, day, runs, failures FROM test_counts WHERE job = ? AND day >= ?",
            (job, first_day),
        )
    per_test: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    failing: set[int] = set()
    for test, day, runs, failures in counts:
        per_test[test].append((day, runs, failures))
        if failures:
            failing.add(test)
    id_names = _names(conn, None if pattern is None and names is None else per_test)
    if names is not None:
        wanted = set(names)
        chosen = {t for t in per_test if id_names.get(t) in wanted}
    elif pattern is not None:
        chosen = {t for t in per_test if pattern(id_names.get(t, ""))}
    else:
        chosen = failing
    last = _last_failures(conn, first_day * _DAY, job)
    rechecked = _passed_on_recheck(conn, first_day * _DAY, job)

    def name(test: int) -> str:
        return id_names.get(test, f"#{test}")

    return summaries_of(
        {
            name(test): [DayCount(_date(day), runs, failures) for day, runs, failures in rows]
            for test, rows in per_test.items()
            if test in chosen
        },
        {name(test): (catalog.moment(when), build) for test, (when, build) in last.items()},
        {name(test) for test in rechecked},
        [name(test) for test in chosen],
    )


def _date(day: int) -> date:
    return datetime.fromtimestamp(day * _DAY, UTC).date()


def _names(conn: sqlite3.Connection, ids: Collection[int] | None) -> dict[int, str]:
    """Names of all tests (``ids`` None) or of those ids."""
    if ids is None or len(ids) > 2000:
        return {int(i): str(n) for i, n in conn.execute("SELECT id, name FROM test_names")}
    found: dict[int, str] = {}
    chosen = list(ids)
    for start in range(0, len(chosen), 500):
        chunk = chosen[start : start + 500]
        sql = f"SELECT id, name FROM test_names WHERE id IN ({','.join('?' * len(chunk))})"
        found.update((int(i), str(n)) for i, n in conn.execute(sql, chunk))
    return found


def _last_failures(
    conn: sqlite3.Connection, since: int, job: str | None
) -> dict[int, tuple[int, str]]:
    """Test -> (time, build uuid) of its newest failure since ``since``."""
    sql = "SELECT test, max(time), build_uuid FROM test_failures WHERE time >= ?"
    params: list[object] = [since]
    if job is not None:
        sql += " AND job = ?"
        params.append(job)
    sql += " GROUP BY test"
    return {int(t): (int(w), str(b)) for t, w, b in conn.execute(sql, params)}


def _passed_on_recheck(conn: sqlite3.Connection, since: int, job: str | None) -> set[int]:
    """Tests that failed in a build and did not fail in another build of the same job,
    change and patchset whose tests ran (a recheck that passed)."""
    sql = """SELECT DISTINCT f.test FROM test_failures AS f
JOIN test_builds AS other ON other.change = f.change AND other.patchset = f.patchset
    AND other.job = f.job AND other.build_uuid != f.build_uuid AND other.runs > 0
WHERE f.time >= ? AND f.change IS NOT NULL AND f.patchset IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM test_failures AS g
                    WHERE g.build_uuid = other.build_uuid AND g.test = f.test)"""
    params: list[object] = [since]
    if job is not None:
        sql += " AND f.job = ?"
        params.append(job)
    return {int(row[0]) for row in conn.execute(sql, params)}


def build_tests(conn: sqlite3.Connection, uuid: str) -> BuildTests | None:
    """What is stored of build ``uuid``'s test run; None when it has no test results."""
    row = conn.execute(
        "SELECT counts, problems, workers, timeline FROM test_builds WHERE build_uuid = ?",
        (uuid,),
    ).fetchone()
    stored = catalog.get_build(conn, uuid)
    if row is None or stored is None:
        return None
    runs = decode_timeline(row[3], json.loads(row[2]))
    names = _names(conn, {test for test, *_ in runs})
    failures = tuple(
        TestFailure(
            names.get(int(test), f"#{test}"),
            start,
            duration,
            worker,
            tuple((str(n), str(t)) for n, t in json.loads(details)),
        )
        for test, start, duration, worker, details in conn.execute(
            "SELECT test, start, duration, worker, details FROM test_failures"
            " WHERE build_uuid = ? ORDER BY start, test",
            (uuid,),
        )
    )
    return BuildTests(
        build=stored,
        tests=tuple(
            (names.get(test, f"#{test}"), status, start, duration, worker)
            for test, status, start, duration, worker in sorted(
                runs, key=lambda r: (r[2] is None, r[2] or 0.0)
            )
        ),
        failures=failures,
        counts={str(k): int(v) for k, v in json.loads(row[0]).items()},
        problems=tuple(str(p) for p in json.loads(row[1])),
    )


def tested_builds(conn: sqlite3.Connection, uuids: Collection[str]) -> dict[str, int]:
    """Of ``uuids``, the builds with stored test results -> how many tests failed."""
    found: dict[str, int] = {}
    chosen = list(uuids)
    for start in range(0, len(chosen), 500):
        chunk = chosen[start : start + 500]
        sql = (
            "SELECT build_uuid, failures FROM test_builds"
            f" WHERE build_uuid IN ({','.join('?' * len(chunk))})"
        )
        found.update((str(u), int(f)) for u, f in conn.execute(sql, chunk))
    return found
