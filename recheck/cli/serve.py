"""``recheck report`` and ``recheck serve``: their options and entry points."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from recheck.cli.common import (
    Commands,
    add_config_option,
    add_queries_option,
    add_store_option,
    load_config,
    load_signatures_or_warn,
    on_store,
    open_store,
)
from recheck.config.files import Config, ConfigError
from recheck.models import BugTracker, UrlOnlyTracker

if TYPE_CHECKING:
    from recheck.store import Store

_PAGES_HELP = (
    "Pages: bug trends (index.html, and the gate pipeline's), uncategorized failures of "
    "the gate pipeline (last 24h, 2d, 7d, 10d) and one page per signature, each with the "
    "JSON it is built from. bot.yaml's pages section sets the title, the pipeline, the "
    "integrated gate projects, the excluded jobs and the review and build links."
)


def add_parser(commands: Commands) -> None:
    """Register ``recheck report`` and ``recheck serve``."""
    report = commands.add_parser(
        "report",
        help="write the pages as static files",
        description=f"Write the pages into a directory any web server can serve. {_PAGES_HELP}",
    )
    report.add_argument(
        "--output", "-o", metavar="DIR", type=Path, required=True, help="where to write the pages"
    )
    serve = commands.add_parser(
        "serve",
        help="serve the pages live from the store",
        description=(
            "Serve the pages live from the store, with their data under /api/ "
            "(/api/index.json...), and a search page: /search?q=<query>&days=N searches "
            "every stored log line (hits per day, facets that filter, the newest matching "
            f"lines highlighted and linked; /api/search.json?q=...). {_PAGES_HELP}"
        ),
    )
    serve.add_argument(
        "--port", type=_port, default=8080, help="TCP port (default 8080; 0 picks a free one)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--cache",
        metavar="SECONDS",
        type=_seconds,
        default=60.0,
        help="read the store again at most this often (default 60)",
    )
    for parser, run in ((report, run_report), (serve, run_serve)):
        add_store_option(parser)
        add_config_option(parser)
        add_queries_option(parser)
        parser.set_defaults(run=run)


def run_report(args: argparse.Namespace) -> int:
    """Write the static pages; returns the exit code."""
    from recheck.web.report import Written, write_report
    from recheck.web.site import Snapshot

    signatures = load_signatures_or_warn(args.queries, "report")
    if signatures is None:
        return 2
    started = time.perf_counter()

    def write(store: Store, config: Config) -> Written | None:
        tracker = bug_tracker(config)
        if tracker is None:
            return None
        try:
            return write_report(Snapshot(store, signatures, tracker, config.pages), args.output)
        finally:
            _close(tracker)

    try:
        written = on_store(args, "report", write)
    except OSError as exc:
        print(f"recheck report: error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    if written is None:
        return 2
    elapsed = time.perf_counter() - started
    removed = f", removed {written.removed} stale bug pages" if written.removed else ""
    print(f"wrote {written.pages} pages to {args.output} in {elapsed:.1f} s{removed}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Serve the pages until interrupted; returns the exit code."""
    from recheck.web.server import PageServer
    from recheck.web.site import Snapshot

    config = load_config(args, "serve")
    if config is None or load_signatures_or_warn(args.queries, "serve") is None:
        return 2
    tracker = bug_tracker(config)
    if tracker is None:
        return 2
    store = open_store(args, config, "serve", create=False)
    if store is None:
        _close(tracker)
        return 2

    def snapshot() -> Snapshot:
        # Signatures are read again with each snapshot, so new ones show up live.
        signatures = load_signatures_or_warn(args.queries, "serve") or []
        return Snapshot(store, signatures, tracker, config.pages)

    with store:
        try:
            server = PageServer(snapshot, args.host, args.port, cache_seconds=args.cache)
        except OSError as exc:
            print(
                f"recheck serve: error: cannot listen on {args.host}:{args.port}: {exc}; "
                "pick another --port",
                file=sys.stderr,
            )
            return 2
        print(f"serving the pages at {server.url} (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()
            _close(tracker)
    return 0


def bug_tracker(config: Config) -> BugTracker | None:
    """The tracker bot.yaml's ``bug_tracker`` section asks for; None after an error.

    The one place the pages choose a tracker: Launchpad (``recheck.bot.launchpad``) when
    recheck has it, else links only.
    """
    try:
        launchpad = importlib.import_module("recheck.bot.launchpad")
    except ImportError:
        return UrlOnlyTracker()
    try:
        return cast(BugTracker, launchpad.tracker_from_config(config))
    except ConfigError as exc:
        print(f"recheck pages: error: {exc}", file=sys.stderr)
        return None


def _close(tracker: BugTracker) -> None:
    """Stop the tracker's lookups, if it makes any."""
    close = getattr(tracker, "close", None)
    if callable(close):
        close()


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value
