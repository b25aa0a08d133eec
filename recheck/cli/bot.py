"""``recheck bot``: its options and its entry point (cli/main.py only registers it).

Turns options and bot.yaml into the bot's parts (queue, triage, reviewer, notifiers,
reader, metrics server) and runs them: for ever, or with ``--once`` until the queue is
empty. ``--dry-run`` leaves out every part that writes, listens or sends. Exit status 0
after a clean stop, 2 when the settings or files are unusable.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recheck.cli.common import (
    Commands,
    add_config_option,
    add_queries_option,
    add_store_option,
    load_config,
    open_store,
    usage_error,
)

if TYPE_CHECKING:
    from recheck.bot.outcome import Notifier
    from recheck.bot.service import Service
    from recheck.config.bot import BotSettings
    from recheck.config.files import Config
    from recheck.models import BugTracker

__all__ = ["add_parser", "run"]

STATE_NAME = "bot.sqlite"


def add_parser(commands: Commands) -> None:
    """Register ``recheck bot``."""
    bot = commands.add_parser(
        "bot",
        help="run the bot: failed builds in, Gerrit comments and IRC messages out",
        description=(
            "Watch Gerrit's stream-events (or poll Zuul's builds API) for failed builds, "
            "wait for their logs, classify them with the signatures and post one review "
            "comment per failure on the change (and tell IRC). Every event is stored in "
            "the bot's queue before it is handled, so a restart resumes unfinished work "
            "and never posts a comment twice. Settings: bot.yaml's bot, gerrit, zuul, "
            "messages and bug_url sections. Logs are JSON lines on stderr."
        ),
    )
    add_config_option(bot)
    add_queries_option(bot)
    add_store_option(bot)
    bot.add_argument(
        "--no-store",
        action="store_true",
        help="classify without storing builds in the history store (the pages will not see them)",
    )
    bot.add_argument(
        "--state",
        metavar="PATH",
        type=Path,
        help=(
            "the bot's queue file (default: bot.yaml's bot.state, else bot.sqlite in the "
            "store directory; with --dry-run: kept in memory only)"
        ),
    )
    bot.add_argument(
        "--once",
        action="store_true",
        help=(
            "handle what is queued (and --replay'd, or one Zuul poll), waiting for logs "
            "as configured, then exit; without it the bot runs until stopped"
        ),
    )
    bot.add_argument(
        "--replay",
        metavar="FILE",
        help="queue the events of FILE (JSON lines as stream-events prints them; - for stdin)",
    )
    bot.add_argument(
        "--dry-run",
        action="store_true",
        help=(
            "say what the bot would do and do nothing: each Gerrit comment and IRC message "
            "is a JSON line on stdout; no file is written (no store, the queue in memory), "
            "no port opened, nothing posted or sent"
        ),
    )
    bot.add_argument("--no-comment", action="store_true", help="do not comment on Gerrit")
    bot.add_argument("--no-irc", action="store_true", help="do not send IRC messages")
    bot.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="where /healthz and /metrics listen (default: bot.metrics, 127.0.0.1:9108; off)",
    )
    bot.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the bot with the parsed options; returns the exit code."""
    from recheck.bot.history import History
    from recheck.bot.log import log, setup_logging
    from recheck.bot.metrics import Metrics, MetricsServer
    from recheck.bot.queue import BotQueue, QueueError
    from recheck.bot.service import Service, ServiceOptions
    from recheck.bot.triage import SignatureSet, Triage
    from recheck.config.bot import bot_settings
    from recheck.config.files import ConfigError
    from recheck.models import UrlOnlyTracker

    setup_logging()
    config = load_config(args, "bot")
    if config is None:
        return 2
    try:
        settings = bot_settings(config)
        if args.metrics is not None:
            settings = _with_metrics(settings, args.metrics)
    except ConfigError as exc:
        return usage_error("bot", str(exc))
    problem = _missing_settings(settings, args)
    if problem:
        return usage_error("bot", problem)
    if not args.queries.is_dir():
        return usage_error(
            "bot", f"{args.queries}: signature directory not found; pass --queries DIR"
        )

    def signature_problem(message: str) -> None:
        log("signature_skipped", 30, problem=message)

    if args.dry_run:
        # Compiled queries are cached in ~/.cache/recheck (recheck.query.cache): a dry
        # run compiles them again rather than write there.
        os.environ["RECHECK_CACHE_DIR"] = ""
    signatures = SignatureSet(args.queries, signature_problem)
    keep = not (args.no_store or args.dry_run)  # a dry run classifies without storing
    store = open_store(args, config, "bot", auto_gc=True) if keep else None
    if store is None and keep:
        return 2
    history = None if store is None else History(config, signatures, store)
    if history is not None:
        signatures.on_load = history.want_reclassify  # done behind the comments
    signatures.current()
    state = _state_path(args, settings, store)
    try:
        queue = BotQueue(state)
    except QueueError as exc:
        if store is not None:
            store.close()
        return usage_error("bot", str(exc))
    tracker = UrlOnlyTracker(settings.bug_url)
    notifiers: list[Notifier] = []
    metrics_server: MetricsServer | None = None
    try:
        if not args.no_irc:
            notifiers = _irc_notifiers(config, tracker, args.dry_run)
        metrics = Metrics()
        if settings.metrics not in ("", "off") and not args.dry_run:
            host, _, port = settings.metrics.rpartition(":")
            try:
                metrics_server = MetricsServer(metrics, host, int(port)).start()
            except OSError as exc:
                return usage_error(
                    "bot", f"cannot serve metrics on {settings.metrics}: {exc.strerror or exc}; "
                    "choose another bot.metrics or --metrics (off disables it)"
                )  # fmt: skip
        flaky = None if history is None else history.flaky  # marks in the comment
        elsewhere = None if history is None else history.elsewhere  # "new or known"
        triage = Triage(config, signatures, flaky, elsewhere)
        service = Service(
            settings, queue, triage, _reviewer(settings, args),
            tracker, notifiers=notifiers, metrics=metrics, history=history,
            options=ServiceOptions(comment=not args.no_comment, dry_run=args.dry_run),
        )  # fmt: skip
        log("bot_started", source=settings.source, state=str(state),
            store=None if store is None else store.path, signatures=len(signatures.current()),
            metrics_port=None if metrics_server is None else metrics_server.port,
            once=args.once, dry_run=args.dry_run, comment=not args.no_comment,
            irc=len(notifiers))  # fmt: skip
        if args.replay and not _replay(service, args.replay):
            return 2
        if args.once:
            _run_once(service, config, settings)
        else:
            import asyncio  # here: importing it costs every other command ~30 ms

            asyncio.run(_serve(service, config, settings))
        log("bot_stopped", queue=queue.counts())
        return 0
    except ConfigError as exc:
        return usage_error("bot", str(exc))
    finally:
        for notifier in notifiers:
            close = getattr(notifier, "close", None)
            if callable(close):
                close()
        if metrics_server is not None:
            metrics_server.close()
        queue.close()
        if store is not None:
            store.close()


