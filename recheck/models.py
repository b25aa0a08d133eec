"""The nouns recheck passes between its stages: plain data, no I/O.

Glossary (used the same way in code, CLI and docs):

- **Event**: one log record as Elasticsearch would have indexed it: field name -> text,
  or a list of texts for multi-valued fields such as ``tags``.
- **Signature**: a triager's description of a known bug: a Lucene query_string plus
  flags, loaded from ``queries/<bug>.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    # Only for the annotation: models stay importable without pulling in the engine.
    from recheck.query.engine import Query

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


@dataclass(frozen=True)
class Signature:
    """A known-bug signature: its query as written, compiled once, and its flags."""

    bug: str
    """Bug id: the file stem, e.g. ``1260311`` for ``queries/1260311.yaml``."""
    query: str
    """The Lucene query_string exactly as written in the file."""
    path: Path
    compiled: Query = field(repr=False, compare=False)
    line: int = 1
    """Line of the ``query:`` key in ``path``, where messages about the query point."""
    suppress_graph: bool = False
    suppress_notification: bool = False
    allow_nonvoting: bool = False
    test_ids: tuple[str, ...] = ()
    resolved_at: str | None = None
    """ISO date (or the text written) when the bug was marked resolved; None if open."""
