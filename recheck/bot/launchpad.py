"""Launchpad as the bug tracker: titles, status and affected projects, cached on disk.

Lookups run on a worker thread of their own, so a caller waits at most ``timeout``
seconds and otherwise gets what the cache (``<store>/launchpad/``) holds: a slow or down
Launchpad never holds up a report. ``tracker_from_config`` reads bot.yaml's
``bug_tracker:`` (``type``: launchpad or url, ``url``, ``service_root``, ``api_version``,
``cache_ttl``, ``missing_ttl``, ``timeout``, ``outage_pause``; see the README's "IRC").
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recheck.config.files import Config, ConfigError
from recheck.models import DEFAULT_BUG_URL, BugInfo, BugTracker, UrlOnlyTracker

__all__ = [
    "DEFAULT_SERVICE_ROOT",
    "BugCache",
    "CachedBug",
    "LaunchpadSettings",
    "LaunchpadTracker",
    "tracker_from_config",
]

log = logging.getLogger(__name__)

DEFAULT_SERVICE_ROOT = "https://api.launchpad.net/"
CONSUMER_NAME = "recheck"
"""How recheck names itself to Launchpad (anonymous logins still name an application)."""

# HTTP answers meaning "this bug is not for you to see" rather than "Launchpad is down".
_NOT_VISIBLE = frozenset({401, 403, 404, 410})


@dataclass(frozen=True)
class LaunchpadSettings:
    """Where Launchpad is and how long its answers are trusted."""

    cache_dir: Path
    service_root: str = DEFAULT_SERVICE_ROOT
    api_version: str = "devel"
    bug_url: str = DEFAULT_BUG_URL
    cache_ttl: float = 6 * 3600.0
    missing_ttl: float = 3600.0
    timeout: float = 10.0
    outage_pause: float = 300.0


@dataclass(frozen=True)
class CachedBug:
    """A cache entry: the bug's data, or None for a private or missing bug."""

    info: BugInfo | None
    fetched_at: float


class BugCache:
    """One JSON file per bug; unreadable files count as absent."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, bug: str) -> Path:
        return self.directory / f"{bug}.json"

    def get(self, bug: str) -> CachedBug | None:
        """The stored entry for ``bug`` whatever its age, or None."""
        path = self._path(bug)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            fetched_at = float(data["fetched_at"])
            if not data["found"]:
                return CachedBug(None, fetched_at)
            info = BugInfo(
                bug=bug,
                title=str(data["title"]),
                status=str(data.get("status", "")),
                projects=tuple(str(name) for name in data.get("projects", ())),
            )
            return CachedBug(info, fetched_at)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "%s: unreadable Launchpad cache entry (%s); looking the bug up again", path, exc
            )
            return None

    def put(self, bug: str, info: BugInfo | None, fetched_at: float) -> None:
        """Store ``info`` (None: private or missing); a write error is logged, not raised."""
        data: dict[str, Any] = {"bug": bug, "fetched_at": fetched_at, "found": info is not None}
        if info is not None:
            data.update(title=info.title, status=info.status, projects=list(info.projects))
        path = self._path(bug)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, path)  # readers see the old file or the new one, whole
        except OSError as exc:
            log.warning("%s: cannot write the Launchpad cache: %s", path, exc.strerror or exc)


class LaunchpadTracker:
    """A BugTracker backed by Launchpad's web service and a disk cache."""

    def __init__(self, settings: LaunchpadSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.cache = BugCache(settings.cache_dir / "bugs")
        self._clock = clock
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="recheck-launchpad"
        )
        self._lock = threading.Lock()
        self._in_flight: dict[str, concurrent.futures.Future[BugInfo | None]] = {}
        self._paused_until = 0.0
        self._launchpad: Any = None  # touched by the worker thread only
        self.requests = 0
        """Bugs asked of Launchpad (not answered from the cache), for tests and stats."""

    def url(self, bug: str) -> str:
        """The bug's web page."""
        return self.settings.bug_url.format(bug=bug)

    def lookup(self, bug: str) -> BugInfo | None:
        """The bug's data from the cache or Launchpad; None when unknown. Never raises."""
        bug = bug.strip()
        if not bug.isdigit():
            return None  # Launchpad bugs are numbers; anything else cannot be looked up
        cached = self.cache.get(bug)
        stale = cached.info if cached is not None else None
        now = self._clock()
        if cached is not None:
            ttl = self.settings.cache_ttl if cached.info is not None else self.settings.missing_ttl
            if now - cached.fetched_at < ttl:
                return cached.info
        if now < self._paused_until:
            return stale
        future = self._fetch_async(bug)
        try:
            return future.result(timeout=self.settings.timeout)
        except concurrent.futures.TimeoutError:
            # The one worker is stuck on this request: later lookups would queue behind
            # it, so they use the cache until the pause ends (the answer still lands).
            self._paused_until = self._clock() + self.settings.outage_pause
            log.warning(
                "Launchpad: bug %s not answered within %.0f s; going on without its title "
                "and using cached bug data only for the next %.0f s",
                bug,
                self.settings.timeout,
                self.settings.outage_pause,
            )
            return stale
        except Exception:  # the worker catches its own errors; this is a last guard
            log.exception("Launchpad: looking up bug %s failed", bug)
            return stale

    def close(self) -> None:
        """Stop the worker thread (lookups in progress are abandoned)."""
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _fetch_async(self, bug: str) -> concurrent.futures.Future[BugInfo | None]:
        with self._lock:
            future = self._in_flight.get(bug)
            if future is not None:
                return future
            future = self._worker.submit(self._fetch, bug)
            self._in_flight[bug] = future
        # Outside the lock: a future already done (a refused connection is quick) runs
        # the callback at once, in this thread, and _forget takes the lock.
        future.add_done_callback(lambda _: self._forget(bug))
        return future

    def _forget(self, bug: str) -> None:
        with self._lock:
            self._in_flight.pop(bug, None)

    def _fetch(self, bug: str) -> BugInfo | None:
        """Ask Launchpad (worker thread); caches the answer unless Launchpad failed."""
        if self._clock() < self._paused_until:
            cached = self.cache.get(bug)
            return cached.info if cached is not None else None
        self.requests += 1
        try:
            info = self._read_bug(bug)
        except Exception as exc:
            status = _http_status(exc)
            if status in _NOT_VISIBLE or isinstance(exc, KeyError):
                log.info(
                    "Launchpad: bug %s is private or does not exist (%s)", bug, status or "404"
                )
                self.cache.put(bug, None, self._clock())
                return None
            self._paused_until = self._clock() + self.settings.outage_pause
            self._launchpad = None  # log in afresh next time: the service may have changed
            log.warning(
                "Launchpad at %s failed (%s: %s); using cached bug data only for the next %.0f s",
                self.settings.service_root,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                self.settings.outage_pause,
            )
            cached = self.cache.get(bug)
            return cached.info if cached is not None else None
        self.cache.put(bug, info, self._clock())
        return info

    def _read_bug(self, bug: str) -> BugInfo:
        launchpad = self._login()
        entry = launchpad.bugs[int(bug)]
        title = str(entry.title or "")
        projects: list[str] = []
        status = ""
        for task in entry.bug_tasks:
            # "sahara/kilo" is sahara's kilo series: the project is sahara.
            target = str(task.bug_target_name or "").split("/", 1)[0]
            if target and target not in projects:
                projects.append(target)
            if not status:
                status = str(task.status or "")
        return BugInfo(bug=bug, title=title, status=status, projects=tuple(projects))

    def _login(self) -> Any:
        if self._launchpad is None:
            from launchpadlib.launchpad import Launchpad

            settings = self.settings
            launchpad = Launchpad.login_anonymously(
                CONSUMER_NAME,
                service_root=settings.service_root,
                launchpadlib_dir=str(settings.cache_dir / "launchpadlib"),
                timeout=settings.timeout,
                version=settings.api_version,
            )
            # launchpadlib retries a 502/503 six times over 31 s; the cache and the
            # outage pause do that job here without holding the worker.
            launchpad._browser.max_retries = 0
            self._launchpad = launchpad
        return self._launchpad


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status of a lazr.restfulclient HTTPError, else None."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status", None)
    return status if isinstance(status, int) else None


