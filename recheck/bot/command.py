"""``recheck bot``: its options and its entry point (cli.py only registers it)."""

from __future__ import annotations

import argparse
import sys

from recheck.cli_types import Commands


def add_parser(commands: Commands) -> None:
    """Register ``recheck bot``."""
    bot = commands.add_parser(
        "bot",
        help="run the bot: failed builds in, Gerrit comments and IRC messages out",
        description="Run the bot (not yet written).",
    )
    bot.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the bot with the parsed options; returns the exit code."""
    print("recheck bot: not written yet", file=sys.stderr)
    return 2
