"""The nouns recheck passes between its stages: plain data, no I/O.

Glossary (used the same way in code, CLI and docs):

- **Event**: one log record as Elasticsearch would have indexed it: field name -> text,
  or a list of texts for multi-valued fields such as ``tags``.
- **Signature**: a triager's description of a known bug: a Lucene query_string plus
  flags, loaded from ``queries/<bug>.yaml`` (``recheck.query.signatures``: it holds the
  compiled query, and models sit below the query stage).
- **Match**: one event a signature matched, as every stage and store reports it.
- **BugInfo**: what a bug tracker knows of a bug; a **BugTracker** turns bug ids into
  URLs and, when it can, BugInfo (Launchpad: ``recheck.bot.launchpad``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, TypeAlias

# Fields a logstash-style event carries: the logstash pipeline's own (message, tags,
# filename, @timestamp...), what its grok patterns extract (loglevel, module, pid,
# syslog_*), and the build metadata attached to every line of a build's logs (build_*,
# project, voting...). `recheck check` warns about fields outside this list, because a
# misspelt field silently never matches.
EVENT_FIELDS: tuple[str, ...] = (
    "message",
    "tags",
    "filename",
    "@timestamp",
    "received_at",
    "host",
    "loglevel",
    "module",
    "pid",
    "syslog_program",
    "syslog_pid",
    "syslog_host",
    "verb",
    "request",
    "response",
    "build_name",
    "build_status",
    "build_queue",
    "build_uuid",
    "build_short_uuid",
    "build_change",
    "build_patchset",
    "build_branch",
    "build_ref",
    "build_newrev",
    "build_node",
    "build_master",
    "build_zuul_url",
    "project",
    "voting",
    "log_url",
    "tenant",
    "node_provider",
)

Event: TypeAlias = dict[str, str | list[str]]
"""One log event: field -> value; a list holds the values of a multi-valued field."""


EXCERPT_CHARS = 300
"""How much of a matching event's message a report shows."""


def excerpt(event: Event) -> str:
    """The start of ``event``'s message (``EXCERPT_CHARS`` at most), as a match shows it."""
    message = event.get("message", "")
    text = message if isinstance(message, str) else "\n".join(message)
    return text[:EXCERPT_CHARS]


@dataclass(frozen=True)
class Match:
    """One event a signature matched: where it is and what it says."""

    bug: str
    filename: str
    line: int
    message: str
    """The start of the event's message (``EXCERPT_CHARS`` at most)."""

    @classmethod
    def of(cls, bug: str, event_id: str, event: Event) -> Match:
        """The match of ``bug`` on the event ``<filename>:<line>`` (line 0 when the id
        names none, as for events some other indexer stored)."""
        filename, _, line = event_id.rpartition(":")
        return cls(bug, filename, int(line) if line.isdigit() else 0, excerpt(event))


DEFAULT_BUG_URL = "https://bugs.launchpad.net/bugs/{bug}"
"""Where a bug id points unless bot.yaml says otherwise (elastic-recheck's default)."""


@dataclass(frozen=True)
class BugInfo:
    """What a tracker knows of a bug."""

    bug: str
    title: str
    status: str = ""
    """E.g. ``Confirmed``, ``Fix Released``; the tracker's own words."""
    projects: tuple[str, ...] = ()
    """Projects the bug affects (Launchpad targets), for routing IRC messages."""


class BugTracker(Protocol):
    """Turns bug ids into URLs and, when it can, into ``BugInfo``."""

    def url(self, bug: str) -> str:
        """The bug's web page."""
        ...

    def lookup(self, bug: str) -> BugInfo | None:
        """The bug's data, or None when unknown, private or the tracker is unreachable."""
        ...


@dataclass(frozen=True)
class UrlOnlyTracker:
    """A tracker that only builds URLs from a template with ``{bug}``; looks nothing up."""

    template: str = DEFAULT_BUG_URL

    def url(self, bug: str) -> str:
        """The template with the bug id filled in."""
        return self.template.format(bug=bug)

    def lookup(self, bug: str) -> BugInfo | None:
        """Nothing is known beyond the URL."""
        return None


@dataclass(frozen=True)
class FileRule:
    """Files whose path matches ``pattern`` are split into events tagged ``tags``.

    ``pattern`` is a ``/``-separated glob relative to the build's log root, matched
    against the whole path with any ``.gz`` suffix removed: ``*`` and ``?`` stay inside
    one directory, ``**/`` spans any number of directories (including none).
    """

    pattern: str
    tags: tuple[str, ...] = field(default=())

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """The pattern compiled to an anchored regular expression."""
        return glob_regex(self.pattern)

    @property
    def is_glob(self) -> bool:
        """Whether ``pattern`` has wildcards (most rules name one file)."""
        return "*" in self.pattern or "?" in self.pattern

    def matches(self, name: str) -> bool:
        """Whether the logical path ``name`` (see ``logical_name``) is one of these files."""
        if not self.is_glob:
            # Comparing saves compiling dozens of regexes in every command that lists a build.
            return name == self.pattern
        return self.regex.fullmatch(name) is not None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A file rule's glob as an anchored regular expression (``**/`` spans directories)."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:[^/]+/)*")
            index += 3
            continue
        char = pattern[index]
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts))
