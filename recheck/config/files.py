"""The bot's settings (``bot.yaml``): which hosts logs may be fetched from, which files to read.

The file is optional: without one every setting has its default (the ones the shipped
``bot.yaml`` spells out). It is found by ``--config PATH``, else ``$RECHECK_CONFIG``,
else ``./bot.yaml`` when it exists (``find_config``). Settings this module owns:

- ``fetch``: ``allowed_hosts`` (the only hosts logs and Zuul APIs are fetched from: exact
  names or ``*.example.org`` for every subdomain), ``connect_timeout`` and
  ``read_timeout`` (seconds), ``retries`` and ``backoff`` (seconds before the first
  retry, doubled each time), ``max_retry_after`` (the longest a server's Retry-After is
  honoured, in seconds).
- ``files``: the file rules (``[{pattern, tags}, ...]``) replacing
  ``recheck.logs.logfiles.DEFAULT_FILE_RULES``.
- ``keep_debug``: keep DEBUG events (as ``--keep-debug`` does).
- ``store``: ``path`` (the store directory; relative to the config file's directory),
  ``event_days`` and ``build_days`` (retention: how long events, and builds with their
  matches, are kept).
- ``pages``: what ``recheck report`` and ``recheck serve`` show (``PagesConfig``).

Any other top-level section (``gerrit``, ``irc``, ``channels``, ``messages``...) is kept
as parsed, unchecked, in ``Config.sections`` for the parts of the bot that own it
(``store`` is kept there too, as written). The file is read with YAML's safe loader
only; every mistake is a ``ConfigError`` saying ``bot.yaml:line:column: what is wrong;
what to do``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

import yaml

from recheck.lib.yamlload import parse_with_fast_loader
from recheck.logs.logfiles import DEFAULT_FILE_RULES, FileRule

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

# A host name (letters, digits, '-', '.', '_' as some internal hosts use), an IPv4
# address, or an IPv6 address without brackets; optionally '*.' before a domain.
_HOST = re.compile(
    r"(\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|[0-9A-Fa-f:]+:[0-9A-Fa-f:.]*"
)


class ConfigError(Exception):
    """The config file is unusable; the message says where, what, and what to do."""


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
    """Things worth telling the user that did not stop loading (likely typos)."""
    store: StoreConfig = field(default_factory=StoreConfig)
    pages: PagesConfig = field(default_factory=PagesConfig)

    @property
    def file_rules(self) -> tuple[FileRule, ...]:
        """The file rules in force: bot.yaml's ``files`` or the default list."""
        return self.files if self.files is not None else DEFAULT_FILE_RULES


_TOP_KEYS = ("fetch", "files", "keep_debug", "store", "pages")
# Sections other issues will give meaning to; named so that a near miss of one of them
# is not mistaken for a typo of ours and so that typos of them get a hint too.
_OTHER_SECTIONS = ("gerrit", "irc", "channels", "messages", "web", "zuul", "bug_tracker")
_FETCH_KEYS = tuple(item.name for item in fields(FetchConfig))
_STORE_KEYS = tuple(item.name for item in fields(StoreConfig))
_PAGES_KEYS = tuple(item.name for item in fields(PagesConfig))
_PAGE_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_OTHER_PAGES = ("index", "uncategorized", "api", "static", "bugs")


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
        lambda loader: _Reader(text, path, loader).config(), (ConfigError, yaml.YAMLError)
    )


# A node of the composed YAML and the value YAML's safe constructors make of it.
_Entry = tuple[yaml.Node, Any]


