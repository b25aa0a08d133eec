"""The bot's settings (``bot.yaml``): which hosts logs may be fetched from, which files to read.

The file is optional: without one every setting has its default (the ones the shipped
``bot.yaml`` spells out). It is found by ``--config PATH``, else ``$RECHECK_CONFIG``,
else ``./bot.yaml`` when it exists (``find_config``). Settings this module owns:

- ``fetch``: ``allowed_hosts`` (the only hosts logs and Zuul APIs are fetched from: exact
  names or ``*.example.org`` for every subdomain), ``connect_timeout`` and
  ``read_timeout`` (seconds), ``retries`` and ``backoff`` (seconds before the first
  retry, doubled each time), ``max_retry_after`` (the longest a server's Retry-After is
  honoured, in seconds), ``max_file_bytes``, ``max_build_bytes`` and ``download_deadline``
  (the limits of one file and one build: README "Limits").
- ``files``: the file rules (``[{pattern, tags}, ...]``) replacing
  ``recheck.logs.logfiles.DEFAULT_FILE_RULES``.
- ``keep_debug``: keep DEBUG events (as ``--keep-debug`` does).
- ``store``: ``path`` (the store directory; relative to the config file's directory),
  ``event_days`` and ``build_days`` (retention: how long events, and builds with their
  matches, are kept).
- ``pages``: what ``recheck report`` and ``recheck serve`` show (``PagesConfig``).

The whole file is checked against ``recheck.config.schema`` as it is read: a key no
section declares is an error, as is a value of the wrong kind. The sections other modules
turn into their settings (``bot``, ``gerrit``, ``irc``, ``bug_tracker``, ``store``...) are
kept as parsed in ``Config.sections``. The file is read with YAML's safe loader only;
every mistake is a ``ConfigError`` line saying ``bot.yaml:line:column: what is wrong;
what to do``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from recheck.config.errors import ConfigError
from recheck.lib.yamlload import parse_with_fast_loader
from recheck.models import FileRule

if TYPE_CHECKING:
    from pydantic import BaseModel

    from recheck.config.schema import Document, FileEntry

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_ALLOWED_HOSTS",
    "Config",
    "ConfigError",
    "FetchConfig",
    "PagesConfig",
    "StoreConfig",
    "find_config",
    "load_config",
    "parse_config",
    "sections_schema",
]

CONFIG_ENV = "RECHECK_CONFIG"
"""The environment variable naming the config file when ``--config`` is not given."""

DEFAULT_CONFIG_NAME = "bot.yaml"

DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = (
    "zuul.opendev.org",
    "zuul.openstack.org",
    "logs.openstack.org",
    "*.opendev.org",
    # OpenDev uploads build logs to swift object storage donated by cloud providers; a
    # build's log_url points at one of these (seen in real Zuul API answers, 2021).
    "*.rackcdn.com",
    "storage.bhs.cloud.ovh.net",
    "storage.gra.cloud.ovh.net",
)


@dataclass(frozen=True)
class FetchConfig:
    """How logs are fetched over HTTP(S) (``fetch:`` in bot.yaml)."""

    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    """Seconds a server may stay silent, before answering or in the middle of a file."""
    retries: int = 3
    """Further attempts after a connection error, a 5xx or a 429 answer."""
    backoff: float = 1.0
    """Seconds before the first retry; each further retry waits twice as long."""
    max_retry_after: float = 60.0
    """The longest wait a server's ``Retry-After`` header is obeyed for."""
    max_file_bytes: int = 2 << 30
    """The most bytes of one file read: as downloaded, and as text once decompressed
    (``recheck.logs.source.MAX_FILE_BYTES``); the part before is still classified."""
    max_build_bytes: int = 8 << 30
    """The most bytes downloaded for one build's log files; the rest are not fetched."""
    download_deadline: float = 600.0
    """Seconds one file's download may take in all, however steadily the server sends."""
    local_roots: tuple[tuple[str, Path], ...] = ()
    """Log URL prefixes served from local directories instead (a mirror, a trial)."""


@dataclass(frozen=True)
class StoreConfig:
    """Where the history store lives and how long it keeps things (``store:`` in bot.yaml)."""

    path: Path | None = None
    """The store directory; None: ``$RECHECK_HOME``, else ``./.recheck``."""
    # The store's DEFAULT_EVENT_DAYS and DEFAULT_BUILD_DAYS, spelled out here so that
    # reading settings does not load the store (and tantivy).
    event_days: float = 10.0
    """Events (log lines) older than this many days are dropped."""
    build_days: float = 90.0
    """Builds and their matches older than this many days are dropped."""


DEFAULT_INTEGRATED_GATE: tuple[str, ...] = (
    r"openstack/(nova|neutron|cinder|glance|keystone|swift|placement)",
    r"openstack/(tempest|devstack|grenade|requirements)",
)
"""Projects gated together in OpenStack's integrated gate (regexes over the project name)."""


@dataclass(frozen=True)
class PagesConfig:
    """What the pages show (``pages:`` in bot.yaml); the regexes are checked on load."""

    title: str = "recheck"
    queue: str = "gate"
    """The pipeline of the uncategorized-failures page and of the gate trends page."""
    days: int = 10
    """The window of the trend graphs and of the bug pages."""
    integrated_gate: tuple[str, ...] = DEFAULT_INTEGRATED_GATE
    """Regexes matching a whole project name: those projects form the first group."""
    excluded_jobs: str | None = None
    """A regex searched in job names: matching jobs are left off the uncategorized page."""
    review_url: str | None = None
    """A change's review page: a template of ``{project}``, ``{change}``, ``{patchset}``;
    None: ``gerrit.url`` + ``/c/{project}/+/{change}/{patchset}`` when that is set."""
    build_url: str | None = None
    """A build's page: a template of ``{uuid}``, ``{tenant}``, ``{job}``, ``{project}``;
    None: ``zuul.url`` + ``/t/{tenant}/build/{uuid}`` when that is set."""


