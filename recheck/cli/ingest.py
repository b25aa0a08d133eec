"""``recheck ingest``: store builds' events and matches in the history store.

Builds come from SOURCE arguments and from a Zuul API query; each is fetched, split,
classified and stored on its own (``recheck.pipeline.ingest_build``), so one failing
build is reported and the others go on. A build is stored at its own end time (Zuul's
record, else its logs' newest timestamp), never the time it was ingested when either is
known. Shows per-build lines and a progress bar.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from recheck.cli.common import (
    Commands,
    add_jobs_option,
    add_queries_option,
    add_store_option,
    line_printer,
    load_config,
    load_signatures_or_warn,
    moment,
    open_store,
    plural,
    positive_int,
    usage_error,
)
from recheck.cli.sources import (
    SOURCE_HELP,
    add_build_options,
    build_options,
    read_source,
    unread_note,
)
from recheck.config.files import Config
from recheck.logs.build import Build, BuildInfoError
from recheck.logs.buildlogs import build_end_time, read_build_info
from recheck.logs.logfiles import FileRule, rules_in_force
from recheck.logs.source import FileProblem, LogSource, SourceError
from recheck.pipeline import ingest_build
from recheck.query.signatures import Signature

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from recheck.logs.http import Fetcher
    from recheck.store import Store

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    """Register ``recheck ingest``."""
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
    ingest.add_argument("sources", metavar="SOURCE", nargs="*", help=SOURCE_HELP)
    add_queries_option(ingest)
    ingest.add_argument(
        "--force", action="store_true", help="ingest builds again that are already stored"
    )
    add_store_option(ingest)
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
        type=moment,
        default="1d",
        help="only builds started since then: 30m, 12h, 1d, 2w or a date (default: 1d)",
    )
    zuul.add_argument(
        "--limit", metavar="N", type=positive_int, help="ingest at most N builds (newest first)"
    )
    add_build_options(ingest)
    add_jobs_option(ingest, "split up to N blocks of a local build's files at once")
    ingest.set_defaults(run=run)


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
    """When the build ended, from Zuul's list; else its logs tell (else it is stored as
    of now)."""
    skip: str | None = None
    """Why the build is not ingested at all (a Zuul build still running, or without logs)."""
    shared_fetcher: bool = False
    """The source fetches with the command's Fetcher: not closed after the build."""


