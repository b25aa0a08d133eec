"""Measure the embedded store: ingest rate, index size, and query time against grep.

Run: .venv/bin/python benchmarks/store.py [--events N] [--build-events M] [--dir DIR]

Generates N events (default 1,000,000) in builds of M events (default 5,000): real
oslo.log and console lines from tests/fixtures/logs with fresh request ids, uuids and
numbers (so the term dictionary grows as with real logs), spread over 9 days, 30% of
the builds failed. A rare phrase is planted in 1 event in 20,000. The same lines are
also written as plain log files, one per build, for the grep baseline.

Printed (one ingesting thread, one indexing thread):
- ingest rate in events/s (wall and CPU time) and the index size per million events;
- for a few phrase queries, the time of what ``recheck query`` does (search the last
  10 days, the engine confirming every candidate, and the field summary), first run
  and best of three, next to ``grep -c -i -F`` over the raw log files;
- the time of a query the index cannot narrow (a fuzzy term), which scans the window.

10 million events take about ten times as long to generate and ingest as the default;
pass ``--events 10000000`` for the issue's target size.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recheck.logs.build import Build  # noqa: E402
from recheck.models import Event  # noqa: E402
from recheck.query import Query, compile_query  # noqa: E402
from recheck.store import EmbeddedStore  # noqa: E402
from recheck.store.stats import summarize  # noqa: E402

T = TypeVar("T")
LOGS = ROOT / "tests" / "fixtures" / "logs"
NOW = datetime(2024, 5, 20, 12, 0, tzinfo=UTC)
RARE = "Timed out waiting for a reply to message ID"
RARE_EVERY = 20_000
PHRASES = [
    f'message:"{RARE}"',
    'message:"Caught SIGTERM, exiting"',
    'message:"Skipping periodic task"',
]
SCAN_QUERY = "message:sigtrm~1"
JOBS = ["tempest-full", "grenade", "nova-next", "neutron-tempest", "tox-py311"]
OSLO = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (?P<pid>\d+) (?P<loglevel>[A-Z]+) "
    r"(?P<module>\S+) (?P<message>.*)$"
)
CONSOLE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| (?P<message>.*)$")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NUMBER = re.compile(r"\b\d{3,}\b")


def templates() -> list[tuple[str, dict[str, str]]]:
    """(file name, fields) for every real line: oslo lines split, console lines as is."""
    out: list[tuple[str, dict[str, str]]] = []
    for path in sorted(LOGS.glob("*")):
        name = "job-output.txt" if "console" in path.name else f"screen-{path.stem[:5]}.txt"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = OSLO.match(line) or CONSOLE.match(line)
            if match is None or match.groupdict().get("loglevel") == "DEBUG":
                continue
            out.append((name, {k: v for k, v in match.groupdict().items() if v is not None}))
    return out


def vary(text: str, rng: random.Random) -> str:
    """Fresh ids and numbers, as every real build has its own."""
    text = UUID.sub(lambda _: f"{rng.getrandbits(128):032x}", text)
    return NUMBER.sub(lambda m: str(rng.randrange(10 ** len(m.group()))), text)


def generate(
    total: int, per_build: int, raw_dir: Path, seed: int = 1
) -> Iterator[tuple[Build, datetime, list[tuple[str, Event]]]]:
    rng = random.Random(seed)
    lines = templates()
    serial = 0
    for number in range(0, total, per_build):
        uuid = f"{rng.getrandbits(128):032x}"
        build = Build(
            build_uuid=uuid,
            build_short_uuid=uuid[:7],
            build_name=rng.choice(JOBS),
            build_status="FAILURE" if rng.random() < 0.3 else "SUCCESS",
            build_queue=rng.choice(["gate", "check"]),
            project="openstack/nova",
            voting="1",
        )
        when = NOW - timedelta(days=rng.uniform(0, 9))
        events: list[tuple[str, Event]] = []
        raw: list[str] = []
        for line in range(1, min(per_build, total - number) + 1):
            serial += 1
            filename, fields = lines[rng.randrange(len(lines))]
            message = vary(fields["message"], rng)
            if serial % RARE_EVERY == 0:
                message = f"{RARE} {rng.getrandbits(64):x}"
            event: Event = {
                **{k: v for k, v in fields.items() if k != "message"},
                "message": message,
                "tags": [filename, "console" if filename == "job-output.txt" else "screen"],
                "filename": filename,
                **build.event_fields(),
            }
            events.append((f"{filename}:{line}", event))
            raw.append(f"2024-05-20 10:00:00.000 | {message}")
        (raw_dir / f"{uuid}.txt").write_text("\n".join(raw) + "\n", encoding="utf-8")
        yield build, when, events


def timed(action: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--build-events", type=int, default=5_000)
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="recheck-store-bench-"))
    raw_dir = work / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    store = EmbeddedStore(work / "store")
    print(f"{args.events:,} events in builds of {args.build_events:,}; work dir {work}")

    ingest_wall = ingest_cpu = 0.0
    count = 0
    for build, when, events in generate(args.events, args.build_events, raw_dir):
        wall, cpu = time.perf_counter(), time.process_time()
        store.ingest(build, events, [], when=when)
        ingest_wall += time.perf_counter() - wall
        ingest_cpu += time.process_time() - cpu
        count += len(events)
    size = store.index_bytes()
    raw_bytes = sum(p.stat().st_size for p in raw_dir.iterdir())
    print("ingest")
    print(f"  {count / ingest_wall:>12,.0f} events/s wall  ({ingest_wall:.1f} s)")
    print(f"  {count / ingest_cpu:>12,.0f} events/s CPU   ({ingest_cpu:.1f} s, all threads)")
    print(f"  index: {size / 2**20:,.1f} MiB, {size / count * 1e6 / 2**20:,.1f} MiB per million "
          f"events (raw log lines: {raw_bytes / 2**20:,.1f} MiB)")  # fmt: skip

    print(f"query over {count:,} stored events, last 10 days (recheck query) vs grep -c -i -F")
    for text in [*PHRASES, SCAN_QUERY]:
        query = compile_query(text)

        def run(query: Query = query) -> int:
            return summarize(event for _, event in store.search(query, days=10, now=NOW)).hits

        first, hits = timed(run)
        print(f"  {text}")
        if text == SCAN_QUERY:  # slow by nature: once is enough
            print(f"    recheck: {hits:>9,} hits  {first * 1e3:8.1f} ms (scans every event)")
            continue
        best = min(timed(run)[0] for _ in range(3))
        print(f"    recheck: {hits:>9,} hits  first {first * 1e3:.1f} ms  best {best * 1e3:.1f} ms")
        phrase = re.search(r'"(.*)"', text)
        assert phrase is not None
        files = sorted(str(p) for p in raw_dir.iterdir())
        # -i: the phrase query ignores case too. LC_ALL=C: grep's fastest mode.
        command = ["grep", "-c", "-i", "-F", phrase.group(1), *files]
        grep_time, output = timed(
            lambda command=command: (
                subprocess.run(
                    command, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}
                ).stdout
            )
        )
        grep_hits = sum(int(line.rpartition(":")[2]) for line in output.splitlines())
        print(f"    grep:    {grep_hits:>9,} lines {'':5} {grep_time * 1000:8.1f} ms (all days)")
    store.close()
    if not args.keep and args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
