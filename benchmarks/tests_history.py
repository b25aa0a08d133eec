"""Measure the test history: parsing a subunit stream, storing test results, ``recheck tests``.

Run: .venv/bin/python benchmarks/tests_history.py [--tests 10000] [--builds 2000]
     [--days 10] [--per-day 12500] [--jobs 200] [--dir DIR]

Three measurements, each beside a baseline run in the same process (the machine may be
shared: compare the ratios):

1. **Parsing** a generated tempest-like stream of ``--tests`` tests (python-subunit's
   StreamResultToBytes, ``tests/subunit_streams.py``: 4 workers, a log attachment per
   test, 0.5% failed with a traceback): ``failed_tests`` (recheck's reader, every test's
   status, timing, worker and the failures' attachments) against python-subunit's own
   parser into a StreamResult that does nothing. Best of three.
2. **Storing**: ``--builds`` builds of 1,500 tests each (parsed from generated streams,
   one failure in 10,000 runs, 62 builds per job as the gate's 12,500 a day over 200 jobs)
   written by the store's own ``put_tests``; time per build, and the catalog's size per
   10,000 builds.
3. **Querying** gate-sized history: ``--days`` days of ``--per-day`` builds of 1,500
   tests (200 jobs each running 1,500 of a 3,000-test pool, one failure in 10,000 runs,
   one build in ten a recheck of the same change and patchset) written straight into
   the catalog's tables as ingest would leave them (ingesting 125,000 builds one by one
   would take an hour); then ``store.test_summaries(10)`` (what ``recheck tests`` does)
   and ``recheck tests --format json`` as a process, against the baseline of summing the
   per-job counts without the per-day table.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import subunit  # type: ignore[import-untyped]  # noqa: E402
from subunit_streams import TRACEBACK, stream_bytes, tempest_ids  # noqa: E402
from testtools import StreamResult  # noqa: E402

from recheck.logs.build import Build  # noqa: E402
from recheck.logs.testresults import SubunitResults, failed_tests  # noqa: E402
from recheck.store.embedded import catalog, testcatalog  # noqa: E402
from recheck.store.embedded.store import EmbeddedStore  # noqa: E402

DAY = 86400
TESTS_PER_BUILD = 1500


def best(runs: int, work: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def parsing(count: int) -> None:
    ids = tempest_ids(count)
    stream = stream_bytes(ids, failed=ids[::200], skipped=ids[1::50])
    ours = best(3, lambda: failed_tests(io.BytesIO(stream)))
    baseline = best(
        3, lambda: subunit.ByteStreamToStreamResult(io.BytesIO(stream)).run(StreamResult())
    )
    cpu_start = time.process_time()
    results = failed_tests(io.BytesIO(stream))
    cpu = time.process_time() - cpu_start
    assert len(results.runs) == count and not results.problems
    print(f"parse {count:,} tests ({len(stream) / 2**20:.1f} MiB): recheck {ours:.3f} s "
          f"({cpu:.3f} s CPU); "
          f"python-subunit's parser alone {baseline:.3f} s "
          f"(ratio {ours / baseline:.2f})")  # fmt: skip


def storing(builds: int, directory: Path) -> None:
    pool = tempest_ids(3000, seed=1)
    samples: list[SubunitResults] = []
    rng = random.Random(2)
    for seed in range(8):
        chosen = rng.sample(pool, TESTS_PER_BUILD)
        failed = [t for t in chosen if rng.random() < 1e-4] or chosen[:1]
        samples.append(failed_tests(io.BytesIO(stream_bytes(chosen, failed=failed, seed=seed))))
    path = directory / "storing.sqlite"
    conn = catalog.connect(path)
    now = datetime.now(UTC)
    start = time.perf_counter()
    # As in the gate: 12,500 builds a day over 200 jobs, about 62 builds per job and day
    # share that job's counts of the day.
    jobs = max(1, builds // 62)
    for number in range(builds):
        build = Build(build_uuid=f"b{number}", build_name=f"job-{number % jobs}",
                      build_change=str(number // 2), build_patchset="1")  # fmt: skip
        with catalog.transaction(conn):
            testcatalog.put_tests(conn, build, now, samples[number % len(samples)])
    took = time.perf_counter() - start
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = path.stat().st_size
    blob = sum(
        len(testcatalog.encode_timeline(s.runs, list(range(len(s.runs))))[0]) for s in samples
    )
    print(f"store {builds:,} builds of {TESTS_PER_BUILD:,} tests: {took / builds * 1000:.1f} ms a "
          f"build; catalog {size / 2**20:.1f} MiB = {size / builds * 10_000 / 2**20:.0f} MiB per "
          f"10,000 builds (timeline {blob / len(samples) / 1024:.1f} KiB a build)")  # fmt: skip


def gate_history(directory: Path, days: int, per_day: int, jobs: int) -> Path:
    """Write gate-sized test history straight into a fresh store's catalog."""
    store_dir = directory / "gate-store"
    EmbeddedStore(store_dir).close()
    conn = sqlite3.connect(store_dir / "catalog.sqlite")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    rng = random.Random(3)
    pool = tempest_ids(3000, seed=4)
    conn.executemany("INSERT INTO test_names (id, name) VALUES (?, ?)", enumerate(pool, 1))
    job_tests = [sorted(rng.sample(range(1, len(pool) + 1), TESTS_PER_BUILD)) for _ in range(jobs)]
    today = int(time.time()) // DAY
    traceback = json.dumps([["traceback", TRACEBACK]])
    blob = zlib.compress(b"\x00" * 64)
    number = 0
    for day in range(today - days + 1, today + 1):
        built: dict[int, int] = defaultdict(int)
        failures: dict[tuple[int, int], int] = defaultdict(int)
        build_rows = []
        failure_rows = []
        for _ in range(per_day):
            number += 1
            job = rng.randrange(jobs)
            stamp = day * DAY + rng.randrange(DAY - 1)
            recheck = rng.random() < 0.1
            change = str(number - 1 if recheck else number)
            # About one failure in 10,000 runs: 0.15 a build of 1,500 tests.
            failed = [rng.choice(job_tests[job])] if rng.random() < 1e-4 * TESTS_PER_BUILD else []
            built[job] += 1
            for test in failed:
                failures[(job, test)] += 1
                failure_rows.append((f"b{number}", test, stamp, f"job-{job}", change, "1",
                                     None, 12.5, "worker-1", traceback))  # fmt: skip
            build_rows.append((f"b{number}", stamp, f"job-{job}", change, "1", TESTS_PER_BUILD,
                               len(failed), "{}", "[]", "[]", blob))  # fmt: skip
        counts = []
        per_test: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for job, count in built.items():
            for test in job_tests[job]:
                failed_count = failures.get((job, test), 0)
                counts.append((f"job-{job}", day, test, count, failed_count))
                per_test[test][0] += count
                per_test[test][1] += failed_count
        conn.executemany("INSERT INTO test_counts VALUES (?, ?, ?, ?, ?)", counts)
        conn.executemany(
            "INSERT INTO test_days VALUES (?, ?, ?, ?)",
            ((day, test, r, f) for test, (r, f) in per_test.items()),
        )
        conn.executemany(
            "INSERT INTO test_failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", failure_rows
        )
        conn.executemany(
            "INSERT INTO test_builds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", build_rows
        )
        conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return store_dir


