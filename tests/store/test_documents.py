"""The event index's documents made where events are split (recheck.store.embedded.documents).

An ingest through ``ingest_documents`` (documents made in forked workers, a block at a
time, added as JSON) must store exactly what ``ingest`` (one event at a time) stores:
the same events back, found by the same searches.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recheck.logs.build import Build
from recheck.logs.buildlogs import EventBlock, build_event_blocks, build_events
from recheck.logs.localdir import DirSource
from recheck.pipeline import ingest_build
from recheck.query import analysis, compile_query
from recheck.query.signatures import load_signatures
from recheck.store import anomalies, open_store
from recheck.store.anomalies import ingest_recorder
from recheck.store.anomalybook import AnomalyBook
from recheck.store.embedded.documents import DocumentMaker
from recheck.store.embedded.index import _ANALYZER

ROOT = Path(__file__).resolve().parents[2]
BUILDS = ROOT / "tests" / "fixtures" / "builds"
ASCII_WHITESPACE = " \t\n\r\x0c"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_tokens_never_hold_whitespace_so_the_index_splits_them_back_exactly(text: str) -> None:
    tokens = analysis.tokenize(text)
    assert not any(char in token for token in tokens for char in ASCII_WHITESPACE)
    assert _ANALYZER.analyze(" ".join(tokens)) == tokens


@pytest.mark.parametrize("name", sorted(path.name for path in BUILDS.iterdir()))
def test_a_blocks_documents_are_those_of_its_events_one_by_one(name: str) -> None:
    build = Build(build_uuid="u" * 32, build_name="job", project="p")
    maker = DocumentMaker("u" * 32, build.event_fields())
    one_by_one = DocumentMaker("u" * 32, build.event_fields())

    def both(block: EventBlock) -> tuple[list[str], list[str]]:
        documents = maker.block(block)
        ranked = [
            one_by_one.document((block.number << 32) + position, event_id, event)
            for position, (event_id, event) in enumerate(block.events(), start=1)
        ]
        return documents, ranked

    blocks = list(build_event_blocks(DirSource(BUILDS / name), build, both))
    assert sum(len(documents) for documents, _ in blocks) > 50
    for documents, ranked in blocks:
        assert documents == ranked
        for document in documents:
            json.loads("{" + document)  # each is a JSON object after its opening brace


def _stored(store_dir: Path, query: str) -> list[tuple[str, dict[str, object]]]:
    with open_store(store_dir) as store:
        return [(event_id, dict(event)) for event_id, event in store.search(
            compile_query(query), days=100_000
        )]  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
def test_documents_made_in_workers_store_what_events_one_by_one_store(
    tmp_path: Path, workers: int
) -> None:
    source = DirSource(BUILDS / "devstack-zuulv3")
    build = Build(build_uuid="d" * 32, build_name="tempest-full", voting="1")
    signatures, errors = load_signatures(ROOT / "queries")
    assert not errors
    with open_store(tmp_path / "old") as store:
        store.ingest(build, build_events(source, build), [])
    with open_store(tmp_path / "new") as store:
        ingested = ingest_build(store, source, build, signatures, workers=workers)
    assert ingested.events > 50
    for query in ('message:"error"', "loglevel:INFO", "module:cinder*", "*", 'tags:"console"'):
        old, new = _stored(tmp_path / "old", query), _stored(tmp_path / "new", query)
        assert old and old == new, query
        # Same keys in the same order, as ingested.
        assert [list(event) for _, event in old] == [list(event) for _, event in new]


def test_an_event_lacking_the_build_uuid_is_stored_with_it() -> None:
    maker = DocumentMaker("x" * 32, {"build_uuid": "x" * 32, "project": "p"})
    document = maker.document(7, "a.txt:1", {"message": "Boom", "project": "p"})
    parsed = json.loads("{" + document)
    assert parsed["message"] == "boom"  # the engine's tokens
    # The stored event (base64 in JSON: a bytes field) leaves out the build's fields.
    stored = json.loads(base64.b64decode(parsed["_event"]))
    assert stored == [7, "a.txt:1", {"message": "Boom"}, 1]
    other = maker.document(8, "a.txt:2", {"message": "x", "project": "q"})
    stored = json.loads(base64.b64decode(json.loads("{" + other)["_event"]))
    assert stored == [8, "a.txt:2", {"message": "x", "project": "q", "build_uuid": "x" * 32}]


def _booked(store_dir: Path, uuid: str) -> list[object]:
    with open_store(store_dir) as store:
        book = AnomalyBook.of(store)
        assert book is not None
        with book:
            return [
                (a.rank, a.key, a.filename, a.line, a.text, a.score, a.query)
                for a in book.anomalies_of(uuid)
            ]


@pytest.mark.parametrize("cap", [None, 7])
@pytest.mark.parametrize("name", sorted(path.name for path in BUILDS.iterdir()))
def test_the_anomaly_book_learns_the_same_where_events_are_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, cap: int | None
) -> None:
    # The book's work per line is done in the workers (block_lines) and added up here
    # (merge): the same top anomalies as learning from each event in this process, also
    # when files have more novel lines than are kept (each worker stops sending them).
    if cap is not None:
        monkeypatch.setattr(anomalies, "MAX_NOVEL_LINES", cap)
    source = DirSource(BUILDS / name)
    build = Build(build_uuid="f" * 32, build_name="job", build_status="FAILURE")
    signatures, _ = load_signatures(ROOT / "queries")
    with open_store(tmp_path / "one") as store:
        recorder = ingest_recorder(store, build, lambda problem: None)
        assert recorder is not None
        try:
            uuid = store.ingest(build, recorder.events(build_events(source, build)), [])
            recorder.finish(uuid, None)
        finally:
            recorder.close()
    with open_store(tmp_path / "two") as store:
        ingested = ingest_build(store, source, build, signatures, workers=2)
    expected = _booked(tmp_path / "one", uuid)
    assert expected and _booked(tmp_path / "two", ingested.uuid) == expected
