"""The embedded store: the Store contract, plus what only a local directory can show.

Crash safety is tested by killing real processes (SIGKILL, no cleanup runs) at every
step of an ingest and at random points, then reopening the store; concurrency by
reading while another thread or process writes. No test depends on timing: a kill
point or a race may fall anywhere, and every outcome is checked to be allowed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tantivy
from store_contract import NOW, StoreContract, ingest_sample, make_signature, sample_events

import recheck.store
from recheck.logs.build import Build
from recheck.models import Event, Match
from recheck.query import compile_query
from recheck.store import EmbeddedStore, Retention, Store, StoreError, open_store
from recheck.store.embedded.index import _regex_literal, candidate_query
from recheck.store.embedded.store import GARBAGE_GRACE, _process_lock, catalog
from recheck.store.stats import hourly_builds, summarize

ROOT = Path(__file__).resolve().parents[2]
KEEP_ALL = 100_000
"""Retention days that keep every test build (they are dated around ``NOW``)."""


def _after_grace() -> datetime:
    """A moment when everything the store marked as garbage until now may be deleted."""
    return datetime.now(UTC) + GARBAGE_GRACE + timedelta(minutes=1)


class TestEmbeddedStoreContract(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        with open_store(tmp_path / "store") as store:
            yield store


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


# ------------------------------------------------------------------ public surface


def test_public_api_is_pinned() -> None:
    assert sorted(recheck.store.__all__) == sorted(
        [
            "DEFAULT_BUILD_DAYS",
            "DEFAULT_EVENT_DAYS",
            "HOME_VARIABLE",
            "EmbeddedStore",
            "GcCounts",
            "ReclassifyCounts",
            "Retention",
            "Store",
            "StoreError",
            "StoredBuild",
            "StoredClassification",
            "StoredMatch",
            "default_store_path",
            "generated_uuid",
            "open_store",
            "signature_hash",
        ]
    )


def test_the_embedded_store_is_a_store(store_dir: Path) -> None:
    with open_store(store_dir) as store:
        assert isinstance(store, Store)
        assert isinstance(store, EmbeddedStore)


def test_open_store_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECHECK_HOME", raising=False)
    with open_store() as store:
        assert Path(store.path) == Path(".recheck")
    assert (tmp_path / ".recheck" / "catalog.sqlite").is_file()
    monkeypatch.setenv("RECHECK_HOME", str(tmp_path / "home"))
    with open_store() as store:
        assert Path(store.path) == tmp_path / "home"
    with open_store(tmp_path / "explicit") as store:
        assert Path(store.path) == tmp_path / "explicit"


# ------------------------------------------------------------------ errors


def test_a_path_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as caught:
        open_store(blocker / "store")
    assert str(blocker / "store") in str(caught.value)
    assert "RECHECK_HOME" in str(caught.value)
    with pytest.raises(StoreError, match="not a directory"):
        open_store(blocker)


def test_a_corrupt_catalog_is_a_store_error(store_dir: Path) -> None:
    store_dir.mkdir()
    (store_dir / "catalog.sqlite").write_bytes(b"this is not sqlite" * 1000)
    with pytest.raises(StoreError) as caught:
        open_store(store_dir)
    message = str(caught.value)
    assert str(store_dir / "catalog.sqlite") in message
    assert "move it away" in message


def test_a_catalog_from_a_newer_recheck_is_a_store_error(store_dir: Path) -> None:
    open_store(store_dir).close()
    with sqlite3.connect(store_dir / "catalog.sqlite") as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match=r"newer recheck.*upgrade recheck"):
        open_store(store_dir)


def test_an_index_from_a_newer_recheck_is_a_store_error(store_dir: Path) -> None:
    open_store(store_dir).close()
    with sqlite3.connect(store_dir / "catalog.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'index_version'")
    with pytest.raises(StoreError) as caught:
        open_store(store_dir)
    assert str(store_dir / "index") in str(caught.value)
    assert "newer recheck" in str(caught.value)


def test_a_damaged_index_is_a_store_error(store_dir: Path) -> None:
    open_store(store_dir).close()
    (store_dir / "index" / "meta.json").write_text("{ not json")
    with pytest.raises(StoreError, match="index"):
        open_store(store_dir)


def test_a_busy_store_is_a_store_error_after_the_timeout(store_dir: Path) -> None:
    store = EmbeddedStore(store_dir, lock_timeout=0.2)
    with _process_lock(store_dir / "writer.lock", 1), pytest.raises(StoreError, match="busy"):
        store.ingest(Build(build_uuid="x"), [("a:1", {"message": "m"})], [], when=NOW)
    store.ingest(Build(build_uuid="x"), [("a:1", {"message": "m"})], [], when=NOW)
    assert store.has_build("x")
    store.close()


# ------------------------------------------------------------------ atomicity

_EVENTS = 3000
_CHILD = """
import os, signal, sys
from datetime import datetime
from pathlib import Path
from recheck.logs.build import Build
from recheck.models import Match
from recheck.store.embedded.store import EmbeddedStore

