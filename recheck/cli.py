"""The ``recheck`` command line.

Each subcommand is one small ``_cmd_<name>(args) -> int`` function that turns options
into arguments for library code and prints the result; adding a command means adding
one ``_add_<name>`` parser function and one ``_cmd_<name>`` function. Exit codes: 0 ok,
1 the input was checked and found wanting (``check``), 2 unusable input or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from recheck import __version__
from recheck.eventfile import EventFileError, iter_events
from recheck.matcher import match_events
from recheck.models import EVENT_FIELDS
from recheck.query import lint_query
from recheck.signatures import load_signatures

__all__ = ["main"]

_Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recheck command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors; return, don't exit
        return exc.code if isinstance(exc.code, int) else 2
    command: _Command | None = getattr(args, "run", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    return command(args)


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
    _add_check(commands)
    _add_match(commands)
    return parser


# --- recheck check ---------------------------------------------------------------------


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check",
        help="validate signature files",
        description=(
            "Load and compile every *.yaml signature in DIR. Errors (bad YAML, unknown keys, "
            "wrong types, queries Lucene would reject) print as 'file:line:col: error: ...' "
            "and make the exit status 1. Warnings about queries that are valid but probably "
            "not what the author meant (unquoted multi-token terms, leading wildcards, "
            "unknown fields, regexes, no positive clause) print as 'file:line: warning: ...' "
            "and only fail with --strict."
        ),
    )
    check.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        default="queries",
        type=Path,
        help="directory of signature files (default: ./queries)",
    )
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    check.add_argument(
        "--known-fields",
        metavar="A,B,C",
        type=_field_list,
        default=EVENT_FIELDS,
        help=(
            "comma-separated field names a query may use without a warning "
            f"(default: the logstash event fields: {', '.join(EVENT_FIELDS)})"
        ),
    )
    check.set_defaults(run=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        signatures, errors = load_signatures(args.directory)
    except OSError as exc:
        return _usage_error("check", f"{exc}; pass the directory holding the *.yaml files")
    # (path, text, style) so that errors and warnings of one file print together.
    findings: list[tuple[str, str, str]] = []
    for error in errors:
        where = f"{error.path}:{error.line}:{error.column}"
        findings.append((str(error.path), f"{where}: error: {error.message}", "red"))
    for signature in signatures:
        for warning in lint_query(signature.query, known_fields=args.known_fields):
            text = f"{signature.path}:{signature.line}: warning: {warning}"
            findings.append((str(signature.path), text, "yellow"))
    total = len(signatures) + len(errors)
    if total == 0:
        text = f"{args.directory}: warning: no *.yaml signature files found"
        findings.append((str(args.directory), text, "yellow"))
    findings.sort(key=lambda finding: finding[0])  # stable: a file's errors stay in order
    warnings = len(findings) - len(errors)

    print_line = _line_printer(sys.stdout)
    for _, text, style in findings:
        print_line(text, style)
    print_line(
        f"{_plural(total, 'signature')}, {_plural(len(errors), 'error')}, "
        f"{_plural(warnings, 'warning')}",
        "bold",
    )
    return 1 if errors or (args.strict and warnings) else 0


def _field_list(text: str) -> tuple[str, ...]:
    fields = tuple(name.strip() for name in text.split(",") if name.strip())
    if not fields:
        raise argparse.ArgumentTypeError("give at least one field name, e.g. message,tags")
    return fields


# --- recheck match ---------------------------------------------------------------------


def _add_match(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    match.add_argument(
        "--queries",
        metavar="DIR",
        type=Path,
        default=Path("queries"),
        help="directory of signature files (default: ./queries)",
    )
    match.set_defaults(run=_cmd_match)


def _cmd_match(args: argparse.Namespace) -> int:
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
                return _usage_error("match", f"cannot read events file {source}: {exc.strerror}")
        try:
            signatures, errors = load_signatures(args.queries)
        except OSError as exc:
            return _usage_error("match", f"{exc}; pass --queries DIR")
        try:
            matches = match_events(signatures, iter_events(lines, source))
        except EventFileError as exc:
            return _usage_error("match", str(exc))
        except OSError as exc:
            return _usage_error("match", f"cannot read events file {source}: {exc.strerror}")
    result = {
        "matches": matches,
        "errors": {error.path.stem: str(error) for error in errors},
    }
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


# --- output helpers --------------------------------------------------------------------


def _usage_error(command: str, message: str) -> int:
    print(f"recheck {command}: error: {message}", file=sys.stderr)
    return 2


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _line_printer(stream: IO[str]) -> Callable[[str, str], None]:
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
