"""A small in-memory Elasticsearch / OpenSearch served over real HTTP, for the cluster store.

``FakeCluster`` answers the endpoints the store uses with the response shapes recorded
in ``tests/fixtures/elastic/``, evaluates ``query_string`` with recheck's engine, refuses
what the real servers refuse, records every request and injects faults (``fail_next``,
``reject_item``, ``reject_bulk_item``, ``hold_next``).
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from recheck.query import Doc as QueryDoc
from recheck.query import QuerySyntaxError, compile_query

FIXTURES = Path(__file__).parent / "fixtures" / "elastic"
DATE_FIELDS = frozenset({"@timestamp", "time", "ingested_at", "build_time", "recorded_at"})


_INDICES_OPTIONS = frozenset({"ignore_unavailable", "allow_no_indices", "expand_wildcards"})
_PARAMS: dict[str, frozenset[str]] = {
    "/": frozenset(),
    "_cluster/health": frozenset({"level", "local", "timeout", "wait_for_status"}),
    "_cat/indices": frozenset({"format", "h", "s", "v", "bytes", "health", "expand_wildcards"}),
    "_search": _INDICES_OPTIONS | {"preference", "routing", "typed_keys", "search_type"},
    "_msearch": _INDICES_OPTIONS | {"max_concurrent_searches", "typed_keys", "search_type"},
    "_pit": frozenset(
        {
            "keep_alive",
            "ignore_unavailable",
            "expand_wildcards",
            "preference",
            "routing",
            "allow_partial_search_results",
        }
    ),
    "point_in_time": _INDICES_OPTIONS
    | {"keep_alive", "allow_partial_pit_creation", "preference", "routing"},
    "_delete_by_query": _INDICES_OPTIONS
    | {
        "refresh",
        "conflicts",
        "routing",
        "timeout",
        "wait_for_completion",
        "slices",
        "scroll_size",
    },
    "_refresh": _INDICES_OPTIONS,
    "_bulk": frozenset({"refresh", "routing", "timeout", "pipeline", "wait_for_active_shards"}),
    "_doc": frozenset({"realtime", "refresh", "routing", "preference", "_source"}),
    "create": frozenset({"timeout", "master_timeout", "wait_for_active_shards"}),
}
"""URL parameters each endpoint recheck uses accepts (those of the REST API specs of both
servers that a client could send); any other is refused with 400, as both servers do.
OpenSearch's create-PIT handler reads the indices options too (``IndicesOptions.fromRequest``)."""
_COMMON_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path"})


def _endpoint(method: str, parts: list[str]) -> str | None:
    """The key of ``_PARAMS`` for a request path split on ``/``."""
    if not parts:
        return "/"
    if parts[:2] in (["_cluster", "health"], ["_cat", "indices"]):
        return "/".join(parts[:2])
    if parts[-2:] == ["_search", "point_in_time"]:
        return "point_in_time"
    if parts[-1] in _PARAMS:
        return parts[-1]
    if len(parts) == 3 and parts[1] == "_doc":
        return "_doc"
    if len(parts) == 1 and method == "PUT":
        return "create"
    return None


