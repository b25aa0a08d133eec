"""Where raw events come from: Gerrit's ``stream-events`` over SSH, or Zuul's builds API.

A reader only hands each raw event to ``enqueue`` (never interprets it) and reconnects
as its ``Backoff`` says for as long as the bot runs. Gerrit does not replay events sent
while nobody listened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import Callable
from typing import Any

from cryptography.utils import CryptographyDeprecationWarning

from recheck.bot.gerrit.events import MalformedEvent, failure_from_zuul
from recheck.bot.log import log
from recheck.bot.metrics import Metrics
from recheck.config.bot import GerritSettings, ZuulSettings
from recheck.config.files import Config
from recheck.lib.backoff import Backoff
from recheck.logs.http import Fetcher, redact
from recheck.logs.source import SourceError
from recheck.logs.zuul import zuul_builds

with warnings.catch_warnings():
    # asyncssh still touches cryptography's deprecated DSA classes at import time, which
    # printed a CryptographyDeprecationWarning on every `recheck bot` start (issue 17.13).
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

__all__ = ["GerritStream", "ZuulPoller", "ssh_connect"]

Enqueue = Callable[[str, str], object]
"""Store one raw event: (source name, raw text)."""

MAX_LINE = 4 << 20
"""The longest stream line accepted (Gerrit's events are a few KiB)."""


def ssh_connect(gerrit: GerritSettings) -> Any:
    """An asyncssh connection to Gerrit's SSH port (use with ``async with``)."""
    options: dict[str, Any] = {
        "port": gerrit.port,
        "username": gerrit.user or (),
        "connect_timeout": 30,
        # Finds a half-dead TCP connection (no RST ever comes) within ~90 s.
        "keepalive_interval": 30,
        "keepalive_count_max": 3,
    }
    if gerrit.key_file is not None:
        options["client_keys"] = [str(gerrit.key_file)]
        options["agent_path"] = None
    if gerrit.known_hosts is not None:
        options["known_hosts"] = str(gerrit.known_hosts)
    return asyncssh.connect(gerrit.host, **options)


class GerritStream:
    """Reads ``gerrit stream-events`` forever, reconnecting with backoff."""

    def __init__(
        self,
        gerrit: GerritSettings,
        enqueue: Enqueue,
        metrics: Metrics,
        backoff: Backoff | None = None,
    ) -> None:
        self.gerrit = gerrit
        self.enqueue = enqueue
        self.metrics = metrics
        self.backoff = backoff or Backoff(initial=1.0, maximum=120.0)
        self.where = f"{gerrit.user}@{gerrit.host}:{gerrit.port}"

    async def run(self) -> None:
        """Read events until cancelled."""
        while True:
            try:
                await self._read()
                problem = "the server closed the stream"
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, asyncssh.Error) as exc:
                problem = _ssh_problem(exc)
            self.metrics.connected = False
            self.metrics.add("errors")
            wait = self.backoff.next()
            log("gerrit_disconnected", logging.WARNING, gerrit=self.where, problem=problem,
                retry_in=round(wait, 2))  # fmt: skip
            await asyncio.sleep(wait)

    async def _read(self) -> None:
        async with ssh_connect(self.gerrit) as conn:
            process = await conn.create_process("gerrit stream-events", encoding=None)
            self.metrics.connected = True
            log("gerrit_connected", gerrit=self.where)
            reader: asyncssh.SSHReader[bytes] = process.stdout
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        self._take(exc.partial)
                    return
                self.backoff.reset()
                self._take(line)

    def _take(self, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").strip()
        if text:
            self.enqueue("gerrit", text[:MAX_LINE])


def _ssh_problem(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.PermissionDenied):
        return "permission denied: check gerrit.user and gerrit.key_file"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return "the server's host key is not in gerrit.known_hosts (or ~/.ssh/known_hosts)"
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}"


_REMEMBERED = 100_000
"""Build uuids remembered between polls (the queue's unique key catches the rest)."""


class ZuulPoller:
    """Polls Zuul's builds API for failed builds; each new one is a raw event."""

    def __init__(
        self,
        config: Config,
        zuul: ZuulSettings,
        enqueue: Enqueue,
        metrics: Metrics,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.zuul = zuul
        self.enqueue = enqueue
        self.metrics = metrics
        self.backoff = backoff or Backoff(initial=zuul.poll_interval, maximum=600.0)
        self._seen: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            ok = await asyncio.to_thread(self.poll_once)
            wait = self.zuul.poll_interval if ok else self.backoff.next()
            if ok:
                self.backoff.reset()
            await asyncio.sleep(wait)

    def poll_once(self) -> bool:
        """One round over the configured pipelines; False when Zuul could not be read."""
        fetcher = Fetcher(self.config.fetch, config_file=self.config.path)
        try:
            for pipeline in self.zuul.pipelines:
                for result in self.zuul.results:
                    records = zuul_builds(
                        fetcher, self.zuul.url, self.zuul.tenant, pipeline=pipeline,
                        result=result, limit=self.zuul.limit,
                    )  # fmt: skip
                    # Oldest first, so the queue handles them in the order they happened.
                    for record in reversed(records):
                        self._take(record)
        except SourceError as exc:
            self.metrics.connected = False
            self.metrics.add("errors")
            log("zuul_unreachable", logging.WARNING, zuul=redact(self.zuul.url), problem=str(exc))
            return False
        finally:
            fetcher.close()
        self.metrics.connected = True
        return True

    def _take(self, record: dict[str, Any]) -> None:
        uuid = str(record.get("uuid") or "")
        if not uuid or uuid in self._seen:
            return
        self._seen[uuid] = None
        if len(self._seen) > _REMEMBERED:
            del self._seen[next(iter(self._seen))]
        try:
            if failure_from_zuul(record, self.zuul.url, self.zuul.tenant) is None:
                return  # no change to comment on (periodic, tag builds)
        except MalformedEvent:
            pass  # queued anyway: the parser logs it with its raw text
        # The queue's key (change, patchset, build uuid) drops builds seen before a restart.
        payload = {"zuul_url": self.zuul.url, "tenant": self.zuul.tenant, "build": record}
        self.enqueue("zuul", json.dumps(payload, sort_keys=True))