_TRACKER_KEYS = (
    "type",
    "url",
    "service_root",
    "api_version",
    "cache_ttl",
    "missing_ttl",
    "timeout",
    "outage_pause",
)


def tracker_from_config(config: Config) -> BugTracker:
    """The bug tracker bot.yaml's ``bug_tracker:`` asks for (Launchpad by default).

    A ``type: url`` tracker, or a missing launchpadlib, gives a UrlOnlyTracker that only
    builds links. Raises ConfigError naming the key when a value is unusable.
    """
    where = str(config.path or "bot.yaml")
    raw = config.sections.get("bug_tracker", {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: bug_tracker must be a mapping of 'key: value' lines")
    unknown = sorted(set(raw) - set(_TRACKER_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key 'bug_tracker.{unknown[0]}'; "
            f"known keys: {', '.join(_TRACKER_KEYS)}"
        )
    # The bot's top-level bug_url wins, as it does for Gerrit comments: both links agree.
    url = config.sections.get("bug_url", raw.get("url", DEFAULT_BUG_URL))
    if (
        not isinstance(url, str)
        or "{bug}" not in url
        or not url.startswith(("http://", "https://"))
    ):
        raise ConfigError(
            f"{where}: bug_url / bug_tracker.url must be an http(s) URL with {{bug}} where "
            f"the bug id goes, such as {DEFAULT_BUG_URL}, found {url!r}"
        )
    kind = raw.get("type", "launchpad")
    if kind not in ("launchpad", "url"):
        raise ConfigError(f"{where}: bug_tracker.type must be launchpad or url, found {kind!r}")
    if kind == "url":
        return UrlOnlyTracker(url)
    if importlib.util.find_spec("launchpadlib") is None:
        log.warning(
            "launchpadlib is not installed: bug titles will not be looked up "
            "(pip install launchpadlib, or set bug_tracker.type: url to silence this)"
        )
        return UrlOnlyTracker(url)
    values: dict[str, Any] = {"bug_url": url, "cache_dir": _store_dir(config) / "launchpad"}
    for name in ("service_root", "api_version"):
        if name in raw:
            value = raw[name]
            if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
                raise ConfigError(f"{where}: bug_tracker.{name} must be one word, found {value!r}")
            values[name] = value.strip()
    root = values.get("service_root", DEFAULT_SERVICE_ROOT)
    if not root.startswith(("http://", "https://")):
        raise ConfigError(
            f"{where}: bug_tracker.service_root must be an http(s) URL such as "
            f"{DEFAULT_SERVICE_ROOT}, found {root!r}"
        )
    for name in ("cache_ttl", "missing_ttl", "timeout", "outage_pause"):
        if name in raw:
            value = raw[name]
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= 0:
                raise ConfigError(
                    f"{where}: bug_tracker.{name} must be a number of seconds above 0, "
                    f"found {value!r}"
                )
            values[name] = float(value)
    return LaunchpadTracker(LaunchpadSettings(**values))


def _store_dir(config: Config) -> Path:
    """bot.yaml's store.path, else $RECHECK_HOME, else ./.recheck (the store's own rule)."""
    if config.store.path is not None:
        return config.store.path
    from recheck.store import default_store_path

    return default_store_path()
