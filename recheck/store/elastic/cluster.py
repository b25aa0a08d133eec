"""How recheck reaches a cluster: bot.yaml's settings, one request function over the
Elasticsearch and OpenSearch client libraries (optional extras, imported when a cluster
is opened), and the errors they raise. Clients never retry on their own: the store does,
waiting as ``RetryPolicy`` says.

Errors (all ``StoreError``, whose ``path`` is the cluster URL without credentials)::

    StoreError
     ├── ClusterError      the cluster cannot be reached or answered an error
     └── QueryRejected     the cluster refused the query of one or more signatures
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from recheck.lib.backoff import Backoff
from recheck.lib.secrets import SecretError, read_secret
from recheck.store.base import StoreError

__all__ = [
    "BACKENDS",
    "Cluster",
    "ClusterError",
    "ElasticSettings",
    "ElasticsearchCluster",
    "OpenSearchCluster",
    "QueryRejected",
    "RetryPolicy",
    "connect",
    "error_parts",
    "parse_settings",
    "wants_cluster",
]

Backend = Literal["elasticsearch", "opensearch"]
BACKENDS: dict[str, str] = {"elasticsearch": "elastic", "opensearch": "opensearch"}
"""The cluster backends bot.yaml's ``store.backend`` may name, with the extra each needs."""

EMBEDDED = "embedded"


# ---------------------------------------------------------------------------- errors


class ClusterError(StoreError):
    """The cluster could not be reached, or answered with an error.

    ``status`` is the HTTP status (None when no answer came), ``kind`` the cluster's
    error type (``index_not_found_exception``...) or ``connection``/``timeout``.
    """

    def __init__(self, url: str, status: int | None, kind: str, reason: str, advice: str = ""):
        where = f"HTTP {status} {kind}" if status is not None else kind
        message = f"the cluster answered {where}: {reason}" if status else f"{kind}: {reason}"
        super().__init__(url, f"{message}; {advice}" if advice else message)
        self.status = status
        self.kind = kind
        self.reason = reason
        self.url = url

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed (overload, restart, network)."""
        return self.status in (429, 502, 503, 504) or self.kind in ("connection", "timeout")


class QueryRejected(StoreError):
    """The cluster refused some queries; ``errors`` maps the bug (or the query text) to
    the cluster's reason."""

    def __init__(self, url: str, errors: Mapping[str, str], what: str = "signature") -> None:
        listed = "; ".join(f"{what} {key}: {reason}" for key, reason in sorted(errors.items()))
        super().__init__(url, f"the cluster rejected the query of {listed}")
        self.errors = dict(errors)
        self.url = url


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try a failed request again (bot.yaml's ``retries``, ``backoff``).

    A settings value (frozen, compared); the waits are ``recheck.lib.backoff``'s:
    ``Backoff`` has no limit on attempts and holds a counter, so it is made per request.
    """

    retries: int = 3
    """Further attempts after a retryable failure."""
    backoff: float = 1.0
    """Seconds before the first retry; doubled for each further one."""
    max_backoff: float = 30.0

    def backoff_waits(self) -> Backoff:
        """The waits of one request's retries: doubling, capped, with jitter in [1/2, 1]."""
        return Backoff(initial=self.backoff, maximum=self.max_backoff, factor=2.0, jitter=0.5)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based), with jitter."""
        return self.backoff_waits().delay(attempt)


@dataclass(frozen=True)
class ElasticSettings:
    """How to reach the cluster and where recheck's data lives in it (bot.yaml ``store:``)."""

    backend: Backend
    urls: tuple[str, ...]
    index_pattern: str = "logstash-*"
    """Daily event indices; the ``*`` stands for the day written with ``date_format``."""
    date_format: str = "%Y.%m.%d"
    builds_index: str = "recheck-builds"
    matches_index: str = "recheck-matches"
    signatures_index: str = "recheck-signatures"
    tests_index: str = "recheck-tests"
    """Builds' test results (``recheck.store.elastic.tests``)."""
    keyword_suffix: str = ".keyword"
    """Sub-field holding an event field's exact value (logstash templates: ``.keyword``
    or ``.raw``); build filters and aggregations use it."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    ca_certs: str | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    page_size: int = 1000
    max_hits: int = 100
    """Matching events kept per signature when classifying one build."""
    index_events: bool = True
    """Whether ``recheck ingest`` and the bot index a build's events into the daily
    indices. False where logstash already ships the logs there: recheck then stores only
    builds and matches, and searches logstash's events."""

    @property
    def display_url(self) -> str:
        """The first URL without credentials, for messages."""
        return _without_credentials(self.urls[0])

    def daily_index(self, day: date) -> str:
        """The event index of ``day``: ``logstash-2024.05.20`` for the default pattern."""
        return self.index_pattern.replace("*", day.strftime(self.date_format), 1)


