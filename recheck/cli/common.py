"""What several ``recheck`` commands share: options, settings, the store, output.

The option helpers (``--config``, ``--queries``, ``--store``), the loaders that report
their own usage errors (``load_config``, ``open_store``, ``on_store``...), option value
types, and the printing helpers. Command modules import from here, never from
``cli/main.py``, which only assembles them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeAlias, TypeVar

from recheck.config.files import Config, ConfigError
from recheck.config.files import load_config as load_config_file
from recheck.query.signatures import load_signatures

if TYPE_CHECKING:
    from recheck.query.signatures import Signature
    from recheck.store import Store

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``add_subparsers()`` returns: command modules register their parsers on it."""

Command: TypeAlias = Callable[[argparse.Namespace], int]
"""A command's handler (``set_defaults(run=...)``): parsed options in, exit code out."""

_T = TypeVar("_T")


# --- settings (--config) ---------------------------------------------------------------


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=(
            "settings file: allowed hosts, timeouts, file rules, store (default: "
            "$RECHECK_CONFIG, else ./bot.yaml if present, else built-in defaults)"
        ),
    )


def load_config(args: argparse.Namespace, command: str) -> Config | None:
    """The settings ``--config`` (or the default place) holds; None after a usage error."""
    try:
        config = load_config_file(args.config)
    except ConfigError as exc:
        usage_error(command, str(exc))
        return None
    for warning in config.warnings:
        print(f"recheck {command}: warning: {warning}", file=sys.stderr)
    return config


# --- the store (--store) ---------------------------------------------------------------


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="PATH",
        type=Path,
        help=(
            "the store directory (default: bot.yaml's store.path, else $RECHECK_HOME, "
            "else ./.recheck)"
        ),
    )


def on_store(
    args: argparse.Namespace, command: str, work: Callable[[Store, Config], _T]
) -> _T | None:
    """``work`` done on the store the options and bot.yaml name, then closed; None after
    an error was reported (unusable config or store, or the store failing)."""
    from recheck.store import StoreError

    config = load_config(args, command)
    if config is None:
        return None
    store = open_store(args, config, command, create=False)
    if store is None:
        return None
    with store:
        try:
            return work(store, config)
        except StoreError as exc:
            usage_error(command, str(exc))
            return None


def open_store(
    args: argparse.Namespace,
    config: Config,
    command: str,
    *,
    auto_gc: bool = False,
    create: bool = True,
) -> Store | None:
    """The store ``--store``, bot.yaml or the environment names; None after an error.
    Only commands that write builds (``create``) make a new store."""
    from recheck.store import Retention, StoreError
    from recheck.store import open_store as open_store_at

    retention = Retention(config.store.event_days, config.store.build_days)
    try:
        return open_store_at(
            args.store or config.store.path,
            retention=retention,
            auto_gc=auto_gc,
            config=config,
            create=create,
        )
    except StoreError as exc:
        usage_error(command, f"cannot use the store: {exc}")
        return None


# --- signatures (--queries) -----------------------------------------------------------


def add_queries_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queries",
        metavar="DIR",
        type=Path,
        default=Path("queries"),
        help="directory of signature files (default: ./queries)",
    )


def load_signatures_or_warn(directory: Path, command: str) -> list[Signature] | None:
    """The usable signatures of ``directory``, warning about the others; None if unusable."""
    try:
        signatures, errors = load_signatures(directory)
    except OSError as exc:
        usage_error(command, f"{exc}; pass --queries DIR")
        return None
    for error in errors:
        print(f"recheck {command}: warning: skipped {error}", file=sys.stderr)
    return signatures


def add_jobs_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--jobs/-j N``: processes at once, default the CPUs; ``what`` says of what."""
    parser.add_argument(
        "--jobs",
        "-j",
        metavar="N",
        type=positive_int,
        default=os.cpu_count() or 1,
        help=f"{what} (default: %(default)s, the CPUs)",
    )


# --- option values ---------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def moment(text: str) -> datetime:
    """``1d`` (that long ago), ``12h``, ``30m``, ``2w``, or an ISO date or time (UTC)."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found:
        seconds = float(found[1]) * _UNIT_SECONDS[found[2]]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30m, 12h, 1d, 2w) nor a date (2024-05-01)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


# --- output ----------------------------------------------------------------------------


def print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def usage_error(command: str, message: str) -> int:
    print(f"recheck {command}: error: {message}", file=sys.stderr)
    return 2


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {nouns or noun + 's'}"


def line_printer(stream: IO[str]) -> Callable[[str, str], None]:
    """Print lines in colour on a terminal and as plain text anywhere else.

    Scripts and tests parse the plain form, so colour is decided here once, from the
    stream itself, never from environment variables such as FORCE_COLOR.
    """
    if not stream.isatty():
        return lambda text, style: print(text, file=stream)
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False, soft_wrap=True, force_terminal=True)
    return lambda text, style: console.print(Text(text, style=style))