path, version, mode, arg, count, when = sys.argv[1:7]
count = int(count)
store = EmbeddedStore(Path(path))

def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)

if mode == "step":
    store._on_step = lambda name: die() if name == arg else None

if mode == "durable":
    # Die right after the arg-th durable write (a catalog transaction or an index
    # commit), whatever order the store does them in.
    from contextlib import contextmanager
    from recheck.store.embedded import catalog
    from recheck.store.embedded import index
    done = [0]

    def durable():
        done[0] += 1
        if done[0] == int(arg):
            die()

    real_transaction = catalog.transaction

    @contextmanager
    def transaction(conn):
        with real_transaction(conn) as c:
            yield c
        durable()

    catalog.transaction = transaction

    class Writer:
        def __init__(self, writer):
            self._writer = writer
        def __getattr__(self, name):
            return getattr(self._writer, name)
        def commit(self):
            self._writer.commit()
            durable()

    real_writer = index.EventIndex.writer

    @contextmanager
    def writer(self):
        with real_writer(self) as w:
            yield Writer(w)

    index.EventIndex.writer = writer

def events():
    for i in range(count):
        if mode == "event" and i == int(arg):
            die()
        if i == 0:
            print("ready", flush=True)
        yield f"f.txt:{i}", {"message": f"{version} line {i}", "tags": ["t"]}

matches = [Match("77", "f.txt", i, version) for i in range(0, count, 10)]
store.ingest(Build(build_uuid="atomic", build_status="FAILURE"), events(), matches,
             when=datetime.fromisoformat(when))
