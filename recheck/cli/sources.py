"""The build a command reads: SOURCE, the build field options, and opening its logs.

Shared by ``events``, ``classify`` and ``ingest``: turns SOURCE (a directory, file, URL
or Zuul build) and ``--build-name``... into a log source, its file rules and the build's
fields, reporting unusable input as a usage error, a build without log files as an error
(exit status 1), and the files of a build it does not read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from recheck.cli.common import add_config_option, load_config, plural, usage_error
from recheck.config.files import Config
from recheck.logs.build import BUILD_FIELDS, Build, BuildInfoError
from recheck.logs.buildlogs import NoLogFilesError, read_build_info, unread_files
from recheck.logs.localdir import FileSource
from recheck.logs.logfiles import FileRule, rules_in_force
from recheck.logs.source import FileProblem, LogSource, SourceError
from recheck.logs.sources import open_source as open_log_source

SOURCE_HELP = (
    "a log directory, one log file, a log URL (http/https: the build's log root, listed "
    "from its zuul-manifest.json or the server's directory listing), a Zuul build URL "
    "(https://ZUUL/t/TENANT/build/UUID), or a Zuul build's JSON file saved from Zuul's "
    "API. Only hosts in bot.yaml's fetch.allowed_hosts are fetched from"
)


def add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help=f"the build's logs: {SOURCE_HELP}")
    add_build_options(parser)


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """--config, --keep-debug and the build field options."""
    add_config_option(parser)
    parser.add_argument(
        "--keep-debug",
        action="store_true",
        help="keep DEBUG events (dropped by default; keep_debug: true in bot.yaml does too)",
    )
    group = parser.add_argument_group(
        "build fields",
        "put on every event; they override what Zuul's API said, which overrides "
        "zuul-info/inventory.yaml",
    )
    for name in BUILD_FIELDS:
        if name == "build_short_uuid":
            continue  # derived from --build-uuid
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="TEXT")


def open_source(
    args: argparse.Namespace, command: str
) -> tuple[LogSource, tuple[FileRule, ...], Build] | None:
    """The source SOURCE names (the caller closes it), its file rules, the build's fields.

    Loads the config (``--config``) too: its ``keep_debug`` sets ``args.keep_debug``.
    """
    config = load_config(args, command)
    if config is None:
        return None
    args.keep_debug = args.keep_debug or config.keep_debug
    try:
        opened = read_source(args.source, config, build_options(args))
        try:
            note = unread_note(opened[0], opened[1])
        except BaseException:
            opened[0].close()
            raise
    except (SourceError, BuildInfoError) as exc:
        usage_error(command, str(exc))
        return None
    if note:
        print(f"recheck {command}: {note}", file=sys.stderr)
    return opened


def unread_note(source: LogSource, rules: tuple[FileRule, ...]) -> str | None:
    """A line naming the build's files that are not read, when it has some and some it
    reads (a build with none to read is an error, that names them)."""
    unread = unread_files(source, rules)
    if not unread or len(unread) == len(source.paths()):
        return None
    shown = ", ".join(unread[:UNREAD_SHOWN])
    more = f" and {len(unread) - UNREAD_SHOWN:,} more" if len(unread) > UNREAD_SHOWN else ""
    return (
        f"skipped {plural(len(unread), 'file')} whose names are not in the file rules: "
        f"{shown}{more}"
    )


UNREAD_SHOWN = 5
"""Unread files named on stderr; the rest are counted."""


def build_error(command: str, exc: SourceError | BuildInfoError) -> int:
    """Report a build that cannot be read: exit status 1 when it has no log files (the
    input was fine, the build has nothing to read), else 2 as any unusable input."""
    if isinstance(exc, NoLogFilesError):
        print(f"recheck {command}: error: {exc}", file=sys.stderr)
        return 1
    return usage_error(command, str(exc))


def read_source(
    text: str, config: Config, options: Build
) -> tuple[LogSource, tuple[FileRule, ...], Build]:
    """The source ``text`` names, its file rules and its build's fields (``options`` win).

    Raises SourceError or BuildInfoError when the build cannot be read (the source is
    closed then); else the caller closes the source.
    """
    source = open_log_source(text, config)
    try:
        return source, _file_rules(source, config), read_build_info(source, options)
    except BaseException:
        source.close()
        raise


def _file_rules(source: LogSource, config: Config) -> tuple[FileRule, ...]:
    rules = rules_in_force(config.files)
    return source.rules(rules) if isinstance(source, FileSource) else rules


def build_options(args: argparse.Namespace) -> Build:
    """The build fields given as options (``--build-name``...)."""
    values: dict[str, str | None] = {name: getattr(args, name, None) for name in BUILD_FIELDS}
    if values["voting"] is not None:
        values["voting"] = _voting_text(values["voting"])
    return Build().updated(values)


def _voting_text(value: str) -> str:
    # Logstash indexed voting as 1/0 (signatures write voting:1); accept the usual spellings.
    return "0" if value.strip().lower() in ("0", "false", "no", "off") else "1"


def warn_problem(command: str) -> Callable[[FileProblem], None]:
    def warn(problem: FileProblem) -> None:
        print(f"recheck {command}: warning: {problem}", file=sys.stderr)

    return warn
