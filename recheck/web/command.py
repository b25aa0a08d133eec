"""``recheck report`` and ``recheck serve``: their options and entry points."""

from __future__ import annotations

import argparse
import sys

from recheck.cli_types import Commands


def add_parsers(commands: Commands) -> None:
    """Register ``recheck report`` and ``recheck serve``."""
    report = commands.add_parser(
        "report", help="write the pages as static files", description="(not yet written)"
    )
    report.set_defaults(run=run_report)
    serve = commands.add_parser(
        "serve", help="serve the pages live from the store", description="(not yet written)"
    )
    serve.set_defaults(run=run_serve)


def run_report(args: argparse.Namespace) -> int:
    """Write the static pages; returns the exit code."""
    print("recheck report: not written yet", file=sys.stderr)
    return 2


def run_serve(args: argparse.Namespace) -> int:
    """Serve the pages; returns the exit code."""
    print("recheck serve: not written yet", file=sys.stderr)
    return 2
