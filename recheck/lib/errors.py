"""The exception tree: every error recheck raises on purpose is a ``RecheckError``.

Each stage raises its own kind, with a message that says what, where and what to do;
errors of other libraries are translated where they enter. Callers that must go on
(the bot, a command over many builds) catch ``RecheckError`` and report it::

    RecheckError
    ├── ConfigError          bot.yaml is wrong (config.errors): file:line:col per mistake
    ├── SecretError          a secret's variable or file is missing (lib.secrets)
    ├── LockBusy             another process holds the lock (lib.locking)
    ├── LexError, QuerySyntaxError   a query Lucene would reject (query.lexer, query.parser)
    ├── SourceError          a build's logs cannot be read at all (logs.source)
    │   └── (FetchError)     an HTTP fetch failed or was refused (logs.http; also an OSError)
    ├── BinaryFileError      a file is not text (logs.source)
    ├── BuildInfoError       a build's metadata is unusable (logs.build)
    ├── EventFileError       a JSON-lines event file is malformed (logs.eventfile)
    ├── ChildFailed          a forked scan worker failed (scan.forkmap)
    ├── StoreError           the history store is unusable (store.base)
    │   ├── ClusterError     Elasticsearch/OpenSearch failed (store.elastic.cluster)
    │   └── QueryRejected    the cluster refused a query (store.elastic.cluster)
    ├── QueueError           the bot's durable queue is unusable (bot.queue)
    ├── MalformedEvent       a stream-events line is unusable (bot.gerrit.events)
    └── PostError            a Gerrit review could not be posted (bot.gerrit.review)

Standard bases (ValueError, OSError, RuntimeError) are kept beside ``RecheckError`` so
code that caught those before still does.
"""

from __future__ import annotations

__all__ = ["RecheckError"]


class RecheckError(Exception):
    """Base of every error recheck raises on purpose."""
