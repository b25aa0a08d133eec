"""The cluster store (recheck.store.elastic) against a local fake Elasticsearch/OpenSearch.

The real client libraries talk to ``tests/elastic_fake.py`` over HTTP: the store-contract
suite runs as for the embedded store; other tests pin request bodies and replay recorded
error answers.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elastic_fake import Doc, FakeCluster, Request, fixture, serve
from store_contract import NOW, StoreContract, ingest_sample, make_signature

from recheck.config.files import Config
from recheck.logs.build import Build
from recheck.query import compile_query
from recheck.query.signatures import Signature
from recheck.store import Store, StoreError, open_store
from recheck.store.elastic.store import (
    ClusterError,
    ElasticSettings,
    ElasticStore,
    QueryRejected,
    RetryPolicy,
    parse_settings,
)

pytest.importorskip("elasticsearch")
pytest.importorskip("opensearchpy")

NO_WAIT = RetryPolicy(retries=3, backoff=0.0)


def settings(url: str, backend: str = "elasticsearch", **changes: Any) -> ElasticSettings:
    values: dict[str, Any] = {"backend": backend, "urls": (url,), "retry": NO_WAIT, "timeout": 10.0}
    values.update(changes)
    return ElasticSettings(**values)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def url(cluster: FakeCluster) -> Iterator[str]:
    with serve(cluster) as address:
        yield address


@pytest.fixture
def store(url: str) -> Iterator[ElasticStore]:
    with ElasticStore(settings(url)) as opened:
        yield opened


# ------------------------------------------------------------------ the shared contract


class TestElasticsearchStoreContract(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        with serve(FakeCluster()) as address, ElasticStore(settings(address)) as opened:
            yield opened


class TestOpenSearchStoreContract(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        fake = FakeCluster(flavour="opensearch")
        with serve(fake) as address, ElasticStore(settings(address, "opensearch")) as opened:
            yield opened


# ------------------------------------------------------------------ exact requests

QUERY = 'message:"delete failed" AND tags:screen'


def _rejected_signature() -> Signature:
    """A signature whose query the cluster refuses (recheck would refuse it too: the
    compiled query stands in, as if the file had been loaded by an older recheck)."""
    return Signature(
        bug="666",
        query='message:"unbalanced',
        path=Path("queries/666.yaml"),
        compiled=compile_query("message:x"),
    )


def _ingest_two(store: Store) -> None:
    build = Build(build_uuid="u-1", build_status="FAILURE", build_queue="gate")
    events = [
        (
            f"logs/screen-q-svc.txt:{line}",
            {"message": f"delete failed {line}", "tags": ["screen"], "build_queue": "gate"},
        )
        for line in (20, 21, 22)
    ]
    store.ingest(build, events, [], when=NOW - timedelta(hours=2))


def test_search_sends_the_query_unchanged_and_pages_in_a_point_in_time(
    cluster: FakeCluster, url: str
) -> None:
    with ElasticStore(settings(url, page_size=2)) as store:
        _ingest_two(store)
        cluster.requests.clear()
        found = list(store.search(compile_query(QUERY), days=10, queue="gate", now=NOW))
    assert [event_id for event_id, _ in found] == [
        "logs/screen-q-svc.txt:20",
        "logs/screen-q-svc.txt:21",
        "logs/screen-q-svc.txt:22",
    ]
    assert found[0][1] == {
        "message": "delete failed 20",
        "tags": ["screen"],
        "build_queue": "gate",
        "build_uuid": "u-1",
    }
    cat, hidden, pit, first, hidden_again, second, close = cluster.requests
    assert (cat.method, cat.path, cat.params) == (
        "GET",
        "/_cat/indices/logstash-*",
        {"format": "json", "h": "index", "expand_wildcards": "open"},
    )
    hidden_lookup = {
        "query": {"exists": {"field": "hidden"}},
        "sort": [{"build_uuid": "asc"}],
        "track_total_hits": False,
        "_source": ["hidden"],
        "size": 2,
    }
    assert (hidden.path, hidden.json()) == ("/recheck-builds/_search", hidden_lookup)
    assert (hidden_again.path, hidden_again.json()) == ("/recheck-builds/_search", hidden_lookup)
    assert (pit.method, pit.path, pit.params) == (
        "POST",
        "/logstash-2024.05.20/_pit",
        {"keep_alive": "2m", "ignore_unavailable": "true"},
    )
    expected = {
        "query": {
            "bool": {
                "must": [{"query_string": {"query": QUERY, "default_field": "message"}}],
                "filter": [
                    {"range": {"@timestamp": {"gte": "2024-05-10T12:00:00.000Z"}}},
                    {"term": {"build_queue.keyword": "gate"}},
                ],
            }
        },
        "sort": [{"@timestamp": "asc"}, {"_shard_doc": "asc"}],
        "size": 2,
        "track_total_hits": False,
        "_source": True,
        "pit": {"id": "pit-1", "keep_alive": "2m"},
    }
    assert (first.method, first.path, first.json()) == ("POST", "/_search", expected)
    assert second.json() == {**expected, "search_after": second.json()["search_after"]}
    assert len(second.json()["search_after"]) == 2, "@timestamp and the _shard_doc tiebreaker"
    assert (close.method, close.path, close.json()) == ("DELETE", "/_pit", {"id": "pit-1"})


def test_opensearch_pages_with_its_own_point_in_time_api() -> None:
    fake = FakeCluster(flavour="opensearch")
    with serve(fake) as address, ElasticStore(settings(address, "opensearch")) as store:
        _ingest_two(store)
        fake.requests.clear()
        assert len(list(store.search(compile_query(QUERY), now=NOW))) == 3
    _, _, pit, page, _, close = fake.requests
    assert pit.path == "/logstash-2024.05.20/_search/point_in_time"
    assert page.json()["sort"] == [{"@timestamp": "asc"}, {"_id": "asc"}]
    assert page.json()["pit"] == {"id": "pit-1", "keep_alive": "2m"}
    assert (close.method, close.path, close.json()) == (
        "DELETE",
        "/_search/point_in_time",
        {"pit_id": ["pit-1"]},
    )
    assert "x-elastic-product" not in {k.lower() for k in page.headers}


def test_a_cluster_without_point_in_time_is_paged_without() -> None:
    fake = FakeCluster(flavour="opensearch")
    with serve(fake) as address, ElasticStore(settings(address, "opensearch")) as store:
        _ingest_two(store)
        fake.requests.clear()
        fake.fail_next(
            "POST", "point_in_time", 404, {"error": "no handler found for uri", "status": 404}
        )
        assert len(list(store.search(compile_query(QUERY), now=NOW))) == 3
    page = fake.calls("/logstash-")[-1]
    assert page.path == "/logstash-2024.05.20/_search"
    assert page.params == {"ignore_unavailable": "true", "allow_no_indices": "true"}
    assert "pit" not in page.json() and page.json()["sort"][-1] == {"_id": "asc"}


def test_elasticsearch_refusing_a_point_in_time_is_an_error_not_a_fallback(
    cluster: FakeCluster, store: ElasticStore
) -> None:
    """Elasticsearch 8 always has points in time, and refuses the fallback's _id sort."""
    _ingest_two(store)
    cluster.fail_next("POST", "/_pit", 400, fixture("error-query-shard.json"))
    with pytest.raises(StoreError):
        list(store.search(compile_query(QUERY), now=NOW))
    assert not [r for r in cluster.calls("/logstash-") if r.path.endswith("/_search")]


