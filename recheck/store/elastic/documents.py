"""What recheck's documents look like in the cluster, and how hits become recheck's records.

Events keep their fields and gain private ``recheck_*`` fields (id, rank, generation)
that reads hide again; builds, matches and signature versions live in indices of their
own whose ``MAPPINGS`` are here. Pure functions: no requests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from recheck.logs.build import BUILD_FIELDS, Build
from recheck.models import Event, Match
from recheck.query import Query
from recheck.query.signatures import Signature
from recheck.store.base import StoredBuild, utc

if TYPE_CHECKING:
    from recheck.logs.testresults import SubunitResults

__all__ = [
    "GENERATION_FIELD",
    "ID_FIELD",
    "MAPPINGS",
    "ORIGINAL_TIME_FIELD",
    "PRIVATE_PREFIX",
    "RANK_FIELD",
    "TIMESTAMP",
    "ClusterHealth",
    "as_text",
    "build_of",
    "described",
    "dumps",
    "event_of",
    "hit_id",
    "iso",
    "match_action",
    "match_id",
    "match_of",
    "ndjson_text",
    "parse_time",
    "source_text",
    "tests_action",
    "total_hits",
]

PRIVATE_PREFIX = "recheck_"
"""Fields recheck adds to the events it indexes; searches hide them again."""
ID_FIELD, RANK_FIELD, GENERATION_FIELD, ORIGINAL_TIME_FIELD = (
    "recheck_id",
    "recheck_rank",
    "recheck_generation",
    "recheck_original_timestamp",
)
TIMESTAMP = "@timestamp"


def iso(moment: datetime) -> str:
    """A UTC time as the cluster stores it: ``2024-05-20T10:00:00.000Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_time(value: object) -> datetime:
    """A time as the cluster returns it: ISO text, or epoch milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    text = str(value)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return utc(moment)


def described(query: Query | Signature) -> tuple[str, str, str]:
    """(query text, name, what it is) for requests and error messages."""
    if isinstance(query, Signature):
        return query.query, query.bug, "signature"
    return query.text, repr(query.text), "query"


def ndjson_text(lines: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)


def dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def source_text(doc: Mapping[str, Any]) -> str:
    """A document as ASCII JSON: text that is not valid Unicode (a lone surrogate from a
    JSON events file) travels escaped and comes back exactly, instead of failing."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class ClusterHealth:
    """The cluster's state for the pages' header."""

    status: str
    """green, yellow or red."""
    cluster_name: str
    number_of_nodes: int
    unassigned_shards: int


def total_hits(hits: Mapping[str, Any]) -> int:
    """``hits.total`` of a search answer: an object (``{"value": 3, "relation": "eq"}``)
    since Elasticsearch 7 and in OpenSearch, a plain number from a cluster or proxy that
    sets ``rest_total_hits_as_int``."""
    total = hits.get("total", 0)
    return int(total["value"] if isinstance(total, Mapping) else total)


def event_of(source: Mapping[str, Any]) -> Event:
    """An event as recheck knows it from a document's ``_source``.

    Events recheck indexed come back exactly as ingested (private fields and the added
    ``@timestamp`` removed); others get their values as text: numbers and booleans as
    JSON wrote them, objects flattened to dotted names, nulls dropped.
    """
    ours = GENERATION_FIELD in source
    event: Event = {}
    for name, value in source.items():
        if ours and (name.startswith(PRIVATE_PREFIX) or name == TIMESTAMP):
            continue
        _put(event, name, value)
    if ours and ORIGINAL_TIME_FIELD in source:
        event[TIMESTAMP] = source[ORIGINAL_TIME_FIELD]
    return event