print("done", flush=True)
"""


def _child(store_dir: Path, version: str, mode: str, arg: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(store_dir), version, mode, arg, str(_EVENTS),
         NOW.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip


def _ingest_version(store: EmbeddedStore, version: str) -> None:
    events = [(f"f.txt:{i}", {"message": f"{version} line {i}", "tags": ["t"]})
              for i in range(_EVENTS)]  # fmt: skip
    matches = [Match("77", "f.txt", i, version) for i in range(0, _EVENTS, 10)]
    store.ingest(Build(build_uuid="atomic", build_status="FAILURE"), events, matches, when=NOW)


def _visible_version(store: EmbeddedStore) -> str | None:
    """The one version of build "atomic" readers see, checking it is whole; None if absent."""
    hits = list(store.search(compile_query("*:*"), days=1, now=NOW))
    matches = store.matches_for("77", days=1, now=NOW)
    if not store.has_build("atomic"):
        assert hits == [] and matches == [] and store.builds() == []
        return None
    versions = Counter(str(event["message"]).split()[0] for _, event in hits)
    assert len(versions) == 1, f"a mix of versions is visible: {versions}"
    [(version, count)] = versions.items()
    assert count == _EVENTS
    assert [b.events for b in store.builds()] == [_EVENTS]
    assert len(matches) == len(range(0, _EVENTS, 10))
    assert {m.message for m in matches} == {version}
    return version


def _check_still_usable(store_dir: Path) -> None:
    """The store takes new writes, and retention clears everything the crash left."""
    with EmbeddedStore(store_dir) as store:
        _ingest_version(store, "after")
        assert _visible_version(store) == "after"
        store.gc(now=_after_grace(), event_days=KEEP_ALL, build_days=KEEP_ALL)
        assert store.indexed_documents() == _EVENTS, "orphaned events were deleted"


KILL_STEPS = [
    ("event", "0", False),
    ("event", str(_EVENTS // 2), False),
    ("event", str(_EVENTS - 1), False),
    ("step", "events-added", False),
    ("step", "index-committed", False),
    ("step", "catalog-committed", True),
    ("step", "garbage-collected", True),
]


@pytest.mark.parametrize("reingest", [False, True], ids=["first-ingest", "re-ingest"])
@pytest.mark.parametrize(("mode", "arg", "committed"), KILL_STEPS)
def test_a_killed_ingest_leaves_the_old_build_or_the_new_one_whole(
    store_dir: Path, reingest: bool, mode: str, arg: str, committed: bool
) -> None:
    if reingest:
        with EmbeddedStore(store_dir) as store:
            _ingest_version(store, "old")
    child = _child(store_dir, "new", mode, arg)
    child.communicate()
    assert child.returncode == -signal.SIGKILL
    with EmbeddedStore(store_dir) as store:
        expected = "new" if committed else ("old" if reingest else None)
        assert _visible_version(store) == expected
    _check_still_usable(store_dir)


@pytest.mark.parametrize("reingest", [False, True], ids=["first-ingest", "re-ingest"])
@pytest.mark.parametrize("durable_writes", range(1, 6))
def test_a_kill_after_any_durable_write_leaves_a_whole_build(
    store_dir: Path, reingest: bool, durable_writes: int
) -> None:
    if reingest:
        with EmbeddedStore(store_dir) as store:
            _ingest_version(store, "old")
    child = _child(store_dir, "new", "durable", str(durable_writes))
    output, _ = child.communicate()
    with EmbeddedStore(store_dir) as store:
        version = _visible_version(store)
    if child.returncode == 0:
        assert output.endswith("done\n") and version == "new"
    else:
        assert child.returncode == -signal.SIGKILL
        assert version in ({"old", "new"} if reingest else {None, "new"})
    _check_still_usable(store_dir)


@pytest.mark.parametrize("seed", range(4))
def test_a_build_killed_at_a_random_moment_is_whole_or_absent(store_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    if seed % 2:
        with EmbeddedStore(store_dir) as store:
            _ingest_version(store, "old")
    with _child(store_dir, "new", "run", "") as child:  # closes its pipe, reaps it
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0, 0.5))
        finally:
            child.kill()  # SIGKILL; also when it failed to get ready, so none is left running
    with EmbeddedStore(store_dir) as store:
        assert _visible_version(store) in ({"old", "new"} if seed % 2 else {None, "new"})
    _check_still_usable(store_dir)


def test_an_exception_while_reading_events_stores_nothing(store_dir: Path) -> None:
    def events() -> Iterator[tuple[str, Event]]:
        yield "a:1", {"message": "one"}
        raise KeyboardInterrupt

    with EmbeddedStore(store_dir) as store:
        with pytest.raises(KeyboardInterrupt):
            store.ingest(Build(build_uuid="ctrl-c"), events(), [], when=NOW)
        assert not store.has_build("ctrl-c")
        assert list(store.search(compile_query("one"), now=NOW)) == []
        store.gc(now=_after_grace(), event_days=KEEP_ALL, build_days=KEEP_ALL)
        assert store.indexed_documents() == 0


# ------------------------------------------------------------------ concurrency

_BUILD_EVENTS = 150
_WRITER = """
import sys
from datetime import datetime
from pathlib import Path
from recheck.logs.build import Build
from recheck.store.embedded.store import EmbeddedStore

path, rounds, size, when = sys.argv[1:5]
store = EmbeddedStore(Path(path))
moment = datetime.fromisoformat(when)
for k in range(int(rounds)):
    for uuid in ("hot", f"new-{k}"):
        events = [(f"f:{i}", {"message": f"marker v{k} {i}"}) for i in range(int(size))]
        store.ingest(Build(build_uuid=uuid), events, [], when=moment)