def fixture(name: str) -> Any:
    """A recorded response shape from tests/fixtures/elastic/."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8", "surrogatepass"))

    def ndjson(self) -> list[Any]:
        text = self.body.decode("utf-8", "surrogatepass")
        return [json.loads(line) for line in text.splitlines() if line.strip()]


class Failure(Exception):
    """An error answer: status and the cluster's error body."""

    def __init__(self, status: int, kind: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.body = {
            "error": {
                "root_cause": [{"type": kind, "reason": reason, **extra}],
                "type": kind,
                "reason": reason,
                **extra,
            },
            "status": status,
        }


def _query_failure(text: str, problem: str) -> Failure:
    failure = Failure(400, "query_shard_exception", f"Failed to parse query [{text}]")
    failure.body["error"]["type"] = "search_phase_execution_exception"
    failure.body["error"]["reason"] = "all shards failed"
    failure.body["error"]["phase"] = "query"
    failure.body["error"]["caused_by"] = {"type": "parse_exception", "reason": problem}
    return failure


@dataclass
class Doc:
    index: str
    id: str
    source: dict[str, Any]
    seq: int
    analyzed: QueryDoc | None = None
    """The source as the engine sees it, made once (analysis is the slow part)."""

    def as_query_doc(self) -> QueryDoc:
        if self.analyzed is None:
            self.analyzed = QueryDoc(_as_event(self.source))
        return self.analyzed


@dataclass
class FakeCluster:
    """An in-memory cluster; ``flavour`` is ``elasticsearch`` or ``opensearch``."""

    flavour: str = "elasticsearch"
    keyword_suffix: str = ".keyword"
    indices: dict[str, dict[str, Doc]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    pits: dict[str, list[Doc]] = field(default_factory=dict)
    faults: list[tuple[Callable[[Request], bool], int, Any]] = field(default_factory=list)
    item_faults: list[tuple[str, int, Any]] = field(default_factory=list)
    bulk_faults: list[tuple[str, int, Any]] = field(default_factory=list)
    holds: list[tuple[str, str, threading.Event]] = field(default_factory=list)
    product_header: bool | None = None
    """Send ``X-Elastic-Product``; None: when the flavour is elasticsearch."""

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._pit_ids = itertools.count(1)

    # ------------------------------------------------------------------ test helpers

    def fail_next(
        self,
        method: str,
        path_part: str,
        status: int,
        body: Any,
        times: int = 1,
        *,
        exact: bool = False,
    ) -> None:
        """Answer the next ``times`` requests whose path contains ``path_part`` (is it,
        when ``exact``) with ``body``."""
        for _ in range(times):
            self.faults.append(
                (
                    lambda r, m=method, p=path_part: (
                        r.method == m and (r.path == p if exact else p in r.path)
                    ),
                    status,
                    body,
                )
            )

    def hold_next(self, method: str, path_part: str) -> threading.Event:
        """Keep the next such request unanswered until the returned event is set (so the
        client times out); the answer then goes to a client that has left."""
        released = threading.Event()
        self.holds.append((method, path_part, released))
        return released

    def _held(self, request: Request) -> threading.Event | None:
        with self._lock:
            for index, (method, part, released) in enumerate(self.holds):
                if request.method == method and part in request.path:
                    del self.holds[index]
                    return released
        return None

    def reject_item(self, query_text: str, status: int, body: Any, times: int = 1) -> None:
        """Answer the next ``times`` msearch items with this query_string with an error."""
        self.item_faults.extend([(query_text, status, body)] * times)

    def reject_bulk_item(self, index_glob: str, item: Any, times: int = 1) -> None:
        """Answer the next ``times`` ``_bulk`` items for ``index_glob`` with ``item``'s
        ``status`` and ``error`` (the request itself succeeds, with ``errors: true``), as a
        cluster under indexing pressure answers 429 ``es_rejected_execution_exception``
        or a bad field 400 ``mapper_parsing_exception``."""
        self.bulk_faults.extend([(index_glob, item["status"], item["error"])] * times)

    def calls(self, path_part: str = "") -> list[Request]:
        """The recorded requests whose path contains ``path_part``."""
        return [r for r in self.requests if path_part in r.path]

    def docs(self, index_glob: str = "*") -> list[Doc]:
        return [
            d
            for name, docs in sorted(self.indices.items())
            if fnmatch.fnmatchcase(name, index_glob)
            for d in docs.values()
        ]

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: Request) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(request)
            for index, (matches, status, body) in enumerate(self.faults):
                if matches(request):
                    del self.faults[index]
                    return status, body
            try:
                return self._route(request)
            except Failure as failure:
                return failure.status, failure.body

    def _route(self, r: Request) -> tuple[int, Any]:
        parts = [unquote(p) for p in r.path.strip("/").split("/")] if r.path != "/" else []
        endpoint = _endpoint(r.method, parts)
        if endpoint is not None:
            unknown = sorted(set(r.params) - _PARAMS[endpoint] - _COMMON_PARAMS)
            if unknown:
                raise Failure(
                    400,
                    "illegal_argument_exception",
                    f"request [{r.path}] contains unrecognized parameter: [{unknown[0]}]",
                )
        if not parts:
            name = (
                "root-elasticsearch.json"
                if self.flavour == "elasticsearch"
                else "root-opensearch.json"
            )
            return 200, fixture(name)
        if parts == ["_cluster", "health"]:
            return 200, self._health()
        if parts[:2] == ["_cat", "indices"]:
            pattern = parts[2] if len(parts) > 2 else "*"
            names = [n for n in self.indices if fnmatch.fnmatchcase(n, pattern)]
            if r.params.get("format") != "json":  # the cat APIs answer text by default
                raise Failure(400, "fake_limitation", "the fake answers _cat only as JSON")
            return 200, [{"index": name} for name in names]
        if parts[-1] == "_bulk" and r.method in ("POST", "PUT"):
            return 200, self._bulk(r.ndjson(), parts[0] if len(parts) == 2 else None)
        if parts[-1] == "_msearch":
            return 200, self._msearch(r.ndjson(), parts[0] if len(parts) == 2 else None)
        if parts == ["_search"]:
            return 200, self._search(r.json(), None, r.params)
        if self.flavour == "elasticsearch" and parts == ["_pit"] and r.method == "DELETE":
            found = self.pits.pop(r.json()["id"], None) is not None
            return (200 if found else 404), {"succeeded": found, "num_freed": int(found)}
        if self.flavour == "opensearch" and parts == ["_search", "point_in_time"]:
            ids = r.json()["pit_id"]
            return 200, {
                "pits": [
                    {"successful": self.pits.pop(i, None) is not None, "pit_id": i} for i in ids
                ]
            }
        if len(parts) == 2 and parts[1] == "_search":
            return 200, self._search(r.json(), parts[0], r.params)
        if self.flavour == "elasticsearch" and len(parts) == 2 and parts[1] == "_pit":
            return 200, self._open_pit(parts[0], r.params, "id")
        if self.flavour == "opensearch" and parts[1:] == ["_search", "point_in_time"]:
            return 200, self._open_pit(parts[0], r.params, "pit_id")
        if len(parts) == 2 and parts[1] == "_delete_by_query":
            return 200, self._delete_by_query(parts[0], r.json(), r.params)
        if len(parts) == 2 and parts[1] == "_refresh":
            names = self._resolve(parts[0], r.params)
            return 200, {"_shards": {"total": len(names), "successful": len(names), "failed": 0}}
        if len(parts) == 3 and parts[1] == "_doc" and r.method == "GET":
            docs = self.indices.get(parts[0])
            if docs is None:
                raise Failure(
                    404, "index_not_found_exception", f"no such index [{parts[0]}]", index=parts[0]
                )
            doc = docs.get(parts[2])
            if doc is None:
                return 404, {"_index": parts[0], "_id": parts[2], "found": False}
            return 200, {
                "_index": parts[0],
                "_id": doc.id,
                "_version": 1,
                "_seq_no": doc.seq,
                "_primary_term": 1,
                "found": True,
                "_source": doc.source,
            }
        if len(parts) == 1 and r.method == "PUT":
            if parts[0] in self.indices:
                raise Failure(
                    400,
                    "resource_already_exists_exception",
                    f"index [{parts[0]}/abc] already exists",
                    index=parts[0],
                )
            self.indices[parts[0]] = {}
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": parts[0]}
        raise Failure(400, "illegal_argument_exception", f"no handler for {r.method} {r.path}")

    def _health(self) -> dict[str, Any]:
        answer = fixture("cluster-health.json")
        answer.update(
            cluster_name="fake",
            status="green",
            unassigned_shards=0,
            active_primary_shards=len(self.indices),
            active_shards=len(self.indices),
            active_shards_percent_as_number=100.0,
        )
        return answer

    # ------------------------------------------------------------------ indices

    def _resolve(self, names: str | None, params: dict[str, str]) -> list[str]:
        if names is None:
            return sorted(self.indices)
        found: list[str] = []
        ignore = params.get("ignore_unavailable") == "true"
        for name in names.split(","):
            if "*" in name:
                found.extend(sorted(n for n in self.indices if fnmatch.fnmatchcase(n, name)))
            elif name in self.indices:
                found.append(name)
            elif not ignore:
                raise Failure(
                    404, "index_not_found_exception", f"no such index [{name}]", index=name
                )
        return list(dict.fromkeys(found))

    def _open_pit(self, names: str, params: dict[str, str], key: str) -> dict[str, Any]:
        assert "keep_alive" in params, "a point in time needs keep_alive"
        # Documents are never changed in place (see _bulk), so references are a snapshot.
        snapshot = [d for name in self._resolve(names, params) for d in self.indices[name].values()]
        pit = f"pit-{next(self._pit_ids)}"
        self.pits[pit] = snapshot
        answer: dict[str, Any] = {
            key: pit,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        }
        if key == "pit_id":
            answer["creation_time"] = 1658146050064
        return answer

    # ------------------------------------------------------------------ writes

    def _bulk(self, lines: list[Any], default_index: str | None) -> dict[str, Any]:
        items = []
        errors = False
        position = 0
        while position < len(lines):
            action = lines[position]
            [(op, meta)] = action.items()
            index, doc_id = meta.get("_index", default_index), str(meta.get("_id"))
            fault = next((f for f in self.bulk_faults if fnmatch.fnmatchcase(index, f[0])), None)
            if fault is not None:
                self.bulk_faults.remove(fault)
                _, status, error = fault
                position += 1 if op == "delete" else 2
                errors = True
                items.append({op: {"_index": index, "_id": doc_id, "status": status,
                                   "error": error}})  # fmt: skip
                continue
            docs = self.indices.setdefault(index, {})
            status, result = 200, "updated"
            if op in ("index", "create"):
                source = lines[position + 1]
                position += 2
                status, result = (200, "updated") if doc_id in docs else (201, "created")
                docs[doc_id] = Doc(index, doc_id, source, next(self._seq))
            elif op == "update":
                partial = lines[position + 1]["doc"]
                position += 2
                if doc_id not in docs:
                    errors = True
                    items.append(
                        {
                            op: {
                                "_index": index,
                                "_id": doc_id,
                                "status": 404,
                                "error": {
                                    "type": "document_missing_exception",
                                    "reason": f"[{doc_id}]: document missing",
                                },
                            }
                        }
                    )
                    continue
                # Copy on write: points in time keep the documents they saw.
                old = docs[doc_id]
                docs[doc_id] = Doc(index, doc_id, {**old.source, **partial}, old.seq)
            elif op == "delete":
                position += 1
                status, result = (200, "deleted") if docs.pop(doc_id, None) else (404, "not_found")
            items.append(
                {
                    op: {
                        "_index": index,
                        "_id": doc_id,
                        "_version": 1,
                        "result": result,
                        "_shards": {"total": 2, "successful": 1, "failed": 0},
                        "status": status,
                        "_seq_no": 0,
                        "_primary_term": 1,
                    }
                }
            )
        return {"took": 1, "errors": errors, "items": items}

    def _delete_by_query(self, names: str, body: Any, params: dict[str, str]) -> dict[str, Any]:
        deleted = 0
        for name in self._resolve(names, params):
            docs = self.indices[name]
            for doc in list(docs.values()):
                if self._matches(body["query"], doc):
                    del docs[doc.id]
                    deleted += 1
        answer = fixture("delete-by-query.json")
        answer.update(took=1, total=deleted, deleted=deleted)
        return answer

    # ------------------------------------------------------------------ search

    def _msearch(self, lines: list[Any], default_index: str | None) -> dict[str, Any]:
        responses = []
        for header, body in zip(lines[0::2], lines[1::2], strict=True):
            text = _query_text(body.get("query", {}))
            fault = next((f for f in self.item_faults if f[0] == text), None)
            if fault is not None:
                self.item_faults.remove(fault)
                responses.append({**fault[2], "status": fault[1]})
                continue
            names = header.get("index", default_index)
            if isinstance(names, list):
                names = ",".join(names)
            params = {k: str(v).lower() for k, v in header.items() if k != "index"}
            try:
                responses.append({**self._search(body, names, params), "status": 200})
            except Failure as failure:
                responses.append({**failure.body, "status": failure.status})
        return {"took": 1, "responses": responses}

    def _search(self, body: Any, names: str | None, params: dict[str, str]) -> dict[str, Any]:
        pit = body.get("pit")
        if pit is not None:
            if names is not None:
                raise Failure(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: [indices] cannot be used with point in time. Do "
                    "not specify any index with point in time.;",
                )
            if pit["id"] not in self.pits:
                raise Failure(404, "search_context_missing_exception", "No search context found")
            docs = self.pits[pit["id"]]
        else:
            docs = [d for name in self._resolve(names, params) for d in self.indices[name].values()]
        query = body.get("query", {"match_all": {}})
        hits = [d for d in docs if self._matches(query, d)]
        sort = body.get("sort")
        specs = [_sort_spec(s) for s in sort] if sort else []
        self._check_sort(specs, pit is not None)
        if specs:
            hits.sort(
                key=functools.cmp_to_key(
                    lambda a, b: _compare(
                        self._sort_values(a, specs), self._sort_values(b, specs), specs
                    )
                )
            )
        after = body.get("search_after")
        if after is not None:
            hits = [d for d in hits if _compare(self._sort_values(d, specs), after, specs) > 0]
        size = int(body.get("size", 10))
        source = body.get("_source", True)
        out = []
        for doc in hits[:size]:
            hit: dict[str, Any] = {"_index": doc.index, "_id": doc.id, "_score": None}
            if source is True:
                hit["_source"] = doc.source
            elif isinstance(source, list):
                hit["_source"] = {k: v for k, v in doc.source.items() if k in source}
            if specs:
                hit["sort"] = self._sort_values(doc, specs)
            out.append(hit)
        answer: dict[str, Any] = {
            "took": 1,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"max_score": None, "hits": out},
        }
        if pit is not None:
            answer = {"pit_id": pit["id"], **answer}
        if body.get("track_total_hits", True) is not False:
            answer["hits"] = {"total": {"value": len(hits), "relation": "eq"}, **answer["hits"]}
        if "aggs" in body:
            answer["aggregations"] = self._aggregate(body["aggs"], hits)
        return answer

    def _check_sort(self, specs: list[tuple[str, str]], in_pit: bool) -> None:
        """Refuse the sorts the real servers refuse: Elasticsearch 8 has no fielddata on
        ``_id`` and ``_shard_doc`` only inside a point in time; OpenSearch before 3.3
        has no ``_shard_doc`` at all (its PIT searches break ties on ``_id``)."""
        names = {name for name, _ in specs}
        if self.flavour == "elasticsearch" and "_id" in names:
            raise Failure(
                400,
                "illegal_argument_exception",
                "Fielddata access on the _id field is disallowed, you can re-enable it by "
                "updating the dynamic cluster setting: indices.id_field_data.enabled",
            )
        if "_shard_doc" in names and self.flavour != "elasticsearch":
            raise Failure(
                400,
                "query_shard_exception",
                "No mapping found for [_shard_doc] in order to sort on",
            )
        if "_shard_doc" in names and not in_pit:
            raise Failure(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: [_shard_doc] sort field cannot be used without "
                "[point in time];",
            )

    def _field(self, name: str) -> str:
        if self.keyword_suffix and name.endswith(self.keyword_suffix):
            return name[: -len(self.keyword_suffix)]
        return name

    def _values(self, doc: Doc, name: str) -> list[Any]:
        value = doc.source.get(self._field(name))
        if value is None:
            return []
        return [v for v in value if v is not None] if isinstance(value, list) else [value]

    def _matches(self, query: dict[str, Any], doc: Doc) -> bool:
        [(kind, spec)] = query.items()
        if kind == "match_all":
            return True
        if kind == "bool":
            must = all(self._matches(q, doc) for q in spec.get("must", []) + spec.get("filter", []))
            must_not = any(self._matches(q, doc) for q in spec.get("must_not", []))
            should = spec.get("should", [])
            needed = spec.get(
                "minimum_should_match", 0 if spec.get("must") or spec.get("filter") else 1
            )
            return (
                must
                and not must_not
                and (not should or sum(self._matches(q, doc) for q in should) >= int(needed))
            )
        if kind == "query_string":
            text = spec["query"]
            try:
                compiled = _compiled(text, spec.get("default_field", "message"))
            except QuerySyntaxError as exc:
                raise _query_failure(text, str(exc)) from None
            return compiled.matches(doc.as_query_doc())
        if kind == "term":
            [(name, value)] = spec.items()
            value = value["value"] if isinstance(value, dict) else value
            return value in self._values(doc, name)
        if kind == "terms":
            [(name, values)] = spec.items()
            return any(v in values for v in self._values(doc, name))
        if kind == "exists":
            return bool(self._values(doc, spec["field"]))
        if kind == "ids":
            return doc.id in spec["values"]
        if kind == "range":
            [(name, bounds)] = spec.items()
            checks = {
                "gte": lambda a, b: a >= b,
                "gt": lambda a, b: a > b,
                "lte": lambda a, b: a <= b,
                "lt": lambda a, b: a < b,
            }
            return any(
                all(
                    checks[op](_comparable(name, v), _comparable(name, bound))
                    for op, bound in bounds.items()
                )
                for v in self._values(doc, name)
            )
        raise Failure(400, "parsing_exception", f"unknown query [{kind}]")

    def _sort_values(self, doc: Doc, specs: list[tuple[str, str]]) -> list[Any]:
        out: list[Any] = []
        for name, _ in specs:
            if name == "_shard_doc":
                out.append(doc.seq)
            elif name == "_id":
                out.append(doc.id)
            else:
                values = self._values(doc, name)
                if name in DATE_FIELDS and values:
                    out.append(int(_parse(values[0]).timestamp() * 1000))
                else:
                    out.append(values[0] if values else None)
        return out

    def _aggregate(self, aggs: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in aggs.items():
            subs = spec.get("aggs", {})
            [kind] = [k for k in spec if k != "aggs"]
            params = spec[kind]
            if kind == "terms":
                counts: dict[Any, list[Doc]] = {}
                for doc in docs:
                    values = self._values(doc, params["field"])
                    if not values and "missing" in params:
                        values = [params["missing"]]
                    for value in dict.fromkeys(_text(v) for v in values):
                        counts.setdefault(value, []).append(doc)
                ranked = sorted(counts.items(), key=lambda item: (-len(item[1]), item[0]))
                size = int(params.get("size", 10))
                buckets = [
                    {"key": key, "doc_count": len(group), **self._aggregate(subs, group)}
                    for key, group in ranked[:size]
                ]
                other = sum(len(group) for _, group in ranked[size:])
                out[name] = {
                    "doc_count_error_upper_bound": 0,
                    "sum_other_doc_count": other,
                    "buckets": buckets,
                }
            elif kind == "date_histogram":
                # Only what the store asks for: one bucket per UTC day, as yyyy-MM-dd.
                if params.get("calendar_interval") != "1d" or params.get("format") != "yyyy-MM-dd":
                    raise Failure(400, "parsing_exception", f"unsupported date_histogram {params}")
                days: dict[str, int] = {}
                for doc in docs:
                    for value in self._values(doc, params["field"])[:1]:
                        day = _parse(value).strftime("%Y-%m-%d")
                        days[day] = days.get(day, 0) + 1
                least = int(params.get("min_doc_count", 0))
                out[name] = {
                    "buckets": [
                        {
                            "key_as_string": day,
                            "key": int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())
                            * 1000,
                            "doc_count": count,
                        }
                        for day, count in sorted(days.items())
                        if count >= least
                    ]
                }
            elif kind == "cardinality":
                distinct = {_text(v) for d in docs for v in self._values(d, params["field"])}
                out[name] = {"value": len(distinct)}
            elif kind == "missing":
                out[name] = {
                    "doc_count": sum(1 for d in docs if not self._values(d, params["field"]))
                }
            elif kind == "max":
                values = [_parse(v) for d in docs for v in self._values(d, params["field"])]
                if not values:
                    out[name] = {"value": None}
                else:
                    newest = max(values)
                    out[name] = {
                        "value": newest.timestamp() * 1000,
                        "value_as_string": newest.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    }
            else:
                raise Failure(400, "parsing_exception", f"unknown aggregation [{kind}]")
        return out


