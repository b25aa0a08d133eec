"""The cluster store: recheck's history in an Elasticsearch 8 or OpenSearch cluster.

Big CI systems already ship their logs to a cluster as logstash-style daily indices
(``logstash-YYYY.MM.DD``, one flat document per log event). ``ElasticStore`` implements
the ``Store`` interface on such a cluster, so recheck's commands work on it as on the
embedded store, and adds what only a cluster can do cheaply: ``classify`` (which
signatures match a build's indexed events, in one ``_msearch`` round trip),
``summary`` (a query's breakdown by aggregations) and ``health`` (for the pages'
header). Chosen in bot.yaml (``parse_settings`` reads the section)::

    store:
      backend: opensearch          # or elasticsearch; leave out for the embedded store
      url: https://opensearch.example.org:9200
      index_pattern: "logstash-*"  # '*' is the day, written as date_format says
      username: recheck
      password_env: RECHECK_STORE_PASSWORD

**Where things live.** Events go to the daily index of their build's time (``when``
at ingest) with their fields unchanged plus ``@timestamp`` and private ``recheck_*``
fields (event id, rank, generation) that searches hide again; events indexed by
logstash are read as they are. Builds, matches and signature versions have indices of
their own (``recheck-builds``, ``recheck-matches``, ``recheck-signatures``, created
with keyword mappings on first write), so several recheck processes share a cluster.

**Requests.** A search sends the query text unchanged as a ``query_string`` (default
field ``message``) with filters on ``@timestamp`` and the build fields, to the daily
indices of the window that exist (one ``_cat/indices`` call), and pages with
``search_after`` inside a point in time. Filters on event fields use their keyword
sub-field (``build_uuid.keyword``: ``keyword_suffix``), as logstash's index template
and dynamic mappings make them. Requests answered 429, 502, 503 or 504, timeouts and
refused connections are retried with exponential backoff and jitter (``RetryPolicy``).

**Differences from the embedded store.** The cluster decides what a query matches
(recheck's engine follows Lucene, so it agrees on the events recheck indexed). A
re-ingest overwrites the build's events in place and then deletes the old copy's
leftovers: a reader in between may see both, and a crash leaves leftovers that the next
ingest of that build deletes. ``reclassify`` searches only events recheck indexed.

Settings, the client libraries, retries and errors are ``recheck.store.cluster``'s.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from recheck.build import BUILD_FIELDS, Build
from recheck.models import EVENT_FIELDS, Event, Signature
from recheck.query import Query
from recheck.querystats import NOISY_FIELDS, UNKNOWN_STATUS, QueryStats
from recheck.store.base import (
    DEFAULT_BUILD_DAYS,
    DEFAULT_EVENT_DAYS,
    GcCounts,
    ReclassifyCounts,
    Retention,
    StoredBuild,
    StoredMatch,
    StoreError,
    days_before,
    signature_hash,
    utc,
)
from recheck.store.cluster import (
    BACKENDS,
    Cluster,
    ClusterError,
    ElasticSettings,
    QueryRejected,
    RetryPolicy,
    connect,
    error_parts,
    parse_settings,
    wants_cluster,
)
from recheck.store.embedded import generated_uuid

if TYPE_CHECKING:
    from recheck.pipeline import Match

__all__ = [
    "BACKENDS",
    "ClusterClassification",
    "ClusterError",
    "ClusterHealth",
    "ElasticSettings",
    "ElasticStore",
    "QueryRejected",
    "RetryPolicy",
    "open_cluster_store",
    "parse_settings",
    "wants_cluster",
]

PRIVATE_PREFIX = "recheck_"
"""Fields recheck adds to the events it indexes; searches hide them again."""
_ID, _RANK, _GENERATION, _ORIGINAL_TIME = (
    "recheck_id",
    "recheck_rank",
    "recheck_generation",
    "recheck_original_timestamp",
)
TIMESTAMP = "@timestamp"
KEEP_ALIVE = "2m"
"""How long a point in time outlives its last page request."""
MAX_INDEX_LIST = 3000
"""Characters of explicit index names above which the index pattern is searched instead
(a request line must stay below the cluster's 4 KB limit)."""
GC_INTERVAL = timedelta(hours=1)
_DELETE_CHUNK = 1000
"""Build uuids per ``terms`` filter when matches of many builds are replaced."""


# ---------------------------------------------------------------------------- requests


def _iso(moment: datetime) -> str:
    """A UTC time as the cluster stores it: ``2024-05-20T10:00:00.000Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _parse_time(value: object) -> datetime:
    """A time as the cluster returns it: ISO text, or epoch milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    text = str(value)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return utc(moment)


def query_string(text: str) -> dict[str, Any]:
    """The signature's query as the cluster gets it: the text unchanged, ``message`` default."""
    return {"query_string": {"query": text, "default_field": "message"}}


def event_filters(
    settings: ElasticSettings,
    since: datetime | None = None,
    queue: str | None = None,
    build_uuid: str | None = None,
    recheck_only: bool = False,
) -> list[dict[str, Any]]:
    """Filters on event documents: time window, pipeline, build, recheck-indexed only."""
    filters: list[dict[str, Any]] = []
    if since is not None:
        filters.append({"range": {TIMESTAMP: {"gte": _iso(since)}}})
    if queue is not None:
        filters.append({"term": {f"build_queue{settings.keyword_suffix}": queue}})
    if build_uuid is not None:
        filters.append({"term": {f"build_uuid{settings.keyword_suffix}": build_uuid}})
    if recheck_only:
        filters.append({"exists": {"field": _GENERATION}})
    return filters


def event_query(text: str, filters: list[dict[str, Any]]) -> dict[str, Any]:
    """A bool query: the query_string must match, the filters restrict (and do not score)."""
    return {"bool": {"must": [query_string(text)], "filter": filters}}


def _described(query: Query | Signature) -> tuple[str, str, str]:
    """(query text, name, what it is) for requests and error messages."""
    if isinstance(query, Signature):
        return query.query, query.bug, "signature"
    return query.text, repr(query.text), "query"


def _ndjson(lines: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)


def _dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _source_text(doc: Mapping[str, Any]) -> str:
    """A document as ASCII JSON: text that is not valid Unicode (a lone surrogate from a
    JSON events file) travels escaped and comes back exactly, instead of failing."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True)


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ClusterHealth:
    """The cluster's state for the pages' header."""

    status: str
    """green, yellow or red."""
    cluster_name: str
    number_of_nodes: int
    unassigned_shards: int


@dataclass
class ClusterClassification:
    """Which signatures match one build's indexed events (``ElasticStore.classify``)."""

    build: Build
    matches: list[Match] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    """bug -> matching events in the cluster (``matches`` keeps ``max_hits`` of them)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Signatures not evaluated for this build: bug -> why (as the pipeline decides)."""
    errors: dict[str, str] = field(default_factory=dict)
    """Signatures the cluster could not evaluate: bug -> the cluster's reason."""

    @property
    def bugs(self) -> list[str]:
        """The bugs with at least one matching event, in signature order."""
        return list(dict.fromkeys(match.bug for match in self.matches))


def _event_of(source: Mapping[str, Any]) -> Event:
    """An event as recheck knows it from a document's ``_source``.

    Events recheck indexed come back exactly as ingested (private fields and the added
    ``@timestamp`` removed); others get their values as text: numbers and booleans as
    JSON wrote them, objects flattened to dotted names, nulls dropped.
    """
    ours = _GENERATION in source
    event: Event = {}
    for name, value in source.items():
        if ours and (name.startswith(PRIVATE_PREFIX) or name == TIMESTAMP):
            continue
        _put(event, name, value)
    if ours and _ORIGINAL_TIME in source:
        event[TIMESTAMP] = source[_ORIGINAL_TIME]
    return event


def _put(event: Event, name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _put(event, f"{name}.{key}", inner)
    elif isinstance(value, list):
        event[name] = [_text(item) for item in value if item is not None]
    else:
        event[name] = _text(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _event_id(hit: Mapping[str, Any]) -> str:
    source = hit.get("_source", {})
    if _ID in source:
        return str(source[_ID])
    return f"{source.get('filename', hit.get('_index', ''))}:{hit.get('_id', '')}"


def _match_of(bug: str, hit: Mapping[str, Any]) -> Match:
    from recheck.pipeline import EXCERPT_CHARS, Match

    event = _event_of(hit.get("_source", {}))
    filename, _, line = _event_id(hit).rpartition(":")
    message = event.get("message", "")
    text = message if isinstance(message, str) else "\n".join(message)
    return Match(bug, filename, int(line) if line.isdigit() else 0, text[:EXCERPT_CHARS])


def _build_of(source: Mapping[str, Any]) -> StoredBuild:
    values = {name: str(source[name]) for name in BUILD_FIELDS if source.get(name) is not None}
    return StoredBuild(
        build=Build(**values),
        time=_parse_time(source["time"]),
        ingested_at=_parse_time(source["ingested_at"]),
        events=int(source.get("events", 0)),
        events_kept=bool(source.get("events_kept", False)),
        bugs=tuple(sorted(source.get("bugs") or ())),
    )


def _match_id(uuid: str, bug: str, filename: str, line: int) -> str:
    key = json.dumps([uuid, bug, filename, line])
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


_KEYWORD: dict[str, Any] = {"type": "keyword"}
_MAPPINGS: dict[str, dict[str, Any]] = {
    "builds": {
        "properties": {
            **{name: _KEYWORD for name in BUILD_FIELDS},
            "time": {"type": "date"},
            "ingested_at": {"type": "date"},
            "events": {"type": "long"},
            "events_kept": {"type": "boolean"},
            "bugs": _KEYWORD,
            "generation": _KEYWORD,
        }
    },
    "matches": {
        "properties": {
            "bug": _KEYWORD,
            "build_uuid": _KEYWORD,
            "build_time": {"type": "date"},
            "filename": _KEYWORD,
            "line": {"type": "long"},
            "message": {"type": "text", "index": False},
            "generation": _KEYWORD,
        }
    },
    "signatures": {
        "properties": {"bug": _KEYWORD, "hash": _KEYWORD, "recorded_at": {"type": "date"}}
    },
}
"""Mappings of recheck's own indices: exact values, so filters and sorts need no suffix."""


# ---------------------------------------------------------------------------- the store


class ElasticStore:
    """The ``Store`` interface on an Elasticsearch 8 or OpenSearch cluster."""

    def __init__(
        self,
        settings: ElasticSettings,
        *,
        retention: Retention | None = None,
        auto_gc: bool = False,
        cluster: Cluster | None = None,
    ) -> None:
        """Connect lazily: nothing is sent until the first call.

        Raises StoreError naming the extra to install when the backend's client
        library is missing.
        """
        self.settings = settings
        self.retention = retention or Retention()
        self.auto_gc = auto_gc
        self._cluster = connect(settings) if cluster is None else cluster
        self._sleep: Callable[[float], None] = time.sleep
        """Test seam: how retries wait."""
        self._indices_ready = False
        self._last_gc: datetime | None = None
        self._closed = False

    @property
    def path(self) -> str:
        """The cluster's URL (without credentials)."""
        return self.settings.display_url

    def __enter__(self) -> ElasticStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Forget the connection; the store cannot be used afterwards."""
        self._closed = True

    # ------------------------------------------------------------------ requests

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        ndjson: Sequence[Mapping[str, Any]] | None = None,
    ) -> Any:
        """One request, retried by the retry policy while the failure is retryable."""
        if self._closed:
            raise StoreError(self.path, "the store is closed")
        if ndjson is not None:
            text: str | None = _ndjson(ndjson)
            content_type = "application/x-ndjson"
        else:
            text = None if body is None else _dumps(body)
            content_type = "application/json"
        attempt = 0
        while True:
            try:
                return self._cluster.request(method, path, params, text, content_type)
            except ClusterError as exc:
                if not exc.retryable or attempt >= self.settings.retry.retries:
                    raise
                self._sleep(self.settings.retry.delay(attempt))
                attempt += 1

    def _bulk(self, actions: Iterable[dict[str, Any]]) -> int:
        if self._closed:
            raise StoreError(self.path, "the store is closed")
        return self._cluster.bulk(actions, self.settings.retry)

    def _ensure_indices(self) -> None:
        """Create recheck's own indices with their mappings, once per process."""
        if self._indices_ready:
            return
        for kind in ("builds", "matches", "signatures"):
            try:
                self._call("PUT", f"/{self._index(kind)}", body={"mappings": _MAPPINGS[kind]})
            except ClusterError as exc:
                if exc.kind != "resource_already_exists_exception":
                    raise
        self._indices_ready = True

    def _index(self, kind: str) -> str:
        return {
            "builds": self.settings.builds_index,
            "matches": self.settings.matches_index,
            "signatures": self.settings.signatures_index,
        }[kind]

    def _refresh(self, indices: Iterable[str]) -> None:
        names = ",".join(quote(name, safe="*") for name in dict.fromkeys(indices))
        self._call("POST", f"/{names}/_refresh", {"ignore_unavailable": "true"})

    def _delete(self, indices: str, query: Mapping[str, Any]) -> int:
        answer = self._call(
            "POST",
            f"/{indices}/_delete_by_query",
            {"ignore_unavailable": "true", "allow_no_indices": "true", "refresh": "true",
             "conflicts": "proceed"},
            {"query": query},
        )  # fmt: skip
        return int(answer.get("deleted", 0))

    def _event_indices(self, since: datetime, until: datetime) -> list[str]:
        """The existing daily indices of the days from ``since`` to ``until``.

        Indices of the pattern whose name is not a day (``logstash-archive``) are kept:
        the time filter decides about their events. When the list would not fit in a
        request line, the pattern itself is searched.
        """
        listed = self._call(
            "GET",
            f"/_cat/indices/{self.settings.index_pattern}",
            {"format": "json", "h": "index", "expand_wildcards": "open"},
        )
        prefix, _, suffix = self.settings.index_pattern.partition("*")
        chosen = []
        for row in listed if isinstance(listed, list) else []:
            name = str(row.get("index", ""))
            middle = name[len(prefix) : len(name) - len(suffix) if suffix else None]
            try:
                day = datetime.strptime(middle, self.settings.date_format).date()
            except ValueError:
                chosen.append(name)
                continue
            if since.date() <= day <= until.date():
                chosen.append(name)
        chosen.sort()
        if sum(len(name) + 1 for name in chosen) > MAX_INDEX_LIST:
            return [self.settings.index_pattern]
        return chosen

    def _pages(
        self,
        indices: Sequence[str],
        query: Mapping[str, Any],
        sort: list[Any],
        *,
        limit: int | None = None,
        point_in_time: bool = False,
        source: bool | list[str] = True,
    ) -> Iterator[dict[str, Any]]:
        """Every hit of ``query``, a page at a time with ``search_after``.

        ``point_in_time`` pages inside a point in time, so writes during the scan do
        not shift pages (for events, whose sort key is not unique without it); a
        cluster without point in time (OpenSearch before 2.4) is paged without.
        """
        if not indices:
            return
        names = ",".join(quote(name, safe="*") for name in indices)
        pit = self._open_pit(names) if point_in_time else None
        if point_in_time:
            tiebreak = "_shard_doc" if self.settings.backend == "elasticsearch" else "_id"
            sort = [*sort, {tiebreak: "asc"}] if pit is not None else [*sort, {"_id": "asc"}]
        try:
            after: list[Any] | None = None
            seen = 0
            while True:
                size = self.settings.page_size
                if limit is not None:
                    size = min(size, limit - seen)
                body: dict[str, Any] = {"query": query, "sort": sort, "size": size,
                                        "track_total_hits": False, "_source": source}  # fmt: skip
                if after is not None:
                    body["search_after"] = after
                if pit is not None:
                    body["pit"] = {"id": pit, "keep_alive": KEEP_ALIVE}
                    answer = self._call("POST", "/_search", body=body)
                    pit = answer.get("pit_id", pit)
                else:
                    answer = self._call(
                        "POST", f"/{names}/_search",
                        {"ignore_unavailable": "true", "allow_no_indices": "true"}, body,
                    )  # fmt: skip
                hits = answer["hits"]["hits"]
                yield from hits
                seen += len(hits)
                if len(hits) < size or (limit is not None and seen >= limit):
                    return
                after = hits[-1]["sort"]
        finally:
            if pit is not None:
                self._close_pit(pit)

    def _open_pit(self, names: str) -> str | None:
        if self.settings.backend == "elasticsearch":
            path, key = f"/{names}/_pit", "id"
        else:
            path, key = f"/{names}/_search/point_in_time", "pit_id"
        try:
            answer = self._call(
                "POST", path, {"keep_alive": KEEP_ALIVE, "ignore_unavailable": "true"}
            )
        except ClusterError as exc:
            if exc.status in (400, 404, 405) and exc.kind != "index_not_found_exception":
                return None  # no point in time on this cluster: page without
            raise
        return str(answer[key])

    def _close_pit(self, pit: str) -> None:
        try:
            if self.settings.backend == "elasticsearch":
                self._call("DELETE", "/_pit", body={"id": pit})
            else:
                self._call("DELETE", "/_search/point_in_time", body={"pit_id": [pit]})
        except ClusterError:
            pass  # it expires after KEEP_ALIVE anyway

    # ------------------------------------------------------------------ writing

    def has_build(self, uuid: str) -> bool:
        """Whether a build with this uuid is stored."""
        try:
            answer = self._call("GET", f"/{self.settings.builds_index}/_doc/{quote(uuid, safe='')}")
        except ClusterError as exc:
            if exc.status == 404:
                return False
            raise
        return bool(answer.get("found"))

    def ingest(
        self,
        build: Build,
        events: Iterable[tuple[str, Event]],
        matches: Iterable[Match],
        when: datetime | None = None,
    ) -> str:
        """Index ``build``'s events into its day's index, then its matches and the build.

        Replaces an earlier copy: the new documents overwrite the old ones, then what
        is left of the old copy is deleted. Returns the build's uuid.
        """
        self._ensure_indices()
        moment = utc(when)
        uuid = build.build_uuid or generated_uuid(build)
        build = replace(build, build_uuid=uuid)
        generation = uuidlib.uuid4().hex
        day_index = self.settings.daily_index(moment.date())
        counted = {"events": 0}
        found_bugs: set[str] = set()

        def actions() -> Iterator[dict[str, Any]]:
            stamp = _iso(moment)
            for rank, (event_id, event) in enumerate(events, start=1):
                counted["events"] = rank
                doc: dict[str, Any] = dict(event)
                if TIMESTAMP in doc:
                    doc[_ORIGINAL_TIME] = doc[TIMESTAMP]
                doc.setdefault("build_uuid", uuid)
                doc.update({TIMESTAMP: stamp, _ID: event_id, _RANK: rank, _GENERATION: generation})
                yield {"_op_type": "index", "_index": day_index, "_id": f"{uuid}:{rank}",
                       "_source": _source_text(doc)}  # fmt: skip
            for match in matches:
                found_bugs.add(match.bug)
                yield self._match_action(uuid, moment, generation, match)
            yield {
                "_op_type": "index",
                "_index": self.settings.builds_index,
                "_id": uuid,
                "_source": {
                    **build.event_fields(),
                    "time": stamp,
                    "ingested_at": _iso(utc(None)),
                    "events": counted["events"],
                    "events_kept": True,
                    "bugs": sorted(found_bugs),
                    "generation": generation,
                },
            }

        self._bulk(actions())
        self._refresh([day_index, self.settings.matches_index, self.settings.builds_index])
        stale = {"must_not": [{"term": {_GENERATION + self.settings.keyword_suffix: generation}}]}
        self._delete(
            self.settings.index_pattern,
            {"bool": {"filter": event_filters(self.settings, build_uuid=uuid), **stale}},
        )
        self._delete(
            self.settings.matches_index,
            {"bool": {"filter": [{"term": {"build_uuid": uuid}}],
                      "must_not": [{"term": {"generation": generation}}]}},
        )  # fmt: skip
        if self.auto_gc and (self._last_gc is None or self._last_gc <= utc(None) - GC_INTERVAL):
            self.gc()
        return uuid

    def _match_action(
        self, uuid: str, build_time: datetime, generation: str, match: Match
    ) -> dict[str, Any]:
        return {
            "_op_type": "index",
            "_index": self.settings.matches_index,
            "_id": _match_id(uuid, match.bug, match.filename, int(match.line)),
            "_source": _source_text(
                {
                    "bug": match.bug,
                    "build_uuid": uuid,
                    "build_time": _iso(build_time),
                    "filename": match.filename,
                    "line": int(match.line),
                    "message": match.message,
                    "generation": generation,
                }
            ),
        }

    def gc(
        self,
        now: datetime | None = None,
        event_days: float | None = None,
        build_days: float | None = None,
    ) -> GcCounts:
        """Drop events older than ``event_days``, builds and matches older than ``build_days``.

        Only events recheck indexed are deleted: a logstash-fed cluster has its own
        retention (curator, ILM) for the rest.
        """
        moment = utc(now)
        event_cut = days_before(
            moment, self.retention.event_days if event_days is None else event_days
        )
        build_cut = days_before(
            moment, self.retention.build_days if build_days is None else build_days
        )
        event_cut = max(event_cut, build_cut)
        self._last_gc = utc(None)
        events = self._delete(
            self.settings.index_pattern,
            {"bool": {"filter": [{"exists": {"field": _GENERATION}},
                                 {"range": {TIMESTAMP: {"lt": _iso(event_cut)}}}]}},
        )  # fmt: skip
        emptied = self._pages(
            [self.settings.builds_index],
            {"bool": {"filter": [{"term": {"events_kept": True}},
                                 {"range": {"time": {"lt": _iso(event_cut)}}}]}},
            [{"build_uuid": "asc"}],
            source=False,
        )  # fmt: skip
        updates = [
            {"_op_type": "update", "_index": self.settings.builds_index, "_id": hit["_id"],
             "doc": {"events_kept": False}}
            for hit in emptied
        ]  # fmt: skip
        if updates:
            self._bulk(updates)
            self._refresh([self.settings.builds_index])
        old = {"range": {"time": {"lt": _iso(build_cut)}}}
        matches = self._delete(
            self.settings.matches_index, {"range": {"build_time": {"lt": _iso(build_cut)}}}
        )
        builds = self._delete(self.settings.builds_index, old)
        return GcCounts(events=events, builds=builds, matches=matches)

    # ------------------------------------------------------------------ reading

    def search(
        self,
        query: Query | Signature,
        days: float = DEFAULT_EVENT_DAYS,
        queue: str | None = None,
        now: datetime | None = None,
    ) -> Iterator[tuple[str, Event]]:
        """The events of the last ``days`` the cluster matches with ``query``'s text.

        Raises QueryRejected (naming the signature) when the cluster refuses the query.
        """
        text, name, what = _described(query)
        moment = utc(now)
        since = days_before(moment, days)
        indices = self._event_indices(since, max(moment, utc(None)))
        body = event_query(text, event_filters(self.settings, since, queue))
        try:
            for hit in self._pages(indices, body, [{TIMESTAMP: "asc"}], point_in_time=True):
                yield _event_id(hit), _event_of(hit["_source"])
        except ClusterError as exc:
            if exc.status == 400:
                raise QueryRejected(self.path, {name: exc.reason}, what) from None
            raise

    def summary(
        self,
        query: Query | Signature,
        days: float = DEFAULT_EVENT_DAYS,
        queue: str | None = None,
        now: datetime | None = None,
        *,
        quantity: int = 5,
        verbose: bool = False,
    ) -> QueryStats:
        """What ``recheck query`` reports about ``query``'s hits, from aggregations.

        One request, whatever the number of hits: the total, distinct builds per
        build_status (a cardinality, exact below 40,000 builds), and each event
        field's top values. Unlike ``querystats.summarize`` over hits, a multi-valued
        field (``tags``) counts each of its values, as the cluster's terms do.
        """
        text, name, what = _described(query)
        moment = utc(now)
        since = days_before(moment, days)
        indices = self._event_indices(since, max(moment, utc(None)))
        if not indices:
            return QueryStats(hits=0, builds={})
        body = {
            "query": event_query(text, event_filters(self.settings, since, queue)),
            "size": 0,
            "track_total_hits": True,
            "aggs": self._summary_aggs(quantity, verbose),
        }
        names = ",".join(quote(name, safe="*") for name in indices)
        try:
            answer = self._call(
                "POST", f"/{names}/_search",
                {"ignore_unavailable": "true", "allow_no_indices": "true"}, body,
            )  # fmt: skip
        except ClusterError as exc:
            if exc.status == 400:
                raise QueryRejected(self.path, {name: exc.reason}, what) from None
            raise
        return self._stats(answer, quantity)

    def _summary_fields(self, verbose: bool) -> list[str]:
        return [
            name for name in EVENT_FIELDS
            if name != "message" and not name.startswith("@")
            and (verbose or name not in NOISY_FIELDS)
        ]  # fmt: skip

    def _summary_aggs(self, quantity: int, verbose: bool) -> dict[str, Any]:
        suffix = self.settings.keyword_suffix
        aggs: dict[str, Any] = {
            "statuses": {
                "terms": {"field": f"build_status{suffix}", "size": 100,
                          "missing": UNKNOWN_STATUS},
                "aggs": {"builds": {"cardinality": {"field": f"build_uuid{suffix}",
                                                    "precision_threshold": 40000}}},
            }
        }  # fmt: skip
        for name in self._summary_fields(verbose):
            aggs[f"top:{name}"] = {"terms": {"field": f"{name}{suffix}", "size": quantity}}
            aggs[f"missing:{name}"] = {"missing": {"field": f"{name}{suffix}"}}
        return aggs

    def _stats(self, answer: Mapping[str, Any], quantity: int) -> QueryStats:
        hits = int(answer["hits"]["total"]["value"])
        aggs = answer.get("aggregations", {})
        builds = {
            str(bucket["key"]): int(bucket["builds"]["value"])
            for bucket in aggs.get("statuses", {}).get("buckets", [])
        }
        top: dict[str, list[tuple[str, float]]] = {}
        for name in sorted(key.split(":", 1)[1] for key in aggs if key.startswith("top:")):
            buckets = aggs[f"top:{name}"].get("buckets", [])
            having = hits - int(aggs.get(f"missing:{name}", {}).get("doc_count", 0))
            if not buckets or having <= 0:
                continue
            ranked = sorted(buckets, key=lambda b: (-int(b["doc_count"]), str(b["key"])))
            top[name] = [
                (_text(b["key"]), round(int(b["doc_count"]) / having, 4)) for b in ranked[:quantity]
            ]
        return QueryStats(hits=hits, builds=dict(sorted(builds.items())), fields=top)

    def matches_for(
        self, bug: str, days: float = DEFAULT_BUILD_DAYS, now: datetime | None = None
    ) -> list[StoredMatch]:
        """The matches of ``bug`` in builds of the last ``days``, oldest build first."""
        since = days_before(utc(now), days)
        hits = list(
            self._pages(
                [self.settings.matches_index],
                {"bool": {"filter": [{"term": {"bug": bug}},
                                     {"range": {"build_time": {"gte": _iso(since)}}}]}},
                [{"build_time": "asc"}, {"build_uuid": "asc"}, {"filename": "asc"},
                 {"line": "asc"}],
            )
        )  # fmt: skip
        builds = self._builds_by_uuid({str(hit["_source"]["build_uuid"]) for hit in hits})
        found = []
        for hit in hits:
            source = hit["_source"]
            stored = builds.get(str(source["build_uuid"]))
            if stored is not None:
                found.append(
                    StoredMatch(bug, str(source["filename"]), int(source["line"]),
                                str(source["message"]), stored)
                )  # fmt: skip
        return found

    def _builds_by_uuid(self, uuids: Iterable[str]) -> dict[str, StoredBuild]:
        wanted = sorted(uuids)
        builds: dict[str, StoredBuild] = {}
        for start in range(0, len(wanted), _DELETE_CHUNK):
            chunk = wanted[start : start + _DELETE_CHUNK]
            for hit in self._pages(
                [self.settings.builds_index], {"ids": {"values": chunk}}, [{"build_uuid": "asc"}]
            ):
                stored = _build_of(hit["_source"])
                builds[stored.uuid] = stored
        return builds

    def builds(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        status: str | None = None,
        queue: str | None = None,
        uncategorized: bool = False,
        limit: int | None = None,
    ) -> list[StoredBuild]:
        """Stored builds with ``since <= time < until``, newest first."""
        window: dict[str, str] = {}
        if since is not None:
            window["gte"] = _iso(utc(since))
        if until is not None:
            window["lt"] = _iso(utc(until))
        filters: list[dict[str, Any]] = [{"range": {"time": window}}] if window else []
        if status is not None:
            filters.append({"term": {"build_status": status}})
        if queue is not None:
            filters.append({"term": {"build_queue": queue}})
        query: dict[str, Any] = {"bool": {"filter": filters}}
        if uncategorized:
            query["bool"]["must_not"] = [{"exists": {"field": "bugs"}}]
        hits = self._pages(
            [self.settings.builds_index], query, [{"time": "desc"}, {"build_uuid": "asc"}],
            limit=limit,
        )  # fmt: skip
        return [_build_of(hit["_source"]) for hit in hits]

    def newest_event_time(self) -> datetime | None:
        """The time of the newest event in the cluster (a max aggregation); None when empty.

        On a logstash-fed cluster this is how far indexing has come: the pages' header
        shows how far behind it is.
        """
        answer = self._call(
            "POST",
            f"/{self.settings.index_pattern}/_search",
            {"ignore_unavailable": "true", "allow_no_indices": "true"},
            {"size": 0, "track_total_hits": False,
             "aggs": {"newest": {"max": {"field": TIMESTAMP}}}},
        )  # fmt: skip
        value = answer.get("aggregations", {}).get("newest", {}).get("value")
        return None if value is None else _parse_time(value)

    def health(self) -> ClusterHealth:
        """The cluster's health (green/yellow/red), for the pages' header."""
        answer = self._call("GET", "/_cluster/health")
        return ClusterHealth(
            status=str(answer.get("status", "unknown")),
            cluster_name=str(answer.get("cluster_name", "")),
            number_of_nodes=int(answer.get("number_of_nodes", 0)),
            unassigned_shards=int(answer.get("unassigned_shards", 0)),
        )

    # ------------------------------------------------------------------ classify

    def classify(
        self, build: Build, signatures: Sequence[Signature], since: datetime | None = None
    ) -> ClusterClassification:
        """Which ``signatures`` match the events the cluster holds for ``build``.

        One ``_msearch`` round trip for all signatures (sub-searches the cluster
        refused with 429 are sent again, alone, after a backoff). A signature whose
        query the cluster rejects gets an entry in ``errors``; the others are
        unaffected. ``since`` limits the search to events from then on (the build's
        start), so the cluster skips older shards.
        """
        from recheck.pipeline import applicable

        if build.build_uuid is None:
            raise StoreError(self.path, "classifying in the cluster needs the build's uuid")
        result = ClusterClassification(build)
        chosen, result.skipped = applicable(signatures, build)
        filters = event_filters(self.settings, since=since, build_uuid=build.build_uuid)
        header = {"index": self.settings.index_pattern, "ignore_unavailable": True,
                  "allow_no_indices": True}  # fmt: skip
        pending = list(chosen)
        found: dict[str, list[Match]] = {}
        attempt = 0
        while pending:
            lines: list[Mapping[str, Any]] = []
            for signature in pending:
                lines.append(header)
                lines.append({
                    "query": event_query(signature.query, filters),
                    "sort": [{TIMESTAMP: "asc"}],
                    "size": self.settings.max_hits,
                    "track_total_hits": True,
                })  # fmt: skip
            answer = self._call("POST", "/_msearch", ndjson=lines)
            retry: list[Signature] = []
            for signature, response in zip(pending, answer["responses"], strict=True):
                status = int(response.get("status", 200))
                if "error" not in response:
                    hits = response["hits"]
                    result.totals[signature.bug] = int(hits["total"]["value"])
                    found[signature.bug] = [_match_of(signature.bug, hit) for hit in hits["hits"]]
                elif status in (429, 503) and attempt < self.settings.retry.retries:
                    retry.append(signature)
                else:
                    kind, reason = error_parts(response)
                    result.errors[signature.bug] = f"{kind}: {reason}"
            if retry:
                self._sleep(self.settings.retry.delay(attempt))
                attempt += 1
            pending = retry
        result.matches = [
            match
            for signature in chosen
            for match in sorted(found.get(signature.bug, []), key=lambda m: (m.filename, m.line))
        ]
        return result

    # ------------------------------------------------------------------ reclassify

    def reclassify(
        self,
        signatures: Sequence[Signature],
        since: datetime | None = None,
        *,
        only_changed: bool = True,
    ) -> ReclassifyCounts:
        """Re-run new or changed signatures over the events recheck indexed; replace matches.

        Builds whose events are gone keep their matches, and signatures with test ids
        are not re-run (no store keeps test results). A signature the cluster
        rejects keeps its old matches and is not recorded as re-run; after the others
        are done, QueryRejected names it.
        """
        from recheck.pipeline import applicable

        self._ensure_indices()
        versions = {s.bug: signature_hash(s) for s in signatures}
        recorded = self._recorded({f"{bug}:{digest}" for bug, digest in versions.items()})
        # As in the embedded store: signatures with test ids need the build's test
        # results, which no store keeps, so they keep the matches their ingest found.
        rerun = [
            s
            for s in signatures
            if not s.test_ids and (not only_changed or f"{s.bug}:{versions[s.bug]}" not in recorded)
        ]
        if not rerun:
            return ReclassifyCounts()
        window: list[dict[str, Any]] = [{"term": {"events_kept": True}}]
        if since is not None:
            window.append({"range": {"time": {"gte": _iso(utc(since))}}})
        stored: dict[str, StoredBuild] = {}
        generations: dict[str, str] = {}
        for hit in self._pages([self.settings.builds_index], {"bool": {"filter": window}},
                               [{"build_uuid": "asc"}]):  # fmt: skip
            build = _build_of(hit["_source"])
            stored[build.uuid] = build
            generations[build.uuid] = str(hit["_source"].get("generation", ""))
        hits: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = {}
        errors: dict[str, str] = {}
        oldest = min((b.time for b in stored.values()), default=utc(None))
        indices = self._event_indices(oldest, utc(None)) if stored else []
        filters = event_filters(self.settings, since=None if since is None else utc(since),
                                recheck_only=True)  # fmt: skip
        for signature in rerun:
            try:
                for hit in self._pages(indices, event_query(signature.query, filters),
                                       [{TIMESTAMP: "asc"}], point_in_time=True):  # fmt: skip
                    uuid = str(hit["_source"].get("build_uuid"))
                    if uuid in stored:
                        rank = int(hit["_source"].get(_RANK, 0))
                        hits.setdefault(uuid, {}).setdefault(signature.bug, []).append((rank, hit))
            except ClusterError as exc:
                if exc.status != 400:
                    raise
                errors[signature.bug] = exc.reason
        done = [s for s in rerun if s.bug not in errors]
        bugs = [s.bug for s in done]
        total = 0
        actions: list[dict[str, Any]] = []
        for uuid, build in stored.items():
            chosen, _ = applicable(done, build.build)
            allowed = {s.bug for s in chosen}
            new_bugs: set[str] = set()
            for bug, found in hits.get(uuid, {}).items():
                if bug not in allowed:
                    continue
                for _, hit in sorted(found, key=lambda item: item[0]):
                    match = _match_of(bug, hit)
                    actions.append(self._match_action(uuid, build.time, generations[uuid], match))
                    new_bugs.add(bug)
                    total += 1
            kept = (set(build.bugs) - set(bugs)) | new_bugs
            if kept != set(build.bugs):
                actions.append({"_op_type": "update", "_index": self.settings.builds_index,
                                "_id": uuid, "doc": {"bugs": sorted(kept)}})  # fmt: skip
        uuids = sorted(stored)
        for start in range(0, len(uuids), _DELETE_CHUNK):
            if not bugs:
                break
            self._delete(
                self.settings.matches_index,
                {"bool": {"filter": [
                    {"terms": {"bug": bugs}},
                    {"terms": {"build_uuid": uuids[start : start + _DELETE_CHUNK]}},
                ]}},
            )  # fmt: skip
        moment = _iso(utc(None))
        actions.extend(
            {"_op_type": "index", "_index": self.settings.signatures_index,
             "_id": f"{s.bug}:{versions[s.bug]}",
             "_source": {"bug": s.bug, "hash": versions[s.bug], "recorded_at": moment}}
            for s in done
        )  # fmt: skip
        if actions:
            self._bulk(actions)
            self._refresh([self.settings.matches_index, self.settings.builds_index,
                           self.settings.signatures_index])  # fmt: skip
        if errors:
            raise QueryRejected(self.path, errors)
        return ReclassifyCounts(signatures=tuple(bugs), builds=len(stored), matches=total)

    def _recorded(self, ids: set[str]) -> set[str]:
        if not ids:
            return set()
        found = self._pages(
            [self.settings.signatures_index], {"ids": {"values": sorted(ids)}},
            [{"bug": "asc"}, {"hash": "asc"}], source=False,
        )  # fmt: skip
        return {str(hit["_id"]) for hit in found}


def open_cluster_store(
    section: object,
    *,
    where: str = "bot.yaml",
    retention: Retention | None = None,
    auto_gc: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ElasticStore:
    """The cluster store bot.yaml's ``store`` section describes (see ``parse_settings``)."""
    return ElasticStore(
        parse_settings(section, where, environ), retention=retention, auto_gc=auto_gc
    )
