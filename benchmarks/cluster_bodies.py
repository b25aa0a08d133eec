"""Measure what the query DSL costs the cluster store: import time and body building.

Run: .venv/bin/python benchmarks/cluster_bodies.py [--repeat N]

The cluster store builds its request bodies with the backend's DSL (elasticsearch.dsl
or opensearch-py's copy). Printed, for each backend:
- the import time of the client library alone and with its DSL (best of 5 fresh
  interpreters, ``-X importtime``'s cumulative microseconds of the top module);
- the time to build the ``_msearch`` body that classifies one build with the 91 real
  elastic-recheck signatures, with the DSL and with the plain dicts it replaced;
- the time to build one ``search_after`` page body inside a point in time, the same two
  ways (the store builds the query once with the DSL and adds ``pit`` and
  ``search_after`` per page as plain keys).

No cluster is contacted: bodies are built, not sent.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recheck.query.signatures import load_signatures  # noqa: E402
from recheck.store.elastic.cluster import ElasticSettings  # noqa: E402
from recheck.store.elastic.store import ElasticStore  # noqa: E402

QUERIES = ROOT / "tests" / "fixtures" / "queries" / "elastic-recheck-2020"


def import_ms(module: str) -> float:
    """Best of 5: the time ``import module`` takes in a fresh interpreter (the sum of
    ``-X importtime``'s cumulative times of the top-level imports it caused)."""
    best = float("inf")
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        baseline = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"],
            capture_output=True,
            text=True,
            check=True,
        )
        best = min(best, (_top_level(done.stderr) - _top_level(baseline.stderr)) / 1000)
    return best


def _top_level(report: str) -> int:
    """Microseconds of the top-level imports in an ``-X importtime`` report."""
    total = 0
    for line in report.splitlines():
        parts = re.split(r"\|", line.removeprefix("import time:"))
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            total += int(parts[1])
    return total


def best_of(repeat: int, work: Callable[[], object]) -> float:
    """Best time of ``repeat`` runs of ``work``, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def plain_msearch(queries: list[str]) -> list[dict[str, Any]]:
    """The classify body as the store built it before the DSL: plain dicts."""
    header = {"index": "logstash-*", "ignore_unavailable": True, "allow_no_indices": True}
    filters = [
        {"range": {"@timestamp": {"gte": "2024-05-19T12:00:00.000Z"}}},
        {"term": {"build_uuid.keyword": "u-1"}},
    ]
    lines: list[dict[str, Any]] = []
    for text in queries:
        lines.append(header)
        lines.append(
            {
                "query": {
                    "bool": {
                        "must": [{"query_string": {"query": text, "default_field": "message"}}],
                        "filter": filters,
                    }
                },
                "sort": [{"@timestamp": "asc"}],
                "size": 100,
                "track_total_hits": True,
            }
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    signatures, _ = load_signatures(QUERIES)
    texts = [s.query for s in signatures]
    print(f"{len(signatures)} signatures, best of {args.repeat} runs")
    for backend, client, dsl in (
        ("elasticsearch", "elasticsearch", "elasticsearch.dsl"),
        ("opensearch", "opensearchpy", "opensearchpy.helpers.search"),
    ):
        print(f"\n{backend}")
        print(f"  import {client}: {import_ms(client):.0f} ms")
        print(f"  import {dsl}: {import_ms(dsl):.0f} ms")
        measure(backend, texts, args.repeat)


def measure(backend: str, texts: list[str], repeat: int) -> None:
    """Print the body-building times of ``backend``'s DSL next to plain dicts."""
    store = ElasticStore(ElasticSettings(backend, ("http://127.0.0.1:9",)))  # type: ignore[arg-type]
    Search, Q = store._dsl.Search, store._dsl.Q

    def with_dsl() -> object:
        filters = store._event_filters(build_uuid="u-1")
        each = (
            Search(index="logstash-*")
            .params(ignore_unavailable=True, allow_no_indices=True)
            .sort({"@timestamp": "asc"})
            .extra(size=100, track_total_hits=True)
        )
        multi = store._dsl.MultiSearch()
        for text in texts:
            multi = multi.add(each.query(store._event_query(text, filters)))
        return multi.to_dict()

    dsl_ms = best_of(repeat, with_dsl)
    plain = best_of(repeat, lambda: plain_msearch(texts))
    print(f"  classify _msearch body: DSL {dsl_ms:.2f} ms, plain dicts {plain:.3f} ms")

    query = Q("bool", must=[store._query_string(texts[0])], filter=[])

    def page_dsl() -> object:
        return (
            Search()
            .query(query)
            .sort({"@timestamp": "asc"}, {"_shard_doc": "asc"})
            .extra(size=1000, track_total_hits=False, _source=True)
            .extra(pit={"id": "p", "keep_alive": "2m"}, search_after=[1, 2])
            .to_dict()
        )

    base = page_dsl()

    def page_plain() -> object:
        return {**base, "pit": {"id": "p", "keep_alive": "2m"}, "search_after": [1, 2]}

    print(
        f"  one page body: DSL {best_of(repeat, page_dsl) * 1000:.0f} µs, "
        f"plain keys on the DSL's query {best_of(repeat, page_plain) * 1000:.1f} µs"
    )


if __name__ == "__main__":
    main()
