"""Measure the bot's latency: from a failure event on Gerrit's stream to its comment.

Run: .venv/bin/python benchmarks/latency.py [--events 300] [--rate 5] [--workers 2]
     [--no-store]

Starts the fake Gerrit of tests/gerrit_fake.py (SSH stream-events, REST review) and
its local logs server with the real fixture builds already there, then ``recheck bot``
as a process, exactly as the end-to-end tests do. Replays ``--events`` failure events
at ``--rate`` per second: the four recorded Jenkins failure events and the Zuul v3
event of tests/fixtures/events/ in turn, each copy on its own change number. Each
event's latency is the time from the moment the stream line is written to the moment
Gerrit stores the comment (the bot's logs are already on the server, so this is the
bot's own work: queue, parse, fetch, classify with the 94 shipped signatures, store
in the history store unless --no-store, post). Prints p50, p95, max and the
throughput. elastic-recheck polled every 40 s; the aim is p95 under 5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bot_world import FAILED_JENKINS, World, wait_until
from gerrit_fake import FakeGerrit, LogSite


def main() -> int:
    """Run the measurement and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5.0, help="events per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-store", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeGerrit(Path(tmp)) as gerrit, LogSite() as logs:
        world = World(Path(tmp), gerrit, logs)
        world.serve_jenkins_logs()
        world.serve_zuul_builds()
        # The tests leave the RETRY_LIMIT build's logs missing; here every log is there.
        retry = "246b001d62ed44e5b0e68877fe172167"
        logs.builds[retry] = {**logs.builds["d850dbd8565f449eb60bf4517e09bca5"], "uuid": retry}
        world.config(workers=args.workers, log_timeout=30)
        try:
            world.start(*(["--no-store"] if args.no_store else []))
            gerrit.wait_for_stream()
            sent = replay(world, args.events, args.rate)
            wait_until(lambda: len(gerrit.reviews) >= len(sent), "every comment", timeout=3600)
            latencies = sorted(review.at - sent[review.change] for review in gerrit.reviews)
            first = min(sent.values())
            last = max(review.at for review in gerrit.reviews)
        finally:
            world.stop_all()
    report(latencies, last - first, args)
    return 0


def replay(world: World, count: int, rate: float) -> dict[str, float]:
    """Emit ``count`` events at ``rate`` per second; change number -> time sent."""
    templates = [json.loads(world.jenkins_event(i)) for i in FAILED_JENKINS]
    templates.append(json.loads(world.zuul_event()))
    sent: dict[str, float] = {}
    start = time.monotonic()
    for n in range(count):
        event = json.loads(json.dumps(templates[n % len(templates)]))
        change = str(900000 + n)
        event["change"]["number"] = change
        event["eventCreatedOn"] = 1700000000 + n
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[change] = time.monotonic()
        world.gerrit.emit(json.dumps(event))
    return sent


def report(latencies: list[float], span: float, args: argparse.Namespace) -> None:
    """Print the percentiles."""

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    store = "without store" if args.no_store else "with the embedded store"
    print(f"{len(latencies)} events at {args.rate:g}/s, {args.workers} workers, {store}")
    print(
        f"event -> comment latency: p50 {pct(0.50):.2f} s, p95 {pct(0.95):.2f} s, "
        f"max {latencies[-1]:.2f} s, mean {statistics.fmean(latencies):.2f} s"
    )
    print(f"throughput: {len(latencies) / span:.1f} comments/s over {span:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
