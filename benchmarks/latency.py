"""Measure the bot's latency: from a failure event on Gerrit's stream to its comment.

Run: .venv/bin/python benchmarks/latency.py [--events 300] [--rate 5] [--workers 2]
     [--no-store]
     .venv/bin/python benchmarks/latency.py --build-mb 100,1024 [--events 10]
     [--interval 20] [--local] [--dir DIR] [--baseline] [--drain]

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

With ``--build-mb``, realistic builds instead (issue 16 item 4): for each size, a
Zuul-layout build of that many MiB made by benchmarks/classify.py's generator (real log
lines, numbers varied, failures of the shipped signatures planted; kept in ``--dir``
for later runs), served by the logs server; ``--events`` failure events, one every
``--interval`` seconds, each with one failed job whose logs are that build under its own
URL (so each is stored as its own build). Latency is from "logs available" (the logs
are on the server when the event is written) to "comment posted" (every event gets
one: bot.comment_on_unrecognized). The bot stores each build in the embedded store
behind its comment: printed are the seconds each build took to store (and how long it
paused for comments), how many were stored when the last comment was posted (the
history backlog then), and the sustained rates in failed builds per hour, for comments
and for history, against a gate of 12,500 jobs a day. ``--baseline`` runs the same
replay with --no-store first (comments only, nothing behind them), side by side: the
ratio of the p95s is what storing behind the comments costs them. ``--drain`` waits for
the history backlog to empty and says how long that took.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import yaml  # noqa: E402
from bot_world import FAILED_JENKINS, World, wait_until  # noqa: E402
from gerrit_fake import FakeGerrit, LogSite  # noqa: E402

GATE_JOBS_A_DAY = 12_500
JOB_PATH = "78/63078/19/check/check-tempest-dsvm-full/ab07162"
"""The log path of the one failed job of recorded event 2: each replayed copy gets its own."""


def main() -> int:
    """Run the measurement and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, help="events to replay (default 300; 10 with --build-mb)"
    )
    parser.add_argument("--rate", type=float, default=5.0, help="events per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-store", action="store_true")
    parser.add_argument(
        "--build-mb", help="realistic builds of these sizes in MiB, e.g. 100,1024 (see above)"
    )
    parser.add_argument(
        "--interval", type=float, default=20.0, help="seconds between events (--build-mb)"
    )
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()) / "recheck-latency",
        help="where the generated builds are kept between runs (--build-mb)",
    )  # fmt: skip
    parser.add_argument("--baseline", action="store_true", help="also run with --no-store")
    parser.add_argument(
        "--local", action="store_true",
        help="the bot reads the builds from disk (fetch.local_roots) instead of over HTTP",
    )  # fmt: skip
    parser.add_argument("--drain", action="store_true", help="wait for the history backlog")
    args = parser.parse_args()
    if args.events is None:
        args.events = 10 if args.build_mb else 300
    if args.build_mb:
        for size in (int(mb) for mb in args.build_mb.split(",")):
            big_builds(args, size)
        return 0
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


def big_builds(args: argparse.Namespace, size: int) -> None:
    """Generate (or reuse) a build of ``size`` MiB and replay events failing on it."""
    from classify import generate  # benchmarks/classify.py: the 1 GiB build's generator

    directory: Path = args.dir / f"build-{size}MiB"
    marker = directory / ".generated"
    if not marker.exists() or marker.read_text().split() != [str(size), "11"]:
        queries = [
            yaml.safe_load(path.read_text())["query"]
            for path in sorted(ROOT.glob("queries/*.yaml"))
        ]
        print(f"generating a {size} MiB build in {directory} ...", flush=True)
        generate(directory, size, queries, 11)
    total = sum(path.stat().st_size for path in directory.rglob("*.txt"))
    where = "from disk (fetch.local_roots)" if args.local else "over HTTP"
    print(f"\n== {total / (1 << 20):,.0f} MiB build read {where}, {args.events} events one "
          f"every {args.interval:g} s, {args.workers} workers ==", flush=True)  # fmt: skip
    results = {}
    for mode in ("no-store", "history") if args.baseline else ("history",):
        results[mode] = replay_big(args, directory, size, mode)
    if "no-store" in results:
        base, ours = results["no-store"][0], results["history"][0]
        print(f"p95 with history behind / without a store: {ours:.2f} / {base:.2f} s "
              f"= {ours / base:.2f}")  # fmt: skip