_SETTINGS_KEYS = (
    "backend",
    "url",
    "index_pattern",
    "date_format",
    "builds_index",
    "matches_index",
    "signatures_index",
    "tests_index",
    "keyword_suffix",
    "username",
    "password_env",
    "password_file",
    "api_key_env",
    "api_key_file",
    "verify_certs",
    "ca_certs",
    "timeout",
    "retries",
    "backoff",
    "page_size",
    "max_hits",
    "index_events",
)
_GENERAL_KEYS = ("path", "event_days", "build_days")
"""Keys of the store section that recheck.config.files reads for every backend."""


def wants_cluster(section: object) -> bool:
    """Whether bot.yaml's ``store`` section chooses a cluster backend (not the embedded one)."""
    return isinstance(section, Mapping) and section.get("backend", EMBEDDED) != EMBEDDED


def parse_settings(
    section: object, where: str = "bot.yaml", environ: Mapping[str, str] | None = None
) -> ElasticSettings:
    """The cluster settings of bot.yaml's ``store`` section; ``where`` names the file.

    Secrets are never written in bot.yaml: ``password_env``/``api_key_env`` name an
    environment variable, ``password_file``/``api_key_file`` a file holding the secret.
    Raises StoreError saying which key is wrong and what to write instead.
    """
    environ = os.environ if environ is None else environ

    def fail(message: str) -> StoreError:
        return StoreError(where, f"store: {message}")

    if not isinstance(section, Mapping):
        raise fail("must be a mapping of 'key: value' lines")
    for key in section:
        if key in ("password", "api_key"):
            raise fail(
                f"do not write the {key} in bot.yaml; name an environment variable with "
                f"{key}_env or a file with {key}_file"
            )
        if key not in _SETTINGS_KEYS and key not in _GENERAL_KEYS:
            hint = difflib.get_close_matches(str(key), _SETTINGS_KEYS, n=1, cutoff=0.75)
            advice = (
                f"did you mean '{hint[0]}'?" if hint else f"known keys: {', '.join(_SETTINGS_KEYS)}"
            )
            raise fail(f"unknown key '{key}'; {advice}")
    backend = section.get("backend")
    if backend not in BACKENDS:
        raise fail(f"backend must be {EMBEDDED}, elasticsearch or opensearch, found {backend!r}")
    raw_urls = section.get("url")
    urls = [raw_urls] if isinstance(raw_urls, str) else raw_urls
    if not isinstance(urls, list) or not urls or not all(_is_url(u) for u in urls):
        raise fail(
            "url must be the cluster's address such as https://opensearch.example.org:9200 "
            f"(or a list of them), found {raw_urls!r}"
        )
    values: dict[str, Any] = {"backend": backend, "urls": tuple(str(u).rstrip("/") for u in urls)}
    for name in ("index_pattern", "date_format", "builds_index", "matches_index",
                 "signatures_index", "tests_index", "keyword_suffix", "username",
                 "ca_certs"):  # fmt: skip
        if name in section:
            value = section[name]
            if not isinstance(value, str) or (not value and name != "keyword_suffix"):
                raise fail(f"{name} must be text, found {value!r}")
            values[name] = value
    pattern = values.get("index_pattern", "logstash-*")
    if pattern.count("*") != 1 or any(c in pattern for c in ", /"):
        raise fail(
            f"index_pattern must be one index name with one '*' for the day, such as "
            f"logstash-*, found {pattern!r}"
        )
    for name in ("verify_certs", "index_events"):
        if name in section:
            if not isinstance(section[name], bool):
                raise fail(f"{name} must be true or false, found {section[name]!r}")
            values[name] = section[name]
    numbers = {"timeout": (float, 0.001), "backoff": (float, 0.0), "retries": (int, 0),
               "page_size": (int, 1), "max_hits": (int, 1)}  # fmt: skip
    retry: dict[str, Any] = {}
    for name, (kind, lowest) in numbers.items():
        if name not in section:
            continue
        value = section[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < lowest:
            raise fail(f"{name} must be a number of at least {lowest}, found {value!r}")
        if kind is int and not isinstance(value, int):
            raise fail(f"{name} must be a whole number, found {value!r}")
        (retry if name in ("retries", "backoff") else values)[name] = kind(value)
    if retry:
        values["retry"] = RetryPolicy(**retry)
    values["password"] = _secret(section, "password", environ, fail)
    values["api_key"] = _secret(section, "api_key", environ, fail)
    if values["password"] is not None and "username" not in values:
        raise fail("a password needs a username")
    return ElasticSettings(**values)


def _secret(
    section: Mapping[str, Any],
    name: str,
    environ: Mapping[str, str],
    fail: Callable[[str], StoreError],
) -> str | None:
    """The secret named by ``<name>_env`` or ``<name>_file``; never echoed in messages."""
    variable, path = section.get(f"{name}_env"), section.get(f"{name}_file")
    if variable is not None and not isinstance(variable, str):
        raise fail(f"{name}_env must be the name of an environment variable")
    try:
        return read_secret(
            f"store.{name}", variable, None if path is None else Path(str(path)), environ
        )
    except SecretError as exc:
        raise fail(str(exc).removeprefix("store.")) from None


def _is_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _with_port(url: str) -> str:
    """``url`` with its scheme's port spelled out when it has none: elasticsearch-py 8
    refuses a URL without one (``https://es.example.org`` means port 443, as a browser
    would read it, not Elasticsearch's 9200)."""
    parts = urlsplit(url)
    if parts.port is not None:
        return url
    port = 443 if parts.scheme == "https" else 80
    netloc = f"{parts.netloc}:{port}"  # an IPv6 literal keeps its brackets in netloc
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# ---------------------------------------------------------------------------- transport


class Cluster(Protocol):
    """One HTTP request to the cluster; clients differ only here."""

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: str | None,
        content_type: str,
    ) -> Any: ...

    def bulk(self, actions: Iterable[dict[str, Any]], retry: RetryPolicy) -> int: ...


