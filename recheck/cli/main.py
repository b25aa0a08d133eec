"""The ``recheck`` command line.

Each subcommand is one small ``_cmd_<name>(args) -> int`` function that turns options
into arguments for library code and prints the result; adding a command means adding
one ``_add_<name>`` parser function and one ``_cmd_<name>`` function. Exit codes: 0 ok,
1 the input was checked and found wanting (``check``) or some builds failed (``ingest``),
2 unusable input or usage.

The history commands (``ingest``, ``query``, ``gc``, ``reclassify``) use the store
(``recheck.store``), imported only when one of them runs: it loads tantivy.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from recheck import __version__
from recheck.config.files import Config, ConfigError, load_config
from recheck.logs.build import BUILD_FIELDS, Build, BuildInfoError
from recheck.logs.buildlogs import build_events, read_build_info
from recheck.logs.eventfile import EventFileError, iter_events
from recheck.logs.localdir import FileSource
from recheck.logs.logfiles import FileRule
from recheck.logs.source import FileProblem, LogSource, SourceError
from recheck.logs.sources import open_source
from recheck.models import EVENT_FIELDS, Signature
from recheck.pipeline import Classification, classify_build, ingest_build
from recheck.query.engine import Query, QuerySyntaxError, compile_query, lint_query
from recheck.query.matcher import match_events
from recheck.query.signatures import SignatureError, load_signature, load_signatures

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from recheck.logs.fetch import Fetcher
    from recheck.store import GcCounts, ReclassifyCounts, Store
    from recheck.store.stats import QueryStats

__all__ = ["main"]

_Command = Callable[[argparse.Namespace], int]
_T = TypeVar("_T")


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
    _add_ingest(commands)
    _add_query(commands)
    _add_gc(commands)
    _add_reclassify(commands)
    # The bot and the pages keep their options beside their code; imported here, not at
    # the top, because they import this module's helpers.
    from recheck.cli.bot import add_parser as add_bot
    from recheck.cli.serve import add_parsers as add_pages

    add_bot(commands)
    add_pages(commands)
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
    _add_queries_option(match)
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
    _print_json(result)
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
        source,
        build,
        rules=rules,
        keep_debug=args.keep_debug,
        on_problem=_warn_problem("events"),
    )
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
    classify.add_argument(
        "source",
        metavar="SOURCE",
        nargs="?",
        help=f"the build's logs: {_SOURCE_HELP}. Not with --stored",
    )
    _add_build_options(classify)
    classify.add_argument(
        "--stored",
        metavar="UUID",
        help=(
            "classify the build UUID from the events the store already holds (ingested "
            "by recheck, or indexed by logstash in a cluster store) instead of reading "
            "its logs; a cluster does it in one round trip"
        ),
    )
    _add_store_option(classify)
    _add_queries_option(classify)
    classify.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format"
    )
    classify.add_argument(
        "--stats",
        action="store_true",
        help="also tell what the scan did (files read or skipped, bytes, events split)",
    )
    classify.add_argument(
        "--jobs",
        "-j",
        metavar="N",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="scan up to N files of a local build at once (default: %(default)s, the CPUs)",
    )
    classify.set_defaults(run=_cmd_classify)


def _cmd_classify(args: argparse.Namespace) -> int:
    if (args.source is None) == (args.stored is None):
        return _usage_error("classify", "give either SOURCE (the build's logs) or --stored UUID")
    if args.stored is not None:
        return _classify_stored(args)
    opened = _open_source(args, "classify")
    if opened is None:
        return 2
    source, rules, options = opened
    signatures = _load_signatures_or_warn(args.queries, "classify")
    if signatures is None:
        return 2
    try:
        result = classify_build(
            source,
            signatures,
            options,
            rules=rules,
            keep_debug=args.keep_debug,
            workers=args.jobs,
        )
    except (SourceError, BuildInfoError) as exc:
        return _usage_error("classify", str(exc))
    for problem in result.problems:
        _warn_problem("classify")(problem)
    if args.format == "json":
        report = _classification_json(result)
        if args.stats:
            report["stats"] = dataclasses.asdict(result.stats)
        _print_json(report)
    else:
        _print_classification(result)
        if args.stats:
            stats = ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in
                              dataclasses.asdict(result.stats).items())  # fmt: skip
            print(f"recheck classify: {stats}", file=sys.stderr)
    return 0


def _classify_stored(args: argparse.Namespace) -> int:
    """``recheck classify --stored UUID``: from the store's events, not the logs."""
    signatures = _load_signatures_or_warn(args.queries, "classify")
    if signatures is None:
        return 2
    build = _build_options(args).updated({"build_uuid": args.stored})
    found = _on_store(args, "classify", lambda store, _: store.classify(build, signatures))
    if found is None:
        return 2
    result = Classification(found.build, found.matches, found.skipped)
    result.problems = [
        FileProblem(f"signature {bug}", f"not evaluated: {why}")
        for bug, why in found.errors.items()
    ]
    for problem in result.problems:
        _warn_problem("classify")(problem)
    if args.format == "json":
        _print_json(_classification_json(result))
    else:
        _print_classification(result)
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


