"""The ``recheck`` command line: the parser built from the command modules, and dispatch.

Each command lives in its own module of ``recheck.cli`` with ``add_parser(commands)``,
which registers its subparser(s) with a handler (``set_defaults(run=...)``); shared
options and helpers are in ``cli/common.py``. Exit codes: 0 ok, 1 the input was checked
and found wanting (``check``) or some builds failed (``ingest``), 2 unusable input or usage.
The store (tantivy), httpx and rich are imported only when a command that needs them runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from recheck import __version__
from recheck.cli import (
    bot,
    check,
    classify,
    diff,
    draft,
    events,
    history,
    ingest,
    match,
    query,
    serve,
    stats,
    tests,
)
from recheck.cli.common import Command, Commands

__all__ = ["main"]

_ADD_PARSERS: tuple[Callable[[Commands], None], ...] = (
    check.add_parser,
    match.add_parser,
    events.add_parser,
    classify.add_parser,
    ingest.add_parser,
    query.add_parser,
    stats.add_parser,
    diff.add_parser,
    tests.add_parser,
    draft.add_parser,  # draft, clusters
    history.add_parser,  # gc, reclassify
    bot.add_parser,
    serve.add_parser,  # report, serve
)
"""In the order ``recheck --help`` lists the commands."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recheck command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors; return, don't exit
        return exc.code if isinstance(exc.code, int) else 2
    command: Command | None = getattr(args, "run", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return command(args)
    except BrokenPipeError:
        # The reader went away (`recheck match ... | head`): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recheck",
        description=(
            "Classify CI failures with known-bug signatures: Lucene query_string queries "
            "(queries/<bug>.yaml) matched against log events exactly as Elasticsearch would."
        ),
    )
    parser.add_argument("--version", action="version", version=f"recheck {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add_parser in _ADD_PARSERS:
        add_parser(commands)
    return parser
