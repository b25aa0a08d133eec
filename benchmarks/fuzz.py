"""The long fuzzing run: a seeded loop over every target of tests/fuzz/fuzz_targets.py.

Run: .venv/bin/python benchmarks/fuzz.py [--inputs N] [--seed S] [--target NAME ...]

N inputs in all (default 1,000,000), shared among the targets by their cost (cheap ones
get more). Each target runs in a forked child, one after the other (one process at a
time), so that its peak RSS is its own. Printed per target: inputs tried, outcomes,
failures (with the seed that makes the input again, and the input's start), the slowest
input's time, and the child's peak RSS. Exit status 1 if any input failed.

An input is a failure if recheck raised anything but the errors it reports on purpose,
broke a promise (the prefilter dropped a match, hyperscan and plain scans differ, an
unprintable message), took over --slow seconds of CPU, or over 8 GiB (the process's cap).
CPU time, not wall time: on a shared machine an input's wall time counts the neighbours'
work too (at a load of 12 on 2 CPUs, inputs of 0.5 s took over 5). A hang that does not
use the CPU is still stopped by a wall-clock alarm at 10x --slow.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

os.environ.setdefault("RECHECK_CACHE_DIR", "")  # the cache is fuzzed through its encoder

import fuzz_targets  # noqa: E402

MEMORY_CAP = 8 << 30
"""Address space of a target's process at most: a blow-up fails with MemoryError."""

# Share of the inputs, per mille: about the inverse of each target's cost per input
# (a stream-events line takes ~0.1 ms, a query ~5 ms, a regexp or a build ~30 ms).
WEIGHTS = {
    "query": 100,
    "regexp": 10,
    "signature": 40,
    "events": 50,
    "stream-events": 790,
    "log": 10,
}


class _Stalled(Exception):
    """An input ran past the alarm: a hang, reported as a failure, and the run goes on."""


def _stalled(signum: int, frame: object) -> None:
    raise _Stalled("no result within the alarm (10x --slow)")


def run_target(name: str, count: int, seed: int, slow: float) -> dict[str, object]:
    # A hang or a memory blow-up on one input is a failure to report, not the end of the
    # run (nor of a shared machine): an alarm per input, and a cap on the address space.
    signal.signal(signal.SIGALRM, _stalled)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    targets = fuzz_targets.make_targets(fuzz_targets.scratch_dir())
    generate, check = targets[name]
    outcomes: dict[str, int] = {}
    failures: list[dict[str, object]] = []
    slowest = (0.0, 0)
    started = time.perf_counter()
    progress = started
    for index in range(count):
        if time.perf_counter() - progress > 300:  # a sign of life on long runs
            progress = time.perf_counter()
            print(f"  {name}: {index:,} of {count:,}, {outcomes}", file=sys.stderr, flush=True)
        input_seed = seed * 1_000_003 + index
        made = generate(random.Random(f"{name}-{input_seed}"))
        begin = time.process_time()
        signal.alarm(max(1, int(10 * slow)))
        try:
            outcome = check(made)
        except Exception as exc:
            outcome = "failed"
            error = "".join(traceback.format_exception_only(exc)).strip()[-1500:]
            _failed(failures, name, input_seed, made, error)
        finally:
            signal.alarm(0)
        took = time.process_time() - begin
        if took > slowest[0]:
            slowest = (took, input_seed)
        if took > slow and outcome != "failed":
            outcome = "failed"
            _failed(failures, name, input_seed, made, f"took {took:.2f} s of CPU")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {
        "target": name,
        "inputs": count,
        "outcomes": outcomes,
        "failed": outcomes.get("failed", 0),
        "failures": failures,
        "max_cpu_seconds": round(slowest[0], 4),
        "slowest_seed": slowest[1],
        "total_seconds": round(time.perf_counter() - started, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _failed(
    failures: list[dict[str, object]], name: str, seed: int, made: object, error: str
) -> None:
    """Keep the first failures for the report, and say each at once (a long run's
    report comes at the end of the target)."""
    failure = {"seed": seed, "input": repr(made)[:300], "error": error}
    print(f"  {name}: FAILED {json.dumps(failure)}", file=sys.stderr, flush=True)
    if len(failures) < 20:
        failures.append(failure)


def in_child(name: str, count: int, seed: int, slow: float) -> dict[str, object]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report as JSON, leave without cleanup handlers
        os.close(read)
        try:
            report = run_target(name, count, seed, slow)
        except BaseException as exc:  # reported, not raised: the child must exit
            report = {"target": name, "inputs": 0, "failed": 1, "crash": repr(exc)}
        with os.fdopen(write, "w") as out:
            json.dump(report, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not text:
        return {"target": name, "inputs": 0, "failed": 1, "crash": f"child status {status}"}
    result: dict[str, object] = json.loads(text)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--slow", type=float, default=5.0, help="CPU seconds an input may take (default 5)"
    )
    parser.add_argument("--target", action="append", choices=sorted(WEIGHTS))
    args = parser.parse_args()
    names = args.target or list(WEIGHTS)
    total_weight = sum(WEIGHTS[name] for name in names)
    failed = 0
    tried = 0
    for name in names:
        count = max(1, args.inputs * WEIGHTS[name] // total_weight)
        report = in_child(name, count, args.seed, args.slow)
        print(json.dumps(report, ensure_ascii=True), flush=True)
        failed += int(report.get("failed", 0))  # type: ignore[call-overload]
        tried += int(report.get("inputs", 0))  # type: ignore[call-overload]
    print(f"fuzz: {tried:,} inputs, {failed:,} failures, seed {args.seed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
