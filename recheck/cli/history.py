"""``recheck gc`` and ``recheck reclassify``: upkeep of the stored history.

``gc`` applies retention now; ``reclassify`` re-runs new or changed signatures over the
stored events so their past hits show. Both work on the store only, never on logs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from recheck.cli.common import (
    Commands,
    add_config_option,
    add_queries_option,
    add_store_option,
    load_signatures_or_warn,
    moment,
    on_store,
    plural,
    positive_float,
)
from recheck.config.files import Config

if TYPE_CHECKING:
    from recheck.store import GcCounts, ReclassifyCounts, Store

__all__ = ["add_parser", "run_gc", "run_reclassify"]


def add_parser(commands: Commands) -> None:
    """Register ``recheck gc`` and ``recheck reclassify``."""
    _add_gc(commands)
    _add_reclassify(commands)


def _add_gc(commands: Commands) -> None:
    gc = commands.add_parser(
        "gc",
        help="drop old events, builds and matches from the store",
        description=(
            "Apply retention now (ingest also does, at most hourly): drop the events of builds "
            "older than --event-days, and builds with their matches older than --build-days. "
            "Prints what was dropped."
        ),
    )
    gc.add_argument(
        "--event-days",
        type=positive_float,
        metavar="DAYS",
        help="keep events this many days (default: bot.yaml's store.event_days, else 10)",
    )
    gc.add_argument(
        "--build-days",
        type=positive_float,
        metavar="DAYS",
        help="keep builds and matches this many days (default: store.build_days, else 90)",
    )
    add_store_option(gc)
    add_config_option(gc)
    gc.set_defaults(run=run_gc)


def run_gc(args: argparse.Namespace) -> int:
    def collect(store: Store, config: Config) -> tuple[float, float, GcCounts]:
        event_days = args.event_days or config.store.event_days
        build_days = args.build_days or config.store.build_days
        return event_days, build_days, store.gc(event_days=event_days, build_days=build_days)

    done = on_store(args, "gc", collect)
    if done is None:
        return 2
    event_days, build_days, dropped = done
    print(f"events older than {event_days:g} days: {dropped.events:,} dropped")
    print(f"test results older than {event_days:g} days: {plural(dropped.tests, 'build')} dropped")
    print(
        f"builds older than {build_days:g} days: {dropped.builds:,} dropped, "
        f"with {plural(dropped.matches, 'match', 'matches')}"
    )
    return 0


# --- recheck reclassify ----------------------------------------------------------------


def _add_reclassify(commands: Commands) -> None:
    reclassify = commands.add_parser(
        "reclassify",
        help="re-run new or changed signatures over the stored history",
        description=(
            "Re-run the signatures added or changed since the last reclassify (all of them "
            "with --all) over the stored events and replace their matches, so a new bug's "
            "past hits show at once. Builds whose events retention dropped keep their "
            "matches. Prints how many signatures, builds and matches."
        ),
    )
    add_queries_option(reclassify)
    reclassify.add_argument(
        "--since",
        metavar="WHEN",
        type=moment,
        help="only builds since then: 12h, 7d, 2w or a date (default: all stored events)",
    )
    reclassify.add_argument(
        "--all", action="store_true", help="re-run every signature, changed or not"
    )
    add_store_option(reclassify)
    add_config_option(reclassify)
    reclassify.set_defaults(run=run_reclassify)


_SHOWN_BUGS = 10
"""Bug ids ``reclassify`` names; a longer list (the first run: all of them) is counted."""


def run_reclassify(args: argparse.Namespace) -> int:
    signatures = load_signatures_or_warn(args.queries, "reclassify")
    if signatures is None:
        return 2

    def rerun(store: Store, config: Config) -> ReclassifyCounts:
        return store.reclassify(signatures, args.since, only_changed=not args.all)

    counts = on_store(args, "reclassify", rerun)
    if counts is None:
        return 2
    if not counts.signatures:
        print("no new or changed signatures; nothing re-run (--all re-runs every one)")
        return 0
    print(
        f"re-ran {plural(len(counts.signatures), 'signature')} over "
        f"{plural(counts.builds, 'stored build')}: "
        f"{counts.matches:,} matching events"
    )
    shown = " ".join(counts.signatures[:_SHOWN_BUGS])
    more = len(counts.signatures) - _SHOWN_BUGS
    print(f"signatures: {shown}" + (f" and {more} more" if more > 0 else ""))
    return 0