def querying(directory: Path, days: int, per_day: int, jobs: int) -> None:
    start = time.perf_counter()
    store_dir = gate_history(directory, days, per_day, jobs)
    made = time.perf_counter() - start
    conn = sqlite3.connect(store_dir / "catalog.sqlite")
    rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("test_counts", "test_days", "test_failures", "test_builds")}  # fmt: skip
    size = (store_dir / "catalog.sqlite").stat().st_size
    print(f"gate history: {days} days x {per_day:,} builds x {TESTS_PER_BUILD:,} tests "
          f"({days * per_day * TESTS_PER_BUILD / 1e6:.0f} M test runs), written in {made:.0f} s; "
          f"rows {rows}; catalog {size / 2**20:.0f} MiB")  # fmt: skip
    since = (int(time.time()) // DAY - days + 1) * DAY

    def baseline() -> object:
        return conn.execute(
            "SELECT test, sum(runs), sum(failures) FROM test_counts WHERE day >= ?"
            " GROUP BY test HAVING sum(failures) > 0",
            (since // DAY,),
        ).fetchall()

    with EmbeddedStore(store_dir) as store:
        first = best(1, lambda: store.test_summaries(days))
        cpu_start = time.process_time()
        ours = best(3, lambda: store.test_summaries(days))
        cpu = (time.process_time() - cpu_start) / 3
        found = store.test_summaries(days)
        by_job = best(3, lambda: store.test_summaries(days, job="job-7"))
    base = best(3, baseline)
    flaky = sum(s.flaky for s in found)
    print(f"test_summaries({days}): {len(found):,} failing tests ({flaky:,} flaky): "
          f"{ours:.3f} s ({cpu:.3f} s CPU; first run {first:.3f} s); --job: {by_job:.3f} s; "
          "baseline (sum the "
          f"per-job counts in SQL, no flaky, no names) {base:.3f} s "
          f"(ratio {ours / base:.2f})")  # fmt: skip
    command = [str(Path(sys.executable).with_name("recheck")), "tests", "--store", str(store_dir),
               "--days", str(days), "--format", "json"]  # fmt: skip
    for _ in range(2):  # the second run: the catalog in the page cache
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        took = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"`recheck tests --days {days} --format json` (a new process, second run): "
          f"{took:.2f} s wall, {cpu:.2f} s CPU, {len(json.loads(done.stdout)):,} tests "
          "listed")  # fmt: skip
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--builds", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=12_500)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="recheck-tests-bench-"))
    try:
        parsing(args.tests)
        storing(args.builds, directory)
        querying(directory, args.days, args.per_day, args.jobs)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