# --- recheck ingest --------------------------------------------------------------------


def _add_ingest(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = commands.add_parser(
        "ingest",
        help="store builds' events and matches in the history store",
        description=(
            "For each SOURCE (and each build a Zuul API query lists), fetch the logs, split "
            "them into events (every event, successful builds too: they measure false "
            "positives), classify them against the signatures and store the build with its "
            "events and matches, one build at a time. A failing build is reported and the "
            "others go on. Builds already stored (by build uuid) are skipped unless "
            "--force. Retention runs after ingesting. Exit status 0 when every build was "
            "stored or skipped, 1 when some failed, 2 when nothing could be tried."
        ),
    )
    ingest.add_argument("sources", metavar="SOURCE", nargs="*", help=_SOURCE_HELP)
    _add_queries_option(ingest)
    ingest.add_argument(
        "--force", action="store_true", help="ingest builds again that are already stored"
    )
    _add_store_option(ingest)
    zuul = ingest.add_argument_group(
        "Zuul API query",
        "ingest the builds Zuul's API lists (/api/tenant/T/builds) for the tenant --tenant T "
        "names (a build field option, so the builds get it too)",
    )
    zuul.add_argument(
        "--zuul", metavar="URL", help="the Zuul web URL, e.g. https://zuul.opendev.org"
    )
    zuul.add_argument("--pipeline", metavar="NAME", help="only builds of this pipeline (e.g. gate)")
    zuul.add_argument(
        "--result", metavar="RESULT", help="only builds with this result (e.g. FAILURE)"
    )
    zuul.add_argument(
        "--since",
        metavar="WHEN",
        type=_moment,
        default="1d",
        help="only builds started since then: 30m, 12h, 1d, 2w or a date (default: 1d)",
    )
    zuul.add_argument(
        "--limit", metavar="N", type=_positive_int, help="ingest at most N builds (newest first)"
    )
    _add_build_options(ingest)
    ingest.set_defaults(run=_cmd_ingest)


@dataclasses.dataclass(frozen=True)
class _IngestJob:
    """One build to ingest: what to call it in messages, and how to open its logs."""

    label: str
    open: Callable[[], tuple[LogSource, tuple[FileRule, ...], Build]]
    """The build's log source, file rules and fields; raises SourceError, BuildInfoError."""
    uuid: str | None = None
    """The build's uuid when known before opening (Zuul API records): lets a stored
    build be skipped without fetching anything."""
    when: datetime | None = None
    """When the build ran, if known (else it is stored as of now)."""
    skip: str | None = None
    """Why the build is not ingested at all (a Zuul build still running, or without logs)."""
    shared_fetcher: bool = False
    """The source fetches with the command's Fetcher: not closed after the build."""


def _cmd_ingest(args: argparse.Namespace) -> int:
    if not args.sources and not args.zuul:
        return _usage_error("ingest", "give at least one SOURCE, or --zuul URL --tenant T")
    if args.zuul and not args.tenant:
        return _usage_error("ingest", "--zuul needs --tenant (the Zuul tenant, e.g. openstack)")
    if args.build_uuid and len(args.sources) + bool(args.zuul) > 1:
        return _usage_error("ingest", "--build-uuid names one build; give a single SOURCE")
    config = _load_config(args, "ingest")
    if config is None:
        return 2
    args.keep_debug = args.keep_debug or config.keep_debug
    signatures = _load_signatures_or_warn(args.queries, "ingest")
    if signatures is None:
        return 2
    options = _build_options(args)
    jobs = [
        _IngestJob(text, functools.partial(_read_source, text, config, options))
        for text in args.sources
    ]
    from recheck.logs.fetch import Fetcher  # httpx: only the commands that fetch load it

    fetcher = Fetcher(config.fetch, config_file=config.path)
    try:
        if args.zuul:
            try:
                jobs += _zuul_jobs(args, config, fetcher, options)
            except SourceError as exc:
                return _usage_error("ingest", f"cannot list Zuul's builds: {exc}")
        store = _open_store(args, config, "ingest", auto_gc=True)
        if store is None:
            return 2
        with store:
            return _ingest_all(store, jobs, signatures, args)
    finally:
        fetcher.close()


def _zuul_jobs(
    args: argparse.Namespace, config: Config, fetcher: Fetcher, options: Build
) -> list[_IngestJob]:
    """One job per build Zuul's API lists; raises SourceError when it lists nothing usable."""
    from recheck.logs.fetch import HttpLogSource, build_from_zuul, zuul_build_time, zuul_builds

    base = args.zuul.rstrip("/")
    records = zuul_builds(
        fetcher,
        base,
        args.tenant,
        pipeline=args.pipeline,
        result=args.result,
        since=args.since,
        limit=args.limit,
    )
    jobs: list[_IngestJob] = []
    for record in records:
        build = build_from_zuul(record, args.tenant)
        label = f"{base}/t/{args.tenant}/build/{build.build_uuid}"
        skip = None
        if build.build_status is None:
            skip = "still running (no result yet)"
        elif not build.log_url:
            skip = f"no logs ({build.build_status}: the build uploaded none)"

        def open_build(build: Build = build) -> tuple[LogSource, tuple[FileRule, ...], Build]:
            assert build.log_url is not None  # jobs without logs are skipped
            source = HttpLogSource(build.log_url, fetcher, build)
            return source, config.file_rules, read_build_info(source, options)

        when = zuul_build_time(record, "end_time") or zuul_build_time(record, "start_time")
        jobs.append(
            _IngestJob(
                label,
                open_build,
                uuid=build.build_uuid,
                when=when,
                skip=skip,
                shared_fetcher=True,
            )
        )
    return jobs


def _ingest_all(
    store: Store,
    jobs: Sequence[_IngestJob],
    signatures: Sequence[Signature],
    args: argparse.Namespace,
) -> int:
    from recheck.store import StoreError

    counts = {"ingested": 0, "skipped": 0, "failed": 0}
    with _IngestProgress(len(jobs)) as progress:
        for job in jobs:
            progress.start(job.label)
            try:
                outcome, text = _ingest_one(store, job, signatures, args, progress)
            except (SourceError, BuildInfoError, StoreError, OSError, ValueError) as exc:
                outcome, text = "failed", str(exc)
                where = "" if text.startswith(job.label) else f"{job.label}: "
                progress.message(f"recheck ingest: error: {where}{text}", "red")
            except KeyboardInterrupt:
                progress.close()
                print(
                    f"recheck ingest: interrupted: {job.label} was not stored; "
                    f"{_plural(counts['ingested'], 'build')} ingested before it are",
                    file=sys.stderr,
                )
                return 130
            counts[outcome] += 1
            if outcome != "failed":
                progress.line(f"{outcome} {job.label}: {text}", _OUTCOME_STYLES[outcome])
            progress.advance()
    summary = ", ".join(f"{count} {outcome}" for outcome, count in counts.items())
    _line_printer(sys.stdout)(f"{_plural(len(jobs), 'build')}: {summary}", "bold")
    return 1 if counts["failed"] else 0


_OUTCOME_STYLES = {"ingested": "green", "skipped": "dim"}


def _ingest_one(
    store: Store,
    job: _IngestJob,
    signatures: Sequence[Signature],
    args: argparse.Namespace,
    progress: _IngestProgress,
) -> tuple[str, str]:
    """Ingest one build; returns ("ingested" or "skipped", what to tell about it)."""
    if job.skip is not None:
        return "skipped", job.skip
    if job.uuid is not None and not args.force and store.has_build(job.uuid):
        return "skipped", f"build {job.uuid} is already stored (--force ingests it again)"
    source, rules, build = job.open()
    try:
        uuid = _stored_uuid(build, job.label)
        if not args.force and store.has_build(uuid):
            return "skipped", f"build {uuid} is already stored (--force ingests it again)"
        build = dataclasses.replace(build, build_uuid=uuid)

        def warn(problem: FileProblem) -> None:
            progress.message(f"recheck ingest: warning: {job.label}: {problem}", "yellow")

        ingested = ingest_build(
            store, source, build, signatures, rules=rules, keep_debug=args.keep_debug,
            on_problem=warn, on_count=progress.events, when=job.when,
        )  # fmt: skip
    finally:
        from recheck.logs.fetch import HttpLogSource

        if isinstance(source, HttpLogSource) and not job.shared_fetcher:
            source.close()
    bugs = sorted({match.bug for match in ingested.matches})
    found = f", bugs {' '.join(bugs)}" if bugs else ", no known bug"
    events = _plural(ingested.events, "event")
    return "ingested", f"{build.build_name or 'build'} {uuid}: {events}{found}"


def _stored_uuid(build: Build, source_text: str) -> str:
    """The uuid a build is stored under: its own, else one derived from where its logs are,
    so that ingesting the same logs again finds the build (and replaces it with --force)."""
    import uuid as uuidlib  # here: only ingesting needs it, and it costs ~3 ms to import

    from recheck.store import generated_uuid

    if build.build_uuid:
        return build.build_uuid
    if build.log_url:
        return generated_uuid(build)
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, Path(source_text).resolve().as_uri()))