def test_classifying_a_build_is_one_msearch(cluster: FakeCluster, store: ElasticStore) -> None:
    _ingest_two(store)
    sigs = [
        make_signature("1", QUERY),
        make_signature("2", "message:nothinghere"),
        make_signature("3", "message:failed", test_ids=("some.test",)),
    ]
    build = Build(build_uuid="u-1", build_status="FAILURE")
    cluster.requests.clear()
    result = store.classify(build, sigs, since=NOW - timedelta(days=1))
    [request] = cluster.requests
    assert (request.method, request.path) == ("POST", "/_msearch")
    assert request.headers["content-type"].endswith("x-ndjson; compatible-with=8")
    # The DSL's MultiSearch names the index as a list (the _msearch API takes either).
    header = {"index": ["logstash-*"], "ignore_unavailable": True, "allow_no_indices": True}
    filters = [
        {"range": {"@timestamp": {"gte": "2024-05-19T12:00:00.000Z"}}},
        {"term": {"build_uuid.keyword": "u-1"}},
    ]
    assert request.ndjson() == [
        line
        for query in (QUERY, "message:nothinghere")
        for line in (
            header,
            {
                "query": {
                    "bool": {
                        "must": [{"query_string": {"query": query, "default_field": "message"}}],
                        "filter": filters,
                    }
                },
                "sort": [{"@timestamp": "asc"}],
                "size": 100,
                "track_total_hits": True,
            },
        )
    ]
    assert result.bugs == ["1"] and result.totals == {"1": 3, "2": 0}
    assert [(m.filename, m.line) for m in result.matches] == [
        ("logs/screen-q-svc.txt", 20),
        ("logs/screen-q-svc.txt", 21),
        ("logs/screen-q-svc.txt", 22),
    ]
    assert set(result.skipped) == {"3"} and result.errors == {}


def test_ingest_bulk_indexes_events_matches_and_the_build(
    cluster: FakeCluster, store: ElasticStore
) -> None:
    from recheck.models import Match

    build = Build(build_uuid="u-9", build_name="tempest-full")
    events = [("job-output.txt:7", {"message": "boom", "@timestamp": "original"})]
    when = datetime(2024, 5, 20, 10, 30, tzinfo=UTC)
    store.ingest(build, events, [Match("77", "job-output.txt", 7, "boom")], when=when)
    creates = [r for r in cluster.requests if r.method == "PUT" and "_bulk" not in r.path]
    assert [r.path for r in creates] == [
        "/recheck-builds",
        "/recheck-matches",
        "/recheck-signatures",
        "/recheck-tests",
    ]
    assert creates[0].json()["mappings"]["properties"]["build_uuid"] == {"type": "keyword"}
    hide, write, flip = (bulk.ndjson() for bulk in cluster.calls("/_bulk"))
    lines = write
    generation = lines[1]["recheck_generation"]
    assert hide == [
        {"index": {"_id": "u-9", "_index": "recheck-builds"}},
        {"build_uuid": "u-9", "time": "2024-05-20T10:30:00.000Z", "hidden": [generation]},
    ], "a first ingest hides its generation behind a placeholder without one"
    assert lines[0] == {"index": {"_id": f"u-9:{generation}:1", "_index": "logstash-2024.05.20"}}
    assert lines[1] == {
        "message": "boom",
        "recheck_original_timestamp": "original",
        "build_uuid": "u-9",
        "@timestamp": "2024-05-20T10:30:00.000Z",
        "recheck_id": "job-output.txt:7",
        "recheck_rank": 1,
        "recheck_generation": generation,
    }
    assert lines[2]["index"]["_index"] == "recheck-matches"
    assert lines[3] == {
        "bug": "77",
        "build_uuid": "u-9",
        "build_time": "2024-05-20T10:30:00.000Z",
        "filename": "job-output.txt",
        "line": 7,
        "message": "boom",
        "generation": generation,
    }
    assert len(lines) == 4
    assert flip[0] == {"index": {"_id": "u-9", "_index": "recheck-builds"}}
    assert {k: v for k, v in flip[1].items() if k != "ingested_at"} == {
        "build_uuid": "u-9",
        "build_name": "tempest-full",
        "time": "2024-05-20T10:30:00.000Z",
        "events": 1,
        "events_kept": True,
        "bugs": ["77"],
        "generation": generation,
    }
    assert [r.path for r in cluster.calls("/_refresh")] == [
        "/recheck-builds/_refresh",
        "/logstash-2024.05.20,recheck-matches/_refresh",
        "/recheck-builds/_refresh",
    ]
    events_delete, matches_delete = cluster.calls("/_delete_by_query")
    assert events_delete.path == "/logstash-*/_delete_by_query"
    assert events_delete.params["refresh"] == "true"
    assert events_delete.json() == {
        "query": {
            "bool": {
                "filter": [{"term": {"build_uuid.keyword": "u-9"}}],
                "must_not": [{"term": {"recheck_generation.keyword": generation}}],
            }
        }
    }
    assert matches_delete.path == "/recheck-matches/_delete_by_query"
    [(_, event)] = list(store.search(compile_query("boom"), now=when))
    assert event == {"message": "boom", "@timestamp": "original", "build_uuid": "u-9"}


