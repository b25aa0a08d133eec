"""``recheck draft``: a failed build's anomalies against passing builds, and signatures
drafted from them (``recheck.scan.anomaly``); ``--write`` saves the best as a signature file
with its event as the example ``recheck check`` tests it with."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from recheck.cli.common import (
    Commands,
    add_config_option,
    add_jobs_option,
    add_store_option,
    load_config,
    on_store,
    plural,
    positive_float,
    positive_int,
    print_json,
    usage_error,
)
from recheck.cli.sources import build_error, read_source, warn_problem
from recheck.config.files import Config
from recheck.logs.build import Build, BuildInfoError
from recheck.logs.localdir import DirSource
from recheck.logs.source import SourceError
from recheck.logs.split import split_lines
from recheck.models import Event
from recheck.query import Doc, compile_query
from recheck.query.signatures import load_signature
from recheck.scan.anomaly.draft import DEFAULT_PROPOSALS, DraftReport, draft
from recheck.scan.anomaly.propose import Draft, drafts_for
from recheck.scan.anomaly.rank import DEFAULT_TOP, Anomaly, HistoryLookup
from recheck.scan.anomaly.reading import BuildLogs
from recheck.store import DEFAULT_EVENT_DAYS, Store, StoreError
from recheck.store.anomalies import baseline_builds, history_counts, write_stored_build
from recheck.store.anomalybook import uncategorized_clusters

_HELP = (
    "a log directory, one log file (any name and format), a log URL or Zuul build URL, "
    "or the uuid of a build in the store"
)


def add_parser(commands: Commands) -> None:
    """Register ``recheck draft``."""
    parser = commands.add_parser(
        "draft",
        help="a failed build's lines no passing build has, and signatures drafted from them",
        description=(
            "Compare the failed build FAILED with passing builds of the same job: its "
            "lines whose normalized form (numbers, hex ids, UUIDs, IPs, timestamps and "
            "temporary paths masked) occurs in no baseline, grouped into events and "
            "ranked (level, tracebacks, nearness to the end, repetition), and for the best "
            "a proposed signature: quoted stable words and the file's tag, verified to "
            "match the failed build and no baseline, with its hits in the stored history. "
            '--format json prints {"anomalies": [{"filename", "line", "text", "score"}], '
            '"proposals": [{"query", "matches_failed", "baseline_hits", "history": '
            '{"failure_builds", "success_builds"}}]}. Exit status 0 (also when nothing is '
            "anomalous), 1 when a build has no log files, 2 for unusable input."
        ),
    )
    parser.add_argument("failed", metavar="FAILED", help=f"the failed build: {_HELP}")
    parser.add_argument(
        "--baseline",
        metavar="GOOD",
        action="append",
        default=[],
        help=(
            f"a passing build to compare with (repeat for several): {_HELP}. Default: the "
            "newest 3 SUCCESS builds of FAILED's job in the store"
        ),
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--write",
        metavar="FILE",
        type=Path,
        help=(
            "write the best proposal as a signature file (queries/<bug>.yaml), its "
            "anomaly's event as the example; an existing file is not replaced"
        ),
    )
    parser.add_argument(
        "--top",
        metavar="N",
        type=positive_int,
        default=DEFAULT_TOP,
        help="anomalies shown (default: %(default)s)",
    )
    parser.add_argument(
        "--days",
        metavar="N",
        type=positive_float,
        default=DEFAULT_EVENT_DAYS,
        help="history counted for each proposal: builds of the last N days (default: 10)",
    )
    add_jobs_option(parser, "files of local builds read at once")
    add_config_option(parser)
    add_store_option(parser)
    parser.set_defaults(run=run)
    _add_clusters(commands)


def _add_clusters(commands: Commands) -> None:
    parser = commands.add_parser(
        "clusters",
        help="uncategorized failures grouped by their top anomaly, with a proposed query",
        description=(
            "Group the failed builds of the last N days that no signature explains by "
            "their top anomaly (its normalized line, kept at ingest against the newest "
            "passing builds of the same job), biggest group first. --format json prints "
            '[{"key", "builds": [uuids], "jobs", "first_seen", "last_seen", "proposal"}]. '
            "Failures ingested before recheck kept anomalies are counted on stderr."
        ),
    )
    parser.add_argument(
        "--days",
        metavar="N",
        type=positive_float,
        default=DEFAULT_EVENT_DAYS,
        help="failures of the last N days (default: %(default)s)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_config_option(parser)
    add_store_option(parser)
    parser.set_defaults(run=run_clusters)


def run_clusters(args: argparse.Namespace) -> int:
    since = datetime.now(UTC) - timedelta(days=args.days)
    found = on_store(args, "clusters", lambda store, _: uncategorized_clusters(store, since))
    if found is None:
        return 2
    clusters, missing = found
    if missing:
        print(
            f"recheck clusters: {plural(missing, 'uncategorized failure')} without recorded "
            "anomalies (ingested before recheck kept them; recheck ingest --force adds them)",
            file=sys.stderr,
        )
    if args.format == "json":
        print_json([cluster.to_json() for cluster in clusters])
        return 0
    if not clusters:
        print(f"no uncategorized failure with recorded anomalies in the last {args.days:g} days")
    for cluster in clusters:
        print(
            f"{plural(len(cluster.builds), 'build')}, {plural(cluster.changes, 'change')}, "
            f"{cluster.first_seen:%Y-%m-%d %H:%M} .. {cluster.last_seen:%Y-%m-%d %H:%M} "
            f"({', '.join(cluster.jobs)})"
        )
        print(f"  {cluster.filename}: {cluster.text[:300]}")
        if cluster.proposal:
            print(f"  proposal: {cluster.proposal}")
    return 0


class _Unusable(Exception):
    """An argument names nothing usable; the message says what to pass."""


def _needs_store(text: str) -> bool:
    return not Path(text).exists() and "://" not in text


def _open_store(args: argparse.Namespace, config: Config, needing: list[str]) -> Store | None:
    """The store, when an argument names a stored build (``needing``) or one is there
    (for default baselines and history); None when none is there and none is needed."""
    from recheck.store import EmbeddedStore, Retention, default_store_path
    from recheck.store import open_store as open_store_at

    path = args.store or config.store.path
    if not needing and not EmbeddedStore.exists(path or default_store_path()):
        return None
    retention = Retention(config.store.event_days, config.store.build_days)
    try:
        return open_store_at(path, retention=retention, config=config, create=False)
    except StoreError as exc:
        if not needing:
            print(
                f"recheck draft: warning: no history: cannot use the store: {exc}", file=sys.stderr
            )
            return None
        raise _Unusable(
            f"{', '.join(needing)}: no such file or directory; read as a build uuid, the "
            f"store cannot say: {exc}"
        ) from None


def _logs(
    text: str, config: Config, store: Store | None, scratch: Path, stack: ExitStack
) -> BuildLogs:
    if not _needs_store(text):
        source, rules, build = read_source(text, config, Build())
        stack.callback(source.close)
        return BuildLogs(source, rules, build, text)
    if store is None:
        raise _Unusable(f"{text}: no such file or directory, and no store to find a build uuid in")
    directory = scratch / f"build-{len(list(scratch.iterdir()))}"
    build, stored_rules = write_stored_build(store, text, directory)
    return BuildLogs(DirSource(directory), tuple(stored_rules), build, text)


def _default_baselines(
    failed: BuildLogs, store: Store | None, config: Config, scratch: Path, stack: ExitStack
) -> list[BuildLogs]:
    job = failed.build.build_name
    if store is None or job is None:
        why = "no store" if store is None else f"the job of {failed.name} is not known"
        raise _Unusable(
            f"no baseline: {why}; pass --baseline GOOD (a passing build's log directory, "
            "log file or stored uuid)"
        )
    stored = baseline_builds(store, job, exclude=failed.build.build_uuid)
    if not stored:
        raise _Unusable(
            f"no SUCCESS build of job {job} with its events in the store {store.path}; "
            "pass --baseline GOOD (a passing build's log directory, log file or stored uuid)"
        )
    return [_logs(build.uuid, config, store, scratch, stack) for build in stored]


def run(args: argparse.Namespace) -> int:
    config = load_config(args, "draft")
    if config is None:
        return 2
    texts = [args.failed, *args.baseline]
    if args.write is not None and args.write.exists():
        return usage_error("draft", f"{args.write} exists; remove it or name another file")
    with ExitStack() as stack:
        try:
            store = _open_store(args, config, [text for text in texts if _needs_store(text)])
            if store is not None:
                stack.enter_context(store)
            scratch = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="recheck-draft-"))
            )
            failed = _logs(args.failed, config, store, scratch, stack)
            baselines = [_logs(text, config, store, scratch, stack) for text in args.baseline]
            if not baselines:
                baselines = _default_baselines(failed, store, config, scratch, stack)
            report = draft(
                failed,
                baselines,
                top=args.top,
                wanted=DEFAULT_PROPOSALS,
                workers=args.jobs,
                history=None if store is None else _history(store, args.days),
                on_step=_progress,
            )
        except _Unusable as exc:
            return usage_error("draft", str(exc)) if str(exc) else 2
        except StoreError as exc:
            return usage_error("draft", str(exc))
        except (SourceError, BuildInfoError) as exc:
            return build_error("draft", exc)
        warn = warn_problem("draft")
        for problem in report.problems:
            warn(problem)
        if store is not None:
            _count_history(store, report.proposals, args.days)
        elif report.proposals:
            print("recheck draft: no store: history not counted", file=sys.stderr)
        _print(report, failed, baselines, args)
        if args.write is not None:
            return _write(args.write, report)
    return 0


def _history(store: Store, days: float) -> HistoryLookup:
    """Rarity in history: how many failed and passing builds of the last ``days`` the
    drafted query of each anomaly matches (one search each)."""

    def lookup(anomalies: Sequence[Anomaly]) -> dict[str, tuple[int, int]]:
        found = {}
        for anomaly in anomalies:
            queries = drafts_for(anomaly)
            if queries and anomaly.key not in found:
                found[anomaly.key] = history_counts(store, queries[0], days)
        return found

    return lookup


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        print(f"recheck draft: {text}...", file=sys.stderr)


def _count_history(store: Store, proposals: list[Draft], days: float) -> None:
    for proposal in proposals:
        proposal.failure_builds, proposal.success_builds = history_counts(
            store, proposal.query, days
        )


def _print(
    report: DraftReport, failed: BuildLogs, baselines: list[BuildLogs], args: argparse.Namespace
) -> None:
    if args.format == "json":
        print_json(report.to_json())
        return
    print(
        f"{failed.name}: {plural(len(report.anomalies), 'anomaly', 'anomalies')} in "
        f"{report.lines:,} lines, against {plural(len(baselines), 'baseline')}: "
        + ", ".join(logs.name for logs in baselines)
    )
    for rank, anomaly in enumerate(report.anomalies, 1):
        print(f"{rank:3}. {anomaly.score:5.2f} {anomaly.filename}:{anomaly.line}: {anomaly.text}")
        for number, text in anomaly.context[:6]:
            if number != anomaly.line:
                print(f"            {number}: {text[:200]}")
    if not report.proposals:
        print("no proposed signature: no drafted query matched the failed build and no baseline")
        return
    print("proposed signatures (match the failed build, no baseline):")
    for proposal in report.proposals:
        print(f"  {proposal.query}")
        if proposal.failure_builds is not None:
            print(
                f"    history ({args.days:g} days): "
                f"{plural(proposal.failure_builds, 'failed build')}, "
                f"{plural(proposal.success_builds or 0, 'passing build')}"
            )


def example_event(anomaly: Anomaly) -> Event:
    """The anomaly's event as recheck splits it, with its file's name: the example."""
    lines = [text for _, text in anomaly.context] or [anomaly.text]
    first = anomaly.context[0][0] if anomaly.context else anomaly.line
    chosen: Event | None = None
    for line, event in split_lines(lines, anomaly.tags, keep_debug=True):
        if first + line - 1 <= anomaly.line:
            chosen = event
    event = chosen or {"message": anomaly.text, "tags": list(anomaly.tags)}
    event["filename"] = anomaly.filename
    return event


def _write(path: Path, report: DraftReport) -> int:
    if not report.proposals:
        print(
            f"recheck draft: error: nothing to write to {path}: no verified proposal",
            file=sys.stderr,
        )
        return 1
    proposal = report.proposals[0]
    event = example_event(proposal.anomaly)
    if not compile_query(proposal.query).matches(Doc(event)):
        event = {"message": proposal.anomaly.text, "tags": list(proposal.anomaly.tags)}
    document = {"query": proposal.query, "examples": [event]}
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        return usage_error("draft", f"cannot write {path}: {exc.strerror or exc}")
    loaded = load_signature(path)
    print(
        f"wrote {path}" + (f" (warning: {loaded})" if not hasattr(loaded, "query") else ""),
        file=sys.stderr,
    )
    return 0
