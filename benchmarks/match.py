"""Measure the signature engine: compile time, and events/s against naive baselines.

Run: .venv/bin/python benchmarks/match.py [--events N]

Signatures: the 91 real elastic-recheck queries (tests/fixtures/queries), and 1,000
generated from their shapes (same structure, other words). Events: real log lines from
tests/fixtures/logs as logstash would index them (message, tags, filename, build
fields), cycled to N events, with one planted hit per real signature.

Printed, all on one core:
- compile time for 91 and 1,000 signatures;
- events/s of `match_events` (prefilter + full evaluation), with hyperscan and with
  the pure-Python fallback;
- events/s of the compiled queries without prefilter (every query on every event);
- events/s of a naive baseline that parses and evaluates each query per event (no
  precompilation), and the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recheck.models import Event  # noqa: E402
from recheck.query import Doc, compile_query  # noqa: E402
from recheck.query import prefilter as prefilter_module  # noqa: E402
from recheck.query.matcher import match_events  # noqa: E402
from recheck.query.signatures import load_signatures  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
TAGS = {
    "console": ["console", "console.html"],
    "screen": ["screen", "oslofmt", "screen-c-api.txt"],
    "syslog": ["syslog", "syslog.txt"],
    "nova": ["oslofmt", "screen-n-cpu.txt", "screen"],
    "neutron": ["oslofmt", "screen-q-svc.txt", "screen"],
}


def real_events(limit: int) -> list[Event]:
    lines: list[tuple[str, str]] = []
    for path in sorted((FIXTURES / "logs").glob("*")):
        kind = next((k for k in TAGS if k in path.name), "console")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                lines.append((kind, line))
    events: list[Event] = []
    for i, (kind, line) in zip(range(limit), itertools.cycle(lines), strict=False):
        events.append(
            {
                "message": line,
                "tags": TAGS[kind],
                "filename": TAGS[kind][-1],
                "build_name": "tempest-full-py3",
                "build_status": "FAILURE",
                "build_queue": "gate",
                "project": "openstack/nova",
                "voting": "1",
                "build_uuid": f"{i % 97:032x}",
            }
        )
    return events


def planted_events(queries: list[str]) -> list[Event]:
    """One event per query made of the query's quoted phrases: a likely true match."""
    out: list[Event] = []
    for text in queries:
        phrases = re.findall(r'message:\s*"((?:[^"\\]|\\.)*)"', text)
        out.append(
            {
                "message": " ".join(phrases) or "nothing",
                "tags": ["console", "job-output.txt", "console.html", "screen-n-cpu.txt"],
                "filename": "job-output.txt",
                "build_queue": "gate",
            }
        )
    return out


def generated_queries(real: list[str], count: int, seed: int = 7) -> list[str]:
    """Real query shapes with their quoted words swapped for other real words."""
    rng = random.Random(seed)
    words = sorted({w for q in real for w in re.findall(r"[A-Za-z]{4,}", q)})
    out = []
    for i in range(count):
        base = real[i % len(real)]

        def swap(m: re.Match[str]) -> str:
            inner = " ".join(rng.choice(words) for _ in m.group(1).split())
            return f'"{inner}"'

        out.append(re.sub(r'"([^"\\]+)"', swap, base))
    return out


def rate(label: str, events: int, seconds: float) -> float:
    per_second = events / seconds
    print(f"  {label:<52} {per_second:>12,.0f} events/s  ({seconds:.2f} s)")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=1_000)
    args = parser.parse_args()

    signatures, errors = load_signatures(FIXTURES / "queries" / "elastic-recheck-2020")
    assert not errors, errors
    texts = [s.query for s in signatures]
    generated = generated_queries(texts, 1000)

    print("compile")
    start = time.perf_counter()
    for text in texts:
        compile_query(text)
    print(f"  91 real signatures: {(time.perf_counter() - start) * 1000:.1f} ms")
    start = time.perf_counter()
    compiled_generated = [compile_query(text) for text in generated]
    print(f"  1,000 generated signatures: {(time.perf_counter() - start) * 1000:.1f} ms")

    events = real_events(args.events) + planted_events(texts)
    pairs = [(str(i), e) for i, e in enumerate(events)]
    print(f"match: {len(signatures)} real signatures over {len(events):,} events")

    start = time.perf_counter()
    result = match_events(signatures, pairs)
    fast = rate(
        f"recheck (prefilter, hyperscan={prefilter_module.hyperscan_available()})",
        len(events),
        time.perf_counter() - start,
    )
    hits = sum(len(v) for v in result.values())
    print(f"  ({hits} matches, {sum(1 for v in result.values() if v)} signatures hit)")

    saved = prefilter_module.hyperscan
    prefilter_module.hyperscan = None
    start = time.perf_counter()
    fallback_result = match_events(signatures, pairs)
    rate("recheck (prefilter, pure-Python fallback)", len(events), time.perf_counter() - start)
    prefilter_module.hyperscan = saved
    assert fallback_result == result, "fallback disagrees with hyperscan path"

    subset = events[: min(len(events), 20_000)]
    queries = [s.compiled for s in signatures]
    start = time.perf_counter()
    for event in subset:
        doc = Doc(event)
        for q in queries:
            q.matches(doc)
    compiled_rate = rate("compiled, no prefilter", len(subset), time.perf_counter() - start)

    naive = events[: args.naive_events]
    start = time.perf_counter()
    for event in naive:
        for text in texts:
            compile_query(text).matches(event)
    naive_rate = rate(
        "naive: parse + evaluate each query per event", len(naive), time.perf_counter() - start
    )
    print(f"  speed-up vs compiled without prefilter: {fast / compiled_rate:.1f}x")
    print(f"  speed-up vs naive: {fast / naive_rate:.0f}x")

    generated_sigs = [
        s.__class__(**{**s.__dict__, "bug": f"g{i}", "query": q.text, "compiled": q})
        for i, (s, q) in enumerate(
            zip(itertools.cycle(signatures), compiled_generated, strict=False)
        )
    ]
    start = time.perf_counter()
    match_events(generated_sigs, pairs)
    rate("recheck, 1,000 generated signatures", len(events), time.perf_counter() - start)


if __name__ == "__main__":
    main()
