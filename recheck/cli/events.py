"""``recheck events``: a build's logs split into events, printed as JSON lines.

Shows what the signatures would be matched against, in the format ``recheck match``
reads.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

from recheck.cli.common import Commands, add_jobs_option
from recheck.cli.sources import add_source_options, build_error, open_source, warn_problem
from recheck.logs.build import Build
from recheck.logs.buildlogs import EventBlock, build_event_blocks
from recheck.logs.logfiles import FileRule
from recheck.logs.source import LogSource, SourceError

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    """Register ``recheck events``."""
    events = commands.add_parser(
        "events",
        help="split a build's logs into events, printed as JSON lines",
        description=(
            "Split the log files of the build in directory SOURCE into events the way "
            "OpenStack's logstash pipeline did, and print them as JSON lines, the format "
            '`recheck match` reads: {"id": "<filename>:<line>", "message": ..., "tags": '
            "[...], ...}. Build fields come from SOURCE/zuul-info/inventory.yaml when "
            "present, then from the options. Files that cannot be read to the end are "
            "reported on stderr; their events so far are still printed. A build with no "
            "file recheck reads is an error (exit status 1)."
        ),
    )
    add_source_options(events)
    add_jobs_option(events, "split up to N blocks of a local build's files at once")
    events.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    opened = open_source(args, "events")
    if opened is None:
        return 2
    source, rules, build = opened
    # Each block's events are many long-lived containers that would set off the cyclic
    # collector again and again (a fifth of the CPU with -j 1, none of it finding
    # anything: events hold no cycles). Forked workers inherit this.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _print_events(args, source, rules, build)
    finally:
        if collecting:
            gc.enable()


def _print_events(
    args: argparse.Namespace, source: LogSource, rules: tuple[FileRule, ...], build: Build
) -> int:
    with source:  # a fetched build holds HTTP connections
        try:
            # Each block's lines are made where it is split (a worker, with -j).
            blocks = build_event_blocks(
                source,
                build,
                _json_lines,
                rules=rules,
                keep_debug=args.keep_debug,
                on_problem=warn_problem("events"),
                workers=args.jobs,
            )
        except SourceError as exc:
            return build_error("events", exc)
        try:
            for text in blocks:
                sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            # `recheck events ... | head` is normal use: stop quietly, and keep Python from
            # complaining again when it flushes stdout at exit.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    return 0


_ENCODER = json.JSONEncoder(ensure_ascii=False)
_SEPARATOR = "\x00"
"""Between the items of ``_BLOCK_ENCODER``'s lists and objects: never in its output
otherwise (JSON strings escape control characters), so it can be found, and replaced."""
_BLOCK_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(_SEPARATOR, ": "))


def _json_lines(block: EventBlock) -> str:
    """The block's events as JSON lines: ``{"id": ..., **event}`` of ``block.events()``."""
    lines = _lines_at_once(block)
    if lines is not None:
        return lines
    return "".join(
        f"{_ENCODER.encode({'id': event_id, **event})}\n" for event_id, event in block.events()
    )


def _lines_at_once(block: EventBlock) -> str | None:
    """The same lines, the block's events encoded by one call of the C encoder, and the
    id before each and the fields ``events()`` adds after each (the same for all of them)
    written around them. None where that would not give the same text: an event with a
    key that ``events()`` overwrites in place, an empty event, or a value holding objects."""
    if not block.split:
        return ""
    added = {"filename": block.filename, **block.fields}
    if "id" in added:  # the merged event's "id" replaces the line's id in place
        return None
    encoded = _BLOCK_ENCODER.encode([event for _, event in block.split])
    # A key in the text is its encoding followed by ": " (a string's own quotes are escaped).
    if any(f"{_BLOCK_ENCODER.encode(key)}: " in encoded for key in ("id", *added)):
        return None
    bodies = encoded[2:-2].split(f"}}{_SEPARATOR}{{")  # each event's items, without braces
    if len(bodies) != len(block.split) or "" in bodies:
        return None
    head = "{" + f'"id": {_ENCODER.encode(block.filename + ":")[:-1]}'
    tail = "".join(
        f", {_ENCODER.encode(key)}: {_ENCODER.encode(value)}" for key, value in added.items()
    )
    lines = "".join(
        f'{head}{number}", {body}{tail}}}\n'
        for (number, _), body in zip(block.split, bodies, strict=True)
    )
    return lines.replace(_SEPARATOR, ", ")
