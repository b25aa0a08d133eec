"""``recheck match``: every signature against the events of a JSON-lines file.

The tool-neutral form of matching: events in (as ``recheck events`` prints them), one
JSON object of matches and signature errors out.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import IO

from recheck.cli.common import Commands, add_queries_option, print_json, usage_error
from recheck.logs.eventfile import EventFileError, iter_events
from recheck.query.matcher import match_events
from recheck.query.signatures import load_signatures

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    """Register ``recheck match``."""
    match = commands.add_parser(
        "match",
        help="match every signature against events from a JSON-lines file",
        description=(
            "Evaluate every signature's query, as written, against every event. EVENTS is "
            'a file of JSON lines, one event per line: {"id": "...", "<field>": "text" or '
            '["text", ...], ...}; numbers and booleans are read as text, "id" is not a '
            "searchable field. Prints one JSON object: "
            '{"matches": {"<bug>": ["<event id>", ...]}, "errors": {"<bug>": "<message>"}} '
            "where every signature file appears in exactly one of the two maps. Exit status "
            "0 even when some signatures have errors; 2 when EVENTS or DIR is unusable."
        ),
    )
    match.add_argument("events", metavar="EVENTS", help="JSON-lines events file, or - for stdin")
    add_queries_option(match)
    match.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        if args.events == "-":
            source = "<stdin>"
            # Binary, so a bad byte is reported with its line number.
            lines: IO[bytes] | IO[str] = getattr(sys.stdin, "buffer", sys.stdin)
        else:
            source = args.events
            try:
                lines = stack.enter_context(open(args.events, "rb"))
            except OSError as exc:
                return usage_error("match", f"cannot read events file {source}: {exc.strerror}")
        try:
            signatures, errors = load_signatures(args.queries)
        except OSError as exc:
            return usage_error("match", f"{exc}; pass --queries DIR")
        try:
            matches = match_events(signatures, iter_events(lines, source))
        except EventFileError as exc:
            return usage_error("match", str(exc))
        except OSError as exc:
            return usage_error("match", f"cannot read events file {source}: {exc.strerror}")
    result = {
        "matches": matches,
        "errors": {error.path.stem: str(error) for error in errors},
    }
    print_json(result)
    return 0
