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
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import cast

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
_STRING: Callable[[str], str] = encode_basestring
"""A string as ``_ENCODER`` writes it, value or key (the same C function)."""


def _json_lines(block: EventBlock) -> str:
    """The block's events as JSON lines: ``{"id": ..., **event}`` of ``block.events()``."""
    lines = _lines_by_template(block)
    if lines is not None:
        return lines
    return "".join(
        f"{_ENCODER.encode({'id': event_id, **event})}\n" for event_id, event in block.events()
    )


def _lines_by_template(block: EventBlock) -> str | None:
    """The same lines, each written from a template made once per set of event keys (a
    file's events have few): the id's file name and the fields ``events()`` adds after
    the event's own (the file name, the build's) are the same for all of them, and so
    is the tags list of nearly all (encoded once). None if an event has a key that
    ``events()`` overwrites in place (its key order would differ), or a build field
    named ``id``."""
    added = {"filename": block.filename, **block.fields}
    if "id" in added:  # it would replace the id
        return None
    head = "{" + f'"id": {_STRING(block.filename + ":")[:-1]}'.replace("%", "%%") + '%s"'
    tail = "".join(f", {_STRING(key)}: {_ENCODER.encode(value)}" for key, value in added.items())
    tail = tail.replace("%", "%%") + "}\n"
    templates: dict[tuple[str, ...], str] = {}
    lines: list[str] = []
    append = lines.append
    string = _STRING
    same: object = None  # the last list of strings encoded, and its text
    same_text = ""
    for number, event in block.split:
        keys = tuple(event)
        template = templates.get(keys)
        if template is None:
            if "id" in keys or any(key in added for key in keys):
                return None
            own = "".join(f", {_STRING(key)}".replace("%", "%%") + ": %s" for key in keys)
            template = templates[keys] = head + own + tail
        values: list[str] = []
        for value in event.values():
            if value.__class__ is str:
                values.append(string(value))
            elif value.__class__ is list and value == same:
                values.append(same_text)
            else:
                text = _ENCODER.encode(value)
                if value.__class__ is list and all(
                    item.__class__ is str for item in cast(list[object], value)
                ):
                    same, same_text = value, text  # equal to it: a list of equal strings
                values.append(text)
        append(template % (number, *values))
    return "".join(lines)
