"""Measure `recheck classify` on a build of many tiny files, beside `recheck events`.

Run: .venv/bin/python benchmarks/tiny_files.py [--files 20000] [--dir DIR] [--runs 3]

Issue 20 found classify's cost per file ten times `events`' (20,000 tiny files: 14.3 s
against 1.46 s): what a file costs besides its bytes. The build is generated (and kept in
DIR for later runs with the same count and seed): --files files of 2-6 real log lines
each (tests/fixtures' lines, numbers varied: benchmarks/classify.py's ``line_pool``), in
the three shapes the logs stage reads, a third each: console (``node*/logs/
devstacklog.txt``), oslo.log service logs (``node*/logs/screen-n-cpu.txt``) and syslog
(``node*/logs/syslog.txt``).

Timed as commands (fresh processes, as a user runs them), alternately, best of --runs:
`recheck events DIR` (every event of every file, as JSON lines) and `recheck classify
DIR --format json` with the shipped signatures (queries/), with its default `-j` and with
`-j 1`. Printed: wall and CPU seconds (the command's and its forked workers'), and the
ratio classify / events of each. The machine may be shared: the ratio of commands run
side by side holds better than either time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from classify import line_pool, run_command  # noqa: E402

KINDS = {
    "console": "devstacklog.txt",
    "oslo": "screen-n-cpu.txt",
    "syslog": "syslog.txt",
}
"""Shape -> the file's name in its node's logs/ (a name the default file rules read)."""


def generate(directory: Path, count: int, seed: int) -> None:
    """``count`` files of 2-6 real lines, the three shapes in turn."""
    rng = random.Random(seed)
    pools = {kind: line_pool(kind, rng, 5000) for kind in KINDS}
    kinds = list(KINDS)
    for index in range(count):
        kind = kinds[index % len(kinds)]
        path = directory / f"node{index // len(kinds):05d}" / "logs" / KINDS[kind]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(rng.choices(pools[kind], k=rng.randint(2, 6))) + "\n")
    _marker(directory).write_text(f"{count} {seed}\n")


def _marker(directory: Path) -> Path:
    """Says what the build holds; beside it, not in it (it would be a file not read)."""
    return directory.parent / f"{directory.name}.generated"


def timed(command: list[str], env: dict[str, str], build: Path) -> tuple[float, float, bytes]:
    """Wall seconds, CPU seconds (the command's and its children's) and stdout."""
    wall, usage, output = run_command(command, env, build)
    return wall, usage.ru_utime + usage.ru_stime, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000, help="files (default 20,000)")
    parser.add_argument(
        "--dir", type=Path, default=Path("/tmp/recheck-bench/tiny"), help="build directory"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="runs of each command; best kept")
    args = parser.parse_args()

    build: Path = args.dir
    marker = _marker(build)
    if not marker.exists() or marker.read_text().split() != [str(args.files), str(args.seed)]:
        print(f"generating {args.files:,} tiny files in {build} ...", flush=True)
        generate(build, args.files, args.seed)
    files = [path for path in build.rglob("*.txt")]
    total = sum(path.stat().st_size for path in files)
    print(f"build: {len(files):,} files, {total / len(files):,.0f} bytes a file on average")

    recheck = str(ROOT / ".venv" / "bin" / "recheck")
    queries = ROOT / "queries"
    commands = {
        "events": [recheck, "events", str(build)],
        "classify": [recheck, "classify", "--queries", str(queries), str(build), "--format",
                     "json"],
        "classify -j 1": [recheck, "classify", "--queries", str(queries), str(build),
                          "--format", "json", "--jobs", "1"],
    }  # fmt: skip
    # As an installed package runs: its bytecode cached (see benchmarks/classify.py).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for command in commands.values():
        timed(command, env, build)  # bytecode and compiled-query cache written, untimed
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.runs):
        for name, command in commands.items():
            wall, cpu, _ = timed(command, env, build)
            old = best.get(name)
            best[name] = (min(wall, old[0]), min(cpu, old[1])) if old else (wall, cpu)
    events_wall, events_cpu = best["events"]
    for name, (wall, cpu) in best.items():
        per_file = wall / len(files) * 1000
        line = f"recheck {name:14} {wall:6.2f} s wall ({per_file:.3f} ms a file), {cpu:6.2f} s CPU"
        if name != "events":
            line += f"; / events: {wall / events_wall:.2f} wall, {cpu / events_cpu:.2f} CPU"
        print(line)


if __name__ == "__main__":
    main()
