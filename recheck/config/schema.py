"""bot.yaml's schema: every section and key, with the type of its value.

One pydantic model per section, each refusing keys it does not declare, so a typo
(``bot.log_timout``) is an error naming its line rather than a setting silently
ignored. A key left out, or written with no value (``key: ~``), is None here: it keeps
the default of the settings it feeds (``FetchConfig``, ``BotSettings``, ``IrcSettings``,
in ``recheck.config.files``, ``.bot`` and ``.irc``), where the defaults live. Secrets
are never values here: only the variable or file that holds one (``recheck.lib.secrets``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from recheck.config.values import (
    Bool,
    Days,
    Host,
    Line,
    NonNegativeSeconds,
    PositiveNumber,
    PositiveSeconds,
    Regex,
    Text,
    TextOrEmpty,
    UserPath,
    Word,
    choice,
    fail,
    kind,
    whole,
    words,
)

__all__ = [
    "BotSection",
    "BugTrackerSection",
    "Channel",
    "Document",
    "FetchSection",
    "FileEntry",
    "GerritSection",
    "IrcSection",
    "MessagesSection",
    "PagesSection",
    "StoreSection",
    "ZuulSection",
]

_FILE_EXAMPLE = "- {pattern: job-output.txt, tags: [console, console.html]}"
_PAGE_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_OTHER_PAGES = ("index", "uncategorized", "api", "static", "bugs")
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}")
_CHANNEL = re.compile(r"[#&+!][^\s,:\x00-\x1f\x7f]{1,49}")
_METRICS = re.compile(r"[^:\s]*:\d{1,5}")


class Section(BaseModel):
    """A mapping of known keys; written empty (``gerrit:`` alone) it means every default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_defaults(cls, data: Any) -> Any:
        return {} if data is None else data


def _no_secret(data: Any, keys: tuple[str, ...], instead: str) -> Any:
    """Refuse a secret written in bot.yaml, pointing at the variable/file keys instead."""
    if isinstance(data, dict):
        for key in keys:
            if key in data:
                fail(
                    f"{{name}}: never write a password in bot.yaml; {instead}", key=key, at_key=True
                )
    return data


# --- fetch, files, store, pages (recheck.config.files) -----------------------------------


def _list_of_hosts(value: object) -> object:
    if not isinstance(value, list):
        fail(
            "{name} must be a list of host names ('- logs.example.org' lines), found " + kind(value)
        )
    return value


def _local_roots(value: object) -> object:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and re.match(r"https?://[^/]+/", k) and isinstance(v, str) and v
        for k, v in value.items()
    ):
        fail(
            "{name} must map log URL prefixes to directories "
            "('https://logs.example.org/: /srv/logs' lines), found " + kind(value)
        )
    return value


class FetchSection(Section):
    allowed_hosts: Annotated[tuple[Host, ...], BeforeValidator(_list_of_hosts)] | None = None
    connect_timeout: PositiveSeconds | None = None
    read_timeout: PositiveSeconds | None = None
    retries: Annotated[int, BeforeValidator(whole(0, 20))] | None = None
    backoff: NonNegativeSeconds | None = None
    max_retry_after: NonNegativeSeconds | None = None
    max_file_bytes: Annotated[int, BeforeValidator(whole(1 << 20, 1 << 50))] | None = None
    max_build_bytes: Annotated[int, BeforeValidator(whole(1 << 20, 1 << 50))] | None = None
    download_deadline: PositiveSeconds | None = None
    local_roots: Annotated[dict[str, str], BeforeValidator(_local_roots)] | None = None


