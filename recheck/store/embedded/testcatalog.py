"""The embedded store's test results: every build's subunit results in the catalog.

Sized for the gate (12,500 jobs a day, 1,500 tests each, 10 days: 190 million test runs)
by keeping apart what is rare from what is not:

- ``test_failures``: one row per failed test of a build (about 1 in 10,000 runs), with
  its worker, duration and attachments (traceback first, bounded by
  ``recheck.logs.testresults.DETAILS_MAX_CHARS``);
- ``test_counts``: runs and failures per job, day and test, added to at each ingest:
  one row per test a job ran that day however often it ran (``recheck tests --job``);
  ``test_days``: the same per day and test, all jobs together (``recheck tests``: a
  few thousand rows a day whatever the number of jobs);
- ``test_builds``: one row per build whose stream was read: its counts, its stream's
  problems and its **timeline**, every test's status, start, duration and worker,
  compressed (``encode_timeline``, about 3 bytes a test): the run view draws it, and a
  re-ingest takes the old counts back out with it;
- ``test_names``: test ids, each stored once and referred to by number.

Rows go with retention's event cut (``drop_tests_before``; no foreign key to ``builds``:
its INSERT OR REPLACE of a re-ingested build would cascade before the old counts are
taken back).
"""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from array import array
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from recheck.logs.build import Build

if TYPE_CHECKING:
    from recheck.logs.testresults import SubunitResults, TestRun

__all__ = [
    "RUN_STATUSES",
    "decode_timeline",
    "drop_tests_before",
    "encode_timeline",
    "migration_tests",
    "put_tests",
]

RUN_STATUSES = frozenset({"success", "fail", "xfail", "uxsuccess"})
"""Final statuses that count as a run of the test (a skipped test did not run)."""
FAILED = "fail"
"""The status of a failed test (``recheck.logs.testresults.FAILED_STATUSES``: its only
member; not imported from there, so opening the catalog loads no python-subunit)."""
_STATUS_CODES = ("success", "fail", "skip", "xfail", "uxsuccess", "incomplete", "exists")
_DAY = 86400


def migration_tests(conn: sqlite3.Connection) -> None:
    """Schema version 2: the test results tables (see the module docstring)."""
    conn.execute("CREATE TABLE test_names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    conn.execute(
        """CREATE TABLE test_builds (
    build_uuid TEXT PRIMARY KEY NOT NULL,
    time INTEGER NOT NULL,
    job TEXT NOT NULL,
    change TEXT,
    patchset TEXT,
    runs INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    counts TEXT NOT NULL,
    problems TEXT NOT NULL,
    workers TEXT NOT NULL,
    timeline BLOB NOT NULL
)"""
    )
    conn.execute("CREATE INDEX test_builds_time ON test_builds (time)")
    conn.execute("CREATE INDEX test_builds_change ON test_builds (change, patchset, job)")
    conn.execute(
        """CREATE TABLE test_failures (
    build_uuid TEXT NOT NULL,
    test INTEGER NOT NULL,
    time INTEGER NOT NULL,
    job TEXT NOT NULL,
    change TEXT,
    patchset TEXT,
    start REAL,
    duration REAL,
    worker TEXT,
    details TEXT NOT NULL,
    PRIMARY KEY (build_uuid, test)
)"""
    )
    conn.execute("CREATE INDEX test_failures_test ON test_failures (test, time)")
    conn.execute("CREATE INDEX test_failures_time ON test_failures (time)")
    conn.execute(
        """CREATE TABLE test_counts (
    job TEXT NOT NULL,
    day INTEGER NOT NULL,
    test INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (job, day, test)
) WITHOUT ROWID"""
    )
    conn.execute(
        """CREATE TABLE test_days (
    day INTEGER NOT NULL,
    test INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (day, test)
) WITHOUT ROWID"""
    )


# --------------------------------------------------------------------------- timeline


def encode_timeline(runs: Sequence[TestRun], ids: Sequence[int]) -> tuple[bytes, list[str]]:
    """A build's runs (with their test name ids) as a compressed blob, and its workers.

    Columns of 32-bit integers: test id deltas (sorted by id), status code, start and
    duration in milliseconds from the run's first start (-1: unknown), worker index
    (-1: none); zlib over all of it.
    """
    order = sorted(range(len(runs)), key=ids.__getitem__)
    starts = [r.start for r in runs if r.start is not None]
    origin = min(starts) if starts else 0.0
    workers = sorted({r.worker for r in runs if r.worker is not None})
    worker_index = {w: i for i, w in enumerate(workers)}
    columns = [array("i") for _ in range(5)]
    previous = 0
    for i in order:
        run = runs[i]
        columns[0].append(ids[i] - previous)
        previous = ids[i]
        columns[1].append(_status_code(run.status))
        columns[2].append(-1 if run.start is None else round((run.start - origin) * 1000))
        columns[3].append(-1 if run.duration is None else round(run.duration * 1000))
        columns[4].append(-1 if run.worker is None else worker_index[run.worker])
    header = struct.pack("<BId", 1, len(runs), origin)
    return zlib.compress(header + b"".join(c.tobytes() for c in columns), 6), workers


