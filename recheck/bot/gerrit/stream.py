"""Where raw events come from: Gerrit's ``stream-events`` over SSH, or Zuul's builds API.

A reader hands each raw event to ``enqueue`` and reconnects as its ``Backoff`` says for
as long as the bot runs. Gerrit does not replay events sent while nobody listened. The
Zuul poller groups failed builds by buildset and queues a buildset once Zuul reported it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
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
from recheck.logs.zuul import zuul_build_time, zuul_builds, zuul_buildset

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
"""Build and buildset uuids remembered between polls (the queue's unique key catches the
rest)."""

BUILDSET_SETTLE = 1800.0
"""Seconds after its last build ended that a buildset Zuul never reported (its result
stays null: the scheduler dropped it) counts as finished. Zuul 4 and later list a build
once it starts, not once it is queued, so "every listed build has a result" alone can be
true while a job waiting for nodes or for a job it depends on is still to come."""

MAX_PENDING = 12 * 3600.0
"""Seconds a buildset is waited for before its failed builds seen so far are reported
(Zuul keeps failing to answer for it, or it never finishes)."""


@dataclass
class _Pending:
    """A buildset with failed builds, waiting for Zuul to report it."""

    since: float
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Its failed build records from the builds lists, by build uuid."""


class ZuulPoller:
    """Polls Zuul's builds API for failed builds; each buildset is one raw event.

    Failed builds are grouped by buildset until Zuul has reported it, then each change
    of the buildset is queued once with all of its builds (``failure_from_zuul`` reads
    it), so one buildset gets one comment. What waits is kept in memory only: after a
    restart the builds lists show the same builds again, and the queue's key (change,
    patchset, buildset) drops what was queued before.
    """

    def __init__(
        self,
        config: Config,
        zuul: ZuulSettings,
        enqueue: Enqueue,
        metrics: Metrics,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.zuul = zuul
        self.enqueue = enqueue
        self.metrics = metrics
        self.backoff = backoff or Backoff(initial=zuul.poll_interval, maximum=600.0)
        self.clock = clock
        self._seen: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first
        self._pending: dict[str, _Pending] = {}  # by buildset uuid, the oldest first

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            ok = await asyncio.to_thread(self.poll_once)
            wait = self.zuul.poll_interval if ok else self.backoff.next()
            if ok:
                self.backoff.reset()
            await asyncio.sleep(wait)

    def poll_once(self) -> bool:
        """One round over the configured pipelines, then over the buildsets waiting to be
        reported; False when Zuul's builds could not be listed."""
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
            self._settle(fetcher)
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
        self._remember(uuid)
        buildset = _buildset_uuid(record)
        if buildset is None:
            self._queue(record)  # a build of no buildset (never seen from Zuul): on its own
        elif buildset not in self._seen:  # else its buildset was queued already
            self._pending.setdefault(buildset, _Pending(self.clock())).records[uuid] = record

    def _settle(self, fetcher: Fetcher) -> None:
        """Queue the waiting buildsets Zuul has reported (or that waited too long)."""
        now = self.clock()
        for uuid, pending in list(self._pending.items()):
            overdue = now - pending.since >= MAX_PENDING
            try:
                buildset = zuul_buildset(fetcher, self.zuul.url, self.zuul.tenant, uuid)
            except SourceError as exc:
                log("zuul_buildset_unreadable", logging.WARNING, buildset=uuid,
                    problem=str(exc), gives_up=overdue)  # fmt: skip
                if not overdue:
                    continue
                buildset = None
            if buildset is None:
                # No buildset API (404): a Zuul that old lists a buildset's builds only
                # once it has reported, so the builds seen are all there is.
                buildset = _from_records(uuid, pending.records)
            elif not _reported(buildset, now):
                if not overdue:
                    continue
                log("zuul_buildset_unreported", logging.WARNING, buildset=uuid,
                    waited=round(now - pending.since))  # fmt: skip
            del self._pending[uuid]
            self._remember(uuid)
            for part in _per_change(buildset):
                self._queue(part)

    def _queue(self, record: dict[str, Any]) -> None:
        """Queue a build or buildset record (``failure_from_zuul`` reads either) if it
        reports a failure, or if it is malformed (the parser logs it with its text)."""
        try:
            if failure_from_zuul(record, self.zuul.url, self.zuul.tenant) is None:
                return  # no voting job failed, or no change to comment on
        except MalformedEvent:
            pass
        # The payload's "build" holds a buildset record too: the parser reads that key.
        payload = {"zuul_url": self.zuul.url, "tenant": self.zuul.tenant, "build": record}
        self.enqueue("zuul", json.dumps(payload, sort_keys=True))

    def _remember(self, uuid: str) -> None:
        self._seen[uuid] = None
        if len(self._seen) > _REMEMBERED:
            del self._seen[next(iter(self._seen))]


def _buildset_uuid(record: dict[str, Any]) -> str | None:
    buildset = record.get("buildset")
    uuid = buildset.get("uuid") if isinstance(buildset, dict) else None
    return uuid if isinstance(uuid, str) and uuid else None


def _reported(buildset: dict[str, Any], now: float) -> bool:
    """Has Zuul reported the buildset: it has a result, or (Zuul never reported it) all
    of its builds have one and the last ended ``BUILDSET_SETTLE`` ago."""
    if buildset.get("result") not in (None, "", "None"):
        return True
    builds = buildset.get("builds") or []
    if not builds or any(build.get("result") in (None, "", "None") for build in builds):
        return False
    ends = [zuul_build_time(build, "end_time") for build in builds]
    last = max((end for end in ends if end is not None), default=None)
    return last is not None and now - last.timestamp() >= BUILDSET_SETTLE


def _from_records(uuid: str, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A buildset record made of its failed builds as the builds lists gave them."""
    builds = list(records.values())
    first = builds[0] if builds else {}
    # Zuuls before 10 put the change on each listed build; 10 in each build's "ref".
    change = {key: first.get(key) for key in _CHANGE_FIELDS if key in first}
    return {**change, "uuid": uuid, "result": None, "pipeline": first.get("pipeline"),
            "builds": builds}  # fmt: skip


_CHANGE_FIELDS = ("project", "branch", "change", "patchset", "ref", "newrev", "ref_url")


def _per_change(buildset: dict[str, Any]) -> list[dict[str, Any]]:
    """The buildset once per change it tested (Zuul 10 tests a dependency cycle's changes
    in one buildset, each build naming its change in ``ref``), with that change's builds."""
    groups: dict[str, list[Any]] = {}
    builds = buildset.get("builds")
    for build in builds if isinstance(builds, list) else []:
        ref = build.get("ref") if isinstance(build, dict) else None
        change = [ref.get("change"), ref.get("patchset")] if isinstance(ref, dict) else None
        groups.setdefault(json.dumps(change, default=str), []).append(build)
    if len(groups) <= 1:
        return [buildset]
    return [{**buildset, "builds": group} for group in groups.values()]
