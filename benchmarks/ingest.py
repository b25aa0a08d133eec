"""Measure `recheck events` and `recheck ingest` against real Lucene 8 indexing the same events.

Run: .venv/bin/python benchmarks/ingest.py [--size 200M|1G] [--dir DIR] [--runs N]

The build is benchmarks/classify.py's generated one (a Zuul log root of real log lines
with their numbers varied: a console log, eight oslo.log service logs, syslog), kept in
DIR/build-<size> for later runs. Then, as commands in fresh processes, each timed
``--runs`` times (best kept), one after the other on the same machine:

- `recheck events BUILD` into a file: the events, as JSON lines;
- Lucene 8 (Debian's liblucene8-java; benchmarks/LuceneIngest.java, compiled here)
  indexing those events on one core (``taskset``, serial GC, serial merges):
  StandardAnalyzer text fields for the fields recheck's store searches, with positions,
  the generation and time as points with doc values, the event's JSON stored;
- `recheck ingest BUILD` into an empty store (split, match the shipped signatures,
  index into the embedded store), with its default parallelism: once as a failed build
  (``--build-status FAILURE``, which the anomaly book learns from too: recheck.store.
  anomalies), once without a status (events and matches stored, no anomaly book).

Printed: wall time, events/s, peak RSS (the largest process of the command), the
store's or index's size on disk, and the ratios ingest / Lucene and events / Lucene.
With ``--baseline SRC``, the same three commands of another recheck source tree (an
older commit) are timed too. The machine may be shared: compare the ratios, which were
measured side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from classify import REAL_QUERIES, generate, timed, warm  # noqa: E402

from recheck.store.embedded.index import INDEXED_FIELDS  # noqa: E402

JAVA_SOURCE = ROOT / "benchmarks" / "LuceneIngest.java"
JAR_MODULES = ("core", "analyzers-common")
BASELINES = {
    "baseline-events": "events",
    "baseline-ingest": "ingest-nostatus",
    "baseline-ingest-failure": "ingest",
}
LUCENE_RAM_MB = 64
"""Lucene's indexing buffer: the size of the store's tantivy writer heap."""


def parse_size(text: str) -> int:
    """``200M``, ``1G``, ``512`` (MiB) -> MiB."""
    found = re.fullmatch(r"(\d+)\s*([MG]?)i?B?", text.strip(), re.IGNORECASE)
    if found is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (write e.g. 200M or 1G)")
    return int(found[1]) * (1024 if found[2].upper() == "G" else 1)


def lucene_classpath() -> str:
    jars = []
    for module in JAR_MODULES:
        found = sorted(Path("/usr/share/java").glob(f"lucene-{module}-[0-9]*.jar"))
        if not found:
            raise SystemExit(f"no lucene-{module}-*.jar in /usr/share/java (liblucene8-java)")
        jars.append(str(found[-1]))
    return os.pathsep.join(jars)


def compile_lucene(classpath: str, into: Path) -> None:
    javac = shutil.which("javac")
    if javac is None:
        raise SystemExit("javac not on PATH: install default-jdk-headless")
    subprocess.run([javac, "-d", str(into), "-cp", classpath, str(JAVA_SOURCE)], check=True)


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def best(runs: int, run: Callable[[], tuple[float, int, bytes]]) -> tuple[float, int, bytes]:
    results = [run() for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=parse_size, default=parse_size("200M"), help="build size: 200M, 1G..."
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("/tmp/recheck-bench"), help="where builds are kept"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--runs", type=int, default=1, help="runs of each command; best kept")
    parser.add_argument(
        "--queries", type=Path, default=ROOT / "queries", help="signatures for recheck ingest"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="SRC",
        help="also time `recheck events` and `recheck ingest` (no status, and FAILURE) of "
        "the recheck source tree SRC (e.g. a git worktree of an older commit), run by this .venv",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="steps not to time, comma-separated: events, lucene, ingest, ingest-nostatus",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    build = args.dir / f"build-{args.size}MiB"
    marker = build / ".generated"
    if not marker.exists() or marker.read_text().split() != [str(args.size), str(args.seed)]:
        print(f"generating a {args.size} MiB build in {build} ...", flush=True)
        real = [
            json.loads(json.dumps(__import__("yaml").safe_load(p.read_text())))["query"]
            for p in sorted(REAL_QUERIES.glob("*.yaml"))
        ]
        generate(build, args.size, real, args.seed)
    total = sum(p.stat().st_size for p in build.rglob("*.txt"))
    print(
        f"build: {total / (1 << 20):,.0f} MiB, {build}; machine: {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    recheck = str(ROOT / ".venv" / "bin" / "recheck")
    scratch = Path(tempfile.mkdtemp(prefix="recheck-ingest-bench-", dir=args.dir))
    try:
        events_file = args.dir / f"events-{args.size}MiB.jsonl"
        results: dict[str, tuple[float, int, int]] = {}  # seconds, RSS MiB, bytes on disk

        def events() -> tuple[float, int, bytes]:
            with open(events_file, "wb") as out:
                warm(build)
                start = time.perf_counter()
                process = subprocess.Popen([recheck, "events", str(build)], stdout=out, env=env)
                _, status, usage = os.wait4(process.pid, 0)
                seconds = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"recheck events failed: status {status}")
            return seconds, usage.ru_maxrss // 1024, b""

        if "events" not in skip or not events_file.exists():
            seconds, rss, _ = best(args.runs, events)
            results["events"] = (seconds, rss, events_file.stat().st_size)
        with open(events_file, "rb") as stream:
            count = sum(1 for _ in stream)
        print(f"events: {count:,}")

        if "lucene" not in skip:
            classpath = lucene_classpath()
            compile_lucene(classpath, scratch)
            index = scratch / "lucene-index"
            java = [
                "java", "-XX:+UseSerialGC", "-Xmx1g", "-cp", f"{scratch}{os.pathsep}{classpath}",
                "LuceneIngest", str(events_file), str(index), str(LUCENE_RAM_MB),
                ",".join(INDEXED_FIELDS),
            ]  # fmt: skip
            if shutil.which("taskset"):
                java = ["taskset", "-c", str(os.sched_getaffinity(0).pop()), *java]

            def lucene() -> tuple[float, int, bytes]:
                shutil.rmtree(index, ignore_errors=True)
                return timed(java, None, events_file)

            seconds, rss, out = best(args.runs, lucene)
            indexed, inner = out.decode().split()
            assert int(indexed) == count, (indexed, count)
            results["lucene"] = (seconds, rss, size_of(index))
            print(f"  (Lucene's own indexing time, without JVM start: {float(inner):.2f} s)")

        if not {"ingest", "ingest-nostatus"} <= skip:
            store = scratch / "store"
            # The build is stored at its logs' end time (2021): retention must keep it.
            config = scratch / "bot.yaml"
            config.write_text("store:\n  event_days: 36500\n  build_days: 36500\n")
            command = [
                recheck, "ingest", str(build), "--queries", str(args.queries),
                "--store", str(store), "--config", str(config),
            ]  # fmt: skip
            # A failed build (as the bot ingests them) also feeds the anomaly book; a
            # build without a status is only stored.
            variants = {"ingest": ["--build-status", "FAILURE"], "ingest-nostatus": []}
            for name, extra in variants.items():
                if name in skip:
                    continue

                def ingest(extra: list[str] = extra) -> tuple[float, int, bytes]:
                    shutil.rmtree(store, ignore_errors=True)
                    return timed([*command, *extra], env, build)

                seconds, rss, out = best(args.runs, ingest)
                stored = re.search(rb": ([\d,]+) events", out)
                if stored is None or int(stored[1].replace(b",", b"")) != count:
                    print(f"  warning: ingest stored another number of events: {out.decode()!r}")
                results[name] = (seconds, rss, size_of(store))

        if args.baseline is not None:
            # -P: the baseline's package, not the one in the current directory (python -m
            # puts the working directory first on the path, ahead of PYTHONPATH).
            old_env = {**env, "PYTHONPATH": str(args.baseline.resolve())}
            python = str(ROOT / ".venv" / "bin" / "python")
            old_events = args.dir / f"events-{args.size}MiB-baseline.jsonl"

            def baseline_events() -> tuple[float, int, bytes]:
                with open(old_events, "wb") as out:
                    warm(build)
                    start = time.perf_counter()
                    command = [python, "-P", "-m", "recheck", "events", str(build)]
                    process = subprocess.Popen(command, stdout=out, env=old_env)
                    _, status, usage = os.wait4(process.pid, 0)
                    seconds = time.perf_counter() - start
                if os.waitstatus_to_exitcode(status) != 0:
                    raise SystemExit(f"the baseline's recheck events failed: status {status}")
                return seconds, usage.ru_maxrss // 1024, b""

            seconds, rss, _ = best(args.runs, baseline_events)
            results["baseline-events"] = (seconds, rss, old_events.stat().st_size)
            same = old_events.read_bytes() == events_file.read_bytes()
            print(f"  the baseline's events are {'the same' if same else 'DIFFERENT'}")
            old_events.unlink()
            store = scratch / "store-baseline"
            config = scratch / "bot.yaml"
            config.write_text("store:\n  event_days: 36500\n  build_days: 36500\n")
            command = [
                python, "-P", "-m", "recheck", "ingest", str(build), "--queries", str(args.queries),
                "--store", str(store), "--config", str(config),
            ]  # fmt: skip

            def baseline_ingest() -> tuple[float, int, bytes]:
                shutil.rmtree(store, ignore_errors=True)
                return timed(command, old_env, build)

            seconds, rss, _ = best(args.runs, baseline_ingest)
            results["baseline-ingest"] = (seconds, rss, size_of(store))
            if "ingest" not in skip:  # the anomaly book's work too, as the bot ingests

                def baseline_failure() -> tuple[float, int, bytes]:
                    shutil.rmtree(store, ignore_errors=True)
                    return timed([*command, "--build-status", "FAILURE"], old_env, build)

                seconds, rss, _ = best(args.runs, baseline_failure)
                results["baseline-ingest-failure"] = (seconds, rss, size_of(store))

        names = {
            "baseline-events": "baseline recheck events",
            "baseline-ingest": "baseline ingest (no status)",
            "baseline-ingest-failure": "baseline ingest (FAILURE)",
            "events": "recheck events (to a file)",
            "lucene": "Lucene 8 indexing, one core",
            "ingest": "recheck ingest (FAILURE)",
            "ingest-nostatus": "recheck ingest (no status)",
        }
        for name, (seconds, rss, size) in results.items():
            print(
                f"{names[name]:<30} {seconds:7.2f} s  {count / seconds:9,.0f} events/s  "
                f"peak RSS {rss:4d} MiB  on disk {size / (1 << 20):6.0f} MiB"
            )
        if "lucene" in results:
            for name in ("ingest", "ingest-nostatus", "events", *BASELINES):
                if name in results:
                    ratio = results[name][0] / results["lucene"][0]
                    print(f"ratio {name} / Lucene: {ratio:.2f}")
        for old, new in BASELINES.items():
            if old in results and new in results:
                print(f"{new}: {results[old][0] / results[new][0]:.2f}x faster than the baseline")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