def replay_big(
    args: argparse.Namespace, directory: Path, size: int, mode: str
) -> tuple[float, float]:
    """One replay against a fresh bot; prints its numbers, returns its (p95, p50)."""
    with tempfile.TemporaryDirectory() as tmp, FakeGerrit(Path(tmp)) as gerrit, LogSite() as logs:
        world = World(Path(tmp), gerrit, logs)
        config = world.config(workers=args.workers, log_timeout=60, comment_on_unrecognized=True)
        if args.local:  # a log server's disk mounted where the bot runs
            data = json.loads(config.read_text())
            data["fetch"]["local_roots"] = {
                f"{logs.url}/logs/big/{size}/{n}/": str(directory) for n in range(args.events)
            }
            config.write_text(json.dumps(data))
        try:
            world.start(*(["--no-store"] if mode == "no-store" else []))
            gerrit.wait_for_stream()
            # One untimed event first, on the small fixture build: a bot runs for days,
            # its first classification's one-time costs (hyperscan databases) are not
            # what a patch author waits for.
            world.serve_jenkins_logs()
            template = world.jenkins_event(2)
            gerrit.emit(template)
            wait_until(lambda: len(gerrit.reviews) >= 1, "the warm-up comment", timeout=600)
            warm = len(gerrit.reviews)
            sent: dict[str, float] = {}
            start = time.monotonic()
            for n in range(args.events):
                route = f"big/{size}/{n}"
                logs.routes[route] = directory
                event = json.loads(template.replace(JOB_PATH, route))
                change = str(900000 + n)
                event["change"]["number"] = change
                event["eventCreatedOn"] = 1700000000 + n
                delay = start + n * args.interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent[change] = time.monotonic()
                gerrit.emit(json.dumps(event))
            wait_until(
                lambda: len(gerrit.reviews) >= warm + len(sent), "every comment", timeout=7200
            )
            reviews = [review for review in gerrit.reviews if review.change in sent]
            span = max(review.at for review in reviews) - start
            latencies = sorted(review.at - sent[review.change] for review in reviews)
            stored = _stored(world)
            drained = None
            if args.drain and mode == "history":
                wait_until(lambda: len(_stored(world)) >= len(sent), "history", timeout=86400)
                drained = time.monotonic() - start
                stored_all = _stored(world)
            else:
                stored_all = stored
        finally:
            world.stop_all()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    print(f"{mode}: logs available -> comment posted: p50 {pct(0.5):.2f} s, "
          f"p95 {pct(0.95):.2f} s, max {latencies[-1]:.2f} s, mean "
          f"{statistics.fmean(latencies):.2f} s")  # fmt: skip
    per_hour = GATE_JOBS_A_DAY / 24
    print(f"  comments: {len(latencies) * 3600 / span:,.0f} failed builds/hour over the replay "
          f"({span:.0f} s; with --interval small enough that events wait, this is the rate "
          f"the bot sustains); gate: {GATE_JOBS_A_DAY:,} jobs/day = {per_hour:.0f} "
          "jobs/hour")  # fmt: skip
    if mode != "history":
        return pct(0.95), pct(0.5)
    print(f"  history: {len(stored)} of {len(sent)} builds stored when the last comment "
          f"was posted ({span:.0f} s after the first event); backlog then "
          f"{len(sent) - len(stored)}")  # fmt: skip
    if stored_all:
        busy = [line["seconds"] - line["paused"] for line in stored_all]
        paused = [line["paused"] for line in stored_all]
        events = statistics.fmean(line["events"] for line in stored_all)
        rate = 3600 / statistics.fmean(busy)
        print(f"  storing a build: {statistics.fmean(busy):.1f} s of work "
              f"({events:,.0f} events; paused for comments {statistics.fmean(paused):.1f} s "
              f"on average): history keeps up with ~{rate:,.0f} failed builds/hour; above "
              "that its backlog grows by the difference, shrinking when fewer fail")  # fmt: skip
    if drained is not None:
        print(f"  backlog drained {drained:.0f} s after the first event")
    return pct(0.95), pct(0.5)


def _stored(world: World) -> list[dict[str, float]]:
    """The timed builds stored so far (not the warm-up's)."""
    return [
        line
        for line in world.logs_of(0)
        if line["event"] == "build_stored" and not line["key"].startswith("63078,")
    ]


if __name__ == "__main__":
    sys.exit(main())