def error_parts(body: object) -> tuple[str, str]:
    """(type, reason) of an error answer: the first root cause says most."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            causes = error.get("root_cause")
            first = causes[0] if isinstance(causes, list) and causes else error
            if isinstance(first, Mapping):
                return str(first.get("type", "error")), str(first.get("reason", first))
        if isinstance(error, str):
            return "error", error
        if "found" in body:
            return "not_found", "not found"
    return "error", str(body)[:500]


def _bulk_with(
    bulk: Callable[..., Any], client: Any, actions: Iterable[dict[str, Any]], retry: RetryPolicy
) -> int:
    """Index ``actions`` with a client's ``helpers.bulk``: chunks of 500, each retried
    with backoff while the cluster answers 429 (the helper's own retry loop), for the
    whole request or for single documents (``es_rejected_execution_exception`` items).

    ``raise_on_error`` stays off: with it on, the helper raises at the first rejected
    item instead of retrying it. Items that still fail are raised here, all at once.
    """
    done, failed = bulk(
        client, actions, chunk_size=500, max_retries=retry.retries,
        initial_backoff=retry.backoff, max_backoff=retry.max_backoff, raise_on_error=False,
    )  # fmt: skip
    if failed:
        raise BulkFailed(failed)
    return int(done)


class BulkFailed(Exception):
    """Documents a bulk request did not index (after retries); ``errors`` as the helper
    lists them (``{"index": {"status": 400, "error": {...}}}``)."""

    def __init__(self, errors: Sequence[Any]) -> None:
        super().__init__(f"{len(errors)} document(s) failed to index")
        self.errors = list(errors)


class ElasticsearchCluster:
    """elasticsearch-py 8: checks the server's ``X-Elastic-Product`` header."""

    def __init__(self, settings: ElasticSettings) -> None:
        try:
            import elasticsearch
            from elastic_transport.client_utils import DEFAULT
        except ImportError:
            raise _missing_extra(settings) from None
        self._url = settings.display_url
        self._client = elasticsearch.Elasticsearch(
            [_with_port(url) for url in settings.urls],
            basic_auth=(settings.username, settings.password)
            if settings.username and settings.password
            else None,
            api_key=settings.api_key,
            verify_certs=settings.verify_certs,
            ca_certs=settings.ca_certs or DEFAULT,
            request_timeout=settings.timeout,
            max_retries=0,  # the store retries, waiting as RetryPolicy says
            retry_on_timeout=False,
        )

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The client's exceptions as ClusterError."""
        import elastic_transport
        import elasticsearch
        from elasticsearch import helpers

        try:
            yield
        except elasticsearch.UnsupportedProductError:
            raise ClusterError(
                self._url,
                None,
                "not Elasticsearch",
                "the server did not send 'X-Elastic-Product: Elasticsearch'",
                "for an OpenSearch cluster set 'backend: opensearch' under store: in bot.yaml",
            ) from None
        except (helpers.BulkIndexError, BulkFailed) as exc:
            raise _bulk_failed(self._url, exc.errors) from None
        except elasticsearch.ApiError as exc:
            kind, reason = error_parts(exc.body)
            raise ClusterError(self._url, exc.meta.status, kind, reason) from None
        except elastic_transport.ConnectionTimeout as exc:
            raise _timeout(self._url, exc) from None
        except elastic_transport.SerializationError as exc:
            raise _not_json(self._url, exc) from None
        except elastic_transport.TransportError as exc:
            raise _unreachable(self._url, exc) from None

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: str | None,
        content_type: str,
    ) -> Any:
        headers = {"accept": "application/json", "content-type": content_type}
        with self._translated():
            answer = self._client.perform_request(
                method, path, params=params, headers=headers, body=body
            )
        return _json_answer(self._url, answer.body)

    def bulk(self, actions: Iterable[dict[str, Any]], retry: RetryPolicy) -> int:
        from elasticsearch import helpers

        with self._translated():
            return _bulk_with(helpers.bulk, self._client, actions, retry)