def _put(event: Event, name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _put(event, f"{name}.{key}", inner)
    elif isinstance(value, list):
        event[name] = [as_text(item) for item in value if item is not None]
    else:
        event[name] = as_text(value)


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def hit_id(hit: Mapping[str, Any]) -> str:
    source = hit.get("_source", {})
    if ID_FIELD in source:
        return str(source[ID_FIELD])
    return f"{source.get('filename', hit.get('_index', ''))}:{hit.get('_id', '')}"


def match_of(bug: str, hit: Mapping[str, Any]) -> Match:
    return Match.of(bug, hit_id(hit), event_of(hit.get("_source", {})))


def build_of(source: Mapping[str, Any]) -> StoredBuild:
    values = {name: str(source[name]) for name in BUILD_FIELDS if source.get(name) is not None}
    return StoredBuild(
        build=Build(**values),
        time=parse_time(source["time"]),
        ingested_at=parse_time(source["ingested_at"]),
        events=int(source.get("events", 0)),
        events_kept=bool(source.get("events_kept", False)),
        bugs=tuple(sorted(source.get("bugs") or ())),
    )


def match_id(uuid: str, generation: str, bug: str, filename: str, line: int) -> str:
    key = json.dumps([uuid, generation, bug, filename, line])
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


_KEYWORD: dict[str, Any] = {"type": "keyword"}
MAPPINGS: dict[str, dict[str, Any]] = {
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
    "tests": {
        "properties": {
            "build_uuid": _KEYWORD,
            "time": {"type": "date"},
            "stream": {"type": "boolean"},
            "job": _KEYWORD,
            "change": _KEYWORD,
            "patchset": _KEYWORD,
            "ran": _KEYWORD,
            "failed": _KEYWORD,
            "runs": {"type": "long"},
            "failures": {"type": "long"},
            "record": {"type": "keyword", "index": False, "doc_values": False},
        }
    },
}
"""Mappings of recheck's own indices: exact values, so filters and sorts need no suffix."""


def match_action(
    index: str, uuid: str, build_time: datetime, generation: str, match: Match
) -> dict[str, Any]:
    """The bulk action writing ``match`` of build ``uuid``'s copy ``generation`` to ``index``."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": match_id(uuid, generation, match.bug, match.filename, int(match.line)),
        "_source": source_text(
            {
                "bug": match.bug,
                "build_uuid": uuid,
                "build_time": iso(build_time),
                "filename": match.filename,
                "line": int(match.line),
                "message": match.message,
                "generation": generation,
            }
        ),
    }


_RAN = frozenset({"success", "fail", "xfail", "uxsuccess"})
"""Final statuses that are a run of the test (as the embedded store counts them)."""


def tests_action(
    index: str, build: Build, time: datetime, results: SubunitResults | None
) -> dict[str, Any]:
    """The bulk action writing a build's test document (``stream`` false without results:
    a re-ingest without a stream replaces the old results with none)."""
    uuid = build.build_uuid
    runs = [] if results is None else [r for r in results.runs if r.status in _RAN]
    if results is None:
        source: dict[str, object] = {
            "build_uuid": uuid, "time": iso(time), "stream": False, "runs": 0, "failures": 0,
        }  # fmt: skip
        return {"_op_type": "index", "_index": index, "_id": uuid, "_source": source_text(source)}
    record = {
        "counts": results.counts,
        "problems": list(results.problems),
        "tests": [[r.test_id, r.status, r.start, r.duration, r.worker] for r in results.runs],
        "failures": [
            [r.test_id, r.start, r.duration, r.worker, [list(d) for d in r.details]]
            for r in runs
            if r.status == "fail"
        ],
    }
    source = {
        "build_uuid": uuid,
        "time": iso(time),
        "stream": True,
        "job": build.build_name or "unknown",
        "change": build.build_change,
        "patchset": build.build_patchset,
        "ran": sorted({r.test_id for r in runs}),
        "failed": sorted({r.test_id for r in runs if r.status == "fail"}),
        "runs": len(runs),
        "failures": sum(r.status == "fail" for r in runs),
        "record": json.dumps(record, separators=(",", ":")),
    }
    return {"_op_type": "index", "_index": index, "_id": uuid, "_source": source_text(source)}
