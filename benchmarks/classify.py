"""Measure `recheck classify` on a ~1 GB build against grep over the same files.

Run: .venv/bin/python benchmarks/classify.py [--size-mb 1024] [--dir DIR] [--sets shipped,broad]

The build is generated (and kept in DIR for later runs with the same size and seed):
a Zuul log root with job-output.txt (console), eight devstack service logs (oslo.log
format, with tracebacks and DEBUG lines), and syslog.txt, made of the real lines in
tests/fixtures (numbers varied so that lines differ), plus a few planted failures: the
phrases of real signatures, in the files those signatures look at.

Signature sets: "shipped", the 91 real elastic-recheck queries plus 909 generated from
their shapes (same structure, other real words), 1,000 in all, written to DIR/../queries;
"broad", the same plus ``BROAD``: signatures that match many events or whole files (an
OR with a bare field filter, NOT-only groups, wildcards on common words, ``_exists_``,
very common words), written to DIR/../queries-broad.

Printed:
- `recheck classify` with its default `-j` once with an empty compiled-query cache (as
  the first run after the signatures change; recheck.query.cache), then
- `recheck classify` run as a command (a fresh process, as a user runs it), with one
  process (`-j 1`) and with its default (`-j` = the CPUs: files scanned by forked
  workers): wall time, peak RSS (ru_maxrss: the largest process of the run), bugs
  found, and the scanner's statistics;
- the scan limit: one hyperscan pass over the build's bytes with the set's quoted phrases
  as caseless literals, each reported once per file (a mapped file scanned whole), in a
  fresh process, with as many processes as the classify it is compared with; the ratio
  classify time / limit is printed for each set (the goal is at most 1.5);
- `grep -F -c -r -f PHRASES` over the same files, where PHRASES holds every quoted
  phrase of the 1,000 signatures, with and without -i, in the C locale (grep's fastest);
  the faster of the two is the baseline, and the ratio is printed.
Inputs (build, signature files, phrases) are read again before each timed run, so that
every command finds them in the page cache; recheck runs once untimed first, so that its
modules' bytecode is cached, as it is for an installed package. Each command is timed
--runs times and its best run is kept.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from match import generated_queries  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
REAL_QUERIES = FIXTURES / "queries" / "elastic-recheck-2020"

# file in the build -> (kind, share of the bytes)
LAYOUT = {
    "job-output.txt": ("console", 0.12),
    "controller/logs/screen-n-cpu.txt": ("oslo", 0.16),
    "controller/logs/screen-n-api.txt": ("oslo", 0.10),
    "controller/logs/screen-q-svc.txt": ("oslo", 0.14),
    "controller/logs/screen-q-agt.txt": ("oslo", 0.10),
    "controller/logs/screen-c-vol.txt": ("oslo", 0.10),
    "controller/logs/screen-c-api.txt": ("oslo", 0.08),
    "controller/logs/screen-g-api.txt": ("oslo", 0.06),
    "controller/logs/screen-keystone.txt": ("oslo", 0.06),
    "controller/logs/syslog.txt": ("syslog", 0.08),
}
SOURCES = {
    "console": ["console.html.excerpt.txt", "builds/devstack-zuulv3/job-output.txt"],
    "oslo": [
        "nova-compute.excerpt.log",
        "neutron-server.excerpt.log",
        "screen-c-api.excerpt.txt",
        "builds/devstack-zuulv3/controller/logs/screen-c-vol.txt",
    ],
    "syslog": ["syslog.excerpt.txt"],
}


BROAD = [
    # An implicit OR with a bare field filter: the filter alone matches a whole file kind.
    '(message:"Timed out waiting for a reply" AND message:"to message ID") OR '
    'message:"Failed to allocate the network" tags:"console"',
    'message:"No valid host was found" OR tags:"screen-n-cpu.txt"',
    # NOT-only groups: every event that lacks the words.
    'NOT message:"DEBUG" AND NOT message:"INFO"',
    '(NOT message:"ok") AND build_status:"FAILURE"',
    # Wildcards on common words.
    'message:fail* AND tags:"console"',
    "message:err* OR message:warn*",
    'message:* AND tags:"syslog"',
    # _exists_ and very common words.
    '_exists_:build_name AND message:"error"',
    'message:"failed"',
    'message:"error" AND tags:"screen"',
    "loglevel:ERROR",
    'message:"Traceback" OR filename:"job-output.txt"',
]
"""Broad signatures, as real signature repositories hold a few of (issue 16)."""


def line_pool(kind: str, rng: random.Random, size: int) -> list[str]:
    """``size`` real lines of ``kind`` with their numbers varied (same shapes)."""
    lines: list[str] = []
    for name in SOURCES[kind]:
        path = FIXTURES / "logs" / name if "/" not in name else FIXTURES / name
        text = path.read_text(encoding="utf-8", errors="replace")
        lines += [line for line in text.splitlines() if line.strip()]
    if kind == "console":
        lines = [
            line if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| ", line)
            else f"2021-06-23 05:14:53.561762 | {line}"
            for line in lines
        ]  # fmt: skip

    def vary(match: re.Match[str]) -> str:
        return "".join(rng.choice("0123456789") for _ in match.group(0))

    out = []
    for _ in range(size):
        line = rng.choice(lines)
        head, sep, tail = line.partition(" | ") if kind == "console" else ("", "", line)
        if kind == "oslo":  # keep the timestamp valid, vary what follows
            head, tail = line[:24], line[24:]
        out.append(head + sep + re.sub(r"(?<![\d.:-])\d{2,}(?![\d:-])", vary, tail))
    return out


def planted(queries: list[str], rng: random.Random) -> dict[str, list[str]]:
    """Lines carrying real signatures' phrases, for the files their tags point to."""
    out: dict[str, list[str]] = {path: [] for path in LAYOUT}
    for text in queries:
        phrases = re.findall(r'message:\s*"((?:[^"\\]|\\.)*)"', text)
        if not phrases or "NOT" in text or rng.random() < 0.7:
            continue
        message = " ".join(phrase.replace('\\"', '"') for phrase in phrases)
        if "console" in text or "job-output" in text:
            out["job-output.txt"].append(f"2021-06-23 05:20:01.000000 | {message}")
        else:
            path = rng.choice([p for p, (kind, _) in LAYOUT.items() if kind == "oslo"])
            out[path].append(f"2021-06-23 05:20:01.000 31337 ERROR nova.compute [-] {message}")
    return out


