"""Measure ``recheck report``: the static pages of 10 days of a busy gate.

Run: .venv/bin/python benchmarks/report.py [--builds 30000] [--signatures 500] [--dir DIR]

Generates (not timed) ``--builds`` builds spread over the last 10 days, ingested one by
one through the Store API (``Store.ingest``, one event each) into an embedded store,
and ``--signatures`` signature files (2% with suppress-graph). Builds are 30% FAILURE,
5% TIMED_OUT, the rest SUCCESS; half run in the gate pipeline; 90% vote; 60 jobs over
40 projects. 80% of the failed builds match one known bug (a tenth of those a second
one) and 3% of the successful ones match one, bugs chosen with Zipf-like weights so a
few are hot and many are quiet, as in real life.

Printed: the wall time of the ``recheck report`` command (a fresh process: start-up,
loading the signatures, reading the store, every page and its JSON), first and second
run, and a breakdown measured in this process: reading the builds, computing the
trends, the uncategorized pages and the bug pages, and rendering and writing them.

The store goes in a temporary directory, on /dev/shm when there is one: each ingest
commits (fsyncs) the event index and the catalog, which tmpfs makes cheap, so
generating 30,000 builds takes minutes there instead of an hour.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recheck.config.files import PagesConfig  # noqa: E402
from recheck.logs.build import Build  # noqa: E402
from recheck.models import Match, UrlOnlyTracker  # noqa: E402
from recheck.query.signatures import load_signatures  # noqa: E402
from recheck.store import EmbeddedStore  # noqa: E402
from recheck.web.report import write_report  # noqa: E402
from recheck.web.site import Snapshot  # noqa: E402

PROJECTS = [f"openstack/{name}" for name in ("nova", "neutron", "cinder", "glance", "keystone")]
PROJECTS += [f"x/project-{number}" for number in range(35)]
JOBS = [f"tempest-job-{number}" for number in range(60)]


def write_signatures(directory: Path, count: int) -> list[str]:
    """``count`` signature files; returns their bug ids."""
    directory.mkdir(parents=True)
    bugs = [str(1_900_000 + number) for number in range(count)]
    for number, bug in enumerate(bugs):
        flags = "suppress-graph: true\n" if number % 50 == 49 else ""
        (directory / f"{bug}.yaml").write_text(
            f'query: >-\n  message:"benchmark failure {bug}" AND tags:console\n{flags}'
        )
    return bugs


def generate(store: EmbeddedStore, bugs: list[str], builds: int, now: datetime) -> int:
    """Ingest ``builds`` builds; returns how many matches were stored."""
    rng = random.Random(30000)
    weights = [1 / (rank + 1) for rank in range(len(bugs))]
    matches = 0
    started = time.perf_counter()
    for number in range(builds):
        roll = rng.random()
        status = "FAILURE" if roll < 0.30 else "TIMED_OUT" if roll < 0.35 else "SUCCESS"
        project = rng.choice(PROJECTS)
        build = Build(
            build_uuid=f"bench-{number:06d}",
            build_name=rng.choice(JOBS),
            build_status=status,
            build_queue="gate" if rng.random() < 0.5 else "check",
            project=project,
            voting="1" if rng.random() < 0.9 else "0",
            build_branch="master",
            build_change=str(700_000 + number),
            build_patchset="1",
            log_url=f"https://logs.example.org/{number}/",
        )
        hit: list[str] = []
        if status != "SUCCESS" and rng.random() < 0.8:
            hit = rng.choices(bugs, weights, k=2 if rng.random() < 0.1 else 1)
        elif status == "SUCCESS" and rng.random() < 0.03:
            hit = rng.choices(bugs, weights, k=1)
        found = [
            Match(bug, "job-output.txt", line, f"benchmark failure {bug}")
            for line, bug in enumerate(dict.fromkeys(hit), start=1)
        ]
        events = [
            (f"job-output.txt:{match.line}", {"message": match.message, "tags": ["console"]})
            for match in found
        ] or [("job-output.txt:1", {"message": "all good", "tags": ["console"]})]
        when = now - timedelta(seconds=rng.randrange(10 * 86400))
        store.ingest(build, events, found, when=when)
        matches += len(found)
        if (number + 1) % 5000 == 0:
            rate = (number + 1) / (time.perf_counter() - started)
            print(f"  generated {number + 1:,} builds ({rate:.0f}/s)", file=sys.stderr)
    return matches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=30_000)
    parser.add_argument("--signatures", type=int, default=500)
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    work = args.dir or Path(tempfile.mkdtemp(prefix="recheck-report-", dir=base))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.builds, args.signatures)
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, builds: int, signature_count: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    queries = work / "queries"
    store_path = work / "store"
    config = work / "bot.yaml"
    config.write_text("bug_tracker:\n  type: url\n")  # no Launchpad lookups in a benchmark
    if not store_path.exists():
        bugs = write_signatures(queries, signature_count)
        started = time.perf_counter()
        with EmbeddedStore(store_path) as store:
            matches = generate(store, bugs, builds, now)
        print(
            f"generated {builds:,} builds and {matches:,} matches of {signature_count} "
            f"signatures in {time.perf_counter() - started:.0f} s (not part of the timing)"
        )

    recheck = Path(sys.executable).with_name("recheck")
    for attempt in ("first", "second"):
        site = work / f"site-{attempt}"
        started = time.perf_counter()
        subprocess.run(
            [str(recheck), "report", "--store", str(store_path), "--queries", str(queries),
             "--config", str(config), "--output", str(site)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        size = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
        pages = len(list(site.rglob("*.html")))
        print(
            f"recheck report ({attempt} run): {elapsed:.2f} s wall for {pages} pages "
            f"({size / 2**20:.1f} MiB with their JSON)"
        )

    signatures, _ = load_signatures(queries)
    with EmbeddedStore(store_path) as store:
        snapshot = Snapshot(store, signatures, UrlOnlyTracker(), PagesConfig())
        steps = []
        started = time.perf_counter()
        stored = snapshot.builds
        steps.append((f"read {len(stored):,} builds with their bugs", time.perf_counter()))
        snapshot.trends(None)
        snapshot.trends("gate")
        steps.append(("trends (all pipelines and gate)", time.perf_counter()))
        for label in ("24h", "2d", "7d", "10d"):
            snapshot.uncategorized(label)
        steps.append(("uncategorized (4 windows)", time.perf_counter()))
        for signature in signatures:
            snapshot.bug(signature.bug)
        steps.append((f"{len(signatures)} bug pages (matches_for each)", time.perf_counter()))
        write_report(snapshot, work / "site-breakdown")
        steps.append(("all of it again, rendered and written", time.perf_counter()))
    print("in-process breakdown:")
    previous = started
    for label, moment in steps:
        print(f"  {label}: {moment - previous:.2f} s")
        previous = moment
    print(f"  CPUs: {os.cpu_count()}")


if __name__ == "__main__":
    main()