def run(args: argparse.Namespace) -> int:
    if not args.sources and not args.zuul:
        return usage_error("ingest", "give at least one SOURCE, or --zuul URL --tenant T")
    if args.zuul and not args.tenant:
        return usage_error("ingest", "--zuul needs --tenant (the Zuul tenant, e.g. openstack)")
    if args.build_uuid and len(args.sources) + bool(args.zuul) > 1:
        return usage_error("ingest", "--build-uuid names one build; give a single SOURCE")
    config = load_config(args, "ingest")
    if config is None:
        return 2
    args.keep_debug = args.keep_debug or config.keep_debug
    args.retention_days = (config.store.event_days, config.store.build_days)
    signatures = load_signatures_or_warn(args.queries, "ingest")
    if signatures is None:
        return 2
    options = build_options(args)
    jobs = [
        _IngestJob(text, functools.partial(read_source, text, config, options))
        for text in args.sources
    ]
    from recheck.logs.http import Fetcher  # httpx: only the commands that fetch load it

    fetcher = Fetcher(config.fetch, config_file=config.path)
    try:
        if args.zuul:
            try:
                jobs += _zuul_jobs(args, config, fetcher, options)
            except SourceError as exc:
                return usage_error("ingest", f"cannot list Zuul's builds: {exc}")
        store = open_store(args, config, "ingest", auto_gc=True)
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
    from recheck.logs.listing import HttpLogSource
    from recheck.logs.zuul import build_from_zuul, zuul_build_time, zuul_builds

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
            return source, rules_in_force(config.files), read_build_info(source, options)

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
    from recheck.store.embedded.store import AlreadyStored

    counts = {"ingested": 0, "skipped": 0, "failed": 0}
    with _IngestProgress(len(jobs)) as progress:
        for job in jobs:
            progress.start(job.label)
            try:
                outcome, text = _ingest_one(store, job, signatures, args, progress)
            except AlreadyStored as exc:  # another ingest stored it while this one waited
                outcome, text = "skipped", str(exc)
            except (SourceError, BuildInfoError, StoreError, OSError, ValueError) as exc:
                outcome, text = "failed", str(exc)
                where = "" if text.startswith(job.label) else f"{job.label}: "
                progress.message(f"recheck ingest: error: {where}{text}", "red")
            except KeyboardInterrupt:
                progress.close()
                print(
                    f"recheck ingest: interrupted: {job.label} was not stored; "
                    f"{plural(counts['ingested'], 'build')} ingested before it are",
                    file=sys.stderr,
                )
                return 130
            counts[outcome] += 1
            if outcome != "failed":
                progress.line(f"{outcome} {job.label}: {text}", _OUTCOME_STYLES[outcome])
            progress.advance()
    summary = ", ".join(f"{count} {outcome}" for outcome, count in counts.items())
    line_printer(sys.stdout)(f"{plural(len(jobs), 'build')}: {summary}", "bold")
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

        note = unread_note(source, rules)
        if note:
            progress.message(f"recheck ingest: {job.label}: {note}", "dim")
        when = job.when or build_end_time(source, rules)
        expired = _expired_note(when, *args.retention_days)
        if expired:
            progress.message(f"recheck ingest: warning: {job.label}: {expired}", "yellow")
        # A build's events and documents are many short-lived containers without cycles:
        # the cyclic collector would run again and again over them, finding nothing.
        gc.disable()
        try:
            ingested = ingest_build(
                store, source, build, signatures, rules=rules, keep_debug=args.keep_debug,
                on_problem=warn, on_count=progress.events, when=when, workers=args.jobs,
            )  # fmt: skip
        finally:
            gc.enable()
    finally:
        if not job.shared_fetcher:  # a shared fetcher is closed by run()
            source.close()
    bugs = sorted({match.bug for match in ingested.matches})
    found = f", bugs {' '.join(bugs)}" if bugs else ", no known bug"
    events = plural(ingested.events, "event")
    return "ingested", f"{build.build_name or 'build'} {uuid}: {events}{found}"


def _expired_note(when: datetime | None, event_days: float, build_days: float) -> str | None:
    """What to say of a build that ended before the store keeps events (or builds):
    retention drops them soon after the ingest, and searches would silently miss them."""
    from recheck.store.base import days_before, utc  # retention's own reckoning

    if when is None:
        return None
    moment, now = utc(when), utc(None)
    ended = f"the build ended {moment:%Y-%m-%d},"
    if moment < days_before(now, build_days):
        return (
            f"{ended} more than store.build_days ({build_days:g}) days ago: retention "
            "drops it, its events and matches soon after this ingest; raise "
            "store.build_days and store.event_days in bot.yaml to keep them"
        )
    if moment < days_before(now, event_days):
        return (
            f"{ended} more than store.event_days ({event_days:g}) days ago: retention "
            "drops its events soon after this ingest (its matches stay); raise "
            "store.event_days in bot.yaml to keep them"
        )
    return None


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


_REFRESH_S = 0.25
"""Least time between two redraws of the progress bar for new events."""


class _IngestProgress:
    """Per-build lines, and a progress bar on stderr when it is a terminal."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._bar: tuple[Progress, TaskID] | None = None
        self._refreshed = 0.0
        self._print_line = line_printer(sys.stdout)

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
                # No refresh thread: -j forks workers only from a process without
                # threads (recheck.logs.forkedsplit); updates refresh the bar instead.
                auto_refresh=False,
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
            now = time.monotonic()
            refresh = now - self._refreshed >= _REFRESH_S
            if refresh:
                self._refreshed = now
            self._bar[0].update(self._bar[1], events=f"{count:,}", refresh=refresh)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar[0].advance(self._bar[1])
            self._bar[0].refresh()

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