class _IngestProgress:
    """Per-build lines, and a progress bar on stderr when it is a terminal."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._bar: tuple[Progress, TaskID] | None = None
        self._print_line = _line_printer(sys.stdout)

    def __enter__(self) -> _IngestProgress:
        if sys.stderr.isatty():
            from rich import progress
            from rich.console import Console

            bar = progress.Progress(
                progress.TextColumn("{task.description}"),
                progress.BarColumn(),
                progress.MofNCompleteColumn(),
                progress.TextColumn("{task.fields[events]} events"),
                progress.TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            bar.start()
            self._bar = bar, bar.add_task("ingest", total=self._total, events="0")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar[0].stop()
            self._bar = None

    def start(self, label: str) -> None:
        if self._bar is not None:
            short = label if len(label) <= 40 else "..." + label[-37:]
            self._bar[0].update(self._bar[1], description=short, events="0", refresh=True)

    def events(self, count: int) -> None:
        if self._bar is not None:
            self._bar[0].update(self._bar[1], events=f"{count:,}")

    def advance(self) -> None:
        if self._bar is not None:
            self._bar[0].advance(self._bar[1])

    def line(self, text: str, style: str) -> None:
        """Print a result line on stdout (above the bar when both are the terminal)."""
        if self._bar is not None and sys.stdout.isatty():
            self._above(self._bar[0], text, style)
        else:
            self._print_line(text, style)

    def message(self, text: str, style: str) -> None:
        """Print a warning or error line on stderr, above the bar if there is one."""
        if self._bar is not None:
            self._above(self._bar[0], text, style)
        else:
            print(text, file=sys.stderr)

    @staticmethod
    def _above(bar: Progress, text: str, style: str) -> None:
        from rich.text import Text

        bar.console.print(Text(text, style=style), soft_wrap=True)


# --- recheck query ---------------------------------------------------------------------


def _add_query(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    query = commands.add_parser(
        "query",
        help="where a query or signature hit in the stored history",
        description=(
            "Search the stored events of the last DAYS days with a signature file's query "
            "or a query string, and summarize the hits as elastic-recheck-query did: total "
            "hits, distinct builds by build_status, and for each field its top values with "
            "their share. Hits are exactly the events `recheck match` would report: the "
            "index only finds candidates, the query engine decides. --format json prints "
            '{"hits": N, "builds": {"<build_status>": count}, "fields": {"<field>": '
            "[[value, share], ...]}}. Exit status 2 for a bad query or an unusable store."
        ),
    )
    query.add_argument(
        "query",
        metavar="QUERY_FILE_OR_QUERY_STRING",
        help="a signature file (queries/<bug>.yaml) or a Lucene query_string",
    )
    query.add_argument(
        "--days",
        type=_positive_float,
        default=10.0,
        help="search builds of the last DAYS days (default: 10)",
    )
    query.add_argument("--queue", metavar="Q", help="only builds of this pipeline (build_queue)")
    query.add_argument(
        "--quantity", type=_positive_int, default=5, help="top values shown per field (default: 5)"
    )
    query.add_argument(
        "--verbose",
        action="store_true",
        help="also list fields that differ on every build (uuids, refs, URLs)",
    )
    query.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    _add_store_option(query)
    _add_config_option(query)
    query.set_defaults(run=_cmd_query)


def _cmd_query(args: argparse.Namespace) -> int:
    from recheck.store.stats import stats_from

    compiled = _read_query(args.query)
    if isinstance(compiled, str):
        return _usage_error("query", compiled)

    def search(store: Store, config: Config) -> QueryStats:
        # A cluster store counts with aggregations; the embedded one summarizes hits.
        return stats_from(
            store, compiled, args.days, args.queue, quantity=args.quantity, verbose=args.verbose
        )

    stats = _on_store(args, "query", search)
    if stats is None:
        return 2
    if args.format == "json":
        _print_json(stats.to_json())
        return 0
    print_line = _line_printer(sys.stdout)
    for index, text in enumerate(stats.lines()):
        print_line(text, "bold" if index < 2 or not text.startswith(" ") else "")
    return 0


def _read_query(text: str) -> Query | str:
    """The query ``text`` names (a signature file) or is; a message saying what is wrong."""
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            return f"{text}: no such signature file"
        loaded = load_signature(path)
        return str(loaded) if isinstance(loaded, SignatureError) else loaded.compiled
    try:
        return compile_query(text)
    except QuerySyntaxError as exc:
        if exc.position is None:
            return f"bad query: {exc}"
        shown = text.replace("\n", " ").replace("\r", " ")
        return f"bad query: {exc}\n  {shown}\n  {' ' * exc.position}^"


# --- recheck gc ------------------------------------------------------------------------


def _add_gc(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gc = commands.add_parser(
        "gc",
        help="drop old events, builds and matches from the store",
        description=(
            "Apply retention now (ingest also does, at most hourly): drop the events of builds "
            "older than --event-days, and builds with their matches older than --build-days. "
            "Prints what was dropped."
        ),
    )
    gc.add_argument(
        "--event-days",
        type=_positive_float,
        metavar="DAYS",
        help="keep events this many days (default: bot.yaml's store.event_days, else 10)",
    )
    gc.add_argument(
        "--build-days",
        type=_positive_float,
        metavar="DAYS",
        help="keep builds and matches this many days (default: store.build_days, else 90)",
    )
    _add_store_option(gc)
    _add_config_option(gc)
    gc.set_defaults(run=_cmd_gc)


def _cmd_gc(args: argparse.Namespace) -> int:
    def collect(store: Store, config: Config) -> tuple[float, float, GcCounts]:
        event_days = args.event_days or config.store.event_days
        build_days = args.build_days or config.store.build_days
        return event_days, build_days, store.gc(event_days=event_days, build_days=build_days)

    done = _on_store(args, "gc", collect)
    if done is None:
        return 2
    event_days, build_days, dropped = done
    print(f"events older than {event_days:g} days: {dropped.events:,} dropped")
    print(
        f"builds older than {build_days:g} days: {dropped.builds:,} dropped, "
        f"with {_plural(dropped.matches, 'match', 'matches')}"
    )
    return 0


# --- recheck reclassify ----------------------------------------------------------------


def _add_reclassify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reclassify = commands.add_parser(
        "reclassify",
        help="re-run new or changed signatures over the stored history",
        description=(
            "Re-run the signatures added or changed since the last reclassify (all of them "
            "with --all) over the stored events and replace their matches, so a new bug's "
            "past hits show at once. Builds whose events retention dropped keep their "
            "matches. Prints how many signatures, builds and matches."
        ),
    )
    _add_queries_option(reclassify)
    reclassify.add_argument(
        "--since",
        metavar="WHEN",
        type=_moment,
        help="only builds since then: 12h, 7d, 2w or a date (default: all stored events)",
    )
    reclassify.add_argument(
        "--all", action="store_true", help="re-run every signature, changed or not"
    )
    _add_store_option(reclassify)
    _add_config_option(reclassify)
    reclassify.set_defaults(run=_cmd_reclassify)


_SHOWN_BUGS = 10
"""Bug ids ``reclassify`` names; a longer list (the first run: all of them) is counted."""


def _cmd_reclassify(args: argparse.Namespace) -> int:
    signatures = _load_signatures_or_warn(args.queries, "reclassify")
    if signatures is None:
        return 2

    def rerun(store: Store, config: Config) -> ReclassifyCounts:
        return store.reclassify(signatures, args.since, only_changed=not args.all)

    counts = _on_store(args, "reclassify", rerun)
    if counts is None:
        return 2
    if not counts.signatures:
        print("no new or changed signatures; nothing re-run (--all re-runs every one)")
        return 0
    print(
        f"re-ran {_plural(len(counts.signatures), 'signature')} over "
        f"{_plural(counts.builds, 'stored build')}: "
        f"{counts.matches:,} matching events"
    )
    shown = " ".join(counts.signatures[:_SHOWN_BUGS])
    more = len(counts.signatures) - _SHOWN_BUGS
    print(f"signatures: {shown}" + (f" and {more} more" if more > 0 else ""))
    return 0


# --- the store (ingest, query, gc, reclassify) -----------------------------------------


def _add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="PATH",
        type=Path,
        help=(
            "the store directory (default: bot.yaml's store.path, else $RECHECK_HOME, "
            "else ./.recheck)"
        ),
    )


def _on_store(
    args: argparse.Namespace, command: str, work: Callable[[Store, Config], _T]
) -> _T | None:
    """``work`` done on the store the options and bot.yaml name, then closed; None after
    an error was reported (unusable config or store, or the store failing)."""
    from recheck.store import StoreError

    config = _load_config(args, command)
    if config is None:
        return None
    store = _open_store(args, config, command, create=False)
    if store is None:
        return None
    with store:
        try:
            return work(store, config)
        except StoreError as exc:
            _usage_error(command, str(exc))
            return None


def _open_store(
    args: argparse.Namespace,
    config: Config,
    command: str,
    *,
    auto_gc: bool = False,
    create: bool = True,
) -> Store | None:
    """The store ``--store``, bot.yaml or the environment names; None after an error.
    Only commands that write builds (``create``) make a new store."""
    from recheck.store import Retention, StoreError, open_store

    retention = Retention(config.store.event_days, config.store.build_days)
    try:
        return open_store(
            args.store or config.store.path,
            retention=retention,
            auto_gc=auto_gc,
            config=config,
            create=create,
        )
    except StoreError as exc:
        _usage_error(command, f"cannot use the store: {exc}")
        return None


# --- option values ---------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _moment(text: str) -> datetime:
    """``1d`` (that long ago), ``12h``, ``30m``, ``2w``, or an ISO date or time (UTC)."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found:
        seconds = float(found[1]) * _UNIT_SECONDS[found[2]]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30m, 12h, 1d, 2w) nor a date (2024-05-01)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


