"""``recheck stats``: each signature's precision and flags, from the stored history.

The numbers are ``recheck.store.precision``'s; this module reads the store, asks the bug
tracker whether each bug is fixed, and prints a table or JSON.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from recheck.cli.common import (
    Commands,
    add_config_option,
    add_queries_option,
    add_store_option,
    line_printer,
    load_signatures_or_warn,
    on_store,
    plural,
    positive_float,
    print_json,
)
from recheck.config.files import Config
from recheck.models import BugInfo

if TYPE_CHECKING:
    from recheck.query.signatures import Signature
    from recheck.store import Store
    from recheck.store.precision import SignatureStats

__all__ = ["add_parser", "run"]

DEFAULT_DAYS = 30.0


def add_parser(commands: Commands) -> None:
    """Register ``recheck stats``."""
    stats = commands.add_parser(
        "stats",
        help="each signature's precision: hits on failed and on passing builds, and flags",
        description=(
            "For every signature in --queries, from the builds stored in the last DAYS days: "
            "the failed builds it hit, the passing builds it hit (the bot scans a sample of "
            "passing builds, bot.success_sample; `recheck ingest --build-status SUCCESS` "
            "records them too), its precision (failed / all builds hit), its last hit in "
            "the whole stored history and the jobs it hits. Flags: too_broad (hits on "
            "passing builds), stale (no hit in DAYS days, or its bug is fixed: Fix Committed "
            "or Fix Released in the bug tracker of bot.yaml, or resolved_at in the file), "
            "overlapping (another signature matches the same events). --format json prints "
            '{"days": N, "signatures": [{"bug", "failure_builds", "success_builds", '
            '"precision", "last_hit", "jobs", "flags"}, ...]}.'
        ),
    )
    stats.add_argument(
        "--days",
        type=positive_float,
        default=DEFAULT_DAYS,
        help=f"count the builds of the last DAYS days (default: {DEFAULT_DAYS:g})",
    )
    add_queries_option(stats)
    stats.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_store_option(stats)
    add_config_option(stats)
    stats.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recheck.store.precision import signature_stats

    signatures = load_signatures_or_warn(args.queries, "stats")
    if signatures is None:
        return 2
    now = datetime.now(UTC)
    since = now - timedelta(days=args.days)

    def measure(store: Store, config: Config) -> list[SignatureStats]:
        if args.store is not None:  # the tracker's cache lives in the store directory
            config = replace(config, store=replace(config.store, path=args.store))
        bugs = _bug_info(config, signatures)
        return signature_stats(
            signatures, store.matches_between(), since, days=args.days, bugs=bugs
        )

    found = on_store(args, "stats", measure)
    if found is None:
        return 2
    if args.format == "json":
        print_json({"days": args.days, "signatures": [s.to_json() for s in found]})
        return 0
    _print_table(found, args.days)
    return 0


def _bug_info(config: Config, signatures: list[Signature]) -> dict[str, BugInfo | None]:
    """What bot.yaml's bug tracker knows of each bug (nothing when it has none)."""
    from recheck.cli.serve import bug_tracker

    tracker = bug_tracker(config)
    if tracker is None:
        return {}
    try:
        found: dict[str, BugInfo | None] = {}
        for signature in signatures:
            try:
                found[signature.bug] = tracker.lookup(signature.bug)
            except Exception:  # the tracker promises not to raise; stats go on without it
                found[signature.bug] = None
        return found
    finally:
        close = getattr(tracker, "close", None)  # Launchpad's lookup thread
        if callable(close):
            close()


_HEADER = ("bug", "failed", "passed", "precision", "last hit", "jobs", "flags")


def _print_table(found: list[SignatureStats], days: float) -> None:
    rows = [_HEADER]
    for stats in found:
        precision = "-" if stats.precision is None else f"{stats.precision:.0%}"
        last = "never" if stats.last_hit is None else stats.last_hit.strftime("%Y-%m-%d")
        jobs = ", ".join(list(stats.jobs)[:2]) + (" ..." if len(stats.jobs) > 2 else "")
        rows.append(
            (
                stats.bug,
                str(stats.failure_builds),
                str(stats.success_builds),
                precision,
                last,
                jobs or "-",
                " ".join(stats.flags) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER) - 1)]
    print_line = line_printer(sys.stdout)
    for index, row in enumerate(rows):
        text = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        style = "bold" if index == 0 else ("yellow" if found[index - 1].flags else "")
        print_line(f"{text}  {row[-1]}", style)
    flagged = [stats for stats in found if stats.flags]
    for stats in flagged:
        for flag, why in stats.flags.items():
            print_line(f"{stats.bug}: {flag}: {why}", "")
    print_line(
        f"{plural(len(found), 'signature')} over {days:g} days: "
        f"{sum('too_broad' in s.flags for s in found)} too broad, "
        f"{sum('stale' in s.flags for s in found)} stale, "
        f"{sum('overlapping' in s.flags for s in found)} overlapping",
        "bold",
    )