def test_summary_uses_aggregations(cluster: FakeCluster, store: ElasticStore) -> None:
    from recheck.store.stats import summarize

    ingest_sample(store)
    query = compile_query('message:"delete failed"')
    cluster.requests.clear()
    stats = store.summary(query, now=NOW)
    [search] = cluster.calls("/logstash-")[1:]  # after _cat/indices
    body = search.json()
    assert (body["size"], body["track_total_hits"]) == (0, True)
    assert body["aggs"]["statuses"] == {
        "terms": {"field": "build_status.keyword", "size": 100, "missing": "UNKNOWN"},
        "aggs": {
            "builds": {"cardinality": {"field": "build_uuid.keyword", "precision_threshold": 40000}}
        },
    }
    assert body["aggs"]["top:build_name"] == {"terms": {"field": "build_name.keyword", "size": 5}}
    assert "top:message" not in body["aggs"] and "top:build_uuid" not in body["aggs"]
    expected = summarize(event for _, event in store.search(query, now=NOW))
    assert (stats.hits, stats.builds) == (expected.hits, expected.builds)
    for name in ("build_name", "build_status", "filename", "loglevel", "tags"):
        assert stats.fields.get(name) == expected.fields.get(name), name
    assert expected.fields.get("tags"), "the sample events should have tags"


def test_freshness_and_health(cluster: FakeCluster, store: ElasticStore) -> None:
    assert store.newest_event_time() is None
    _ingest_two(store)
    cluster.requests.clear()
    assert store.newest_event_time() == NOW - timedelta(hours=2)
    [request] = cluster.requests
    assert (request.path, request.json()) == (
        "/logstash-*/_search",
        {
            "size": 0,
            "track_total_hits": False,
            "aggs": {"newest": {"max": {"field": "@timestamp"}}},
        },
    )
    health = store.health()
    assert (health.status, health.cluster_name) == ("green", "fake")


def test_events_indexed_by_logstash_are_read_as_text(
    cluster: FakeCluster, store: ElasticStore
) -> None:
    cluster.indices["logstash-2024.05.20"] = {}
    source = {
        "message": "Timed out waiting for a reply",
        "@timestamp": "2024-05-20T09:00:00Z",
        "filename": "controller/logs/screen-n-cpu.txt",
        "voting": 1,
        "tags": ["screen"],
        "geoip": {"city": "Montreal"},
        "build_uuid": "abc",
        "host": None,
    }
    cluster._bulk([{"index": {"_index": "logstash-2024.05.20", "_id": "AXk1"}}, source], None)
    [(event_id, event)] = list(store.search(compile_query("message:timed"), now=NOW))
    assert event_id == "controller/logs/screen-n-cpu.txt:AXk1"
    assert event == {
        "message": "Timed out waiting for a reply",
        "@timestamp": "2024-05-20T09:00:00Z",
        "filename": "controller/logs/screen-n-cpu.txt",
        "voting": "1",
        "tags": ["screen"],
        "geoip.city": "Montreal",
        "build_uuid": "abc",
    }


# ------------------------------------------------------------------ errors


def test_a_429_is_retried_with_backoff(cluster: FakeCluster, store: ElasticStore) -> None:
    _ingest_two(store)
    waits: list[float] = []
    store._sleep = waits.append
    cluster.requests.clear()
    cluster.fail_next("POST", "/_search", 429, fixture("error-429.json"), exact=True)
    assert len(list(store.search(compile_query(QUERY), now=NOW))) == 3
    searches = [r for r in cluster.requests if r.path == "/_search"]
    assert len(searches) == 2 and searches[0].body == searches[1].body
    assert len(waits) == 1


@pytest.mark.parametrize("backend", ["elasticsearch", "opensearch"])
def test_bulk_items_rejected_with_429_are_indexed_again(backend: str) -> None:
    fake = FakeCluster(flavour=backend)
    rejected, _ = fixture("bulk-item-errors.json")["items"]
    fake.reject_bulk_item("logstash-*", rejected["index"])
    with serve(fake) as address, ElasticStore(settings(address, backend)) as store:
        _ingest_two(store)
        assert len(list(store.search(compile_query(QUERY), now=NOW))) == 3
    write, again = fake.calls("/_bulk")[1:3]
    assert len(write.ndjson()) == 2 * 3, "three events, no matches"
    assert again.ndjson() == write.ndjson()[:2], "only the rejected event is sent again"


@pytest.mark.parametrize("backend", ["elasticsearch", "opensearch"])
def test_a_document_the_cluster_refuses_fails_the_ingest_with_its_reason(backend: str) -> None:
    fake = FakeCluster(flavour=backend)
    _, refused = fixture("bulk-item-errors.json")["items"]
    fake.reject_bulk_item("logstash-*", refused["index"])
    with serve(fake) as address, ElasticStore(settings(address, backend)) as store:
        with pytest.raises(ClusterError) as caught:
            _ingest_two(store)
        assert not store.has_build("u-1"), "the build never became current"
    assert caught.value.status == 400 and caught.value.kind == "document_parsing_exception"
    assert str(caught.value).startswith(
        f"{address}: the cluster answered HTTP 400 document_parsing_exception: 1 documents "
        "were not indexed, the first because: [1:15] failed to parse field [line]"
    )


def test_retries_give_up_with_the_cluster_s_reason(cluster: FakeCluster, url: str) -> None:
    policy = RetryPolicy(retries=2, backoff=0.0)
    with ElasticStore(settings(url, retry=policy)) as store:
        store._sleep = lambda _: None
        cluster.fail_next(
            "GET",
            "/_cluster/health",
            503,
            {
                "error": {
                    "root_cause": [
                        {"type": "master_not_discovered_exception", "reason": "no master"}
                    ]
                },
                "status": 503,
            },
            times=3,
        )
        with pytest.raises(ClusterError) as caught:
            store.health()
    assert caught.value.status == 503 and caught.value.kind == "master_not_discovered_exception"
    assert "no master" in str(caught.value) and url in str(caught.value)
    assert len(cluster.calls("/_cluster/health")) == 3