# --- signatures (match, classify, ingest, reclassify) ----------------------------------


def _add_queries_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queries",
        metavar="DIR",
        type=Path,
        default=Path("queries"),
        help="directory of signature files (default: ./queries)",
    )


def _load_signatures_or_warn(directory: Path, command: str) -> list[Signature] | None:
    """The usable signatures of ``directory``, warning about the others; None if unusable."""
    try:
        signatures, errors = load_signatures(directory)
    except OSError as exc:
        _usage_error(command, f"{exc}; pass --queries DIR")
        return None
    for error in errors:
        print(f"recheck {command}: warning: skipped {error}", file=sys.stderr)
    return signatures


# --- build sources (events, classify, ingest) ------------------------------------------

_SOURCE_HELP = (
    "a log directory, one log file, a log URL (http/https: the build's log root, listed "
    "from its zuul-manifest.json or the server's directory listing), a Zuul build URL "
    "(https://ZUUL/t/TENANT/build/UUID), or a Zuul build's JSON file saved from Zuul's "
    "API. Only hosts in bot.yaml's fetch.allowed_hosts are fetched from"
)


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help=f"the build's logs: {_SOURCE_HELP}")
    _add_build_options(parser)


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    """--config, --keep-debug and the build field options."""
    _add_config_option(parser)
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


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=(
            "settings file: allowed hosts, timeouts, file rules, store (default: "
            "$RECHECK_CONFIG, else ./bot.yaml if present, else built-in defaults)"
        ),
    )