class OpenSearchCluster:
    """opensearch-py: OpenSearch 1-3 (and Elasticsearch 7, which it also speaks)."""

    def __init__(self, settings: ElasticSettings) -> None:
        try:
            import opensearchpy
        except ImportError:
            raise _missing_extra(settings) from None
        self._url = settings.display_url
        self._client = opensearchpy.OpenSearch(
            hosts=list(settings.urls),
            http_auth=(settings.username, settings.password)
            if settings.username and settings.password
            else None,
            headers={"authorization": f"ApiKey {settings.api_key}"} if settings.api_key else None,
            verify_certs=settings.verify_certs,
            ca_certs=settings.ca_certs,
            timeout=settings.timeout,
            max_retries=0,
            retry_on_timeout=False,
        )

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The client's exceptions as ClusterError."""
        import opensearchpy
        from opensearchpy import helpers

        try:
            yield
        except (helpers.BulkIndexError, BulkFailed) as exc:
            raise _bulk_failed(self._url, exc.errors) from None
        except opensearchpy.ConnectionTimeout as exc:
            raise _timeout(self._url, exc) from None
        except opensearchpy.SerializationError as exc:
            raise _not_json(self._url, exc) from None
        except opensearchpy.ConnectionError as exc:
            raise _unreachable(self._url, exc) from None
        except opensearchpy.TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else None
            kind, reason = error_parts(exc.info)
            raise ClusterError(self._url, status, kind, reason) from None

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: str | None,
        content_type: str,
    ) -> Any:
        with self._translated():
            answer = self._client.transport.perform_request(
                method, path, params=dict(params or {}), body=body,
                headers={"content-type": content_type},
            )  # fmt: skip
        return _json_answer(self._url, answer)

    def bulk(self, actions: Iterable[dict[str, Any]], retry: RetryPolicy) -> int:
        from opensearchpy import helpers

        with self._translated():
            return _bulk_with(helpers.bulk, self._client, actions, retry)