def test_backoff_grows_with_jitter() -> None:
    policy = RetryPolicy(retries=5, backoff=1.0, max_backoff=5.0)
    delays = [policy.delay(attempt) for attempt in range(5)]
    for attempt, delay in enumerate(delays):
        ceiling = min(5.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling


def test_a_rejected_query_is_reported_for_that_signature_only(
    cluster: FakeCluster, store: ElasticStore
) -> None:
    _ingest_two(store)
    broken = _rejected_signature()
    good = make_signature("1", QUERY)
    result = store.classify(Build(build_uuid="u-1"), [broken, good])
    assert result.bugs == ["1"]
    assert list(result.errors) == ["666"]
    assert result.errors["666"].startswith("query_shard_exception: Failed to parse query")
    with pytest.raises(QueryRejected) as caught:
        list(store.search(broken, now=NOW))
    assert caught.value.errors == {"666": 'Failed to parse query [message:"unbalanced]'}
    assert "signature 666" in str(caught.value)


def test_recorded_msearch_answer_with_a_shard_failure(
    cluster: FakeCluster, store: ElasticStore
) -> None:
    cluster.fail_next("POST", "/_msearch", 200, fixture("msearch-mixed.json"))
    sigs = [make_signature("1", 'message:"delete failed"'), make_signature("2", "message:x")]
    result = store.classify(Build(build_uuid="u-1"), sigs)
    assert [(m.bug, m.filename, m.line, m.message) for m in result.matches] == [
        ("1", "logs/screen-q-svc.txt", 20, "[-] delete failed")
    ]
    assert result.errors == {
        "2": 'query_shard_exception: Failed to parse query [message:"unbalanced]'
    }


def test_a_total_given_as_a_number_is_read_too(cluster: FakeCluster, store: ElasticStore) -> None:
    """``hits.total`` is an object since Elasticsearch 7, a number where
    ``rest_total_hits_as_int`` is set (by a proxy, or an old client's default)."""
    answer = fixture("msearch-mixed.json")
    answer["responses"][0]["hits"]["total"] = 1
    cluster.fail_next("POST", "/_msearch", 200, answer)
    sigs = [make_signature("1", 'message:"delete failed"'), make_signature("2", "message:x")]
    assert store.classify(Build(build_uuid="u-1"), sigs).totals == {"1": 1}


def test_msearch_items_rejected_with_429_are_sent_again_alone(
    cluster: FakeCluster, store: ElasticStore
) -> None:
    _ingest_two(store)
    store._sleep = lambda _: None
    cluster.reject_item("message:nothinghere", 429, fixture("error-429.json"))
    cluster.requests.clear()
    sigs = [make_signature("1", QUERY), make_signature("2", "message:nothinghere")]
    result = store.classify(Build(build_uuid="u-1"), sigs)
    first, again = cluster.calls("/_msearch")
    assert len(first.ndjson()) == 4 and len(again.ndjson()) == 2
    assert again.ndjson()[1]["query"]["bool"]["must"][0]["query_string"]["query"] == (
        "message:nothinghere"
    )
    assert result.totals == {"1": 3, "2": 0} and result.errors == {}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("backend", ["elasticsearch", "opensearch"])
def test_connection_refused_is_a_clear_store_error(backend: str) -> None:
    address = f"http://127.0.0.1:{_closed_port()}"
    store = ElasticStore(settings(address, backend, retry=RetryPolicy(1, 0.0)))
    with store, pytest.raises(StoreError) as caught:
        store.has_build("u-1")
    message = str(caught.value)
    assert message.startswith(address)
    assert "cannot reach the cluster (connection refused)" in message
    assert "check store.url in bot.yaml" in message


@pytest.mark.parametrize("backend", ["elasticsearch", "opensearch"])
def test_a_timeout_is_retried_then_reported(backend: str) -> None:
    fake = FakeCluster(flavour=backend)
    with serve(fake) as address, ElasticStore(settings(address, backend, timeout=1.0)) as store:
        waits: list[float] = []
        store._sleep = waits.append
        released = fake.hold_next("GET", "/_cluster/health")
        try:
            assert store.health().status == "green", "the second attempt is answered"
        finally:
            released.set()
        assert len(waits) == 1, "one timeout, one retry"
        store.settings = replace(store.settings, retry=RetryPolicy(retries=0))
        released = fake.hold_next("GET", "/_cluster/health")
        try:
            with pytest.raises(ClusterError) as caught:
                store.health()
        finally:
            released.set()
    assert caught.value.kind == "timeout" and caught.value.retryable
    assert str(caught.value).startswith(f"{address}: timeout: no answer in time")
    assert str(caught.value).endswith(
        "the cluster is overloaded or store.timeout in bot.yaml is too short"
    )


@pytest.mark.parametrize("backend", ["elasticsearch", "opensearch"])
def test_an_answer_that_is_not_json_is_a_clear_store_error(backend: str) -> None:
    fake = FakeCluster(flavour=backend)
    fake.fail_next("GET", "/_cluster/health", 200, b"<html><body>Please log in</body></html>")
    with (
        serve(fake) as address,
        ElasticStore(settings(address, backend)) as store,
        pytest.raises(ClusterError) as caught,
    ):
        store.health()
    assert caught.value.kind == "bad answer" and not caught.value.retryable
    assert str(caught.value).startswith(f"{address}: bad answer: the answer is not the cluster")
    assert "names the cluster itself" in str(caught.value)


def test_the_elasticsearch_client_refuses_a_server_that_is_not_elasticsearch() -> None:
    fake = FakeCluster(flavour="opensearch")
    with (
        serve(fake) as address,
        ElasticStore(settings(address)) as store,
        pytest.raises(ClusterError, match="set 'backend: opensearch'"),
    ):
        store.health()


# ------------------------------------------------------------------ recorded shapes


def _keys(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        return {k for key, inner in value.items() for k in _keys(inner, f"{prefix}{key}.")} | {
            prefix + key for key in value
        }
    if isinstance(value, list) and value:
        return _keys(value[0], prefix + "[].")
    return set()


def _outside_source(keys: set[str]) -> set[str]:
    return {key for key in keys if "_source." not in key}


def test_the_fake_answers_in_the_recorded_shapes(cluster: FakeCluster, store: ElasticStore) -> None:
    """Every answer the fake gives has the keys of the real answer recorded in fixtures."""
    _ingest_two(store)

    def ask(method: str, path: str, body: str = "", **params: str) -> Any:
        return cluster.handle(Request(method, path, params, {}, body.encode()))[1]

    pit = ask("POST", "/logstash-*/_pit", keep_alive="1m")
    assert _keys(pit) == _keys(fixture("pit-open-elasticsearch.json"))
    page = ask(
        "POST",
        "/_search",
        json.dumps(
            {
                "pit": {"id": pit["id"], "keep_alive": "1m"},
                "size": 1,
                "track_total_hits": False,
                "sort": [{"@timestamp": "asc"}, {"_shard_doc": "asc"}],
            }
        ),
    )
    assert _outside_source(_keys(page)) == _outside_source(_keys(fixture("search-pit-page.json")))
    closed = ask("DELETE", "/_pit", json.dumps({"id": pit["id"]}))
    assert _keys(closed) == _keys(fixture("pit-close-elasticsearch.json"))
    msearch = ask(
        "POST",
        "/_msearch",
        (
            '{"index":"logstash-*"}\n{"query":{"query_string":{"query":"delete"}},"size":1,'
            '"sort":[{"@timestamp":"asc"}]}\n'
            '{"index":"logstash-*"}\n{"query":{"query_string":{"query":"message:\\"unbalanced"}}}\n'
        ),
    )
    [recorded_ok, recorded_error] = fixture("msearch-mixed.json")["responses"]
    assert _outside_source(_keys(msearch["responses"][0])) == _outside_source(_keys(recorded_ok))
    assert {
        "error.root_cause.[].type",
        "error.root_cause.[].reason",
        "error.type",
        "error.reason",
        "status",
    } <= _keys(msearch["responses"][1]) & _keys(recorded_error)
    assert msearch["responses"][1]["error"]["root_cause"][0]["type"] == "query_shard_exception"
    aggregated = ask(
        "POST",
        "/logstash-*/_search",
        json.dumps(
            {
                "size": 0,
                "aggs": {
                    "statuses": {
                        "terms": {"field": "build_status.keyword", "missing": "UNKNOWN"},
                        "aggs": {"builds": {"cardinality": {"field": "build_uuid.keyword"}}},
                    },
                    "missing:build_name": {"missing": {"field": "build_name.keyword"}},
                    "newest": {"max": {"field": "@timestamp"}},
                },
            }
        ),
    )
    recorded_aggs = fixture("aggregations.json")
    del recorded_aggs["aggregations"]["top:build_name"]
    assert _keys(aggregated) == _keys(recorded_aggs)
    deleted = ask("POST", "/recheck-signatures/_delete_by_query", '{"query":{"match_all":{}}}')
    assert _keys(deleted) == _keys(fixture("delete-by-query.json"))
    bulk = ask("POST", "/_bulk", '{"index":{"_index":"x","_id":"1"}}\n{"a":"b"}\n')
    assert _keys(bulk) == _keys(fixture("bulk.json"))
    assert _keys(ask("GET", "/_cluster/health")) == _keys(fixture("cluster-health.json"))
    assert _keys(ask("GET", "/")) == _keys(fixture("root-elasticsearch.json"))
    opensearch = FakeCluster(flavour="opensearch")
    opensearch.indices["logstash-2024.05.20"] = {}
    os_pit = opensearch.handle(
        Request("POST", "/logstash-*/_search/point_in_time", {"keep_alive": "1m"}, {}, b"")
    )[1]
    assert _keys(os_pit) == _keys(fixture("pit-open-opensearch.json"))
    os_closed = opensearch.handle(
        Request(
            "DELETE",
            "/_search/point_in_time",
            {},
            {},
            json.dumps({"pit_id": [os_pit["pit_id"]]}).encode(),
        )
    )[1]
    assert _keys(os_closed) == _keys(fixture("pit-close-opensearch.json"))
    assert _keys(opensearch.handle(Request("GET", "/", {}, {}, b""))[1]) == _keys(
        fixture("root-opensearch.json")
    )


def test_the_fake_refuses_what_the_servers_refuse() -> None:
    """The fake is strict where the servers are, so a request only one of them takes fails
    here: unknown URL parameters, Elasticsearch 8's ``_id`` sort, OpenSearch 2's missing
    ``_shard_doc``, an index beside a point in time; per-item bulk errors keep their shape."""
    elastic, opensearch = FakeCluster(), FakeCluster(flavour="opensearch")
    for fake in (elastic, opensearch):
        fake.indices["logstash-2024.05.20"] = {}

    def ask(fake: FakeCluster, method: str, path: str, body: Any = None, **params: str) -> Any:
        text = json.dumps(body).encode() if body is not None else b""
        return fake.handle(Request(method, path, params, {}, text))

    status, answer = ask(elastic, "POST", "/logstash-*/_search", {}, scroll="1m")
    assert status == 400 and answer["error"]["reason"] == (
        "request [/logstash-*/_search] contains unrecognized parameter: [scroll]"
    )
    assert ask(opensearch, "POST", "/x/_search/point_in_time", keep_alive="1m",
               ignore_unavailable="true")[0] == 200  # fmt: skip
    by_id = {"sort": [{"@timestamp": "asc"}, {"_id": "asc"}]}
    assert ask(elastic, "POST", "/logstash-*/_search", by_id)[0] == 400
    assert ask(opensearch, "POST", "/logstash-*/_search", by_id)[0] == 200
    pit = ask(opensearch, "POST", "/logstash-*/_search/point_in_time", keep_alive="1m")[1]
    shard_doc = {"sort": [{"_shard_doc": "asc"}], "pit": {"id": pit["pit_id"]}}
    status, answer = ask(opensearch, "POST", "/_search", shard_doc)
    assert status == 400 and "No mapping found for [_shard_doc]" in answer["error"]["reason"]
    assert ask(elastic, "POST", "/logstash-*/_search", {"sort": [{"_shard_doc": "asc"}]})[0] == 400
    es_pit = ask(elastic, "POST", "/logstash-*/_pit", keep_alive="1m")[1]
    status, answer = ask(elastic, "POST", "/logstash-*/_search", {"pit": {"id": es_pit["id"]}})
    assert status == 400 and "[indices] cannot be used with point in time" in str(answer)
    assert ask(elastic, "GET", "/_cat/indices/logstash-*")[0] == 400, "text unless format=json"
    _, refused = fixture("bulk-item-errors.json")["items"]
    elastic.reject_bulk_item("logstash-*", refused["index"])
    bulk = '{"index":{"_index":"logstash-2024.05.20","_id":"3"}}\n{"line":"abc"}\n'
    status, answer = elastic.handle(Request("POST", "/_bulk", {}, {}, bulk.encode()))
    assert status == 200 and answer["errors"] is True
    assert answer["items"] == [refused]


# ------------------------------------------------------------------ settings


def test_settings_from_bot_yaml(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    parsed = parse_settings(
        {
            "backend": "opensearch",
            "url": ["https://os1.example.org:9200", "https://os2.example.org"],
            "index_pattern": "logstash-*",
            "username": "recheck",
            "password_file": str(secret),
            "verify_certs": False,
            "timeout": 5,
            "retries": 1,
            "backoff": 0.5,
            "keyword_suffix": ".raw",
            "event_days": 10,
            "build_days": 90,
            "path": "/ignored",
        },
        "bot.yaml",
        environ={},
    )
    assert parsed.urls == ("https://os1.example.org:9200", "https://os2.example.org")
    assert (parsed.username, parsed.password, parsed.verify_certs) == ("recheck", "s3cret", False)
    assert parsed.retry == RetryPolicy(retries=1, backoff=0.5)
    assert parsed.keyword_suffix == ".raw" and parsed.timeout == 5.0
    assert "s3cret" not in repr(parsed)
    from_env = parse_settings(
        {
            "backend": "elasticsearch",
            "url": "http://es:9200",
            "username": "u",
            "password_env": "ES_PW",
        },
        environ={"ES_PW": "pw"},
    )
    assert from_env.password == "pw" and from_env.daily_index(NOW.date()) == "logstash-2024.05.20"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"backend": "solr", "url": "http://x"}, "backend must be embedded, elasticsearch or"),
        ({"backend": "opensearch"}, "url must be the cluster's address"),
        ({"backend": "opensearch", "url": "es.example.org"}, "url must be the cluster's address"),
        (
            {"backend": "opensearch", "url": "http://x", "password": "p"},
            "do not write the password in bot.yaml; name an environment variable",
        ),
        (
            {"backend": "opensearch", "url": "http://x", "index_patern": "a-*"},
            "unknown key 'index_patern'; did you mean 'index_pattern'?",
        ),
        (
            {"backend": "opensearch", "url": "http://x", "index_pattern": "logstash"},
            "index_pattern must be one index name with one '*'",
        ),
        ({"backend": "opensearch", "url": "http://x", "retries": -1}, "retries must be a number"),
        (
            {"backend": "opensearch", "url": "http://x", "verify_certs": "no"},
            "verify_certs must be true or false",
        ),
        (
            {"backend": "opensearch", "url": "http://x", "username": "u", "password_env": "NOPE"},
            "password_env names $NOPE, which is not set or empty",
        ),
        (
            {"backend": "opensearch", "url": "http://x", "password_env": "PW"},
            "a password needs a username",
        ),
    ],
)
def test_settings_errors_say_what_to_write(section: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreError) as caught:
        parse_settings(section, "conf/bot.yaml", environ={"PW": "x"})
    assert str(caught.value).startswith("conf/bot.yaml: store: ")
    assert message in str(caught.value)