def _load_config(args: argparse.Namespace, command: str) -> Config | None:
    """The settings ``--config`` (or the default place) holds; None after a usage error."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _usage_error(command, str(exc))
        return None
    for warning in config.warnings:
        print(f"recheck {command}: warning: {warning}", file=sys.stderr)
    return config


def _open_source(
    args: argparse.Namespace, command: str
) -> tuple[LogSource, tuple[FileRule, ...], Build] | None:
    """The source SOURCE names, the file rules for it, and the build's fields.

    Loads the config (``--config``) too: its ``keep_debug`` sets ``args.keep_debug``.
    """
    config = _load_config(args, command)
    if config is None:
        return None
    args.keep_debug = args.keep_debug or config.keep_debug
    try:
        return _read_source(args.source, config, _build_options(args))
    except (SourceError, BuildInfoError) as exc:
        _usage_error(command, str(exc))
        return None


def _read_source(
    text: str, config: Config, options: Build
) -> tuple[LogSource, tuple[FileRule, ...], Build]:
    """The source ``text`` names, its file rules and its build's fields (``options`` win).

    Raises SourceError or BuildInfoError when the build cannot be read.
    """
    source = open_source(text, config)
    return source, _file_rules(source, config), read_build_info(source, options)


def _file_rules(source: LogSource, config: Config) -> tuple[FileRule, ...]:
    rules = config.file_rules
    return source.rules(rules) if isinstance(source, FileSource) else rules


def _build_options(args: argparse.Namespace) -> Build:
    """The build fields given as options (``--build-name``...)."""
    values: dict[str, str | None] = {name: getattr(args, name, None) for name in BUILD_FIELDS}
    if values["voting"] is not None:
        values["voting"] = _voting_text(values["voting"])
    return Build().updated(values)


def _voting_text(value: str) -> str:
    # Logstash indexed voting as 1/0 (signatures write voting:1); accept the usual spellings.
    return "0" if value.strip().lower() in ("0", "false", "no", "off") else "1"


def _warn_problem(command: str) -> Callable[[FileProblem], None]:
    def warn(problem: FileProblem) -> None:
        print(f"recheck {command}: warning: {problem}", file=sys.stderr)

    return warn


# --- output helpers --------------------------------------------------------------------


def _print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _usage_error(command: str, message: str) -> int:
    print(f"recheck {command}: error: {message}", file=sys.stderr)
    return 2


def _plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {nouns or noun + 's'}"


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
