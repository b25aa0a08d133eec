"""The ``recheck`` command line.

Each subcommand is one small ``_cmd_<name>(args) -> int`` function that turns options
into arguments for library code and prints the result; adding a command means adding
one ``_add_<name>`` parser function and one ``_cmd_<name>`` function. Exit codes: 0 ok,
1 the input was checked and found wanting (``check``), 2 unusable input or usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from recheck import __version__
from recheck.build import BUILD_FIELDS, Build, BuildInfoError
from recheck.buildlogs import build_events, read_build_info
from recheck.eventfile import EventFileError, iter_events
from recheck.localdir import FileSource
from recheck.logfiles import DEFAULT_FILE_RULES, FileRule
from recheck.matcher import match_events
from recheck.models import EVENT_FIELDS
from recheck.pipeline import Classification, classify_build
from recheck.query import lint_query
from recheck.signatures import load_signatures
from recheck.source import FileProblem, LogSource, SourceError
from recheck.sources import open_source

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
    _add_check(commands)
    _add_match(commands)
    _add_events(commands)
    _add_classify(commands)
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


# --- recheck events --------------------------------------------------------------------


def _add_events(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser(
        "events",
        help="split a build's logs into events, printed as JSON lines",
        description=(
            "Split the log files of the build in directory SOURCE into events the way "
            "OpenStack's logstash pipeline did, and print them as JSON lines, the format "
            '`recheck match` reads: {"id": "<filename>:<line>", "message": ..., "tags": '
            "[...], ...}. Build fields come from SOURCE/zuul-info/inventory.yaml when "
            "present, then from the options. Files that cannot be read to the end are "
            "reported on stderr; their events so far are still printed."
        ),
    )
    _add_source_options(events)
    events.set_defaults(run=_cmd_events)


def _cmd_events(args: argparse.Namespace) -> int:
    opened = _open_source(args, "events")
    if opened is None:
        return 2
    source, rules, build = opened
    events = build_events(
        source, build, rules=rules, keep_debug=args.keep_debug,
        on_problem=_warn_problem("events"),
    )  # fmt: skip
    try:
        for event_id, event in events:
            sys.stdout.write(json.dumps({"id": event_id, **event}, ensure_ascii=False))
            sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # `recheck events ... | head` is normal use: stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    return 0


# --- recheck classify ------------------------------------------------------------------


def _add_classify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    classify = commands.add_parser(
        "classify",
        help="which known bugs a build's logs show",
        description=(
            "Split the logs of the build in directory SOURCE into events and match every "
            "signature against them. Prints each bug whose signature matched with the "
            "matching events (file:line and the start of the message); --format json "
            'prints {"build": {...}, "bugs": [...], "matches": [{"bug", "filename", '
            '"line", "message"}, ...], "skipped": {...}, "problems": [...]}. Non-voting '
            "builds are classified only by signatures with allow-nonvoting: true. Exit "
            "status 0 whether or not a bug matched; 2 when SOURCE or DIR is unusable."
        ),
    )
    _add_source_options(classify)
    classify.add_argument(
        "--queries",
        metavar="DIR",
        type=Path,
        default=Path("queries"),
        help="directory of signature files (default: ./queries)",
    )
    classify.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format"
    )
    classify.add_argument(
        "--stats",
        action="store_true",
        help="also tell what the scan did (files read or skipped, bytes, events split)",
    )
    classify.set_defaults(run=_cmd_classify)


def _cmd_classify(args: argparse.Namespace) -> int:
    opened = _open_source(args, "classify")
    if opened is None:
        return 2
    source, rules, options = opened
    try:
        signatures, errors = load_signatures(args.queries)
    except OSError as exc:
        return _usage_error("classify", f"{exc}; pass --queries DIR")
    for error in errors:
        print(f"recheck classify: warning: skipped {error}", file=sys.stderr)
    try:
        result = classify_build(
            source, signatures, options, rules=rules, keep_debug=args.keep_debug
        )
    except (SourceError, BuildInfoError) as exc:
        return _usage_error("classify", str(exc))
    for problem in result.problems:
        _warn_problem("classify")(problem)
    if args.format == "json":
        report = _classification_json(result)
        if args.stats:
            report["stats"] = dataclasses.asdict(result.stats)
        json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        _print_classification(result)
        if args.stats:
            stats = ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in
                              dataclasses.asdict(result.stats).items())  # fmt: skip
            print(f"recheck classify: {stats}", file=sys.stderr)
    return 0


def _classification_json(result: Classification) -> dict[str, object]:
    matches: list[dict[str, object]] = []
    for match in result.matches:
        item: dict[str, object] = {
            "bug": match.bug,
            "filename": match.filename,
            "line": match.line,
            "message": match.message,
        }
        url = result.link(match)
        if url:
            item["url"] = url
        matches.append(item)
    return {
        "build": result.build.event_fields(),
        "bugs": result.bugs,
        "matches": matches,
        "skipped": result.skipped,
        "problems": [str(problem) for problem in result.problems],
    }


def _print_classification(result: Classification) -> None:
    print_line = _line_printer(sys.stdout)
    build = result.build
    details = [value for value in (build.build_short_uuid, build.build_queue) if value]
    details += [value for value in (build.build_status,) if value]
    name = build.build_name or "build"
    print_line(f"{name} ({', '.join(details)})" if details else name, "bold")
    if not result.matches:
        print_line("no known bug matched", "yellow")
    for bug in result.bugs:
        matches = [match for match in result.matches if match.bug == bug]
        print_line(f"bug {bug}: {_plural(len(matches), 'matching event')}", "red")
        for match in matches:
            first_line = match.message.split("\n", 1)[0]
            print_line(f"  {match.filename}:{match.line}: {first_line}", "")
            url = result.link(match)
            if url:
                print_line(f"    {url}", "dim")


# --- build sources (events, classify) --------------------------------------------------


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help=(
            "the build's logs: a log directory, one log file, a log URL (http/https: the "
            "build's log root, listed from its zuul-manifest.json or the server's directory "
            "listing), a Zuul build URL (https://ZUUL/t/TENANT/build/UUID), or a Zuul build's "
            "JSON file saved from Zuul's API. Only hosts in bot.yaml's fetch.allowed_hosts "
            "are fetched from"
        ),
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=(
            "settings file: allowed hosts, timeouts, file rules (default: $RECHECK_CONFIG, "
            "else ./bot.yaml if present, else built-in defaults)"
        ),
    )
    parser.add_argument(
        "--keep-debug",
        action="store_true",
        help="keep DEBUG events (dropped by default; keep_debug: true in bot.yaml does too)",
    )
    group = parser.add_argument_group(
        "build fields", "put on every event; they override zuul-info/inventory.yaml"
    )
    for name in BUILD_FIELDS:
        if name == "build_short_uuid":
            continue  # derived from --build-uuid
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="TEXT")


def _open_source(
    args: argparse.Namespace, command: str
) -> tuple[LogSource, tuple[FileRule, ...], Build] | None:
    """The source SOURCE names, the file rules for it, and the build's fields.

    Loads the config (``--config``) too: its ``keep_debug`` sets ``args.keep_debug``.
    """
    from recheck.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _usage_error(command, str(exc))
        return None
    for warning in config.warnings:
        print(f"recheck {command}: warning: {warning}", file=sys.stderr)
    args.keep_debug = args.keep_debug or config.keep_debug
    try:
        source = open_source(args.source, config)
    except SourceError as exc:
        _usage_error(command, str(exc))
        return None
    rules = config.files if config.files is not None else DEFAULT_FILE_RULES
    if isinstance(source, FileSource):
        rules = source.rules(rules)
    values: dict[str, str | None] = {name: getattr(args, name, None) for name in BUILD_FIELDS}
    if values["voting"] is not None:
        values["voting"] = _voting_text(values["voting"])
    try:
        return source, rules, read_build_info(source, Build().updated(values))
    except (SourceError, BuildInfoError) as exc:
        _usage_error(command, str(exc))
        return None


def _voting_text(value: str) -> str:
    # Logstash indexed voting as 1/0 (signatures write voting:1); accept the usual spellings.
    return "0" if value.strip().lower() in ("0", "false", "no", "off") else "1"


def _warn_problem(command: str) -> Callable[[FileProblem], None]:
    def warn(problem: FileProblem) -> None:
        print(f"recheck {command}: warning: {problem}", file=sys.stderr)

    return warn


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