def decode_timeline(
    blob: bytes, workers: Sequence[str]
) -> list[tuple[int, str, float | None, float | None, str | None]]:
    """(test name id, status, start, duration, worker) of each test ``encode_timeline``
    stored; start in seconds since the epoch."""
    data = zlib.decompress(blob)
    version, count, origin = struct.unpack_from("<BId", data)
    if version != 1:
        raise ValueError(f"unknown timeline version {version}")
    columns = array("i")
    columns.frombytes(data[struct.calcsize("<BId") :])
    ids, codes, starts, durations, places = (columns[k * count : (k + 1) * count] for k in range(5))
    found = []
    test = 0
    for i in range(count):
        test += ids[i]
        found.append(
            (
                test,
                _STATUS_CODES[codes[i]] if 0 <= codes[i] < len(_STATUS_CODES) else "exists",
                None if starts[i] < 0 else origin + starts[i] / 1000,
                None if durations[i] < 0 else durations[i] / 1000,
                workers[places[i]] if 0 <= places[i] < len(workers) else None,
            )
        )
    return found


def _status_code(status: str) -> int:
    try:
        return _STATUS_CODES.index(status)
    except ValueError:
        return _STATUS_CODES.index("exists")


# --------------------------------------------------------------------------- writing


def name_ids(conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
    """The id of each test name, adding the new ones."""
    wanted = list(dict.fromkeys(names))
    conn.executemany("INSERT OR IGNORE INTO test_names (name) VALUES (?)", ((n,) for n in wanted))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT name, id FROM test_names WHERE name IN ({marks})"
        found.update((str(n), int(i)) for n, i in conn.execute(sql, chunk))
    return found


def put_tests(
    conn: sqlite3.Connection, build: Build, time: datetime, results: SubunitResults | None
) -> None:
    """Replace the test results of ``build`` (stored at ``time``) with ``results``.

    Call inside the transaction that writes the build row. None (no stream) removes
    what an earlier ingest stored.
    """
    uuid = build.build_uuid
    assert uuid is not None
    _remove(conn, uuid)
    if results is None:
        return
    stamp = int(time.timestamp())
    job = build.build_name or "unknown"
    change, patchset = build.build_change, build.build_patchset
    runs = results.runs
    ids = name_ids(conn, (r.test_id for r in runs))
    run_ids = [ids[r.test_id] for r in runs]
    counted = [(i, r) for i, r in zip(run_ids, runs, strict=True) if r.status in RUN_STATUSES]
    failed = [(i, r) for i, r in counted if r.status == FAILED]
    _add_counts(conn, job, stamp // _DAY, [(i, int(r.status == FAILED)) for i, r in counted], 1)
    conn.executemany(
        "INSERT OR REPLACE INTO test_failures (build_uuid, test, time, job, change, patchset,"
        " start, duration, worker, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                uuid,
                i,
                stamp,
                job,
                change,
                patchset,
                r.start,
                r.duration,
                r.worker,
                json.dumps(r.details),
            )
            for i, r in failed
        ),
    )
    blob, workers = encode_timeline(runs, run_ids)
    conn.execute(
        "INSERT INTO test_builds (build_uuid, time, job, change, patchset, runs, failures,"
        " counts, problems, workers, timeline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            uuid,
            stamp,
            job,
            change,
            patchset,
            len(counted),
            len(failed),
            json.dumps(results.counts),
            json.dumps(list(results.problems)),
            json.dumps(workers),
            blob,
        ),
    )


def _remove(conn: sqlite3.Connection, uuid: str) -> None:
    """Take a stored build's results out, its counts too (a re-ingest replaces them)."""
    row = conn.execute(
        "SELECT time, job, workers, timeline FROM test_builds WHERE build_uuid = ?", (uuid,)
    ).fetchone()
    if row is None:
        return
    day, job = int(row[0]) // _DAY, str(row[1])
    runs = decode_timeline(row[3], json.loads(row[2]))
    counted = [(test, int(status == FAILED)) for test, status, *_ in runs if status in RUN_STATUSES]
    _add_counts(conn, job, day, counted, -1)
    conn.execute("DELETE FROM test_failures WHERE build_uuid = ?", (uuid,))
    conn.execute("DELETE FROM test_builds WHERE build_uuid = ?", (uuid,))


def _add_counts(
    conn: sqlite3.Connection, job: str, day: int, tests: list[tuple[int, int]], sign: int
) -> None:
    """Add (``sign`` 1) or take back (-1) one run of each (test, failed) of a build."""
    for table, key, where in (
        ("test_counts", "job, day, test", "job = ? AND day = ? AND test = ?"),
        ("test_days", "day, test", "day = ? AND test = ?"),
    ):
        prefix: tuple[object, ...] = (job, day) if table == "test_counts" else (day,)
        if sign > 0:
            conn.executemany(
                f"INSERT INTO {table} ({key}, runs, failures) VALUES ({'?, ' * len(prefix)}?, 1, ?)"
                f" ON CONFLICT ({key}) DO UPDATE SET runs = runs + 1,"
                " failures = failures + excluded.failures",
                ((*prefix, test, failed) for test, failed in tests),
            )
        else:
            conn.executemany(
                f"UPDATE {table} SET runs = runs - 1, failures = failures - ? WHERE {where}",
                ((failed, *prefix, test) for test, failed in tests),
            )
            conn.executemany(
                f"DELETE FROM {table} WHERE {where} AND runs <= 0",
                ((*prefix, test) for test, _ in tests),
            )


def drop_tests_before(conn: sqlite3.Connection, cutoff: datetime) -> int:
    """Drop the test results of builds older than ``cutoff`` (counts by whole days
    before its day); returns how many builds' results went."""
    stamp = int(cutoff.timestamp())
    conn.execute("DELETE FROM test_counts WHERE day < ?", (stamp // _DAY,))
    conn.execute("DELETE FROM test_days WHERE day < ?", (stamp // _DAY,))
    conn.execute("DELETE FROM test_failures WHERE time < ?", (stamp,))
    return int(conn.execute("DELETE FROM test_builds WHERE time < ?", (stamp,)).rowcount)