class _Reader:
    """Checks one config file node by node, so that errors can name a line and column."""

    def __init__(self, text: str, path: Path, loader: type[yaml.SafeLoader]) -> None:
        self.text = text
        self.path = path
        self.loader = loader(text)
        self.warnings: list[str] = []

    def config(self) -> Config:
        try:
            root = self._compose()
            if root is None:
                return Config(path=self.path)
            top = self._mapping(root, "the file", _TOP_KEYS, strict=False)
        finally:
            self.loader.dispose()
        fetch = FetchConfig()
        if "fetch" in top:
            fetch = self._fetch(top.pop("fetch"))
        files = self._files(top.pop("files")) if "files" in top else None
        keep_debug = (
            self._bool(top.pop("keep_debug"), "keep_debug") if "keep_debug" in top else False
        )
        store = self._store(top["store"]) if "store" in top else StoreConfig()
        pages = self._pages(top.pop("pages")) if "pages" in top else PagesConfig()
        sections = {name: value for name, (_, value) in top.items()}
        return Config(
            fetch, files, keep_debug, sections, self.path, tuple(self.warnings), store, pages
        )

    # --- sections ---------------------------------------------------------------------

    def _fetch(self, entry: _Entry) -> FetchConfig:
        node, _ = entry
        keys = self._mapping(node, "fetch", _FETCH_KEYS, strict=True)
        values: dict[str, Any] = {}
        if "allowed_hosts" in keys:
            values["allowed_hosts"] = self._hosts(keys["allowed_hosts"])
        for name in ("connect_timeout", "read_timeout"):
            if name in keys:
                values[name] = self._number(keys[name], f"fetch.{name}", positive=True)
        for name in ("backoff", "max_retry_after"):
            if name in keys:
                values[name] = self._number(keys[name], f"fetch.{name}", positive=False)
        if "retries" in keys:
            node, value = keys["retries"]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
                self._fail(
                    node, f"fetch.retries must be a whole number from 0 to 20, found {_kind(value)}"
                )
            values["retries"] = value
        return FetchConfig(**values)

    def _store(self, entry: _Entry) -> StoreConfig:
        node, _ = entry
        # Not strict: the other keys choose and configure a cluster store (recheck.store).
        keys = self._mapping(node, "store", _STORE_KEYS, strict=False)
        values: dict[str, Any] = {}
        backend = keys.get("backend", (None, "embedded"))[1]
        if "path" in keys and backend in ("elasticsearch", "opensearch"):
            # Said here, with the line, rather than silently using one of the two.
            self._fail(
                keys["path"][0],
                f"store.path is the embedded store's directory, but backend: {backend} keeps "
                "the history in the cluster (store.url); remove store.path, or the backend",
            )
        if "path" in keys:
            path_node, path = keys["path"]
            if not isinstance(path, str) or not path.strip():
                self._fail(
                    path_node,
                    f"store.path must be a directory such as /var/lib/recheck, found {_kind(path)}",
                )
            values["path"] = self.path.parent / Path(path.strip()).expanduser()
        for name in ("event_days", "build_days"):
            if name in keys:
                days_node, days = keys[name]
                number = isinstance(days, int | float) and not isinstance(days, bool)
                if not number or not math.isfinite(days) or days <= 0:
                    self._fail(
                        days_node,
                        f"store.{name} must be a number of days above 0, found {_kind(days)}",
                    )
                values[name] = float(days)
        return StoreConfig(**values)

    def _pages(self, entry: _Entry) -> PagesConfig:
        node, _ = entry
        keys = self._mapping(node, "pages", _PAGES_KEYS, strict=True)
        values: dict[str, Any] = {}
        for name in ("title", "queue"):
            if name in keys:
                text_node, text = keys[name]
                if not isinstance(text, str) or not text.strip():
                    self._fail(text_node, f"pages.{name} must be some text, found {_kind(text)}")
                values[name] = text.strip()
        # The queue names a page (gate.html): a plain word that no other page has.
        queue = values.get("queue", "gate")
        if not _PAGE_WORD.fullmatch(queue) or queue.startswith(_OTHER_PAGES):
            self._fail(
                keys["queue"][0],
                f"pages.queue must be a pipeline name such as gate (letters, digits, '-', "
                f"'_', '.'; not {', '.join(_OTHER_PAGES)}), found {_kind(queue)}",
            )
        if "days" in keys:
            days_node, days = keys["days"]
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
                self._fail(
                    days_node,
                    f"pages.days must be a whole number from 1 to 90, found {_kind(days)}",
                )
            values["days"] = days
        if "integrated_gate" in keys:
            list_node, patterns = keys["integrated_gate"]
            if not isinstance(patterns, list):
                self._fail(
                    list_node,
                    "pages.integrated_gate must be a list of project names or regexes "
                    f"('- openstack/nova' lines), found {_kind(patterns)}",
                )
            values["integrated_gate"] = tuple(
                self._regex((item_node, item), "pages.integrated_gate entry")
                for item_node, item in zip(list_node.value, patterns, strict=True)
            )
        if "excluded_jobs" in keys and keys["excluded_jobs"][1] is not None:
            values["excluded_jobs"] = self._regex(keys["excluded_jobs"], "pages.excluded_jobs")
        return PagesConfig(**values)

    def _regex(self, entry: _Entry, name: str) -> str:
        node, value = entry
        if not isinstance(value, str) or not value.strip():
            self._fail(node, f"{name} must be a regular expression, found {_kind(value)}")
        try:
            re.compile(value.strip())
        except re.error as exc:
            self._fail(node, f"{name} is not a valid regular expression: {exc}; fix it")
        return value.strip()

    def _hosts(self, entry: _Entry) -> tuple[str, ...]:
        node, value = entry
        if not isinstance(value, list):
            self._fail(
                node,
                f"fetch.allowed_hosts must be a list of host names ('- logs.example.org' "
                f"lines), found {_kind(value)}",
            )
        hosts: list[str] = []
        for item_node, item in zip(node.value, value, strict=True):
            if not isinstance(item, str) or not _HOST.fullmatch(item.strip()):
                self._fail(
                    item_node,
                    "each fetch.allowed_hosts entry must be a host name such as "
                    "logs.example.org, or *.example.org for all its subdomains (no scheme, "
                    f"port or path), found {_kind(item)}",
                )
            hosts.append(item.strip().lower())
        return tuple(hosts)

    def _files(self, entry: _Entry) -> tuple[FileRule, ...]:
        node, value = entry
        example = "- {pattern: job-output.txt, tags: [console, console.html]}"
        if not isinstance(value, list) or not value:
            self._fail(
                node,
                f"files must be a non-empty list of file rules ('{example}'), found "
                f"{_kind(value)}; leave 'files' out to use the default list",
            )
        rules: list[FileRule] = []
        for item_node, _ in zip(node.value, value, strict=True):
            keys = self._mapping(item_node, "a files entry", ("pattern", "tags"), strict=True)
            if "pattern" not in keys:
                self._fail(item_node, f"a files entry needs a 'pattern' ({example})")
            pattern_node, pattern = keys["pattern"]
            if not isinstance(pattern, str) or not pattern.strip():
                self._fail(
                    pattern_node,
                    "'pattern' must be a path relative to the build's log root such as "
                    f"controller/logs/screen-*.txt, found {_kind(pattern)}",
                )
            tags: tuple[str, ...] = ()
            if "tags" in keys:
                tags_node, tag_list = keys["tags"]
                if not isinstance(tag_list, list) or not all(
                    isinstance(tag, str) and tag.strip() for tag in tag_list
                ):
                    self._fail(
                        tags_node,
                        f"'tags' must be a list of words such as [screen, oslofmt], found "
                        f"{_kind(tag_list)}",
                    )
                tags = tuple(tag.strip() for tag in tag_list)
            rules.append(FileRule(pattern.strip(), tags))
        return tuple(rules)

    # --- values -----------------------------------------------------------------------

    def _number(self, entry: _Entry, name: str, *, positive: bool) -> float:
        node, value = entry
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < 0 or (positive and value == 0):
            wanted = "a number of seconds above 0" if positive else "a number of seconds, 0 or more"
            self._fail(node, f"{name} must be {wanted}, found {_kind(value)}")
        return float(value)

    def _bool(self, entry: _Entry, name: str) -> bool:
        node, value = entry
        if not isinstance(value, bool):
            self._fail(node, f"{name} must be true or false, found {_kind(value)}")
        return bool(value)

    def _mapping(
        self, node: yaml.Node, what: str, known: tuple[str, ...], *, strict: bool
    ) -> dict[str, _Entry]:
        """The entries of a mapping node by key: unknown keys are errors when ``strict``."""
        if not isinstance(node, yaml.MappingNode):
            self._fail(
                node,
                f"{what} must be a mapping of 'key: value' lines, found {_kind(self._value(node))}",
            )
        entries: dict[str, _Entry] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self._value(key_node)
            if not isinstance(key, str):
                self._fail(key_node, f"keys must be names, found {_kind(key)}")
            if key in entries:
                self._fail(
                    key_node,
                    f"duplicate key '{key}' (first given on line {lines[key]}); keep only one",
                )
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
                if strict:
                    advice = (
                        f"did you mean '{hint[0]}'?" if hint else f"known keys: {', '.join(known)}"
                    )
                    self._fail(key_node, f"unknown key '{key}' in {what}; {advice}")
                if hint and key not in _OTHER_SECTIONS:
                    line, column = _mark(key_node)
                    self.warnings.append(
                        f"{self.path}:{line}:{column}: unknown key '{key}'; did you mean "
                        f"'{hint[0]}'? It is ignored as written"
                    )
            entries[key] = (value_node, self._value(value_node))
            lines[key] = key_node.start_mark.line + 1
        return entries

    def _value(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else None
            self._fail(node, f"invalid YAML value: {problem or exc}")

    def _compose(self) -> yaml.Node | None:
        try:
            return self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "1:1"
            context = f" ({exc.context})" if exc.context else ""
            raise ConfigError(
                f"{self.path}:{where}: invalid YAML: {exc.problem or 'syntax error'}{context}; "
                "check indentation and quoting"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}:1:1: invalid YAML: {exc}; fix the file") from None

    def _fail(self, node: yaml.Node, message: str) -> NoReturn:
        line, column = _mark(node)
        raise ConfigError(f"{self.path}:{line}:{column}: {message}")


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _kind(value: object) -> str:
    """Describe a parsed value the way the user wrote it: 'a list', 'the text "x"'..."""
    kinds: dict[type, str] = {dict: "a mapping", list: "a list", type(None): "nothing (null)"}
    if type(value) in kinds:
        return kinds[type(value)]
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{type(value).__name__} {value!r}"
