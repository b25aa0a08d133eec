"""The IRC notifier's settings: bot.yaml's ``irc:`` and ``channels:`` sections, checked.

``channels`` has the shape of elastic-recheck's ``recheckwatchbot.yaml`` so its files can
be pasted in: ``{name: {projects: [nova, all], events: [positive, negative]}}``, names
with or without ``#``. ``recheck.config.schema`` checks both sections; this module gives
them their defaults. The IRC password never sits in bot.yaml: ``password_env`` names an
environment variable, ``password_file`` a file (``recheck.lib.secrets`` reads it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recheck.config.files import Config, ConfigError, sections_schema
from recheck.lib.secrets import SecretError, read_secret

if TYPE_CHECKING:
    from recheck.config.schema import Channel

__all__ = ["EVENTS", "ChannelRule", "IrcSettings", "irc_settings"]

EVENTS = ("positive", "negative")
"""``positive``: a known bug explains a failure; ``negative``: nothing does, or no logs."""


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


# Keys whose default is IrcSettings' own (the others' depend on another key).
_DEFAULTED = ("tls_verify", "realname", "sasl", "rate", "burst", "reconnect_min",
              "reconnect_max", "nick_reclaim", "keepalive", "max_queue")  # fmt: skip


def irc_settings(config: Config, environ: Mapping[str, str] | None = None) -> IrcSettings | None:
    """The IRC settings from ``config``, or None when bot.yaml has no ``irc.server``.

    Raises ConfigError naming the file and key when a value is unusable. The password is
    read here (``recheck.lib.secrets``).
    """
    where = str(config.path or "bot.yaml")
    document = sections_schema(config)
    irc = document.irc
    if irc is None or irc.server is None:
        return None
    base = config.path.parent if config.path is not None else Path.cwd()
    secret_file = None if irc.password_file is None else base / irc.password_file
    try:
        password = read_secret("irc.password", irc.password_env, secret_file, environ)
    except SecretError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    tls = True if irc.tls is None else irc.tls
    nick = irc.nick or "recheck"
    given = {name: getattr(irc, name) for name in _DEFAULTED if getattr(irc, name) is not None}
    return IrcSettings(
        server=irc.server,
        channels=channel_rules(document.channels),
        port=irc.port or (6697 if tls else 6667),
        tls=tls,
        ca_file=None if irc.ca_file is None else base / irc.ca_file,
        nick=nick,
        username=irc.username or nick,
        account=irc.account or nick,
        password=password,
        queues=frozenset(irc.queues or ("gate",)),
        **given,
    )


def channel_rules(channels: Mapping[str, Channel] | None) -> tuple[ChannelRule, ...]:
    """The ``channels:`` section (elastic-recheck's shape, checked) as rules; () when absent."""
    rules: list[ChannelRule] = []
    for name, spec in (channels or {}).items():
        projects = spec.projects or ("all",)
        rules.append(
            ChannelRule(
                name if name[:1] in "#&+!" else f"#{name}",
                frozenset(project.lower() for project in projects),
                frozenset(spec.events or EVENTS),
            )
        )
    return tuple(rules)