print("done", flush=True)
"""


def _check_whole_builds(store: EmbeddedStore) -> int:
    """One read: every build visible is whole and of one version; returns builds seen.

    Once build "hot" exists it never disappears, even while it is being replaced.
    """
    hot_exists = store.has_build("hot")
    hits = list(store.search(compile_query("message:marker"), days=1, now=NOW))
    per_build: dict[str, Counter[str]] = {}
    for _, event in hits:
        version = str(event["message"]).split()[1]
        per_build.setdefault(str(event["build_uuid"]), Counter())[version] += 1
    for uuid, versions in per_build.items():
        assert len(versions) == 1, f"{uuid}: versions mixed: {versions}"
        assert sum(versions.values()) == _BUILD_EVENTS, f"{uuid}: partial build {versions}"
    assert "hot" in per_build or not hot_exists, "a build vanished while being replaced"
    assert len(store.builds()) >= len(per_build)
    return len(per_build)


def test_readers_see_whole_builds_while_another_process_writes(store_dir: Path) -> None:
    reader = EmbeddedStore(store_dir)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # `with` closes the pipe the writer's "done" comes through (unclosed, a ResourceWarning).
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(store_dir), "12", str(_BUILD_EVENTS),
         NOW.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as writer:  # fmt: skip
        reads = 0
        while writer.poll() is None:
            _check_whole_builds(reader)
            reads += 1
        output, _ = writer.communicate()
    assert writer.returncode == 0
    assert output == "done\n"
    assert reads > 0
    assert _check_whole_builds(reader) == 13
    reader.close()


def test_readers_see_whole_builds_while_another_thread_writes(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Widen the gap between a reader's catalog read and its index snapshot, where a
    # writer may replace a build: the reader must still find the generation it chose.
    read_catalog = catalog.visible_generations

    def slow_visible_generations(*args: Any, **kwargs: Any) -> dict[int, int]:
        found = read_catalog(*args, **kwargs)
        time.sleep(random.uniform(0, 0.02))
        return found

    monkeypatch.setattr(catalog, "visible_generations", slow_visible_generations)
    store = EmbeddedStore(store_dir)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for k in range(10):
                for uuid in ("hot", f"new-{k}"):
                    events: list[tuple[str, Event]] = [
                        (f"f:{i}", {"message": f"marker v{k} {i}"}) for i in range(_BUILD_EVENTS)
                    ]
                    store.ingest(Build(build_uuid=uuid), events, [], when=NOW)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    reads = 0
    while thread.is_alive():
        _check_whole_builds(store)
        reads += 1
    thread.join()
    assert not failures
    assert reads > 0
    assert _check_whole_builds(store) == 11
    store.close()


# ------------------------------------------------------------------ index housekeeping


def test_replaced_events_are_deleted_after_the_grace_period(store_dir: Path) -> None:
    with EmbeddedStore(store_dir) as store:
        ingest_sample(store)
        ingest_sample(store)  # every build replaced once
        visible = sum(b.events for b in store.builds())
        assert store.indexed_documents() == 2 * visible, "old copies wait for the grace period"
        store.gc(event_days=KEEP_ALL, build_days=KEEP_ALL)  # now: still within the grace
        assert store.indexed_documents() == 2 * visible
        store.gc(now=_after_grace(), event_days=KEEP_ALL, build_days=KEEP_ALL)
        assert store.indexed_documents() == visible


def test_auto_gc_runs_retention_after_an_ingest(store_dir: Path) -> None:
    retention = Retention(event_days=1, build_days=2)
    with EmbeddedStore(store_dir, retention=retention, auto_gc=True) as store:
        events: list[tuple[str, Event]] = [("a:1", {"message": "m"})]
        store.ingest(Build(build_uuid="old"), events, [], when=NOW - timedelta(days=3000))
        assert not store.has_build("old"), "retention ran after the ingest"
        store.ingest(Build(build_uuid="new"), events, [], when=NOW + timedelta(days=3000))
        assert store.has_build("new")


def test_the_index_narrows_candidates() -> None:
    # Phrases and terms become index queries; only shapes the index cannot express scan,
    # and fields one value of which a whole file or build shares (not indexed).
    for text in ['message:"delete failed"', "loglevel:ERROR", "message:*ortNotF*",
                 'message:"x" AND tags:console', "message:(a OR b)"]:  # fmt: skip
        assert candidate_query(compile_query(text).root) is not None, text
    for text in ["message:travceback~1", "NOT tags:console", "*:*", "other:x",
                 "message:a OR message:b~1", "tags:console", "filename:x",
                 "build_status:FAILURE AND NOT message:x"]:  # fmt: skip
        assert candidate_query(compile_query(text).root) is None, text


def test_a_version_1_index_is_read_and_marked_version_3_by_an_ingest(store_dir: Path) -> None:
    # Version 1 indexed tags, filename and build fields; version 2 does not, and asks
    # the engine about them: the events of both are found alike.
    with open_store(store_dir) as store:
        sig = make_signature("1", 'tags:"console" AND build_status:FAILURE')
        event: Event = {"message": "one", "tags": ["console"], "build_status": "FAILURE"}
        store.ingest(Build(build_uuid="b1", build_status="FAILURE"), [("f:1", event)], [], when=NOW)
    with sqlite3.connect(store_dir / "catalog.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'index_version'")
    with open_store(store_dir) as store:
        assert [i for i, _ in store.search(sig, now=NOW)] == ["f:1"]
        event: Event = {"message": "two", "tags": ["console"], "build_status": "FAILURE"}
        store.ingest(Build(build_uuid="b2", build_status="FAILURE"), [("f:2", event)], [], when=NOW)
        assert [i for i, _ in store.search(sig, now=NOW)] == ["f:1", "f:2"]
    with sqlite3.connect(store_dir / "catalog.sqlite") as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'index_version'").fetchone()
    assert row == ("3",), "an older recheck, which would miss the new events, refuses it"


@pytest.mark.parametrize("literal", ["ortnotf", "vol.txt", "a+b", "x*y?", "[z]", "\\d", "é.ü"])
def test_regex_literals_match_themselves(literal: str) -> None:
    schema_builder = tantivy.SchemaBuilder()
    schema_builder.add_text_field("f", tokenizer_name="raw")
    schema = schema_builder.build()
    index = tantivy.Index(schema)
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    for text in (f"pre{literal}post", literal.replace(literal[0], "Q")):
        document = tantivy.Document()
        document.add_text("f", text)
        writer.add_document(document)
    writer.commit()
    index.reload()
    query = tantivy.Query.regex_query(schema, "f", f".*{_regex_literal(literal)}.*")
    assert index.searcher().search(query, limit=10).hits and (
        len(index.searcher().search(query, limit=10).hits) == 1
    )


def test_sample_builds_stay_within_page_splits(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a tiny page, results are fetched in many pieces and still complete and ordered.
    import recheck.store.embedded.index as index_module

    monkeypatch.setattr(index_module, "PAGE", 7)
    with EmbeddedStore(store_dir) as store:
        sample = ingest_sample(store)
        since = NOW - timedelta(days=30)
        hits = list(store.search(compile_query("tags:console"), days=30, now=NOW))
        assert sorted((str(e["build_uuid"]), i) for i, e in hits) == sample.expected(
            "tags:console", since
        )
        assert len(sample_events()) == 300


# ------------------------------------------------------------------ query summary

SUMMARY_EVENTS: list[Event] = [
    {"message": "boom", "build_uuid": "u1", "build_status": "FAILURE",
     "build_name": "check-grenade-dsvm", "tags": ["console", "console.html"],
     "log_url": "https://l/1", "@timestamp": "t"},
    {"message": "boom", "build_uuid": "u1", "build_status": "FAILURE",
     "build_name": "check-grenade-dsvm", "tags": ["console", "console.html"],
     "log_url": "https://l/1"},
    {"message": "boom", "build_uuid": "u2", "build_status": "SUCCESS",
     "build_name": "tempest-full", "tags": ["screen"], "log_url": "https://l/2"},
    {"message": "boom", "build_uuid": "u3", "build_status": "FAILURE",
     "build_name": "a-job", "log_url": "https://l/3"},
]  # fmt: skip


def test_summary_json_shape() -> None:
    stats = summarize(SUMMARY_EVENTS, quantity=2)
    assert stats.to_json() == {
        "hits": 4,
        "builds": {"FAILURE": 2, "SUCCESS": 1},
        "fields": {
            "build_name": [["check-grenade-dsvm", 0.5], ["a-job", 0.25]],
            "build_status": [["FAILURE", 0.75], ["SUCCESS", 0.25]],
            # Each tag counts (once per hit), among the 3 hits that have tags.
            "tags": [["console", 0.6667], ["console.html", 0.6667]],
        },
    }
    assert json.loads(json.dumps(stats.to_json())) == stats.to_json()


def test_summary_verbose_keeps_noisy_fields_but_never_message() -> None:
    stats = summarize(SUMMARY_EVENTS, quantity=5, verbose=True)
    assert set(stats.fields) == {"build_name", "build_status", "build_uuid", "log_url", "tags"}
    assert stats.fields["build_uuid"][0] == ("u1", 0.5)


def test_summary_text_reads_like_elastic_recheck_query() -> None:
    lines = summarize(SUMMARY_EVENTS, quantity=1).lines()
    assert lines == [
        "total hits: 4",
        "builds: FAILURE 2, SUCCESS 1",
        "build_name",
        "  50% check-grenade-dsvm",
        "build_status",
        "  75% FAILURE",
        "tags",
        "  66% console",
    ]
    assert summarize([]).lines() == ["total hits: 0", "builds: none"]


def test_summary_counts_builds_without_status_or_uuid() -> None:
    stats = summarize([{"message": "x", "log_url": "a"}, {"message": "y", "log_url": "b"}])
    assert stats.builds == {"UNKNOWN": 2}


def test_hourly_builds_counts_each_build_once_per_hour(store_dir: Path) -> None:
    with EmbeddedStore(store_dir) as store:
        events: list[tuple[str, Event]] = [("f:1", {"message": "m"}), ("f:2", {"message": "m"})]
        both = [Match("5", "f", 1, "m"), Match("5", "f", 2, "m")]
        hour = NOW.replace(minute=0)
        for uuid, status, minute in (
            ("a", "FAILURE", 5),
            ("b", "FAILURE", 50),
            ("c", "SUCCESS", 7),
        ):
            build = Build(build_uuid=uuid, build_status=status)
            store.ingest(build, events, both, when=hour + timedelta(minutes=minute))
        store.ingest(Build(build_uuid="d", build_status="FAILURE"), events, both[:1],
                     when=hour + timedelta(hours=1))  # fmt: skip
        assert hourly_builds(store.matches_for("5", days=1, now=NOW + timedelta(hours=2))) == {
            hour: {"FAILURE": 2, "SUCCESS": 1},
            hour + timedelta(hours=1): {"FAILURE": 1},
        }


def test_reclassify_leaves_a_build_reingested_meanwhile_alone(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmbeddedStore(store_dir) as store:
        build = Build(build_uuid="race", build_status="FAILURE")
        store.ingest(build, [("f:1", {"message": "old boom"})], [], when=NOW)
        read_builds = catalog.builds_with_events

        def reingest_after_reading(*args: Any, **kwargs: Any) -> Any:
            found = read_builds(*args, **kwargs)
            newer = [Match("7", "f", 2, "the ingest's own verdict")]
            store.ingest(build, [("f:2", {"message": "new"})], newer, when=NOW)
            return found

        monkeypatch.setattr(catalog, "builds_with_events", reingest_after_reading)
        counts = store.reclassify([make_signature("7", "message:boom")])
        assert counts.matches == 0, "the stale build's verdict was not written"
        assert [m.message for m in store.matches_for("7", now=NOW)] == ["the ingest's own verdict"]


def test_events_come_back_with_their_build_fields_stored_once(store_dir: Path) -> None:
    build = Build(build_uuid="b" * 32, build_name="tempest-full", build_status="FAILURE",
                  project="openstack/nova", log_url="https://logs.example.org/b/")  # fmt: skip
    shared = build.event_fields()
    events: list[tuple[str, Event]] = [
        # The usual event: every build field, as the build has it: stored once.
        ("job-output.txt:1", {"message": "Timed out waiting", "tags": ["console"], **shared}),
        # Fields that differ from the build's, or are missing, are kept as they are.
        ("job-output.txt:2", {"message": "Timed out waiting", **shared, "project": "other"}),
        ("job-output.txt:3", {"message": "Timed out waiting", "build_name": "tempest-full"}),
    ]
    with open_store(store_dir) as store:
        store.ingest(build, events, [], when=NOW)
        found = dict(store.search(compile_query('message:"timed out"'), days=KEEP_ALL, now=NOW))
    assert found == {
        "job-output.txt:1": events[0][1],
        "job-output.txt:2": events[1][1],
        "job-output.txt:3": {**events[2][1], "build_uuid": "b" * 32},
    }
    # Stored once: the first event's document holds none of the build's fields.
    index = tantivy.Index.open(str(store_dir / "index"))
    searcher = index.searcher()
    stored = [
        json.loads(searcher.doc(address).get_first("_event"))
        for _, address in searcher.search(tantivy.Query.all_query(), limit=10).hits
    ]
    by_id = {item[1]: item for item in stored}
    assert by_id["job-output.txt:1"][2] == {"message": "Timed out waiting", "tags": ["console"]}
    assert len(by_id["job-output.txt:2"]) == 3  # kept whole: its project differs


def test_a_catalog_damaged_after_opening_is_a_store_error_on_reading(store_dir: Path) -> None:
    with open_store(store_dir) as store:
        store.ingest(Build(build_uuid="u"), [("f:1", {"message": "m"})], [], when=NOW)
        with sqlite3.connect(store_dir / "catalog.sqlite") as other:
            other.execute("ALTER TABLE builds RENAME TO lost")
        for read in (
            lambda: store.builds(),
            lambda: store.has_build("u"),
            lambda: store.newest_event_time(),
            lambda: list(store.search(compile_query("message:m"), now=NOW)),
        ):
            with pytest.raises(
                StoreError, match=r"catalog.sqlite: cannot read the catalog \(no such table"
            ):
                read()
