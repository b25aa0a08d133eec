"""The cluster store's writes: ingesting a build (all or nothing for readers) and retention.

Each copy of a build is written under a generation of its own that readers skip until
one write of the build document makes it current (the README tells how).
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from recheck.logs.build import Build
from recheck.models import Event, Match
from recheck.store.base import GcCounts, days_before, utc
from recheck.store.elastic.client import StoreClient
from recheck.store.elastic.cluster import ClusterError
from recheck.store.elastic.documents import (
    GENERATION_FIELD,
    ID_FIELD,
    ORIGINAL_TIME_FIELD,
    RANK_FIELD,
    TIMESTAMP,
    iso,
    match_action,
    source_text,
    tests_action,
)
from recheck.store.embedded.store import generated_uuid

if TYPE_CHECKING:
    from recheck.logs.testresults import SubunitResults

__all__ = ["GC_INTERVAL", "Writes"]

GC_INTERVAL = timedelta(hours=1)
"""Retention runs at most this often after ingests (``auto_gc``)."""


class Writes(StoreClient):
    """``has_build``, ``ingest`` and ``gc`` of the ``Store`` interface."""

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
        *,
        tests: SubunitResults | None = None,
    ) -> str:
        """Index ``build``'s events into its day's index, then its matches and the build.

        Readers see the old copy or the new one, never a mix: the new copy is written
        under a new generation that readers skip (the build document lists it as
        ``hidden``), then one write of the build document makes it current and hides
        the old one, whose documents are then deleted. A crash leaves hidden leftovers
        that readers keep skipping and the next ingest of that build deletes. Returns
        the build's uuid. ``tests`` (its test results) replace the build's test document
        (``recheck.store.elastic.tests``) with the events.
        """
        self._ensure_indices()
        moment = utc(when)
        stamp = iso(moment)
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
                    doc[ORIGINAL_TIME_FIELD] = doc[TIMESTAMP]
                doc.setdefault("build_uuid", uuid)
                doc.update(
                    {
                        TIMESTAMP: stamp,
                        ID_FIELD: event_id,
                        RANK_FIELD: rank,
                        GENERATION_FIELD: generation,
                    }
                )
                yield {"_op_type": "index", "_index": day_index,
                       "_id": f"{uuid}:{generation}:{rank}",
                       "_source": source_text(doc)}  # fmt: skip
            for match in matches:
                found_bugs.add(match.bug)
                yield match_action(self.settings.matches_index, uuid, moment, generation, match)
            if write_tests:
                yield tests_action(self.settings.tests_index, build, moment, tests)

        # Test results, or none in place of an earlier copy's (a first ingest without a
        # stream writes nothing: a logstash-fed cluster's builds have none).
        write_tests = tests is not None or old is not None
        self._bulk(actions())
        written = [day_index, self.settings.matches_index]
        self._refresh([*written, self.settings.tests_index] if write_tests else written)
        self._step("written")

        # 3. The flip: one document write makes the new copy current, the old hidden.
        retired = (old_hidden | {old_generation}) - {generation, None}
        source: dict[str, Any] = {
            **build.event_fields(),
            "time": stamp,
            "ingested_at": iso(utc(None)),
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
                        must_not=[self._term(GENERATION_FIELD + self.settings.keyword_suffix,
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
            Q("bool", filter=[Q("exists", field=GENERATION_FIELD),
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
        tested = self._delete(self.settings.tests_index, self._range("time", lt=event_cut))
        matches = self._delete(self.settings.matches_index, self._range("build_time", lt=build_cut))
        # Placeholders of crashed first ingests have a time too, so they go with the rest.
        builds = self._delete(self.settings.builds_index, self._range("time", lt=build_cut))
        return GcCounts(events=events, builds=builds, matches=matches, tests=tested)
