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

**Requests.** Bodies are built with the backend's query DSL (``Search``, ``Q``, ``A``,
``MultiSearch`` of ``elasticsearch.dsl`` or opensearch-py's copy: ``recheck.store.elastic.dsl``)
and sent through ``recheck.store.elastic.cluster``. A search sends the query text unchanged as
a ``query_string`` (default field ``message``) with filters on ``@timestamp`` and the
build fields, to the daily indices of the window that exist (one ``_cat/indices``
call), and pages with ``search_after`` inside a point in time. Filters on event fields
use their keyword sub-field (``build_uuid.keyword``: ``keyword_suffix``), as logstash's
index template and dynamic mappings make them. Requests answered 429, 502, 503 or 504,
timeouts and refused connections are retried with exponential backoff and jitter
(``RetryPolicy``).

**Re-ingest.** Every copy of a build has its own generation: its events and matches
carry it, the build document names the current one and lists the ``hidden`` ones
(a copy being written, or one being deleted). Readers skip hidden generations, so one
write of the build document switches them from the old copy to the new one; searches
that see the hidden list change while they start are started again.

**Differences from the embedded store.** The cluster decides what a query matches
(recheck's engine follows Lucene, so it agrees on the events recheck indexed).
``reclassify`` searches only
events recheck indexed, and replaces a signature's matches by deleting then writing
(a reader in between sees that bug without matches). ``classify`` does not look up
hidden generations (it would cost a second round trip): it is meant for builds that
logstash indexed.

Settings, the client libraries, retries and errors are ``recheck.store.elastic.cluster``'s.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid as uuidlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from recheck.logs.build import BUILD_FIELDS, Build
from recheck.models import EVENT_FIELDS, Event, Signature
from recheck.query.engine import Query
from recheck.store.base import (
    DEFAULT_BUILD_DAYS,
    DEFAULT_EVENT_DAYS,
    GcCounts,
    ReclassifyCounts,
    Retention,
    StoredBuild,
    StoredClassification,
    StoredMatch,
    StoreError,
    days_before,
    signature_hash,
    utc,
)
from recheck.store.elastic.cluster import (
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
from recheck.store.elastic.dsl import Dsl, dsl_for
from recheck.store.embedded.store import generated_uuid
from recheck.store.stats import NOISY_FIELDS, UNKNOWN_STATUS, QueryStats

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
_CONSISTENT_TRIES = 3
"""Reads of events retried when a re-ingest flipped a build while they ran."""
Clause = Any
"""A query clause of the backend's DSL (``Dsl.Q``): ``.to_dict()`` gives its JSON."""


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


ClusterClassification = StoredClassification
"""The name this result had before every store could classify a stored build."""


def _total(hits: Mapping[str, Any]) -> int:
    """``hits.total`` of a search answer: an object (``{"value": 3, "relation": "eq"}``)
    since Elasticsearch 7 and in OpenSearch, a plain number from a cluster or proxy that
    sets ``rest_total_hits_as_int``."""
    total = hits.get("total", 0)
    return int(total["value"] if isinstance(total, Mapping) else total)


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
    from recheck.pipeline import Match

    return Match.of(bug, _event_id(hit), _event_of(hit.get("_source", {})))


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


def _match_id(uuid: str, generation: str, bug: str, filename: str, line: int) -> str:
    key = json.dumps([uuid, generation, bug, filename, line])
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
            "hidden": _KEYWORD,
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
        self._dsl: Dsl = dsl_for(settings.backend, settings.display_url)
        self._step: Callable[[str], None] = lambda step: None
        """Test seam: called after each step of an ingest, so a reader can look."""
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

    # ------------------------------------------------------------------ bodies (DSL)

    def _query_string(self, text: str) -> Clause:
        """The signature's query as the cluster gets it: the text unchanged, ``message``
        the default field."""
        return self._dsl.Q("query_string", query=text, default_field="message")

    def _term(self, name: str, value: object) -> Clause:
        return self._dsl.Q("term", **{name: value})

    def _range(self, name: str, **bounds: datetime) -> Clause:
        return self._dsl.Q("range", **{name: {op: _iso(utc(at)) for op, at in bounds.items()}})

    def _event_filters(
        self,
        since: datetime | None = None,
        queue: str | None = None,
        build_uuid: str | None = None,
        recheck_only: bool = False,
    ) -> list[Clause]:
        """Filters on event documents: time window, pipeline, build, recheck-indexed only.

        Event fields are filtered on their keyword sub-field (``keyword_suffix``), as
        logstash's index template and dynamic mappings make them.
        """
        suffix = self.settings.keyword_suffix
        filters: list[Clause] = []
        if since is not None:
            filters.append(self._range(TIMESTAMP, gte=since))
        if queue is not None:
            filters.append(self._term(f"build_queue{suffix}", queue))
        if build_uuid is not None:
            filters.append(self._term(f"build_uuid{suffix}", build_uuid))
        if recheck_only:
            filters.append(self._dsl.Q("exists", field=_GENERATION))
        return filters

    def _event_query(self, text: str, filters: list[Clause], hidden: Iterable[str] = ()) -> Clause:
        """The query_string must match, the filters restrict (and do not score), and
        events of ``hidden`` generations (a re-ingest in progress) are left out."""
        skipped = sorted(hidden)
        if not skipped:
            return self._dsl.Q("bool", must=[self._query_string(text)], filter=filters)
        not_now = self._dsl.Q("terms", **{_GENERATION + self.settings.keyword_suffix: skipped})
        return self._dsl.Q(
            "bool", must=[self._query_string(text)], filter=filters, must_not=[not_now]
        )

    def _refresh(self, indices: Iterable[str]) -> None:
        names = ",".join(quote(name, safe="*") for name in dict.fromkeys(indices))
        self._call("POST", f"/{names}/_refresh", {"ignore_unavailable": "true"})

    def _delete(self, indices: str, query: Clause) -> int:
        answer = self._call(
            "POST",
            f"/{indices}/_delete_by_query",
            {"ignore_unavailable": "true", "allow_no_indices": "true", "refresh": "true",
             "conflicts": "proceed"},
            self._dsl.Search().query(query).to_dict(),
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
        query: Clause,
        sort: list[Any],
        *,
        limit: int | None = None,
        point_in_time: bool = False,
        source: bool | list[str] = True,
    ) -> Generator[dict[str, Any]]:
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
        # The DSL builds the query once; search_after and pit are the paging protocol,
        # added to each page's body as plain keys (what ``Search.extra`` would add).
        base = (
            self._dsl.Search().query(query).sort(*sort)
            .extra(track_total_hits=False, _source=source).to_dict()
        )  # fmt: skip
        try:
            after: list[Any] | None = None
            seen = 0
            while True:
                size = self.settings.page_size
                if limit is not None:
                    size = min(size, limit - seen)
                body: dict[str, Any] = {**base, "size": size}
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
            # Only OpenSearch before 2.4 (and Elasticsearch 7 through opensearch-py) lack
            # it; Elasticsearch 8 always has it, and its fallback sort (_id) is refused.
            lacking = exc.status in (400, 404, 405) and exc.kind != "index_not_found_exception"
            if lacking and self.settings.backend == "opensearch":
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

    def _build_source(self, uuid: str) -> dict[str, Any] | None:
        """The stored document of build ``uuid`` (a real-time GET); None when missing."""
        try:
            answer = self._call("GET", f"/{self.settings.builds_index}/_doc/{quote(uuid, safe='')}")
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise
        source = answer.get("_source") if answer.get("found") else None
        return dict(source) if isinstance(source, Mapping) else None

    def has_build(self, uuid: str) -> bool:
        """Whether a build with this uuid is stored (a first ingest still running: no)."""
        source = self._build_source(uuid)
        return source is not None and source.get("generation") is not None

    def ingest(
        self,
        build: Build,
        events: Iterable[tuple[str, Event]],
        matches: Iterable[Match],
        when: datetime | None = None,
    ) -> str:
        """Index ``build``'s events into its day's index, then its matches and the build.

        Readers see the old copy or the new one, never a mix: the new copy is written
        under a new generation that readers skip (the build document lists it as
        ``hidden``), then one write of the build document makes it current and hides
        the old one, whose documents are then deleted. A crash leaves hidden leftovers
        that readers keep skipping and the next ingest of that build deletes. Returns
        the build's uuid.
        """
        self._ensure_indices()
        moment = utc(when)
        stamp = _iso(moment)
        uuid = build.build_uuid or generated_uuid(build)
        build = replace(build, build_uuid=uuid)
        generation = uuidlib.uuid4().hex
        day_index = self.settings.daily_index(moment.date())
        builds_index = self.settings.builds_index
        old = self._build_source(uuid)
        old_hidden = set(old.get("hidden") or ()) if old else set()
        old_generation = old.get("generation") if old else None

        # 1. Hide the new generation before any of its documents can be seen.
        hiding = sorted(old_hidden | {generation})
        if old_generation is not None:
            first: dict[str, Any] = {"_op_type": "update", "_index": builds_index, "_id": uuid,
                                     "doc": {"hidden": hiding}}  # fmt: skip
        else:  # a placeholder: no generation, so builds() and has_build() skip it
            first = {"_op_type": "index", "_index": builds_index, "_id": uuid,
                     "_source": {"build_uuid": uuid, "time": stamp, "hidden": hiding}}  # fmt: skip
        self._bulk([first])
        self._refresh([builds_index])
        self._step("hidden")

        # 2. The new copy's events and matches, under the new generation.
        counted = {"events": 0}
        found_bugs: set[str] = set()

        def actions() -> Iterator[dict[str, Any]]:
            for rank, (event_id, event) in enumerate(events, start=1):
                counted["events"] = rank
                if not self.settings.index_events:
                    continue  # logstash indexed them: only counted
                doc: dict[str, Any] = dict(event)
                if TIMESTAMP in doc:
                    doc[_ORIGINAL_TIME] = doc[TIMESTAMP]
                doc.setdefault("build_uuid", uuid)
                doc.update({TIMESTAMP: stamp, _ID: event_id, _RANK: rank, _GENERATION: generation})
                yield {"_op_type": "index", "_index": day_index,
                       "_id": f"{uuid}:{generation}:{rank}",
                       "_source": _source_text(doc)}  # fmt: skip
            for match in matches:
                found_bugs.add(match.bug)
                yield self._match_action(uuid, moment, generation, match)

        self._bulk(actions())
        self._refresh([day_index, self.settings.matches_index])
        self._step("written")

        # 3. The flip: one document write makes the new copy current, the old hidden.
        retired = (old_hidden | {old_generation}) - {generation, None}
        source: dict[str, Any] = {
            **build.event_fields(),
            "time": stamp,
            "ingested_at": _iso(utc(None)),
            "events": counted["events"],
            "events_kept": True,
            "bugs": sorted(found_bugs),
            "generation": generation,
        }
        if retired:
            source["hidden"] = sorted(str(g) for g in retired)
        self._bulk([{"_op_type": "index", "_index": builds_index, "_id": uuid, "_source": source}])
        self._refresh([builds_index])
        self._step("flipped")

        # 4. Delete the old copy (and any crashed attempt's leftovers), then unhide.
        self._delete(
            self.settings.index_pattern,
            self._dsl.Q("bool", filter=self._event_filters(build_uuid=uuid),
                        must_not=[self._term(_GENERATION + self.settings.keyword_suffix,
                                             generation)]),
        )  # fmt: skip
        self._delete(
            self.settings.matches_index,
            self._dsl.Q("bool", filter=[self._term("build_uuid", uuid)],
                        must_not=[self._term("generation", generation)]),
        )  # fmt: skip
        self._step("deleted")
        if retired:
            self._bulk([{"_op_type": "update", "_index": builds_index, "_id": uuid,
                         "doc": {"hidden": []}}])  # fmt: skip
            self._refresh([builds_index])
        if self.auto_gc and (self._last_gc is None or self._last_gc <= utc(None) - GC_INTERVAL):
            self.gc()
        return uuid

    def _match_action(
        self, uuid: str, build_time: datetime, generation: str, match: Match
    ) -> dict[str, Any]:
        return {
            "_op_type": "index",
            "_index": self.settings.matches_index,
            "_id": _match_id(uuid, generation, match.bug, match.filename, int(match.line)),
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
        Q = self._dsl.Q
        events = self._delete(
            self.settings.index_pattern,
            Q("bool", filter=[Q("exists", field=_GENERATION),
                              self._range(TIMESTAMP, lt=event_cut)]),
        )  # fmt: skip
        emptied = self._pages(
            [self.settings.builds_index],
            Q("bool", filter=[self._term("events_kept", True), self._range("time", lt=event_cut)]),
            [{"build_uuid": "asc"}],
            source=False,
        )
        updates = [
            {"_op_type": "update", "_index": self.settings.builds_index, "_id": hit["_id"],
             "doc": {"events_kept": False}}
            for hit in emptied
        ]  # fmt: skip
        if updates:
            self._bulk(updates)
            self._refresh([self.settings.builds_index])
        matches = self._delete(self.settings.matches_index, self._range("build_time", lt=build_cut))
        # Placeholders of crashed first ingests have a time too, so they go with the rest.
        builds = self._delete(self.settings.builds_index, self._range("time", lt=build_cut))
        return GcCounts(events=events, builds=builds, matches=matches)

    # ------------------------------------------------------------------ reading

    def _hidden(self) -> frozenset[str]:
        """Generations readers skip: re-ingests in progress (new copies not yet current,
        old ones not yet deleted). Few: only builds being re-ingested, or crashed."""
        found = self._pages(
            [self.settings.builds_index], self._dsl.Q("exists", field="hidden"),
            [{"build_uuid": "asc"}], source=["hidden"],
        )  # fmt: skip
        return frozenset(str(g) for hit in found for g in hit["_source"].get("hidden") or ())

    def search(
        self,
        query: Query | Signature,
        days: float = DEFAULT_EVENT_DAYS,
        queue: str | None = None,
        now: datetime | None = None,
    ) -> Iterator[tuple[str, Event]]:
        """The events of the last ``days`` the cluster matches with ``query``'s text.

        Pages inside a point in time, leaving out hidden generations; when a re-ingest
        changed what is hidden while the point in time opened, it is opened again, so a
        build is seen whole (old copy or new). Raises QueryRejected (naming the
        signature) when the cluster refuses the query.
        """
        text, name, what = _described(query)
        moment = utc(now)
        since = days_before(moment, days)
        indices = self._event_indices(since, max(moment, utc(None)))
        filters = self._event_filters(since, queue)
        try:
            for attempt in range(_CONSISTENT_TRIES):
                hidden = self._hidden() if indices else frozenset()
                pages = self._pages(indices, self._event_query(text, filters, hidden),
                                    [{TIMESTAMP: "asc"}], point_in_time=True)  # fmt: skip
                first = next(pages, None)  # opens the point in time: the snapshot read
                if not indices or attempt == _CONSISTENT_TRIES - 1 or self._hidden() == hidden:
                    break
                pages.close()
            if first is None:
                return
            for hit in itertools.chain([first], pages):
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

        One search, whatever the number of hits (plus the small lookup of hidden
        generations before and after it): the total, distinct builds per build_status
        (a cardinality, exact below 40,000 builds), and each event field's top values:
        what ``querystats.summarize`` reports over the hits (each value of a
        multi-valued field such as ``tags`` counted once per hit, in both).
        """
        text, name, what = _described(query)
        moment = utc(now)
        since = days_before(moment, days)
        indices = self._event_indices(since, max(moment, utc(None)))
        if not indices:
            return QueryStats(hits=0, builds={})
        names = ",".join(quote(name, safe="*") for name in indices)
        filters = self._event_filters(since, queue)
        try:
            for attempt in range(_CONSISTENT_TRIES):
                hidden = self._hidden()
                search = (
                    self._dsl.Search().query(self._event_query(text, filters, hidden))
                    .extra(size=0, track_total_hits=True)
                )  # fmt: skip
                self._summary_aggs(search, quantity, verbose)
                answer = self._call(
                    "POST", f"/{names}/_search",
                    {"ignore_unavailable": "true", "allow_no_indices": "true"}, search.to_dict(),
                )  # fmt: skip
                if attempt == _CONSISTENT_TRIES - 1 or self._hidden() == hidden:
                    break
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

    def _summary_aggs(self, search: Any, quantity: int, verbose: bool) -> None:
        """Add ``recheck query``'s aggregations to ``search`` (a DSL Search, in place)."""
        suffix = self.settings.keyword_suffix
        search.aggs.bucket(
            "statuses", "terms", field=f"build_status{suffix}", size=100, missing=UNKNOWN_STATUS
        ).metric("builds", "cardinality", field=f"build_uuid{suffix}", precision_threshold=40000)
        for name in self._summary_fields(verbose):
            search.aggs.bucket(f"top:{name}", "terms", field=f"{name}{suffix}", size=quantity)
            search.aggs.bucket(f"missing:{name}", "missing", field=f"{name}{suffix}")

    def _stats(self, answer: Mapping[str, Any], quantity: int) -> QueryStats:
        hits = _total(answer["hits"])
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
        """The matches of ``bug`` in builds of the last ``days``, oldest build first.

        Only matches of each build's current generation count (a re-ingest writes the
        new copy's matches before it makes them current).
        """
        since = days_before(utc(now), days)
        Q = self._dsl.Q
        hits = list(
            self._pages(
                [self.settings.matches_index],
                Q("bool", filter=[self._term("bug", bug), self._range("build_time", gte=since)]),
                # generation too: during a re-ingest two copies share the rest of the
                # key, and search_after would skip a tie across a page boundary.
                [{"build_time": "asc"}, {"build_uuid": "asc"}, {"filename": "asc"},
                 {"line": "asc"}, {"generation": "asc"}],
            )
        )  # fmt: skip
        builds = self._builds_by_uuid({str(hit["_source"]["build_uuid"]) for hit in hits})
        found = []
        for hit in hits:
            source = hit["_source"]
            stored, generation = builds.get(str(source["build_uuid"]), (None, None))
            if stored is not None and source.get("generation") == generation:
                found.append(
                    StoredMatch(bug, str(source["filename"]), int(source["line"]),
                                str(source["message"]), stored)
                )  # fmt: skip
        return found

    def _builds_by_uuid(self, uuids: Iterable[str]) -> dict[str, tuple[StoredBuild, str]]:
        """The stored builds of ``uuids`` with their current generation."""
        wanted = sorted(uuids)
        builds: dict[str, tuple[StoredBuild, str]] = {}
        for start in range(0, len(wanted), _DELETE_CHUNK):
            chunk = wanted[start : start + _DELETE_CHUNK]
            query = self._dsl.Q("bool", filter=[self._dsl.Q("ids", values=chunk), self._current()])
            for hit in self._pages([self.settings.builds_index], query, [{"build_uuid": "asc"}]):
                stored = _build_of(hit["_source"])
                builds[stored.uuid] = (stored, str(hit["_source"]["generation"]))
        return builds

    def _current(self) -> Clause:
        """Builds that have a current copy (not the placeholder of a first ingest)."""
        return self._dsl.Q("exists", field="generation")

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
        window = {
            op: moment for op, moment in (("gte", since), ("lt", until)) if moment is not None
        }
        filters: list[Clause] = [self._current()]
        if window:
            filters.append(self._range("time", **window))
        if status is not None:
            filters.append(self._term("build_status", status))
        if queue is not None:
            filters.append(self._term("build_queue", queue))
        must_not = [self._dsl.Q("exists", field="bugs")] if uncategorized else []
        hits = self._pages(
            [self.settings.builds_index], self._dsl.Q("bool", filter=filters, must_not=must_not),
            [{"time": "desc"}, {"build_uuid": "asc"}], limit=limit,
        )  # fmt: skip
        return [_build_of(hit["_source"]) for hit in hits]

    def newest_event_time(self) -> datetime | None:
        """The time of the newest event in the cluster (a max aggregation); None when empty.

        On a logstash-fed cluster this is how far indexing has come: the pages' header
        shows how far behind it is (``recheck.store.freshness`` puts it together with
        ``health``).
        """
        search = self._dsl.Search().extra(size=0, track_total_hits=False)
        search.aggs.metric("newest", "max", field=TIMESTAMP)
        answer = self._call(
            "POST",
            f"/{self.settings.index_pattern}/_search",
            {"ignore_unavailable": "true", "allow_no_indices": "true"},
            search.to_dict(),
        )
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
    ) -> StoredClassification:
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
        result = StoredClassification(build)
        chosen, result.skipped = applicable(signatures, build)
        filters = self._event_filters(since=since, build_uuid=build.build_uuid)
        each = (
            self._dsl.Search(index=self.settings.index_pattern)
            .params(ignore_unavailable=True, allow_no_indices=True)
            .sort({TIMESTAMP: "asc"})
            .extra(size=self.settings.max_hits, track_total_hits=True)
        )
        pending = list(chosen)
        found: dict[str, list[Match]] = {}
        attempt = 0
        while pending:
            multi = self._dsl.MultiSearch()
            for signature in pending:
                multi = multi.add(each.query(self._event_query(signature.query, filters)))
            answer = self._call("POST", "/_msearch", ndjson=multi.to_dict())
            retry: list[Signature] = []
            for signature, response in zip(pending, answer["responses"], strict=True):
                status = int(response.get("status", 200))
                if "error" not in response:
                    hits = response["hits"]
                    result.totals[signature.bug] = _total(hits)
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
        window: list[Clause] = [self._term("events_kept", True), self._current()]
        if since is not None:
            window.append(self._range("time", gte=since))
        stored: dict[str, StoredBuild] = {}
        generations: dict[str, str] = {}
        for hit in self._pages([self.settings.builds_index], self._dsl.Q("bool", filter=window),
                               [{"build_uuid": "asc"}]):  # fmt: skip
            build = _build_of(hit["_source"])
            stored[build.uuid] = build
            generations[build.uuid] = str(hit["_source"].get("generation", ""))
        hits: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = {}
        errors: dict[str, str] = {}
        oldest = min((b.time for b in stored.values()), default=utc(None))
        indices = self._event_indices(oldest, utc(None)) if stored else []
        filters = self._event_filters(since=None if since is None else utc(since),
                                      recheck_only=True)  # fmt: skip
        for signature in rerun:
            try:
                for hit in self._pages(indices, self._event_query(signature.query, filters),
                                       [{TIMESTAMP: "asc"}], point_in_time=True):  # fmt: skip
                    uuid = str(hit["_source"].get("build_uuid"))
                    # Only the build's current copy (not a re-ingest's other generation).
                    if uuid in stored and hit["_source"].get(_GENERATION) == generations[uuid]:
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
                self._dsl.Q("bool", filter=[
                    self._dsl.Q("terms", bug=bugs),
                    self._dsl.Q("terms", build_uuid=uuids[start : start + _DELETE_CHUNK]),
                ]),
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
            [self.settings.signatures_index], self._dsl.Q("ids", values=sorted(ids)),
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
