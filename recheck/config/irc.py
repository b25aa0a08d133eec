"""The IRC notifier's settings: bot.yaml's ``irc:`` and ``channels:`` sections, checked.

``channels`` has the shape of elastic-recheck's ``recheckwatchbot.yaml`` so its files can
be pasted in: ``{name: {projects: [nova, all], events: [positive, negative]}}``, names
with or without ``#``. The IRC password never sits in bot.yaml: ``password_env`` names an
environment variable, ``password_file`` a file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recheck.config.files import Config, ConfigError

__all__ = ["EVENTS", "ChannelRule", "IrcSettings", "irc_settings"]

EVENTS = ("positive", "negative")
"""``positive``: a known bug explains a failure; ``negative``: nothing does, or no logs."""

_IRC_KEYS = (
    "server",
    "port",
    "tls",
    "tls_verify",
    "ca_file",
    "nick",
    "username",
    "realname",
    "account",
    "password_env",
    "password_file",
    "sasl",
    "queues",
    "rate",
    "burst",
    "reconnect_min",
    "reconnect_max",
    "nick_reclaim",
    "keepalive",
    "max_queue",
)
# A nick: letters, digits and the RFC 2812 specials; no spaces, commas or controls.
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}")
_CHANNEL = re.compile(r"[#&+!][^\s,:\x00-\x1f\x7f]{1,49}")
_WORD = re.compile(r"[^\s\x00-\x1f\x7f]{1,100}")


@dataclass(frozen=True)
class ChannelRule:
    """One channel and what it hears: events for these projects (``all``: every project)."""

    name: str
    """With its ``#`` (or other channel prefix)."""
    projects: frozenset[str]
    """Lower-case project names as written: ``nova`` or ``openstack/nova``; ``all``."""
    events: frozenset[str]

    def wants(self, event: str, projects: tuple[str, ...]) -> bool:
        """Whether a message of kind ``event`` about any of ``projects`` goes here."""
        if event not in self.events:
            return False
        return "all" in self.projects or any(name.lower() in self.projects for name in projects)


@dataclass(frozen=True)
class IrcSettings:
    """Where and how the bot talks on IRC."""

    server: str
    channels: tuple[ChannelRule, ...]
    port: int = 6697
    tls: bool = True
    tls_verify: bool = True
    ca_file: Path | None = None
    nick: str = "recheck"
    username: str = "recheck"
    realname: str = "recheck: CI failure classifier"
    account: str = "recheck"
    """The NickServ / SASL account name."""
    password: str | None = field(default=None, repr=False)
    sasl: bool = True
    """Log in with SASL PLAIN when the server offers it (else NickServ IDENTIFY)."""
    queues: frozenset[str] = frozenset({"gate"})
    """Only failures in these Zuul pipelines are announced."""
    rate: float = 1.0
    """Messages per second once the burst is spent (flood control)."""
    burst: int = 4
    reconnect_min: float = 2.0
    reconnect_max: float = 300.0
    nick_reclaim: float = 60.0
    """Seconds between attempts to take back the configured nick while another holds it."""
    keepalive: float = 60.0
    """Seconds between PINGs; a server silent for three of them is taken as gone."""
    max_queue: int = 1000
    """Lines kept while disconnected; past this the oldest are dropped (and logged)."""


