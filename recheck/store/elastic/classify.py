"""The cluster store's classification: which signatures match a build's indexed events
(one ``_msearch``), and re-running new or changed signatures over the stored events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from recheck.logs.build import Build
from recheck.models import Match
from recheck.query.signatures import Signature
from recheck.store.base import (
    ReclassifyCounts,
    StoredBuild,
    StoredClassification,
    StoreError,
    applicable,
    signature_hash,
    utc,
)
from recheck.store.elastic.client import UUIDS_PER_FILTER, Clause, StoreClient
from recheck.store.elastic.cluster import ClusterError, QueryRejected, error_parts
from recheck.store.elastic.documents import (
    GENERATION_FIELD,
    RANK_FIELD,
    TIMESTAMP,
    build_of,
    iso,
    match_action,
    match_of,
    total_hits,
)

__all__ = ["Classifies"]


class Classifies(StoreClient):
    """``classify`` and ``reclassify`` of the ``Store`` interface."""

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
        waits = self.settings.retry.backoff_waits()
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
                    result.totals[signature.bug] = total_hits(hits)
                    found[signature.bug] = [match_of(signature.bug, hit) for hit in hits["hits"]]
                elif status in (429, 503) and waits.attempts < self.settings.retry.retries:
                    retry.append(signature)
                else:
                    kind, reason = error_parts(response)
                    result.errors[signature.bug] = f"{kind}: {reason}"
            if retry:
                self._sleep(waits.next())
            pending = retry
        result.matches = [
            match
            for signature in chosen
            for match in sorted(found.get(signature.bug, []), key=lambda m: (m.filename, m.line))
        ]
        return result

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
            build = build_of(hit["_source"])
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
                    if uuid in stored and hit["_source"].get(GENERATION_FIELD) == generations[uuid]:
                        rank = int(hit["_source"].get(RANK_FIELD, 0))
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
                    match = match_of(bug, hit)
                    actions.append(
                        match_action(self.settings.matches_index, uuid, build.time,
                                     generations[uuid], match)
                    )  # fmt: skip
                    new_bugs.add(bug)
                    total += 1
            kept = (set(build.bugs) - set(bugs)) | new_bugs
            if kept != set(build.bugs):
                actions.append({"_op_type": "update", "_index": self.settings.builds_index,
                                "_id": uuid, "doc": {"bugs": sorted(kept)}})  # fmt: skip
        uuids = sorted(stored)
        for start in range(0, len(uuids), UUIDS_PER_FILTER):
            if not bugs:
                break
            self._delete(
                self.settings.matches_index,
                self._dsl.Q("bool", filter=[
                    self._dsl.Q("terms", bug=bugs),
                    self._dsl.Q("terms", build_uuid=uuids[start : start + UUIDS_PER_FILTER]),
                ]),
            )  # fmt: skip
        moment = iso(utc(None))
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
