"""The cluster store's connection: one request retried, the query clauses, paging.

``StoreClient`` holds the settings, the ``Cluster`` and the backend's DSL; the store's
writes, searches and classification (``writes``, ``searches``, ``classify``) build on it.
Retries wait as ``RetryPolicy`` says (``recheck.lib.backoff``'s waits).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from recheck.store.base import Retention, StoreError, utc
from recheck.store.elastic.cluster import Cluster, ClusterError, ElasticSettings, connect
from recheck.store.elastic.documents import (
    GENERATION_FIELD,
    MAPPINGS,
    TIMESTAMP,
    dumps,
    iso,
    ndjson_text,
)
from recheck.store.elastic.dsl import Dsl, dsl_for

__all__ = ["KEEP_ALIVE", "UUIDS_PER_FILTER", "Clause", "StoreClient"]

KEEP_ALIVE = "2m"
"""How long a point in time outlives its last page request."""
MAX_INDEX_LIST = 3000
"""Characters of explicit index names above which the index pattern is searched instead
(a request line must stay below the cluster's 4 KB limit)."""
UUIDS_PER_FILTER = 1000
"""Build uuids per ``terms`` filter when matches of many builds are replaced."""
Clause = Any
"""A query clause of the backend's DSL (``Dsl.Q``): ``.to_dict()`` gives its JSON."""


class StoreClient:
    """Requests to the cluster on behalf of the store: retried, with bodies from the DSL."""

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

    def close(self) -> None:
        """Forget the connection; the store cannot be used afterwards."""
        self._closed = True

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        ndjson: Sequence[Mapping[str, Any]] | None = None,
    ) -> Any:
        """One request, tried again after the retry policy's waits while it fails in a
        way that may pass (overload, restart, network)."""
        if self._closed:
            raise StoreError(self.path, "the store is closed")
        if ndjson is not None:
            text: str | None = ndjson_text(ndjson)
            content_type = "application/x-ndjson"
        else:
            text = None if body is None else dumps(body)
            content_type = "application/json"
        waits = self.settings.retry.backoff_waits()
        while True:
            try:
                return self._cluster.request(method, path, params, text, content_type)
            except ClusterError as exc:
                if not exc.retryable or waits.attempts >= self.settings.retry.retries:
                    raise
                self._sleep(waits.next())

    def _bulk(self, actions: Iterable[dict[str, Any]]) -> int:
        if self._closed:
            raise StoreError(self.path, "the store is closed")
        return self._cluster.bulk(actions, self.settings.retry)

    def _ensure_indices(self) -> None:
        """Create recheck's own indices with their mappings, once per process."""
        if self._indices_ready:
            return
        for kind in ("builds", "matches", "signatures", "tests"):
            try:
                self._call("PUT", f"/{self._index(kind)}", body={"mappings": MAPPINGS[kind]})
            except ClusterError as exc:
                if exc.kind != "resource_already_exists_exception":
                    raise
        self._indices_ready = True

    def _index(self, kind: str) -> str:
        return {
            "builds": self.settings.builds_index,
            "matches": self.settings.matches_index,
            "signatures": self.settings.signatures_index,
            "tests": self.settings.tests_index,
        }[kind]

    def _query_string(self, text: str) -> Clause:
        """The signature's query as the cluster gets it: the text unchanged, ``message``
        the default field."""
        return self._dsl.Q("query_string", query=text, default_field="message")

    def _term(self, name: str, value: object) -> Clause:
        return self._dsl.Q("term", **{name: value})

    def _range(self, name: str, **bounds: datetime) -> Clause:
        return self._dsl.Q("range", **{name: {op: iso(utc(at)) for op, at in bounds.items()}})

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
            filters.append(self._dsl.Q("exists", field=GENERATION_FIELD))
        return filters

    def _event_query(self, text: str, filters: list[Clause], hidden: Iterable[str] = ()) -> Clause:
        """The query_string must match, the filters restrict (and do not score), and
        events of ``hidden`` generations (a re-ingest in progress) are left out."""
        skipped = sorted(hidden)
        if not skipped:
            return self._dsl.Q("bool", must=[self._query_string(text)], filter=filters)
        not_now = self._dsl.Q("terms", **{GENERATION_FIELD + self.settings.keyword_suffix: skipped})
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

    def _current(self) -> Clause:
        """Builds that have a current copy (not the placeholder of a first ingest)."""
        return self._dsl.Q("exists", field="generation")