@functools.lru_cache(maxsize=512)
def _compiled(text: str, default_field: str) -> Any:
    return compile_query(text, default_field)


def _query_text(query: dict[str, Any]) -> str | None:
    """The query_string text inside a query, if any."""
    for kind, spec in query.items():
        if kind == "query_string":
            return str(spec["query"])
        if kind == "bool":
            for clause in spec.get("must", []):
                found = _query_text(clause)
                if found is not None:
                    return found
    return None


def _as_event(source: dict[str, Any]) -> dict[str, str | list[str]]:
    """A document as text fields, as the cluster's analyzers see it."""
    event: dict[str, str | list[str]] = {}
    for name, value in source.items():
        if isinstance(value, list):
            event[name] = [_text(v) for v in value if v is not None]
        elif value is not None:
            event[name] = _text(value)
    return event


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _parse(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _comparable(name: str, value: Any) -> Any:
    return _parse(value) if name in DATE_FIELDS else value


def _sort_spec(spec: Any) -> tuple[str, str]:
    if isinstance(spec, str):
        return spec, "asc"
    [(name, order)] = spec.items()
    return name, order["order"] if isinstance(order, dict) else order


def _compare(a: list[Any], b: list[Any], specs: list[tuple[str, str]]) -> int:
    for left, right, (_, order) in zip(a, b, specs, strict=True):
        if left == right:
            continue
        if left is None or right is None:  # missing values sort last either way
            return 1 if left is None else -1
        result = -1 if left < right else 1
        return result if order == "asc" else -result
    return 0


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms ACK wait

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command,
            split.path,
            dict(parse_qsl(split.query)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        held = self.cluster._held(request)
        if held is not None:
            held.wait(30)  # outside the cluster's lock: other requests go on meanwhile
        status, answer = self.cluster.handle(request)
        raw = isinstance(answer, bytes)  # a proxy's page, not the cluster's JSON
        payload = answer if raw else json.dumps(answer).encode("utf-8")
        self.send_response(status)
        accept = request.headers.get("accept", "")
        if raw:
            self.send_header("Content-Type", "text/html")
        elif "vnd.elasticsearch+json" in accept:
            self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8")
        else:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        wanted = self.cluster.product_header
        if wanted or (wanted is None and self.cluster.flavour == "elasticsearch"):
            self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a held request timed out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


@contextmanager
def serve(cluster: FakeCluster) -> Iterator[str]:
    """Serve ``cluster`` on 127.0.0.1 (a free port) in a thread; yields its URL."""
    handler = type("Handler", (_Handler,), {"cluster": cluster})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def fake_store(cluster: FakeCluster | None = None) -> Iterator[Any]:
    """An ``ElasticStore`` on ``cluster`` (a new fake when None), served over HTTP."""
    from recheck.store.elastic.cluster import ElasticSettings, RetryPolicy
    from recheck.store.elastic.store import ElasticStore

    with serve(cluster or FakeCluster()) as url:
        settings = ElasticSettings(
            backend="elasticsearch", urls=(url,), retry=RetryPolicy(retries=0), timeout=10.0
        )
        with ElasticStore(settings) as store:
            yield store
