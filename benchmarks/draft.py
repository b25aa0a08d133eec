"""Time `recheck draft`: a failed build against three passing builds of the same size.

Run: .venv/bin/python benchmarks/draft.py [--size-mb 1024] [--dir DIR] [--runs 2] [-j 2]

The four builds are generated as benchmarks/classify.py generates its build (real log
lines of tests/fixtures with their numbers varied, ten files of a Zuul log root), each
from its own seed, so no two share their numbers, ids or timestamps; the failed one then
gets a real neutron-server traceback (the gate-tempest fixture build's screen-q-svc)
near the end of one service log and a failure line at the end of its console; the
generator's planted signature phrases, also only in the failed build, are anomalies too. Kept in
DIR for later runs of the same size.

Printed: `recheck draft FAILED --baseline G1 --baseline G2 --baseline G3 --format json`
run as a command (a fresh process, with -j processes; wall and CPU seconds), best of
--runs, beside `wc -l`
over the same four builds' files (reading every byte once, the floor of any comparison
of them) run the same way, and the ratio; and the planted traceback's rank among the
anomalies. Every file is read into the page cache before each timed run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from classify import REAL_QUERIES, generate, timed  # noqa: E402

RECHECK = str(ROOT / ".venv" / "bin" / "recheck")
PLANTED = ROOT / "tests/fixtures/builds/gate-tempest-devstack-vm-neutron/logs/screen-q-svc.txt.gz"
"""Its neutron-server traceback (lines 20-33) is in no line pool of the generator."""


def plant(build: Path) -> str:
    """Put a real traceback near the end of the failed build; returns its first line."""
    with gzip.open(PLANTED, "rt", encoding="utf-8") as stream:
        trace = stream.read().splitlines()[19:33]
    with open(build / "controller/logs/screen-q-svc.txt", "a", encoding="utf-8") as out:
        out.write("\n".join(trace) + "\n")
    with open(build / "job-output.txt", "a", encoding="utf-8") as out:
        out.write("2021-06-23 06:01:02.000000 | ERROR: tempest run failed: 3 tests failed\n")
    return trace[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of each build")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/recheck-bench/draft"))
    parser.add_argument("--runs", type=int, default=2, help="runs of each command; best kept")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="recheck draft -j")
    args = parser.parse_args()
    import yaml

    real = [yaml.safe_load(p.read_text())["query"] for p in sorted(REAL_QUERIES.glob("*.yaml"))]
    names = ["failed", "good1", "good2", "good3"]
    planted = ""
    for index, name in enumerate(names):
        build = args.dir / name
        marker = build / ".generated"
        if not marker.exists() or marker.read_text().split()[:2] != [
            str(args.size_mb),
            str(31 + index),
        ]:
            print(f"generating {name}: {args.size_mb} MiB in {build} ...", flush=True)
            start = time.perf_counter()
            generate(build, args.size_mb, real if name == "failed" else [], 31 + index)
            if name == "failed":
                planted = plant(build)
                marker.write_text(f"{args.size_mb} {31 + index} {json.dumps(planted)}\n")
            print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
        elif name == "failed":
            planted = json.loads(marker.read_text().split(" ", 2)[2])
    files = [str(p) for name in names for p in sorted((args.dir / name).rglob("*.txt"))]
    total = sum(Path(p).stat().st_size for p in files)
    print(f"4 builds: {total / (1 << 30):.2f} GiB in {len(files)} files")
    command = [RECHECK, "draft", str(args.dir / "failed"), "--format", "json", "-j", str(args.jobs)]
    for name in names[1:]:
        command += ["--baseline", str(args.dir / name)]
    best: dict[str, float] = {}
    output = b""
    for _ in range(args.runs):
        for label, argv in (("recheck draft", command), ("wc -l", ["wc", "-l", *files])):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            seconds, rss, out = timed(argv, warm_first=args.dir)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            best[label] = min(best.get(label, seconds), seconds)
            if label == "recheck draft":
                output = out
                print(f"  {label}: {seconds:.1f} s, CPU {cpu:.1f} s, RSS {rss} MiB", flush=True)
            else:
                print(f"  {label}: {seconds:.1f} s", flush=True)
    report = json.loads(output)
    top = report["anomalies"][0] if report["anomalies"] else None
    print(
        f"recheck draft -j {args.jobs}: {best['recheck draft']:.1f} s "
        f"({total / (1 << 20) / best['recheck draft']:,.0f} MiB/s); wc -l: "
        f"{best['wc -l']:.1f} s; ratio {best['recheck draft'] / best['wc -l']:.1f}"
    )
    print(f"top anomaly: {top}")
    shown = [anomaly["text"] for anomaly in report["anomalies"]]
    where = shown.index(planted) + 1 if planted in shown else None
    print(f"planted traceback's rank among {len(shown)} anomalies: {where}")
    print("first five:", *(f"  {text[:110]}" for text in shown[:5]), sep="\n")
    print(f"proposals: {[p['query'] for p in report['proposals']]}")


if __name__ == "__main__":
    main()