def _with_metrics(settings: BotSettings, value: str) -> BotSettings:
    import dataclasses
    import re

    from recheck.config.files import ConfigError

    if value not in ("", "off") and not re.fullmatch(r"[^:\s]*:\d{1,5}", value):
        raise ConfigError(f"--metrics {value}: give host:port such as 127.0.0.1:9108, or off")
    return dataclasses.replace(settings, metrics=value)


def _missing_settings(settings: BotSettings, args: argparse.Namespace) -> str | None:
    """What bot.yaml must still say for this run, or None."""
    where = "bot.yaml"
    reads_stream = not args.once and settings.source == "gerrit"
    if reads_stream and not settings.gerrit.host:
        return f"{where}: gerrit.host is not set; say where Gerrit's SSH port is (or use --once)"
    if settings.source == "zuul" and not (settings.zuul.url and settings.zuul.tenant):
        return f"{where}: bot.source is zuul but zuul.url or zuul.tenant is not set"
    posts = not (args.dry_run or args.no_comment)
    if posts and settings.gerrit.post == "rest" and not settings.gerrit.url:
        return (
            f"{where}: gerrit.url is not set, so comments cannot be posted through REST; set it "
            "(and http_user, http_password_env), or use gerrit.post: ssh, --no-comment or --dry-run"
        )
    if posts and settings.gerrit.post == "ssh" and not settings.gerrit.host:
        return f"{where}: gerrit.post is ssh but gerrit.host is not set"
    return None