@dataclass(frozen=True)
class Config:
    """Everything bot.yaml says; each field has its default when the file omits it."""

    fetch: FetchConfig = field(default_factory=FetchConfig)
    files: tuple[FileRule, ...] | None = None
    """The file rules replacing the default list, or None to use the default."""
    keep_debug: bool = False
    sections: Mapping[str, Any] = field(default_factory=dict)
    """Top-level sections other modules own (``gerrit``, ``irc``, ``store``...), as parsed."""
    path: Path | None = None
    """The file these settings came from; None for the built-in defaults."""
    warnings: tuple[str, ...] = ()
    """Things worth telling the user that did not stop loading; none today (an unknown
    key, once a warning, is an error), kept for the commands that print them."""
    store: StoreConfig = field(default_factory=StoreConfig)
    pages: PagesConfig = field(default_factory=PagesConfig)


def find_config(
    explicit: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path | None:
    """The config file to read: ``explicit``, else $RECHECK_CONFIG, else ./bot.yaml if any.

    Raises ConfigError when a file named by ``explicit`` or the environment is missing.
    """
    environ = os.environ if environ is None else environ
    if explicit is not None:
        named, origin = Path(explicit), "--config"
    elif environ.get(CONFIG_ENV):
        named, origin = Path(environ[CONFIG_ENV]), f"${CONFIG_ENV}"
    else:
        default = Path(DEFAULT_CONFIG_NAME) if cwd is None else cwd / DEFAULT_CONFIG_NAME
        return default if default.is_file() else None
    if not named.is_file():
        raise ConfigError(
            f"{named}: no such config file (named by {origin}); "
            "fix the path, or leave it out to use ./bot.yaml or the built-in defaults"
        )
    return named


def load_config(
    explicit: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """The settings from the config file ``find_config`` picks, or the defaults if none."""
    path = find_config(explicit, environ, cwd)
    if path is None:
        return Config()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}:1: not valid UTF-8; re-save the file as UTF-8") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """The settings written in ``text``; ``path`` names the file in errors."""
    # libyaml when present: every command reads the config (the pure-Python loader took
    # ~25 ms of each).
    return parse_with_fast_loader(
        lambda loader: _config(text, path, loader), (ConfigError, yaml.YAMLError)
    )


def _config(text: str, path: Path, loader: type[yaml.SafeLoader]) -> Config:
    # The schema (pydantic) is loaded only when there is a file to check: it takes a
    # good part of a command's start.
    from recheck.config.document import read_document

    document, data = read_document(text, path, loader)
    # The sections other modules read (bot, gerrit, irc, bug_tracker, store...), as
    # written: checked above, they read them again with the settings they own.
    sections = {
        name: value
        for name, value in data.items()
        if name not in ("fetch", "files", "keep_debug", "pages")
    }
    return Config(
        fetch=FetchConfig(
            **{**_given(document.fetch), "local_roots": _local_roots(document.fetch, path)}
        ),
        files=_file_rules(document.files),
        keep_debug=bool(document.keep_debug),
        sections=sections,
        path=path,
        store=StoreConfig(
            **_given(document.store, ("event_days", "build_days")),
            path=None if document.store.path is None else path.parent / document.store.path,
        ),
        pages=PagesConfig(**{**_linked_pages(data), **_given(document.pages)}),
    )


def _linked_pages(data: Mapping[str, Any]) -> dict[str, str]:
    """The pages' review and build links the gerrit and zuul sections imply (the pages
    section may say otherwise)."""
    links = {}
    gerrit, zuul = data.get("gerrit"), data.get("zuul")
    if isinstance(gerrit, dict):
        root = gerrit.get("url") or (f"https://{gerrit['host']}" if gerrit.get("host") else "")
        if isinstance(root, str) and root:
            links["review_url"] = root.rstrip("/") + "/c/{project}/+/{change}/{patchset}"
    if isinstance(zuul, dict) and isinstance(zuul.get("url"), str) and zuul["url"]:
        tenant = zuul.get("tenant") if isinstance(zuul.get("tenant"), str) else None
        links["build_url"] = zuul["url"].rstrip("/") + f"/t/{tenant or '{tenant}'}/build/{{uuid}}"
    return links


def _local_roots(fetch: BaseModel, path: Path) -> tuple[tuple[str, Path], ...]:
    roots: dict[str, str] = getattr(fetch, "local_roots", None) or {}
    return tuple((prefix, path.parent / directory) for prefix, directory in roots.items())


def _file_rules(entries: tuple[FileEntry, ...] | None) -> tuple[FileRule, ...] | None:
    if entries is None:
        return None
    return tuple(FileRule(entry.pattern or "", entry.tags) for entry in entries)


def _given(section: BaseModel, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The keys of ``section`` that bot.yaml gave a value (the others keep their default)."""
    values = section.model_dump(include=set(names) if names else None)
    return {name: value for name, value in values.items() if value is not None}


def sections_schema(config: Config) -> Document:
    """``config.sections`` checked against the schema (ConfigError when wrong), for the
    modules turning them into settings; a Config read from a file has passed already."""
    from recheck.config.document import check
    from recheck.config.schema import Document

    return check(Document, dict(config.sections), None, str(config.path or "bot.yaml"))