def irc_settings(config: Config) -> IrcSettings | None:
    """The IRC settings from ``config``, or None when bot.yaml has no ``irc.server``.

    Raises ConfigError naming the file and key when a value is unusable.
    """
    where = str(config.path or "bot.yaml")
    raw = config.sections.get("irc")
    if raw is None:
        return None
    irc = _mapping(raw, "irc", where)
    unknown = sorted(set(irc) - set(_IRC_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key 'irc.{unknown[0]}'; known keys: {', '.join(_IRC_KEYS)}"
        )
    if not irc.get("server"):
        return None
    server = _text(irc["server"], "irc.server", where)
    tls = _bool(irc.get("tls", True), "irc.tls", where)
    nick = _text(irc.get("nick", "recheck"), "irc.nick", where)
    if not _NICK.fullmatch(nick):
        raise ConfigError(
            f"{where}: irc.nick {nick!r} is not a valid IRC nick (a letter first, then "
            "letters, digits, - _ [ ] \\ ` ^ { | }, at most 30 characters)"
        )
    values: dict[str, Any] = {
        "server": server,
        "channels": channel_rules(config.sections.get("channels"), where),
        "tls": tls,
        "port": _int(irc.get("port", 6697 if tls else 6667), "irc.port", where, 1, 65535),
        "tls_verify": _bool(irc.get("tls_verify", True), "irc.tls_verify", where),
        "nick": nick,
        "username": _word(irc.get("username", nick), "irc.username", where),
        "realname": _text(irc.get("realname", IrcSettings.realname), "irc.realname", where),
        "account": _word(irc.get("account", nick), "irc.account", where),
        "password": _password(irc, where),
        "sasl": _bool(irc.get("sasl", True), "irc.sasl", where),
        "queues": frozenset(_words(irc.get("queues", ["gate"]), "irc.queues", where)),
        "burst": _int(irc.get("burst", 4), "irc.burst", where, 1, 100),
        "max_queue": _int(irc.get("max_queue", 1000), "irc.max_queue", where, 1, 1_000_000),
    }
    if "ca_file" in irc:
        ca_file = Path(_text(irc["ca_file"], "irc.ca_file", where)).expanduser()
        values["ca_file"] = ca_file if config.path is None else config.path.parent / ca_file
    for name in ("rate", "reconnect_min", "reconnect_max", "nick_reclaim", "keepalive"):
        if name in irc:
            values[name] = _seconds(irc[name], f"irc.{name}", where)
    settings = IrcSettings(**values)
    if settings.reconnect_max < settings.reconnect_min:
        raise ConfigError(f"{where}: irc.reconnect_max must not be below irc.reconnect_min")
    return settings


def channel_rules(raw: object, where: str) -> tuple[ChannelRule, ...]:
    """The ``channels:`` section (elastic-recheck's shape) as rules; () when absent."""
    if raw is None:
        return ()
    channels = _mapping(raw, "channels", where)
    rules: list[ChannelRule] = []
    for name, spec in channels.items():
        label = f"channels.{name}"
        if not isinstance(name, str):
            raise ConfigError(f"{where}: channel names must be text such as openstack-nova")
        channel = name if name[:1] in "#&+!" else f"#{name}"
        if not _CHANNEL.fullmatch(channel):
            raise ConfigError(
                f"{where}: {label}: {name!r} is not a valid channel name (no spaces, commas, "
                "colons or control characters, at most 50 characters)"
            )
        body = _mapping(spec, label, where)
        unknown = sorted(set(body) - {"projects", "events"})
        if unknown:
            raise ConfigError(
                f"{where}: unknown key '{label}.{unknown[0]}'; known keys: projects, events"
            )
        projects = _words(body.get("projects", ["all"]), f"{label}.projects", where)
        events = _words(body.get("events", list(EVENTS)), f"{label}.events", where)
        bad = sorted(set(events) - set(EVENTS))
        if bad:
            raise ConfigError(
                f"{where}: {label}.events: unknown event {bad[0]!r}; use positive, negative"
            )
        rules.append(
            ChannelRule(channel, frozenset(p.lower() for p in projects), frozenset(events))
        )
    return tuple(rules)


def _password(irc: Mapping[str, Any], where: str) -> str | None:
    if "password_env" in irc:
        variable = _word(irc["password_env"], "irc.password_env", where)
        value = os.environ.get(variable, "")
        if not value:
            raise ConfigError(
                f"{where}: irc.password_env names ${variable}, which is not set; export it "
                "or remove password_env to connect without logging in"
            )
        return value
    if "password_file" in irc:
        path = Path(_text(irc["password_file"], "irc.password_file", where)).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{where}: irc.password_file {path}: cannot read it: {exc.strerror or exc}"
            ) from None
        if not value:
            raise ConfigError(f"{where}: irc.password_file {path} is empty")
        return value
    return None


def _mapping(value: object, name: str, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {name} must be a mapping of 'key: value' lines")
    return value


def _text(value: object, name: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\0"):
        raise ConfigError(f"{where}: {name} must be one line of text, found {value!r}")
    return value.strip()


def _word(value: object, name: str, where: str) -> str:
    if not isinstance(value, str) or not _WORD.fullmatch(value):
        raise ConfigError(f"{where}: {name} must be one word without spaces, found {value!r}")
    return value


def _words(value: object, name: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: {name} must be a list of names such as [nova, all]")
    return [_word(item, name, where) for item in value]


def _bool(value: object, name: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {name} must be true or false, found {value!r}")
    return value


def _int(value: object, name: str, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{where}: {name} must be a whole number from {low} to {high}, found {value!r}"
        )
    return value


def _seconds(value: object, name: str, where: str) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise ConfigError(f"{where}: {name} must be a number above 0, found {value!r}")
    return float(value)  # type: ignore[arg-type]
