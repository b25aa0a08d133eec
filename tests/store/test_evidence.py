"""``recheck query``'s evidence (newest events, hits per day, filters) on the embedded store
and on the cluster store (tests/elastic_fake.py): computed here from what was ingested."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from elastic_fake import fake_store
from store_contract import NOW, StoredSample, ingest_sample

from recheck.query import compile_query
from recheck.store import Store, open_store
from recheck.store.evidence import Evidencing, evidence_from, line_url

QUERY = 'message:"delete failed" OR message:error*'


@pytest.fixture(params=["embedded", "elasticsearch"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, StoredSample]]:
    if request.param == "embedded":
        with open_store(tmp_path / "store") as store:
            yield store, ingest_sample(store)
        return
    pytest.importorskip("elasticsearch")
    with fake_store() as cluster:
        assert isinstance(cluster, Evidencing)
        yield cluster, ingest_sample(cluster)


def _expected(sample: StoredSample, days: float) -> list[tuple[str, str, str]]:
    """(build time, build uuid, event id) of every hit, newest build first."""
    query = compile_query(QUERY)
    from recheck.query import Doc

    hits = [
        (when.isoformat(), str(build.build_uuid), event_id)
        for build, when, events in sample.builds
        if (NOW - when).total_seconds() <= days * 86400
        for event_id, event in events
        if query.matches(Doc(event))
    ]
    return sorted(hits, key=lambda hit: hit[0], reverse=True)


def test_evidence_lists_the_newest_events_and_counts_hits_per_day(
    filled: tuple[Store, StoredSample],
) -> None:
    store, sample = filled
    expected = _expected(sample, 10)
    assert len({uuid for _, uuid, _ in expected}) >= 2, "the query hits several builds"
    found = evidence_from(store, compile_query(QUERY), 10, now=NOW, limit=5)
    assert found.stats.hits == len(expected)
    assert len(found.events) == 5
    newest = {uuid for _, uuid, _ in expected[:5]}
    assert {hit.build_uuid for hit in found.events} == newest
    ids = {event_id for _, _, event_id in expected}
    for hit in found.events:
        assert f"{hit.filename}:{hit.line}" in ids
        assert hit.message and hit.build_name and hit.build_status
    per_day = Counter(when[:10] for when, _, _ in expected)
    assert {day: n for day, n in found.by_day.items() if n} == dict(per_day)
    # Every day of the window is there, the quiet ones with 0.
    assert len(found.by_day) == 11 and sum(found.by_day.values()) == len(expected)
    assert list(found.by_day) == sorted(found.by_day)


def test_filters_keep_only_the_exact_values(filled: tuple[Store, StoredSample]) -> None:
    store, _ = filled
    everything = evidence_from(store, compile_query(QUERY), 10, now=NOW, limit=100)
    found = evidence_from(
        store, compile_query(QUERY), 10, now=NOW, limit=100, filters={"build_name": "grenade"}
    )
    grenade = [h for h in everything.events if h.build_name == "grenade"]
    assert 0 < found.stats.hits == len(grenade) < everything.stats.hits
    assert {h.build_name for h in found.events} == {"grenade"}
    assert found.stats.fields["build_name"] == [("grenade", 1.0)]
    none = evidence_from(store, compile_query(QUERY), 10, now=NOW, filters={"build_name": "gren"})
    assert none.stats.hits == 0 and none.events == []


@pytest.mark.parametrize(
    ("log_url", "filename", "line", "url"),
    [
        ("https://l.org/b/", "logs/x.txt", 7, "https://l.org/b/logs/x.txt#7"),
        ("https://l.org/b/logs/x.txt", "logs/x.txt", 7, "https://l.org/b/logs/x.txt#7"),
        ("https://l.org/b", "x.txt", None, "https://l.org/b/x.txt"),
        ("https://l.org/b/", None, None, "https://l.org/b/"),
        (None, "x.txt", 3, None),
    ],
)
def test_a_line_is_linked_as_well_as_the_source_allows(
    log_url: str | None, filename: str | None, line: int | None, url: str | None
) -> None:
    assert line_url(log_url, filename, line) == url