def test_credentials_in_the_url_are_not_shown() -> None:
    parsed = parse_settings({"backend": "elasticsearch", "url": "https://u:pw@es.example.org:9200"})
    assert parsed.display_url == "https://es.example.org:9200"


# ------------------------------------------------------------------ choosing the backend


def test_open_store_chooses_the_cluster_from_bot_yaml(url: str, tmp_path: Path) -> None:
    config = Config(
        sections={"store": {"backend": "elasticsearch", "url": url}}, path=tmp_path / "bot.yaml"
    )
    with open_store(config=config) as store:
        assert isinstance(store, ElasticStore) and store.path == url
        assert not store.has_build("nope")
    with pytest.raises(StoreError) as caught:
        open_store(tmp_path / "local", config=config)
    assert str(caught.value) == (
        f"{tmp_path / 'bot.yaml'}: store: backend elasticsearch keeps the history in the "
        f"cluster (store.url), but --store {tmp_path / 'local'} names a directory for the "
        "embedded store; drop one of them (for the embedded store, remove backend or write "
        "'backend: embedded')"
    )
    embedded = Config(sections={"store": {"backend": "embedded", "event_days": 3}})
    with open_store(tmp_path / "other", config=embedded) as other:
        assert not isinstance(other, ElasticStore)


@pytest.mark.parametrize(
    ("backend", "module", "extra"),
    [
        ("elasticsearch", "elasticsearch", "elastic"),
        ("elasticsearch", "elasticsearch.dsl", "elastic"),  # a client older than 8.18
        ("opensearch", "opensearchpy", "opensearch"),
        ("opensearch", "opensearchpy.helpers.search", "opensearch"),
    ],
)
def test_a_missing_extra_says_what_to_install(
    backend: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, module, None)
    config = Config(sections={"store": {"backend": backend, "url": "http://es.example.org"}})
    with pytest.raises(StoreError) as caught:
        open_store(config=config)
    assert f"pip install 'recheck[{extra}]'" in str(caught.value)