def _tags(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        fail(f"'tags' must be a list of words such as [screen, oslofmt], found {kind(value)}")
    return tuple(tag.strip() for tag in value)


def _pattern(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        fail(
            "'pattern' must be a path relative to the build's log root such as "
            f"controller/logs/screen-*.txt, found {kind(value)}"
        )
    return value.strip()


class FileEntry(BaseModel):
    """One file rule: the files it matches and the tags their events get."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: Annotated[str, BeforeValidator(_pattern)] | None = None
    tags: Annotated[tuple[str, ...], BeforeValidator(_tags)] = ()

    @model_validator(mode="after")
    def _has_pattern(self) -> FileEntry:
        if self.pattern is None:
            fail(f"a files entry needs a 'pattern' ({_FILE_EXAMPLE})")
        return self


def _file_list(value: object) -> object:
    if not isinstance(value, list) or not value:
        fail(
            f"{{name}} must be a non-empty list of file rules ('{_FILE_EXAMPLE}'), found "
            f"{kind(value)}; leave 'files' out to use the default list"
        )
    return value


def _directory(value: object) -> Path:
    if not isinstance(value, str) or not value.strip():
        fail(f"{{name}} must be a directory such as /var/lib/recheck, found {kind(value)}")
    return Path(value.strip()).expanduser()


class StoreSection(Section):
    """The store: the embedded one's directory and retention, or a cluster's settings
    (``backend`` and the keys after it, whose values recheck.store.elastic checks)."""

    path: Annotated[Path, BeforeValidator(_directory)] | None = None
    event_days: Days | None = None
    build_days: Days | None = None
    backend: Any = None
    url: Any = None
    index_pattern: Any = None
    date_format: Any = None
    builds_index: Any = None
    matches_index: Any = None
    signatures_index: Any = None
    tests_index: Any = None
    keyword_suffix: Any = None
    username: Any = None
    password_env: Any = None
    password_file: Any = None
    api_key_env: Any = None
    api_key_file: Any = None
    verify_certs: Any = None
    ca_certs: Any = None
    timeout: Any = None
    retries: Any = None
    backoff: Any = None
    page_size: Any = None
    max_hits: Any = None
    index_events: Any = None

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        return _no_secret(
            data, ("password", "api_key"), "name a variable with password_env/api_key_env "
            "or a file with password_file/api_key_file",
        )  # fmt: skip

    @model_validator(mode="after")
    def _one_place(self) -> StoreSection:
        # Said here, with the line, rather than silently using one of the two.
        if self.path is not None and self.backend in ("elasticsearch", "opensearch"):
            fail(
                f"store.path is the embedded store's directory, but backend: {self.backend} "
                "keeps the history in the cluster (store.url); remove store.path, or the backend",
                key="path",
            )
        return self


def _queue(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        fail(f"{{name}} must be some text, found {kind(value)}")
    # The queue names a page (gate.html): a plain word that no other page has.
    queue = value.strip()
    if not _PAGE_WORD.fullmatch(queue) or queue.startswith(_OTHER_PAGES):
        fail(
            "{name} must be a pipeline name such as gate (letters, digits, '-', '_', '.'; "
            f"not {', '.join(_OTHER_PAGES)}), found {kind(queue)}"
        )
    return queue


def _title(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        fail(f"{{name}} must be some text, found {kind(value)}")
    return value.strip()


def _list_of_regexes(value: object) -> object:
    if not isinstance(value, list):
        fail(
            "{name} must be a list of project names or regexes ('- openstack/nova' lines), "
            f"found {kind(value)}"
        )
    return value


def _link(*names: str) -> Callable[[object], str]:
    """A check that the value is an http(s) URL template of only ``names``."""
    allowed = ", ".join("{" + name + "}" for name in names)

    def check(value: object) -> str:
        if not isinstance(value, str) or not re.match(r"https?://[^/\s]+", value.strip()):
            fail(f"{{name}} must be an http(s) URL template of {allowed}, found {kind(value)}")
        used = set(re.findall(r"{([^{}]*)}", value))
        if not used <= set(names):
            unknown = ", ".join("{" + name + "}" for name in sorted(used - set(names)))
            fail(f"{{name}} may hold {allowed}, not {unknown}")
        return value.strip()

    return check


class PagesSection(Section):
    title: Annotated[str, BeforeValidator(_title)] | None = None
    queue: Annotated[str, BeforeValidator(_queue)] | None = None
    days: Annotated[int, BeforeValidator(whole(1, 90))] | None = None
    integrated_gate: Annotated[tuple[Regex, ...], BeforeValidator(_list_of_regexes)] | None = None
    excluded_jobs: Regex | None = None
    review_url: Annotated[str, BeforeValidator(_link("project", "change", "patchset"))] | None = (
        None
    )
    build_url: Annotated[str, BeforeValidator(_link("uuid", "tenant", "job", "project"))] | None = (
        None
    )


class BugTrackerSection(Section):
    """Keys only: recheck.bot.launchpad checks the values."""

    type: Any = None
    url: Any = None
    service_root: Any = None
    api_version: Any = None
    cache_ttl: Any = None
    missing_ttl: Any = None
    timeout: Any = None
    outage_pause: Any = None


# --- the bot (recheck.config.bot) ---------------------------------------------------------


def _search_regex(example: str) -> Callable[[str], str]:
    """A check that the value compiles as a regex (used with ``re.search``)."""

    def check(value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            fail(f"{{name}} is not a valid regular expression ({exc}); write one such as {example}")
        return value

    return check


def _metrics(value: object) -> str:
    # YAML reads a bare off (or no, false) as false: the README's "off" disables metrics.
    if value is False:
        return "off"
    text = str(value).strip() if isinstance(value, str | int) else None
    if text is None or (text not in ("", "off") and not _METRICS.fullmatch(text)):
        fail(f"{{name}} must be host:port such as 127.0.0.1:9108, or off, found {kind(value)}")
    return text


def _share(value: object) -> float:
    """A share from 0 to 1 (``0.05``: one in 20)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        fail(f"{{name}} must be a share from 0 to 1 such as 0.05, found {kind(value)}")
    return float(value)


def _whole_above_0(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        fail(f"{{name}} must be a whole number above 0, found {kind(value)}")
    if value != int(value):
        fail(f"{{name}} must be a whole number above 0, found {kind(value)}")
    return int(value)


Count = Annotated[int, BeforeValidator(_whole_above_0)]
Names = Annotated[tuple[str, ...], BeforeValidator(words(empty=True))]
ProjectRegex = Annotated[Text, AfterValidator(_search_regex("'^openstack/'"))]
JobRegex = Annotated[Text, AfterValidator(_search_regex("'^(tempest|grenade)-'"))]


class BotSection(Section):
    source: Annotated[str, BeforeValidator(choice("gerrit", "zuul"))] | None = None
    projects: ProjectRegex | None = None
    job_filter: JobRegex | None = None
    comment_on_unrecognized: Bool | None = None
    state: UserPath | None = None
    log_timeout: PositiveNumber | None = None
    log_poll: PositiveNumber | None = None
    retry: PositiveNumber | None = None
    workers: Count | None = None
    metrics: Annotated[str, BeforeValidator(_metrics)] | None = None
    success_sample: Annotated[float, BeforeValidator(_share)] | None = None


class GerritSection(Section):
    host: Text | None = None
    port: Count | None = None
    user: Text | None = None
    key_file: UserPath | None = None
    known_hosts: UserPath | None = None
    ci_users: Names | None = None
    post: Annotated[str, BeforeValidator(choice("rest", "ssh", "none"))] | None = None
    url: Text | None = None
    http_user: Text | None = None
    http_password_env: Word | None = None
    http_password_file: UserPath | None = None
    tag: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        return _no_secret(
            data, ("http_password", "password"), "name an environment variable with "
            "http_password_env or a file with http_password_file",
        )  # fmt: skip


class ZuulSection(Section):
    url: Text | None = None
    tenant: Text | None = None
    pipelines: Names | None = None
    results: Names | None = None
    poll_interval: PositiveNumber | None = None
    limit: Count | None = None


class MessagesSection(Section):
    found_bug: TextOrEmpty | None = None
    recheck_instructions: TextOrEmpty | None = None
    unrecognized: TextOrEmpty | None = None
    footer: TextOrEmpty | None = None
    no_bugs_found: TextOrEmpty | None = None


def _bug_url(value: object) -> str:
    if not isinstance(value, str) or "{bug}" not in value:
        fail(
            "{name} must be a URL template holding {bug}, such as "
            f"https://bugs.launchpad.net/bugs/{{bug}}, found {kind(value)}"
        )
    return value


# --- IRC (recheck.config.irc) -------------------------------------------------------------


def _nick(value: str) -> str:
    if not _NICK.fullmatch(value):
        fail(
            f"{{name}} {value!r} is not a valid IRC nick (a letter first, then letters, "
            "digits, - _ [ ] \\ ` ^ { | }, at most 30 characters)"
        )
    return value


Seconds = PositiveNumber
IrcWords = Annotated[tuple[str, ...], BeforeValidator(words(empty=False, word=True))]


class IrcSection(Section):
    server: Line | None = None
    port: Annotated[int, BeforeValidator(whole(1, 65535))] | None = None
    tls: Bool | None = None
    tls_verify: Bool | None = None
    ca_file: UserPath | None = None
    nick: Annotated[Line, AfterValidator(_nick)] | None = None
    username: Word | None = None
    realname: Line | None = None
    account: Word | None = None
    password_env: Word | None = None
    password_file: UserPath | None = None
    sasl: Bool | None = None
    queues: IrcWords | None = None
    rate: Seconds | None = None
    burst: Annotated[int, BeforeValidator(whole(1, 100))] | None = None
    reconnect_min: Seconds | None = None
    reconnect_max: Seconds | None = None
    nick_reclaim: Seconds | None = None
    keepalive: Seconds | None = None
    max_queue: Annotated[int, BeforeValidator(whole(1, 1_000_000))] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        return _no_secret(
            data, ("password",), "name an environment variable with password_env or a file "
            "with password_file",
        )  # fmt: skip

    @model_validator(mode="after")
    def _reconnect_order(self) -> IrcSection:
        low, high = self.reconnect_min or 2.0, self.reconnect_max or 300.0
        if high < low:
            fail("irc.reconnect_max must not be below irc.reconnect_min", key="reconnect_max")
        return self


class Channel(Section):
    """One channel of elastic-recheck's recheckwatchbot.yaml shape."""

    projects: IrcWords | None = None
    events: IrcWords | None = None

    @model_validator(mode="after")
    def _known_events(self) -> Channel:
        bad = sorted(set(self.events or ()) - {"positive", "negative"})
        if bad:
            fail(f"{{name}}.events: unknown event {bad[0]!r}; use positive, negative", key="events")
        return self


def _channel_names(value: object) -> object:
    if isinstance(value, dict):
        for name in value:
            channel = name if name[:1] in "#&+!" else f"#{name}"
            if not _CHANNEL.fullmatch(channel):
                fail(
                    f"{{name}}: {name!r} is not a valid channel name (no spaces, commas, "
                    "colons or control characters, at most 50 characters)",
                    key=name,
                    at_key=True,
                )
    return value


# --- the whole file -----------------------------------------------------------------------


class Document(Section):
    """Every section bot.yaml may hold."""

    fetch: FetchSection = FetchSection()
    files: Annotated[tuple[FileEntry, ...], BeforeValidator(_file_list)] | None = None
    keep_debug: Bool | None = None
    store: StoreSection = StoreSection()
    pages: PagesSection = PagesSection()
    bug_tracker: BugTrackerSection = BugTrackerSection()
    bug_url: Annotated[str, BeforeValidator(_bug_url)] | None = None
    bot: BotSection = BotSection()
    gerrit: GerritSection = GerritSection()
    zuul: ZuulSection = ZuulSection()
    messages: MessagesSection = MessagesSection()
    irc: IrcSection | None = None
    channels: Annotated[dict[str, Channel], BeforeValidator(_channel_names)] | None = None