def _state_path(args: argparse.Namespace, settings: BotSettings, store: Any) -> Path | str:
    """``:memory:`` for a dry run, else ``--state``, bot.state, or bot.sqlite beside the
    store."""
    from recheck.store import default_store_path

    if args.dry_run:
        return ":memory:"  # a trial writes nothing, nor marks real events as handled
    if args.state is not None:
        return Path(args.state)
    if settings.state is not None:
        return settings.state
    if store is not None and Path(store.path).is_dir():
        return Path(store.path) / STATE_NAME
    return default_store_path() / STATE_NAME


def _reviewer(settings: BotSettings, args: argparse.Namespace) -> Any:
    from recheck.bot.gerrit.review import RestReviewer, SshReviewer

    if args.dry_run or args.no_comment or settings.gerrit.post == "none":
        return None
    if settings.gerrit.post == "ssh":
        return SshReviewer(settings.gerrit)
    return RestReviewer(settings.gerrit)


def _irc_notifiers(config: Config, tracker: BugTracker, dry_run: bool) -> list[Notifier]:
    """The IRC notifiers of ``recheck.bot.irc.notifier`` (issue 7), with the bug tracker bot.yaml
    chooses for them (``recheck.bot.launchpad``: titles looked up) when those modules exist.
    A dry run prints the messages on stdout, with ``tracker`` (links, no titles): the
    Launchpad tracker would write its cache."""
    if importlib.util.find_spec("recheck.bot.irc.notifier") is None:
        return []
    irc = importlib.import_module("recheck.bot.irc.notifier")
    if dry_run:
        return list(irc.notifiers_from_config(config, tracker, dry_run=sys.stdout))
    if importlib.util.find_spec("recheck.bot.launchpad") is not None:
        tracker = importlib.import_module("recheck.bot.launchpad").tracker_from_config(config)
    return list(irc.notifiers_from_config(config, tracker))


def _replay(service: Service, name: str) -> bool:
    try:
        if name == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(name).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        usage_error("bot", f"{name}: cannot read it: {exc.strerror or exc}")
        return False
    for line in lines:
        if line.strip():
            service.enqueue("gerrit", line.strip())
    return True


def _run_once(service: Service, config: Config, settings: BotSettings) -> None:
    from recheck.bot.gerrit.stream import ZuulPoller

    if settings.source == "zuul":
        ZuulPoller(config, settings.zuul, service.enqueue, service.metrics).poll_once()
    workers = [
        threading.Thread(target=service.drain, name=f"recheck-bot-{n}", daemon=True)
        for n in range(settings.workers)
    ]
    workers.append(threading.Thread(target=service.drain_history, name="recheck-history"))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


async def _serve(service: Service, config: Config, settings: BotSettings) -> None:
    """Read events and work on them until SIGINT or SIGTERM."""
    import asyncio

    from recheck.bot.gerrit.stream import GerritStream, ZuulPoller

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    workers = [
        threading.Thread(target=service.work_forever, name=f"recheck-bot-{n}", daemon=True)
        for n in range(settings.workers)
    ]
    workers.append(
        threading.Thread(target=service.history_forever, name="recheck-history", daemon=True)
    )
    for worker in workers:
        worker.start()
    reader: GerritStream | ZuulPoller
    if settings.source == "zuul":
        reader = ZuulPoller(config, settings.zuul, service.enqueue, service.metrics)
    else:
        reader = GerritStream(settings.gerrit, service.enqueue, service.metrics)
    reading = asyncio.create_task(reader.run())
    await stopping.wait()
    reading.cancel()
    service.stop()
    for worker in workers:
        await asyncio.to_thread(worker.join, 60)
