"""The cluster store's reads: searches, ``recheck query``'s aggregations, builds, matches.

Event searches page inside a point in time and leave out hidden generations (re-ingests
in progress), starting again when those changed meanwhile, so a build is seen whole.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from recheck.models import EVENT_FIELDS, Event
from recheck.query import Query
from recheck.query.signatures import Signature
from recheck.store.base import (
    DEFAULT_BUILD_DAYS,
    DEFAULT_EVENT_DAYS,
    StoredBuild,
    StoredMatch,
    days_before,
    utc,
)
from recheck.store.elastic.client import UUIDS_PER_FILTER, Clause, StoreClient
from recheck.store.elastic.cluster import ClusterError, QueryRejected
from recheck.store.elastic.documents import (
    TIMESTAMP,
    ClusterHealth,
    as_text,
    build_of,
    described,
    event_of,
    hit_id,
    parse_time,
    total_hits,
)
from recheck.store.evidence import DEFAULT_LIMIT, Evidence, event_hit
from recheck.store.stats import NOISY_FIELDS, UNKNOWN_STATUS, QueryStats

__all__ = ["Searches"]

_CONSISTENT_TRIES = 3
"""Reads of events retried when a re-ingest flipped a build while they ran."""


class Searches(StoreClient):
    """The reading side of the ``Store`` interface, plus ``summary`` and ``health``."""

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
        text, name, what = described(query)
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
                yield hit_id(hit), event_of(hit["_source"])
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
        answer = self._aggregated(query, days, queue, now, {}, 0, quantity, verbose)
        return QueryStats(hits=0, builds={}) if answer is None else self._stats(answer, quantity)

    def evidence(
        self,
        query: Query | Signature,
        days: float = DEFAULT_EVENT_DAYS,
        queue: str | None = None,
        now: datetime | None = None,
        *,
        limit: int = DEFAULT_LIMIT,
        quantity: int = 5,
        verbose: bool = False,
        filters: Mapping[str, str] | None = None,
    ) -> Evidence:
        """``recheck query``'s evidence from one search: the newest ``limit`` events
        (by @timestamp), ``summary``'s aggregations and a date histogram by day;
        ``filters`` are exact values of event fields (their keyword sub-fields)."""
        answer = self._aggregated(query, days, queue, now, filters or {}, limit, quantity, verbose)
        if answer is None:
            return Evidence(QueryStats(hits=0, builds={}), [])
        buckets = answer.get("aggregations", {}).get("by_day", {}).get("buckets", [])
        by_day = {str(b["key_as_string"]): int(b["doc_count"]) for b in buckets if b["doc_count"]}
        events = [
            event_hit(hit_id(hit), event_of(hit["_source"]), None, _when(hit["_source"]))
            for hit in answer["hits"]["hits"]
        ]
        return Evidence(self._stats(answer, quantity), events, by_day)

    def _aggregated(
        self,
        query: Query | Signature,
        days: float,
        queue: str | None,
        now: datetime | None,
        filters: Mapping[str, str],
        limit: int,
        quantity: int,
        verbose: bool,
    ) -> Mapping[str, Any] | None:
        """The answer of the one search ``summary`` and ``evidence`` send: the summary's
        aggregations, and with a ``limit``, the newest hits and the hits per day; None
        when the window has no index. Sent again when a re-ingest flipped a build."""
        text, name, what = described(query)
        moment = utc(now)
        since = days_before(moment, days)
        indices = self._event_indices(since, max(moment, utc(None)))
        if not indices:
            return None
        names = ",".join(quote(name, safe="*") for name in indices)
        suffix = self.settings.keyword_suffix
        clauses = self._event_filters(since, queue) + [
            self._term(f"{field}{suffix}", value) for field, value in filters.items()
        ]
        try:
            for attempt in range(_CONSISTENT_TRIES):
                hidden = self._hidden()
                search = (
                    self._dsl.Search().query(self._event_query(text, clauses, hidden))
                    .extra(size=limit, track_total_hits=True)
                )  # fmt: skip
                self._summary_aggs(search, quantity, verbose)
                if limit:
                    search = search.sort({TIMESTAMP: "desc"})
                    search.aggs.bucket(
                        "by_day", "date_histogram", field=TIMESTAMP, calendar_interval="1d",
                        format="yyyy-MM-dd", min_doc_count=1,
                    )  # fmt: skip
                answer: Mapping[str, Any] = self._call(
                    "POST", f"/{names}/_search",
                    {"ignore_unavailable": "true", "allow_no_indices": "true"}, search.to_dict(),
                )  # fmt: skip
                if attempt == _CONSISTENT_TRIES - 1 or self._hidden() == hidden:
                    return answer
        except ClusterError as exc:
            if exc.status == 400:
                raise QueryRejected(self.path, {name: exc.reason}, what) from None
            raise
        return None  # not reached: the last attempt returns

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
        hits = total_hits(answer["hits"])
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
                (as_text(b["key"]), round(int(b["doc_count"]) / having, 4))
                for b in ranked[:quantity]
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
        return self._matches([self._term("bug", bug), self._range("build_time", gte=since)])

    def matches_between(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredMatch]:
        """Every bug's matches in builds with ``since <= time < until``, oldest build first."""
        window = {op: m for op, m in (("gte", since), ("lt", until)) if m is not None}
        return self._matches([self._range("build_time", **window)] if window else [])

    def _matches(self, filters: list[Clause]) -> list[StoredMatch]:
        """The matches ``filters`` select, of each build's current generation only (a
        re-ingest writes the new copy's matches before it makes them current)."""
        hits = list(
            self._pages(
                [self.settings.matches_index],
                self._dsl.Q("bool", filter=filters),
                # generation too: during a re-ingest two copies share the rest of the
                # key, and search_after would skip a tie across a page boundary.
                [{"build_time": "asc"}, {"build_uuid": "asc"}, {"bug": "asc"},
                 {"filename": "asc"}, {"line": "asc"}, {"generation": "asc"}],
            )
        )  # fmt: skip
        builds = self._builds_by_uuid({str(hit["_source"]["build_uuid"]) for hit in hits})
        found = []
        for hit in hits:
            source = hit["_source"]
            stored, generation = builds.get(str(source["build_uuid"]), (None, None))
            if stored is not None and source.get("generation") == generation:
                found.append(
                    StoredMatch(str(source["bug"]), str(source["filename"]),
                                int(source["line"]), str(source["message"]), stored)
                )  # fmt: skip
        return found

    def _builds_by_uuid(self, uuids: Iterable[str]) -> dict[str, tuple[StoredBuild, str]]:
        """The stored builds of ``uuids`` with their current generation."""
        wanted = sorted(uuids)
        builds: dict[str, tuple[StoredBuild, str]] = {}
        for start in range(0, len(wanted), UUIDS_PER_FILTER):
            chunk = wanted[start : start + UUIDS_PER_FILTER]
            query = self._dsl.Q("bool", filter=[self._dsl.Q("ids", values=chunk), self._current()])
            for hit in self._pages([self.settings.builds_index], query, [{"build_uuid": "asc"}]):
                stored = build_of(hit["_source"])
                builds[stored.uuid] = (stored, str(hit["_source"]["generation"]))
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
        return [build_of(hit["_source"]) for hit in hits]

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
        return None if value is None else parse_time(value)

    def health(self) -> ClusterHealth:
        """The cluster's health (green/yellow/red), for the pages' header."""
        answer = self._call("GET", "/_cluster/health")
        return ClusterHealth(
            status=str(answer.get("status", "unknown")),
            cluster_name=str(answer.get("cluster_name", "")),
            number_of_nodes=int(answer.get("number_of_nodes", 0)),
            unassigned_shards=int(answer.get("unassigned_shards", 0)),
        )


def _when(source: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_time(source[TIMESTAMP])
    except (KeyError, TypeError, ValueError):
        return None