def test_reclassify_reports_a_rejected_signature_and_does_the_others(store: ElasticStore) -> None:
    ingest_sample(store)
    broken = _rejected_signature()
    good = make_signature("901", "message:traceback AND tags:screen")
    with pytest.raises(QueryRejected) as caught:
        store.reclassify([broken, good])
    assert list(caught.value.errors) == ["666"]
    assert store.matches_for("901", days=90, now=NOW), "the good signature was re-run"
    with pytest.raises(QueryRejected):
        store.reclassify([broken, good])  # the rejected one is tried again, the other is done


def test_only_the_daily_indices_of_the_window_are_searched(
    cluster: FakeCluster, store: ElasticStore
) -> None:
    cluster.fail_next("GET", "/_cat/indices", 200, fixture("cat-indices.json"))
    assert list(store.search(compile_query("boom"), days=10, now=NOW)) == []
    pit = cluster.calls("/_pit")[0]
    assert pit.path == "/logstash-2024.05.18,logstash-2024.05.20/_pit"


def test_a_recorded_query_shard_exception_names_the_signature(
    cluster: FakeCluster, store: ElasticStore
) -> None:
    _ingest_two(store)
    cluster.fail_next("POST", "/_search", 400, fixture("error-query-shard.json"))
    with pytest.raises(QueryRejected) as caught:
        list(store.search(make_signature("1234", QUERY), now=NOW))
    assert str(caught.value) == (
        f"{store.path}: the cluster rejected the query of signature 1234: "
        'Failed to parse query [message:"unbalanced]'
    )