def generate(directory: Path, size_mb: int, queries: list[str], seed: int) -> None:
    rng = random.Random(seed)
    pools = {kind: line_pool(kind, rng, 20_000) for kind in SOURCES}
    plants = planted(queries, rng)
    for path, (kind, share) in LAYOUT.items():
        target = int(size_mb * (1 << 20) * share)
        full = directory / path
        full.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        todo = plants[path]
        with open(full, "w", encoding="utf-8") as out:
            while written < target:
                batch = rng.choices(pools[kind], k=5000)
                if todo and rng.random() < 0.02:
                    batch[rng.randrange(len(batch))] = todo.pop()
                text = "\n".join(batch) + "\n"
                out.write(text)
                written += len(text.encode())
            for line in todo:
                out.write(line + "\n")
    (directory / ".generated").write_text(f"{size_mb} {seed}\n")


def write_queries(directory: Path, queries: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    for index, text in enumerate(queries):
        (directory / f"{9_000_000 + index}.yaml").write_text(json.dumps({"query": text}))


def phrases_file(path: Path, queries: list[str]) -> int:
    phrases = sorted(
        {
            phrase.replace('\\"', '"')
            for text in queries
            for phrase in re.findall(r'"((?:[^"\\]|\\.)+)"', text)
        }
    )
    path.write_text("\n".join(phrases) + "\n")
    return len(phrases)


# Run in a fresh process: prints the seconds its scan took (after importing hyperscan).
LIMIT_CODE = """
import mmap, os, sys, time
import hyperscan
phrases = [p.encode() for p in open(sys.argv[1], encoding="utf-8").read().splitlines() if p]
jobs = int(sys.argv[2])
files = sorted(sys.argv[3:], key=lambda p: -os.path.getsize(p))
db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
db.compile(expressions=phrases, ids=list(range(len(phrases))), elements=len(phrases),
           flags=[hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH] * len(phrases),
           literal=True)
found = []
def scan(paths):
    scratch = hyperscan.Scratch(db)
    for path in paths:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                db.scan(data, match_event_handler=lambda i, s, e, fl, c: found.append(i),
                        scratch=scratch)
                data.close()
start = time.perf_counter()
children = []
for worker in range(1, jobs):
    pid = os.fork()
    if pid == 0:
        scan(files[worker::jobs])
        os._exit(0)
    children.append(pid)
scan(files[0::jobs])
for pid in children:
    os.waitpid(pid, 0)
print(time.perf_counter() - start)
"""


def warm(directory: Path) -> None:
    """Read every file under ``directory`` into the page cache.

    Before every timed command alike: some machines page out file pages idle for a few
    seconds (this one's kernel runs DAMON with a pageout scheme), which would time
    reading the disk instead of the commands.
    """
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as stream:
                while stream.read(1 << 24):
                    pass


def run_command(
    command: list[str], env: dict[str, str] | None = None, warm_first: Path | None = None
) -> tuple[float, resource.struct_rusage, bytes]:
    """Wall seconds, the child's resource usage and stdout of ``command`` (exit 0 or 1)."""
    if warm_first is not None:
        warm(warm_first)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed: exit status {status}")
    return seconds, usage, output


def timed(
    command: list[str], env: dict[str, str] | None = None, warm_first: Path | None = None
) -> tuple[float, int, bytes]:
    """Wall seconds, peak RSS in MiB (of the child) and stdout of ``command``."""
    seconds, usage, output = run_command(command, env, warm_first)
    return seconds, usage.ru_maxrss // 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="build size (default 1024)")
    parser.add_argument(
        "--dir", type=Path, default=Path("/tmp/recheck-bench/build"), help="build directory"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--runs", type=int, default=3, help="runs of each command; best kept")
    parser.add_argument(
        "--sets", default="shipped,broad", help="signature sets: shipped, broad (default both)"
    )
    parser.add_argument(
        "--fallback", action="store_true", help="also time the pure-Python path (slow)"
    )
    args = parser.parse_args()

    real = [
        json.loads(json.dumps(__import__("yaml").safe_load(p.read_text())))["query"]
        for p in sorted(REAL_QUERIES.glob("*.yaml"))
    ]
    shipped = real + generated_queries(real, 1000 - len(real))
    build: Path = args.dir
    marker = build / ".generated"
    if not marker.exists() or marker.read_text().split() != [str(args.size_mb), str(args.seed)]:
        print(f"generating a {args.size_mb} MiB build in {build} ...", flush=True)
        start = time.perf_counter()
        generate(build, args.size_mb, real, args.seed)
        print(f"  done in {time.perf_counter() - start:.0f} s")
    files = [p for p in build.rglob("*.txt")]
    total = sum(p.stat().st_size for p in files)
    print(f"build: {total / (1 << 20):,.0f} MiB in {len(files)} files")
    sets = {"shipped": ("queries", shipped), "broad": ("queries-broad", shipped + BROAD)}
    for name in args.sets.split(","):
        folder, queries = sets[name]
        print(f"\n{name} set: {len(queries)} signatures")
        measure(args, build, files, total, build.parent / folder, queries)


def measure(
    args: argparse.Namespace,
    build: Path,
    files: list[Path],
    total: int,
    queries_dir: Path,
    queries: list[str],
) -> None:
    """Time classify, the scan limit and grep for one set of signatures."""
    write_queries(queries_dir, queries)
    phrases = build.parent / f"phrases-{queries_dir.name}.txt"
    count = phrases_file(phrases, queries)
    inputs = build.parent  # the build, the signature files and the phrases file

    recheck = [
        str(ROOT / ".venv" / "bin" / "recheck"), "classify", "--queries", str(queries_dir),
        str(build), "--format", "json", "--build-status", "FAILURE", "--stats",
    ]  # fmt: skip
    cpus = os.cpu_count() or 1
    # As an installed package runs: with its modules' bytecode cached (pip compiles it at
    # install time). The first run writes it, untimed, even where the environment says
    # PYTHONDONTWRITEBYTECODE (which would recompile every module on every run).
    recheck_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # Compiled queries are cached between runs (recheck.query.cache): the first run after
    # the signatures change compiles them all. That run is timed apart, from an empty cache.
    cache = tempfile.mkdtemp(prefix="recheck-bench-cache-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    recheck_env["RECHECK_CACHE_DIR"] = cache
    timed([*recheck, "--jobs", "1"], recheck_env)  # bytecode written
    shutil.rmtree(cache)
    cold = timed([*recheck, "--jobs", str(cpus)], recheck_env, inputs)[0]
    print(f"recheck classify -j {cpus}, compiled-query cache empty: {cold:6.2f} s")
    results: dict[int, float] = {}
    for jobs in sorted({1, cpus}):
        best = None
        for _ in range(args.runs):
            seconds, rss, output = timed([*recheck, "--jobs", str(jobs)], recheck_env, inputs)
            if best is None or seconds < best[0]:
                best = (seconds, rss, output)
        assert best is not None
        seconds, rss, output = best
        results[jobs] = seconds
        result = json.loads(output)
        print(
            f"recheck classify -j {jobs}: {seconds:6.2f} s  "
            f"{total / (1 << 20) / seconds:7.0f} MiB/s  peak RSS {rss} MiB (largest process)  "
            f"bugs found: {len(result['bugs'])}  matching events shown: "
            f"{len(result['matches'])}"
        )
    print(f"  scan: {result.get('stats')}")
    limits: dict[int, float] = {}
    paths = [str(path) for path in files]
    python = str(ROOT / ".venv" / "bin" / "python")
    for jobs in sorted(results):
        best_limit = None
        for _ in range(args.runs):
            seconds, _, out = timed(
                [python, "-c", LIMIT_CODE, str(phrases), str(jobs), *paths], None, inputs
            )
            scan = float(out.decode().split()[-1])
            if best_limit is None or seconds < best_limit[0]:
                best_limit = (seconds, scan)
        assert best_limit is not None
        limits[jobs] = best_limit[0]
        print(
            f"scan limit, {jobs} process(es), {count} phrases once per file: "
            f"{best_limit[0]:6.2f} s as a command (the scan alone: {best_limit[1]:.2f} s); "
            f"classify -j {jobs} / limit: {results[jobs] / best_limit[0]:.2f}"
        )
    if args.fallback:
        # The same classification without hyperscan: every file split in full.
        code = (
            "import sys; from pathlib import Path; from recheck.logs.build import Build; "
            "from recheck.logs.localdir import DirSource; "
            "from recheck.pipeline import classify_build; "
            "from recheck.query.signatures import load_signatures; "
            "sigs, _ = load_signatures(Path(sys.argv[1])); "
            "r = classify_build(DirSource(Path(sys.argv[2])), sigs, Build(build_status='FAILURE'), "
            "use_hyperscan=False); print(len(r.matches))"
        )
        seconds_fb, rss_fb, out = timed(
            [python, "-c", code, str(queries_dir), str(build)], None, inputs
        )
        print(
            f"recheck without hyperscan (pure Python): {seconds_fb:6.2f} s  "
            f"{total / (1 << 20) / seconds_fb:7.0f} MiB/s  peak RSS {rss_fb} MiB  "
            f"matching events: {out.decode().strip()}"
        )

    grep_env = {**os.environ, "LC_ALL": "C"}
    grep_times = {}
    for flags in (["-F"], ["-F", "-i"]):
        runs = [
            timed(["grep", *flags, "-c", "-r", "-f", str(phrases), str(build)], grep_env, inputs)[0]
            for _ in range(args.runs)
        ]
        grep_times[" ".join(flags)] = min(runs)
        print(f"grep {' '.join(flags)} -c -r -f PHRASES ({count} phrases): {min(runs):6.2f} s")
    baseline = min(grep_times.values())
    for jobs, taken in sorted(results.items()):
        print(f"recheck -j {jobs} vs the faster grep: {baseline / taken:.2f}x faster")


if __name__ == "__main__":
    main()