def _missing_extra(settings: ElasticSettings) -> StoreError:
    extra = BACKENDS[settings.backend]
    return StoreError(
        settings.display_url,
        f"the {settings.backend} store needs its client library: pip install 'recheck[{extra}]'",
    )


def _timeout(url: str, exc: Exception) -> ClusterError:
    advice = "the cluster is overloaded or store.timeout in bot.yaml is too short"
    return ClusterError(url, None, "timeout", f"no answer in time ({exc})", advice)


def _json_answer(url: str, answer: Any) -> Any:
    """``answer`` when it is JSON (an object or a list); the clients return a text body
    (a proxy's or login page, ``text/html``) as a string, which no caller expects."""
    if isinstance(answer, dict | list):
        return answer
    raise _not_json(url, ValueError(f"a {type(answer).__name__}: {str(answer)[:100]!r}"))


def _not_json(url: str, exc: Exception) -> ClusterError:
    return ClusterError(
        url, None, "bad answer", f"the answer is not the cluster's JSON ({exc})",
        "check that store.url in bot.yaml names the cluster itself (not a login page or a "
        "proxy's error page)",
    )  # fmt: skip


def _unreachable(url: str, exc: Exception) -> ClusterError:
    text = str(exc)
    reason = "connection refused" if "refused" in _causes(exc).lower() else text
    return ClusterError(
        url, None, "connection", f"cannot reach the cluster ({reason})",
        "check store.url in bot.yaml and that the cluster is up",
    )  # fmt: skip


def _causes(exc: BaseException) -> str:
    """The messages of an exception and of what caused it (clients wrap socket errors)."""
    seen: list[str] = []
    pending: list[object] = [exc]
    while pending and len(seen) < 20:
        item = pending.pop()
        if not isinstance(item, BaseException):
            continue
        seen.append(str(item))
        pending.extend([item.__cause__, item.__context__, *getattr(item, "errors", ())])
    return " | ".join(seen)


def _bulk_failed(url: str, errors: Sequence[Any]) -> ClusterError:
    first = errors[0] if errors else {}
    item: Any = next(iter(first.values()), {}) if isinstance(first, Mapping) else {}
    status = item.get("status") if isinstance(item, Mapping) else None
    kind, reason = error_parts(item) if isinstance(item, Mapping) else ("error", str(first))
    return ClusterError(
        url, status if isinstance(status, int) else None, kind,
        f"{len(errors)} documents were not indexed, the first because: {reason}",
    )  # fmt: skip


def connect(settings: ElasticSettings) -> Cluster:
    """The cluster ``settings`` describe, through its backend's client library."""
    if settings.backend == "elasticsearch":
        return ElasticsearchCluster(settings)
    return OpenSearchCluster(settings)