# ------------------------------------------------------------------ atomic re-ingest


def _copy(
    number: int, lines: Sequence[int], bug: str
) -> tuple[list[tuple[str, dict[str, Any]]], list[Any]]:
    """A copy of build u-7: events saying "copy <number>", one match of ``bug`` each."""
    from recheck.models import Match

    events = [
        (f"logs/job-output.txt:{line}", {"message": f"delete failed copy{number} {line}"})
        for line in lines
    ]
    matches = [Match(bug, "logs/job-output.txt", line, f"copy{number}") for line in lines]
    return events, matches


def _seen(reader: ElasticStore) -> tuple[Any, ...]:
    """Everything a reader can see of build u-7, through every reading method."""
    query = compile_query('message:"delete failed"')
    events = sorted(event["message"] for _, event in reader.search(query, now=NOW))
    stats = reader.summary(query, now=NOW)
    builds = [(b.uuid, b.events, b.bugs) for b in reader.builds()]
    matches = sorted(
        (m.bug, m.line, m.message) for bug in ("1", "2") for m in reader.matches_for(bug, now=NOW)
    )
    return tuple(events), stats.hits, tuple(builds), tuple(matches), reader.has_build("u-7")


def test_readers_see_the_old_copy_or_the_new_one_never_a_mix(url: str) -> None:
    when = NOW - timedelta(hours=1)
    build = Build(build_uuid="u-7", build_status="FAILURE")
    with ElasticStore(settings(url)) as writer, ElasticStore(settings(url)) as reader:
        nothing = _seen(reader)
        seen: dict[str, tuple[Any, ...]] = {}
        writer._step = lambda step: seen.setdefault(f"first {step}", _seen(reader))
        writer.ingest(build, *_copy(1, (10, 11, 12), "1"), when=when)
        first = _seen(reader)
        writer._step = lambda step: seen.setdefault(f"again {step}", _seen(reader))
        writer.ingest(build, *_copy(2, (20, 21), "2"), when=when)
        second = _seen(reader)
    assert nothing == ((), 0, (), (), False)
    assert first[0] == tuple(f"delete failed copy1 {n}" for n in (10, 11, 12))
    assert first[1:4] == (3, (("u-7", 3, ("1",)),), (("1", 10, "copy1"), ("1", 11, "copy1"),
                                                       ("1", 12, "copy1")))  # fmt: skip
    assert second[0] == ("delete failed copy2 20", "delete failed copy2 21")
    assert second[1:3] == (2, (("u-7", 2, ("2",)),))
    assert seen == {
        "first hidden": nothing,
        "first written": nothing,  # written, not yet current: a first ingest shows nothing
        "first flipped": first,
        "first deleted": first,
        "again hidden": first,
        "again written": first,  # both copies are in the indices; the old one is current
        "again flipped": second,
        "again deleted": second,
    }


def test_a_crashed_reingest_stays_hidden_and_the_next_one_cleans_up(
    cluster: FakeCluster, url: str
) -> None:
    when = NOW - timedelta(hours=1)
    build = Build(build_uuid="u-7", build_status="FAILURE")

    def crashing() -> Iterator[tuple[str, dict[str, Any]]]:
        # More than one bulk chunk (500 actions), so some were sent before the crash.
        yield from _copy(2, range(600), "2")[0]
        raise OSError("log fetch died")

    with ElasticStore(settings(url)) as writer, ElasticStore(settings(url)) as reader:
        writer.ingest(build, *_copy(1, (10, 11), "1"), when=when)
        first = _seen(reader)
        with pytest.raises(OSError):
            writer.ingest(build, crashing(), [], when=when)
        assert len(cluster.docs("logstash-*")) == 2 + 500, "a chunk of the crashed copy"
        assert _seen(reader) == first, "the crashed copy's events are hidden"
        writer.ingest(build, *_copy(3, (30,), "1"), when=when)
        third = _seen(reader)
    assert third[0] == ("delete failed copy3 30",)
    events = [d for d in cluster.docs("logstash-*")]
    assert [d.source["message"] for d in events] == ["delete failed copy3 30"]
    [stored] = cluster.docs("recheck-builds")
    assert stored.source.get("hidden") == [], "nothing left to hide"


def test_matches_of_two_copies_of_a_build_are_paged_without_losing_one(
    cluster: FakeCluster, url: str
) -> None:
    """A re-ingest leaves two copies of a match that differ only by generation; paging
    with search_after must not take them for one (the current one would be skipped)."""
    from recheck.models import Match

    with ElasticStore(settings(url, page_size=1)) as store:
        store.ingest(Build(build_uuid="u-1"), [], [Match("1", "job-output.txt", 7, "boom")],
                     when=NOW - timedelta(hours=1))  # fmt: skip
        matches = cluster.indices["recheck-matches"]
        [(key, current)] = matches.items()
        stale = Doc(current.index, "stale", {**current.source, "generation": "stale"}, 0)
        matches.clear()
        matches.update({"stale": stale, key: current})  # the stale copy comes first
        assert [(m.bug, m.line) for m in store.matches_for("1", now=NOW)] == [("1", 7)]


# ------------------------------------------------------------------ the command line


def _cluster_config(tmp_path: Path, url: str, *extra: str) -> Path:
    config = tmp_path / "bot.yaml"
    lines = ["store:", "  backend: elasticsearch", f"  url: {url}", "  retries: 0", *extra]
    config.write_text("\n".join(lines) + "\n")
    return config


