"""The event index's words (index version 3, ``recheck.store.embedded.documents``).

The index keeps a field's words (runs of letters and digits of its tokens) and finds a
token as the phrase of its words. A search is only right if, for every event and query,
the index's candidates include every event the engine matches: these tests check the
words against the analyzer's tokens, and the store's answers against the engine's over
every event, for tokens that hold separators, long runs and other scripts, in stores
written with words, with tokens (versions 1 and 2), and with both.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_contract import NOW, make_signature

from recheck.logs.build import Build
from recheck.models import Event
from recheck.query import Doc, analysis, compile_query
from recheck.store import EmbeddedStore
from recheck.store.embedded import documents
from recheck.store.embedded.documents import index_words, token_words

FRAGMENTS = [
    "ERROR", "nova", "Compute", "nova.compute.manager", "10.0.0.1", "1,000", "don't",
    "foo_bar", "__init__", "a1.b2", "x:y", "1.a", "req-3f2a", "vol.txt", "v1;2", "_x_",
    "a" * 300, "ab.cd" * 70, "9" * 260, "café", "naïve.txt", "日本語", "Straße", "ǅemal",
    "x'y", "'quoted'", "end.", ".start", "a__b", "1'2", "Ab:Cd:ef",
]  # fmt: skip
SEPARATORS = [" ", "  ", "-", "/", "[", "] ", "=", '"', "(", ")", ", ", "\t"]
LEVELS = ["ERROR", "WARNING", "INFO"]

# Text rich in what words and tokens treat differently: separators, long runs, scripts.
texts = st.lists(
    st.sampled_from([*"aZ09_:.',;- /\té日ß\u0301\u200b", "ab.cd", "a" * 130]), max_size=40
).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(texts, st.text(max_size=120)))
def test_a_values_words_are_its_tokens_words_in_order(text: str) -> None:
    words = index_words(text).split()
    assert words == [word for token in analysis.tokenize(text) for word in token_words(token)]


def test_words_split_tokens_at_their_separators_and_keep_other_scripts_whole() -> None:
    assert index_words("ERROR nova.compute [req-1] 10.0.0.1 Foo_Bar").split() == [
        "error", "nova", "compute", "req", "1", "10", "0", "0", "1", "foo", "bar",
    ]  # fmt: skip
    assert token_words("naïve.txt") == ["naïve.txt"]
    assert index_words("a" * 300).split() == ["a" * 255, "a" * 45], "cut as the analyzer cuts"


def _events(seed: int, count: int) -> list[tuple[str, Event]]:
    rng = random.Random(seed)
    events: list[tuple[str, Event]] = []
    for line in range(1, count + 1):
        parts = rng.choices(FRAGMENTS, k=rng.randint(1, 8))
        message = "".join(part + rng.choice(SEPARATORS) for part in parts)
        module = rng.choice(["nova.compute.manager", "neutron.agent", "oslo_service"])
        events.append((f"f:{line}", {"message": message, "loglevel": rng.choice(LEVELS),
                                     "module": module}))  # fmt: skip
    return events


def _escaped(text: str) -> str:
    """``text`` as one query_string term (its special characters escaped)."""
    special = set('+-&|!(){}[]^"~*?:\\/ ')
    return "".join(f"\\{ch}" if ch in special else ch for ch in text)


def _queries(events: list[tuple[str, Event]], seed: int, count: int) -> list[str]:
    """Terms, phrases, sloppy phrases, prefixes and wildcards drawn from the events'
    own tokens, so that most of them match something."""
    rng = random.Random(seed)
    queries: list[str] = ["module:nova.compute.manager", 'module:"oslo_service"']
    while len(queries) < count:
        _, event = rng.choice(events)
        tokens = analysis.tokenize(str(event["message"]))
        if not tokens:
            continue
        at = rng.randrange(len(tokens))
        token = tokens[at]
        start = rng.randrange(len(token))
        piece = token[start : start + rng.randint(1, 6)]
        following = tokens[at + 1 : at + 3]
        queries += [
            f'message:"{token}"',
            f'message:"{" ".join([token, *following])}"',
            f'message:"{" ".join([token, *following[1:]])}"~2',
            f"message:{_escaped(token[: rng.randint(1, len(token))])}*",
            f"message:*{_escaped(piece)}*",
        ]
    return queries


def _check_search(store: EmbeddedStore, events: list[tuple[str, Event]], queries: list[str]) -> int:
    """Every query's events found by the store are exactly those the engine matches;
    returns how many queries matched something."""
    matched = 0
    docs = [(event_id, Doc(event)) for event_id, event in events]  # tokenized once
    for number, text in enumerate(queries):
        compiled = compile_query(text)
        expected = [event_id for event_id, doc in docs if compiled.matches(doc)]
        found = [event_id for event_id, _ in store.search(make_signature(str(number), text),
                                                          now=NOW)]  # fmt: skip
        assert sorted(found) == sorted(expected), text
        matched += bool(expected)
    return matched


def test_a_store_finds_what_the_engine_matches(tmp_path: Path) -> None:
    events = _events(seed=1, count=300)
    with EmbeddedStore(tmp_path / "store") as store:
        store.ingest(Build(build_uuid="b1"), events, [], when=NOW)
        queries = _queries(events, seed=2, count=400)
        assert _check_search(store, events, queries) > len(queries) // 2


def _tokens_text(text: str) -> str:
    return " ".join(analysis.tokenize(text))


def _as_version_2(store_dir: Path) -> None:
    """Mark the store as one an older recheck wrote (before words)."""
    with sqlite3.connect(store_dir / "catalog.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'index_version'")
        conn.execute("DELETE FROM meta WHERE key = 'words_since'")


def test_a_store_with_documents_of_tokens_finds_them_and_new_words_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / "store"
    old, new = _events(seed=3, count=150), _events(seed=4, count=150)
    new = [(f"g:{event_id.partition(':')[2]}", event) for event_id, event in new]
    with monkeypatch.context() as patch:  # documents as index versions 1 and 2 made them
        patch.setattr(documents, "index_words", _tokens_text)
        patch.setattr(documents, "_json_words", lambda text: json.dumps(_tokens_text(text)))
        with EmbeddedStore(store_dir) as store:
            store.ingest(Build(build_uuid="old"), old, [], when=NOW)
    _as_version_2(store_dir)
    queries = _queries(old + new, seed=5, count=300)
    with EmbeddedStore(store_dir) as store:
        _check_search(store, old, queries)
        store.ingest(Build(build_uuid="new"), new, [], when=NOW)
        _check_search(store, old + new, queries)
    with sqlite3.connect(store_dir / "catalog.sqlite") as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert meta["index_version"] == "3"
    assert int(meta["words_since"]) > 0, "the first generation with words is recorded"

    # Without looking for tokens too, an address in an old document is not found.
    monkeypatch.setattr(EmbeddedStore, "_legacy", lambda self, generations: False)
    with EmbeddedStore(store_dir) as store:
        found = [i for i, _ in store.search(make_signature("x", 'message:"10.0.0.1"'), now=NOW)]
    assert found and all(event_id.startswith("g:") for event_id in found)
    assert any("10.0.0.1" in str(event["message"]) for _, event in old)
