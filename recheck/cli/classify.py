"""``recheck classify``: which known bugs one build's logs (or its stored events) show.

Reads the build through ``cli/sources.py``, classifies it with ``recheck.pipeline`` (or
the store, with ``--stored``), and prints the bugs with their matching events as text
or JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from recheck.cli.common import (
    Commands,
    add_jobs_option,
    add_queries_option,
    add_store_option,
    line_printer,
    load_signatures_or_warn,
    on_store,
    plural,
    positive_int,
    print_json,
    usage_error,
)
from recheck.cli.sources import (
    SOURCE_HELP,
    add_build_options,
    build_error,
    build_options,
    open_source,
    warn_problem,
)
from recheck.logs.build import BuildInfoError
from recheck.logs.localdir import DirSource, FileSource
from recheck.logs.source import FileProblem, LogSource, SourceError
from recheck.pipeline import DEFAULT_EXAMPLES, Classification, classify_build
from recheck.query.prefilter import hyperscan_available

__all__ = ["add_parser", "run"]

SLOW_BUILD_BYTES = 50 << 20
"""A local build this big is worth a word when hyperscan is missing."""

SPLIT_MIB_PER_SECOND = 8
"""How fast a build is classified without hyperscan, every event split in Python
(benchmarks/classify.py: 8 MiB/s on one core; 20-60 times slower than with it)."""


def add_parser(commands: Commands) -> None:
    """Register ``recheck classify``."""
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
        help=f"the build's logs: {SOURCE_HELP}. Not with --stored",
    )
    add_build_options(classify)
    classify.add_argument(
        "--stored",
        metavar="UUID",
        help=(
            "classify the build UUID from the events the store already holds (ingested "
            "by recheck, or indexed by logstash in a cluster store) instead of reading "
            "its logs; a cluster does it in one round trip"
        ),
    )
    add_store_option(classify)
    add_queries_option(classify)
    classify.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format"
    )
    classify.add_argument(
        "--stats",
        action="store_true",
        help="also tell what the scan did (files read or skipped, bytes, events split)",
    )
    add_jobs_option(classify, "scan up to N files of a local build at once")
    classify.add_argument(
        "--examples",
        metavar="K",
        type=positive_int,
        default=DEFAULT_EXAMPLES,
        help=(
            "matching events shown per bug (default: %(default)s): the first, by file and "
            "line. A signature is evaluated in a file only until it has one more, so a "
            "count past K may be a lower bound ('at least N')"
        ),
    )
    classify.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.source is None) == (args.stored is None):
        return usage_error("classify", "give either SOURCE (the build's logs) or --stored UUID")
    if args.stored is not None:
        return _classify_stored(args)
    opened = open_source(args, "classify")
    if opened is None:
        return 2
    source, rules, options = opened
    signatures = load_signatures_or_warn(args.queries, "classify")
    if signatures is None:
        source.close()
        return 2
    _warn_if_slow(source)
    try:
        result = classify_build(
            source,
            signatures,
            options,
            rules=rules,
            keep_debug=args.keep_debug,
            workers=args.jobs,
            examples=args.examples,
        )
    except (SourceError, BuildInfoError) as exc:
        return build_error("classify", exc)
    finally:
        source.close()  # a fetched build holds HTTP connections
    for problem in result.problems:
        warn_problem("classify")(problem)
    if args.format == "json":
        report = _classification_json(result)
        if args.stats:
            report["stats"] = dataclasses.asdict(result.stats)
        print_json(report)
    else:
        _print_classification(result)
        if args.stats:
            stats = ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in
                              dataclasses.asdict(result.stats).items())  # fmt: skip
            print(f"recheck classify: {stats}", file=sys.stderr)
    return 0


def _warn_if_slow(source: LogSource) -> None:
    """One line on stderr before a big local build is classified without hyperscan."""
    if hyperscan_available():
        return
    try:
        if isinstance(source, DirSource):
            size = sum(source.size(path) for path in source.paths())
        elif isinstance(source, FileSource):
            size = source.path.stat().st_size
        else:
            return  # fetched: its size is not known before it is read
    except (OSError, SourceError):
        return
    if size > SLOW_BUILD_BYTES:
        mib = size / (1 << 20)
        print(
            f"recheck classify: hyperscan is not installed, so every event of this "
            f"{mib:,.0f} MiB build is split in Python: about {mib / SPLIT_MIB_PER_SECOND:,.0f} s "
            "a core, 20-60 times slower; install it with: pip install 'recheck[fast]'",
            file=sys.stderr,
        )


def _classify_stored(args: argparse.Namespace) -> int:
    """``recheck classify --stored UUID``: from the store's events, not the logs."""
    signatures = load_signatures_or_warn(args.queries, "classify")
    if signatures is None:
        return 2
    build = build_options(args).updated({"build_uuid": args.stored})
    found = on_store(args, "classify", lambda store, _: store.classify(build, signatures))
    if found is None:
        return 2
    result = Classification(found.build, found.matches, found.skipped)
    result.problems = [
        FileProblem(f"signature {bug}", f"not evaluated: {why}")
        for bug, why in found.errors.items()
    ]
    for problem in result.problems:
        warn_problem("classify")(problem)
    if args.format == "json":
        print_json(_classification_json(result))
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
        "counts": {
            bug: {
                "matching_events": result.counts.get(bug, _shown(result, bug)),
                "exact": bug not in result.capped,
            }
            for bug in result.bugs
        },
        "skipped": result.skipped,
        "problems": [str(problem) for problem in result.problems],
    }


def _print_classification(result: Classification) -> None:
    print_line = line_printer(sys.stdout)
    build = result.build
    details = [value for value in (build.build_short_uuid, build.build_queue) if value]
    details += [value for value in (build.build_status,) if value]
    name = build.build_name or "build"
    print_line(f"{name} ({', '.join(details)})" if details else name, "bold")
    if not result.matches:
        print_line("no known bug matched", "yellow")
    for bug in result.bugs:
        matches = [match for match in result.matches if match.bug == bug]
        print_line(f"bug {bug}: {_count(result, bug, len(matches))}", "red")
        for match in matches:
            first_line = match.message.split("\n", 1)[0]
            print_line(f"  {match.filename}:{match.line}: {first_line}", "")
            url = result.link(match)
            if url:
                print_line(f"    {url}", "dim")


def _shown(result: Classification, bug: str) -> int:
    return sum(match.bug == bug for match in result.matches)


def _count(result: Classification, bug: str, shown: int) -> str:
    """ "N matching events", saying when N is a lower bound or not all are shown."""
    count = result.counts.get(bug, shown)
    text = plural(count, "matching event")
    if bug in result.capped:
        text = f"at least {text}"
    return text if count == shown else f"{text} (first {shown} shown)"