def test_recheck_query_counts_in_the_cluster_with_aggregations(
    cluster: FakeCluster, store: ElasticStore, url: str, tmp_path: Path, capsys: Any
) -> None:
    from recheck.cli.main import main

    ingest_sample(store)
    config = _cluster_config(tmp_path, url)
    query = 'message:"delete failed"'
    days = str((datetime.now(UTC) - NOW).days + 10)  # the sample's last 10 days
    expected = store.summary(compile_query(query), days=float(days)).to_json()
    assert expected["hits"] > 0
    cluster.requests.clear()
    assert main(["query", query, "--config", str(config), "--format", "json", "--days", days]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {name: report[name] for name in expected} == expected
    assert len(report["events"]) == min(20, expected["hits"])
    assert sum(report["by_day"].values()) == expected["hits"]
    events = [r for r in cluster.calls("/logstash-") if r.path.endswith("/_search")]
    assert [r.json()["size"] for r in events] == [20], "one search: counts and the newest 20"
    assert not cluster.calls("_pit"), "no paging"


def test_recheck_classify_stored_asks_the_cluster_once(
    cluster: FakeCluster, store: ElasticStore, url: str, tmp_path: Path, capsys: Any
) -> None:
    from recheck.cli.main import main

    ingest_sample(store)
    config = _cluster_config(tmp_path, url)
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "1.yaml").write_text("query: message:failed OR message:error\n")
    (queries / "2.yaml").write_text("query: message:nothingmatchesthis\n")
    cluster.requests.clear()
    argv = ["classify", "--stored", "b-fail-gate", "--config", str(config),
            "--queries", str(queries), "--format", "json"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bugs"] == ["1"]
    assert [r.path for r in cluster.requests] == ["/_msearch"], "one round trip"


def test_recheck_query_reports_a_store_path_beside_a_cluster(
    url: str, tmp_path: Path, capsys: Any
) -> None:
    from recheck.cli.main import main

    config = _cluster_config(tmp_path, url)
    code = main(["query", "x", "--config", str(config), "--store", str(tmp_path / "s")])
    assert code == 2
    err = capsys.readouterr().err
    assert "recheck query: error: cannot use the store: " in err
    assert "backend elasticsearch keeps the history in the cluster (store.url), but --store" in err
    assert not (tmp_path / "s").exists(), "no embedded store was made"
    _cluster_config(tmp_path, url, "  path: /var/lib/recheck")
    assert main(["query", "x", "--config", str(config)]) == 2
    assert (
        "bot.yaml:5:9: store.path is the embedded store's directory, but backend: elasticsearch"
        in capsys.readouterr().err
    )


def test_recheck_query_on_a_cluster_that_is_down_says_so(tmp_path: Path, capsys: Any) -> None:
    from recheck.cli.main import main

    config = _cluster_config(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    assert main(["query", "message:x", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the cluster (connection refused)" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------ freshness for the pages


def test_freshness_of_a_cluster_and_of_the_embedded_store(
    cluster: FakeCluster, store: ElasticStore, tmp_path: Path
) -> None:
    from recheck.store import EmbeddedStore
    from recheck.store.freshness import freshness

    _ingest_two(store)  # events of NOW - 2 hours
    fresh = freshness(store, now=NOW + timedelta(hours=3))
    assert (fresh.newest_event, fresh.health) == (NOW - timedelta(hours=2), "green")
    assert fresh.summary() == "indexing behind by 5 hours"
    assert freshness(store, now=NOW - timedelta(hours=1, minutes=30)).summary() is None
    cluster.fail_next("GET", "/_cluster/health", 200, {**fixture("cluster-health.json")})
    assert freshness(store, now=NOW).summary() == (
        "cluster health yellow; indexing behind by 2 hours"
    ), "the recorded answer is a yellow cluster"
    with EmbeddedStore(tmp_path / "local") as local:
        _ingest_two(local)
        embedded = freshness(local, now=NOW)
    assert (embedded.newest_event, embedded.health) == (NOW - timedelta(hours=2), None)


def test_freshness_of_a_cluster_that_is_down_is_a_message(tmp_path: Path) -> None:
    from recheck.store.freshness import freshness

    address = f"http://127.0.0.1:{_closed_port()}"
    with ElasticStore(settings(address, retry=RetryPolicy(0, 0.0))) as down:
        fresh = freshness(down, now=NOW)
    assert fresh.newest_event is None and fresh.health is None
    assert fresh.summary() == (
        "history unavailable: connection: cannot reach the cluster (connection refused); "
        "check store.url in bot.yaml and that the cluster is up"
    )


def test_the_opensearch_store_needs_no_elasticsearch_library() -> None:
    """``pip install 'recheck[opensearch]'`` is enough: its DSL comes from opensearch-py."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from recheck.store.elastic.store import ElasticSettings, ElasticStore\n"
        "store = ElasticStore(ElasticSettings('opensearch', ('http://127.0.0.1:9',)))\n"
        "body = store._event_query('message:x', store._event_filters(queue='gate')).to_dict()\n"
        "assert body['bool']['must'][0]['query_string']['query'] == 'message:x', body\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'elasticsearch'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_with_index_events_off_only_builds_and_matches_are_written(
    cluster: FakeCluster, url: str
) -> None:
    # Where logstash already ships the logs, recheck must not index them a second time.
    from recheck.models import Match

    build = Build(build_uuid="u-1", build_status="FAILURE", build_queue="gate")
    events = [(f"job-output.txt:{n}", {"message": f"delete failed {n}"}) for n in (1, 2)]
    matches = [Match("demo-1", "job-output.txt", 1, "delete failed 1")]
    with ElasticStore(settings(url, index_events=False)) as store:
        store.ingest(build, events, matches, when=NOW)
        bulk = [r.body for r in cluster.calls("/_bulk")]
        written = b"".join(bulk)
        assert b"logstash-" not in written, "no event went to the daily indices"
        assert b"recheck-matches" in written and b"recheck-builds" in written
        [stored] = store.builds(since=NOW - timedelta(days=1))
        assert (stored.uuid, stored.events, stored.bugs) == ("u-1", 2, ("demo-1",))
    section = {"backend": "elasticsearch", "url": url, "index_events": False}
    assert parse_settings(section).index_events is False
    with pytest.raises(StoreError, match="index_events must be true or false"):
        parse_settings({**section, "index_events": "no"})
