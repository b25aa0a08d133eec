"""The behaviour every ``Store`` owes its callers, as a reusable test suite.

A test module subclasses ``StoreContract`` and gives a ``store`` fixture yielding a fresh,
empty store. The data are real (examples/sample-events.jsonl, the elastic-recheck
signatures); expected results come from the query engine, never from the store tested.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recheck.logs.build import Build
from recheck.logs.eventfile import iter_events
from recheck.models import Event, Match
from recheck.query import compile_query
from recheck.query.signatures import Signature, load_signatures
from recheck.store import Store
from recheck.store.base import applicable, classify_events
from recheck.store.stats import summarize

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample-events.jsonl"
REAL_QUERIES = ROOT / "tests" / "fixtures" / "queries" / "elastic-recheck-2020"
DEMO_QUERIES = ROOT / "queries"
NOW = datetime(2024, 5, 20, 12, 0, tzinfo=UTC)

# Query shapes the index must not get wrong: each one's candidates must include every
# event the engine matches. Words come from the sample events.
QUERY_SHAPES = [
    'message:"delete failed"',
    'message:"Traceback (most recent call last)"',
    'message:"could not be found" AND tags:screen',
    '"delete failed"~3',
    'message:"failed delete"~2',
    "message:error",
    "ERROR",
    "loglevel:ERROR",
    "module:neutron.api.v2.resource",
    "message:vol.txt",
    "message:neutron*",
    "message:*found",
    "message:*ortNotF*",
    "message:port?otfound",
    "message:/port[a-z]+/",
    "message:travceback~1",
    "message:[a TO c]",
    "tags:console AND NOT message:error",
    "NOT tags:console",
    "tags:screen AND (NOT message:failed)",
    '_exists_:pid AND message:"delete"',
    "build_status:FAILURE AND message:failed",
    "build_status:SUCCESS AND message:failed",
    "build_name:gate-tempest-devstack-vm-neutron",
    'tags:"console.html"',
    'tags:"console.html console"',
    'filename:"logs/screen-q-svc.txt"',
    'project:"openstack/nova" AND voting:1',
    "message:failed OR message:error OR message:timeout",
    "(message:failed OR build_queue:check) AND tags:oslofmt",
    "unknown_field:foo OR message:traceback",
    "*:*",
    "message:zzzznotthere",
    "message:(delete AND failed) -message:port",
]


@dataclass(frozen=True)
class StoredSample:
    """The builds a contract test ingested, with their events as the store got them."""

    builds: list[tuple[Build, datetime, list[tuple[str, Event]]]]

    def expected(
        self, query_text: str, since: datetime, queue: str | None = None
    ) -> list[tuple[str, str]]:
        """(build_uuid, event id) of the events the engine matches in the window."""
        query = compile_query(query_text)
        found = []
        for build, when, events in self.builds:
            if when < since or (queue is not None and build.build_queue != queue):
                continue
            found.extend(
                (str(build.build_uuid), event_id)
                for event_id, event in events
                if query.matches(event)
            )
        return sorted(found)


def sample_events() -> list[tuple[str, Event]]:
    with SAMPLE.open("rb") as handle:
        return list(iter_events(handle, str(SAMPLE)))


def make_signature(bug: str, query: str, **flags: object) -> Signature:
    return Signature(
        bug=bug,
        query=query,
        path=Path(f"queries/{bug}.yaml"),
        compiled=compile_query(query),
        **flags,  # type: ignore[arg-type]
    )


def signatures() -> list[Signature]:
    real, errors = load_signatures(REAL_QUERIES)
    demo, demo_errors = load_signatures(DEMO_QUERIES)
    assert not errors and not demo_errors
    return real + demo


def with_build(events: Sequence[tuple[str, Event]], build: Build) -> list[tuple[str, Event]]:
    """Events as a build's logs give them: the build's fields on every event."""
    return [(event_id, {**event, **build.event_fields()}) for event_id, event in events]


def classify(
    sigs: Sequence[Signature], build: Build, events: Sequence[tuple[str, Event]]
) -> list[Match]:
    chosen, _ = applicable(sigs, build)
    return list(classify_events(chosen, events))


SAMPLE_BUILDS = [
    (Build(build_uuid="b-fail-gate", build_name="tempest-full", build_status="FAILURE",
           build_queue="gate", voting="1"), timedelta(hours=2)),
    (Build(build_uuid="b-ok-check", build_name="tempest-full", build_status="SUCCESS",
           build_queue="check", voting="1"), timedelta(days=1)),
    (Build(build_uuid="b-fail-check", build_name="grenade", build_status="FAILURE",
           build_queue="check", voting="1"), timedelta(days=3)),
    (Build(build_uuid="b-old", build_name="grenade", build_status="FAILURE",
           build_queue="gate", voting="1"), timedelta(days=20)),
]  # fmt: skip
"""Four builds of the sample's events: statuses, queues, and one outside 10 days."""


def ingest_sample(store: Store, sigs: Sequence[Signature] = ()) -> StoredSample:
    events = sample_events()
    stored = []
    for index, (build, age) in enumerate(SAMPLE_BUILDS):
        # Each build gets a different slice so builds differ, with overlap so most
        # queries hit several builds.
        part = with_build(events[index * 50 : index * 50 + 150], build)
        when = NOW - age
        store.ingest(build, part, classify(sigs, build, part), when=when)
        stored.append((build, when, part))
    return StoredSample(stored)


def found(
    store: Store, query_text: str, days: float = 10, queue: str | None = None
) -> list[tuple[str, str]]:
    hits = store.search(compile_query(query_text), days=days, queue=queue, now=NOW)
    return sorted((str(event["build_uuid"]), event_id) for event_id, event in hits)


class StoreContract:
    """Tests every store must pass; subclasses provide the ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        raise NotImplementedError("a subclass provides a fresh, empty store")

    # -------------------------------------------------------------- ingest

    def test_an_empty_store_has_nothing(self, store: Store) -> None:
        assert not store.has_build("nope")
        assert store.builds() == []
        assert store.newest_event_time() is None
        assert list(store.search(compile_query("*:*"), now=NOW)) == []
        assert store.matches_for("demo-1", now=NOW) == []

    def test_ingest_stores_the_build_its_events_and_matches(self, store: Store) -> None:
        build = Build(build_uuid="u-1", build_name="tempest-full", build_status="FAILURE",
                      build_queue="gate", project="openstack/nova", voting="1",
                      log_url="https://logs.example.org/1/")  # fmt: skip
        events = with_build(sample_events(), build)
        matches = classify(signatures(), build, events)
        assert matches, "the demo signature demo-1 matches the sample"
        when = NOW - timedelta(hours=1)
        assert store.ingest(build, events, matches, when=when) == "u-1"

        assert store.has_build("u-1")
        [stored] = store.builds()
        assert stored.build == build
        assert stored.time == when
        assert stored.events == len(events)
        assert stored.events_kept
        assert stored.bugs == tuple(sorted({m.bug for m in matches}))
        assert store.newest_event_time() == when
        got = list(store.search(compile_query("*:*"), now=NOW))
        assert sorted(got, key=lambda item: item[0]) == sorted(events, key=lambda item: item[0])
        stored_matches = store.matches_for("demo-1", now=NOW)
        expected = sorted((m.filename, m.line, m.message) for m in matches if m.bug == "demo-1")
        assert sorted((m.filename, m.line, m.message) for m in stored_matches) == expected
        assert all(m.build.uuid == "u-1" and m.bug == "demo-1" for m in stored_matches)

    def test_events_come_back_exactly_as_ingested(self, store: Store) -> None:
        build = Build(build_uuid="u-exact")
        events: list[tuple[str, Event]] = [
            ("a.txt:1", {"message": "caf\u00e9 \U0001f600 \ud800 lone", "tags": ["a", "b"],
                         "build_uuid": "u-exact"}),
            ("a.txt:2", {"message": "x" * 5000, "tags": [], "build_uuid": "u-exact"}),
            ("a.txt:3", {"message": "", "loglevel": "ERROR", "build_uuid": "u-exact"}),
        ]  # fmt: skip
        store.ingest(build, events, [], when=NOW)
        got = dict(store.search(compile_query("*:*"), now=NOW))
        assert got == dict(events)

    def test_reingesting_a_build_replaces_its_events_and_matches(self, store: Store) -> None:
        build = Build(build_uuid="u-re", build_status="FAILURE")
        first = [("f:1", {"message": "first version boom", "build_uuid": "u-re"})]
        second = [
            ("f:1", {"message": "second version", "build_uuid": "u-re"}),
            ("f:2", {"message": "second version again", "build_uuid": "u-re"}),
        ]
        store.ingest(build, first, [Match("111", "f", 1, "first version boom")], when=NOW)
        store.ingest(build, first, [Match("111", "f", 1, "first version boom")], when=NOW)
        assert len(store.builds()) == 1
        assert len(list(store.search(compile_query("message:first"), now=NOW))) == 1

        store.ingest(build, second, [Match("222", "f", 2, "second version again")], when=NOW)
        assert len(store.builds()) == 1
        assert list(store.search(compile_query("message:first"), now=NOW)) == []
        assert len(list(store.search(compile_query("message:second"), now=NOW))) == 2
        assert store.matches_for("111", now=NOW) == []
        assert [m.line for m in store.matches_for("222", now=NOW)] == [2]
        assert store.builds()[0].events == 2

    def test_a_build_without_uuid_gets_one(self, store: Store) -> None:
        with_url = Build(build_name="job", log_url="https://logs.example.org/abc/")
        events = [("x:1", {"message": "hello"})]
        first = store.ingest(with_url, events, [], when=NOW)
        again = store.ingest(with_url, events, [], when=NOW)
        assert first == again, "the same log URL names the same build"
        assert store.has_build(first)
        [(_, event)] = list(store.search(compile_query("hello"), now=NOW))
        assert event["build_uuid"] == first
        anonymous = store.ingest(Build(build_name="job"), events, [], when=NOW)
        assert anonymous != first and store.has_build(anonymous)
        assert len(store.builds()) == 2

    # -------------------------------------------------------------- search

    @pytest.mark.parametrize("query_text", QUERY_SHAPES)
    def test_search_equals_the_engine(self, store: Store, query_text: str) -> None:
        sample = ingest_sample(store)
        since = NOW - timedelta(days=10)
        assert found(store, query_text) == sample.expected(query_text, since)

    def test_search_equals_the_engine_for_every_real_signature(self, store: Store) -> None:
        sample = ingest_sample(store)
        since = NOW - timedelta(days=30)
        hits = 0
        for signature in signatures():
            got = sorted(
                (str(event["build_uuid"]), event_id)
                for event_id, event in store.search(signature, days=30, now=NOW)
            )
            assert got == sample.expected(signature.query, since), signature.bug
            hits += len(got)
        assert hits > 0, "some signature should hit the sample"

    def test_search_window_and_queue(self, store: Store) -> None:
        sample = ingest_sample(store)
        for days in (0.5, 2, 10, 30):
            since = NOW - timedelta(days=days)
            assert found(store, "tags:console", days=days) == sample.expected("tags:console", since)
        since = NOW - timedelta(days=10)
        assert found(store, "tags:console", queue="check") == sample.expected(
            "tags:console", since, queue="check"
        )
        assert found(store, "tags:console", queue="nope") == []
        assert {uuid for uuid, _ in found(store, "*:*", days=30)} == {
            str(build.build_uuid) for build, _ in SAMPLE_BUILDS
        }

    def test_a_signature_can_be_searched_directly(self, store: Store) -> None:
        ingest_sample(store)
        signature = make_signature("1", 'message:"delete failed"')
        direct = list(store.search(signature, now=NOW))
        assert direct and direct == list(store.search(signature.compiled, now=NOW))

    def test_summary_of_a_search(self, store: Store) -> None:
        sample = ingest_sample(store)
        query = 'message:"delete failed"'
        stats = summarize(event for _, event in store.search(compile_query(query), now=NOW))
        expected = sample.expected(query, NOW - timedelta(days=10))
        assert stats.hits == len(expected) > 0
        statuses = {b.build_uuid: b.build_status for b, _ in SAMPLE_BUILDS}
        by_status: dict[str, set[str]] = {}
        for uuid, _ in expected:
            by_status.setdefault(str(statuses[uuid]), set()).add(uuid)
        assert stats.builds == {status: len(uuids) for status, uuids in by_status.items()}
        document = json.loads(json.dumps(stats.to_json()))
        assert set(document) == {"hits", "builds", "fields"}
        assert "build_uuid" not in document["fields"] and "message" not in document["fields"]

    # -------------------------------------------------------------- readers for pages

    def test_builds_filters(self, store: Store) -> None:
        sigs = [make_signature("900", 'message:"delete failed"')]
        ingest_sample(store, sigs)
        everything = store.builds()
        assert [b.uuid for b in everything] == [str(b.build_uuid) for b, _ in SAMPLE_BUILDS]
        recent = store.builds(since=NOW - timedelta(days=2))
        assert [b.uuid for b in recent] == ["b-fail-gate", "b-ok-check"]
        older = store.builds(until=NOW - timedelta(days=2))
        assert [b.uuid for b in older] == ["b-fail-check", "b-old"]
        assert [b.uuid for b in store.builds(status="SUCCESS")] == ["b-ok-check"]
        assert [b.uuid for b in store.builds(queue="gate")] == ["b-fail-gate", "b-old"]
        assert len(store.builds(limit=1)) == 1
        matched = {b.uuid for b in everything if b.bugs}
        unmatched = {b.uuid for b in everything if not b.bugs}
        assert matched and unmatched
        assert {b.uuid for b in store.builds(uncategorized=True)} == unmatched
        uncategorized_failures = store.builds(status="FAILURE", uncategorized=True)
        assert all(b.build.build_status == "FAILURE" and not b.bugs for b in uncategorized_failures)

    def test_matches_for_a_bug(self, store: Store) -> None:
        sigs = [make_signature("900", 'message:"delete failed"')]
        sample = ingest_sample(store, sigs)
        expected = sample.expected('message:"delete failed"', NOW - timedelta(days=90))
        matches = store.matches_for("900", days=90, now=NOW)
        assert sorted((m.build.uuid, f"{m.filename}:{m.line}") for m in matches) == expected
        times = [m.build.time for m in matches]
        assert times == sorted(times), "oldest build first"
        recent = store.matches_for("900", days=2, now=NOW)
        assert {m.build.uuid for m in recent} <= {"b-fail-gate", "b-ok-check"}

    def test_matches_between_gives_every_bug_in_the_window(self, store: Store) -> None:
        sigs = [make_signature("900", 'message:"delete failed"'),
                make_signature("901", "message:traceback AND tags:screen")]  # fmt: skip
        sample = ingest_sample(store, sigs)
        since = NOW - timedelta(days=5)
        got = store.matches_between(since)
        expected = sorted(
            (bug, uuid, event_id)
            for bug, query in (("900", sigs[0].query), ("901", sigs[1].query))
            for uuid, event_id in sample.expected(query, since)
        )
        assert expected and {bug for bug, _, _ in expected} == {"900", "901"}
        assert sorted((m.bug, m.build.uuid, f"{m.filename}:{m.line}") for m in got) == expected
        assert [m.build.time for m in got] == sorted(m.build.time for m in got)
        assert {m.build.build.build_status for m in got} >= {"FAILURE"}
        everything = store.matches_between()
        assert {m.build.uuid for m in everything} > {m.build.uuid for m in got}
        assert store.matches_between(NOW - timedelta(days=30), NOW - timedelta(days=5)) == [
            m for m in everything if m.build.time < since
        ]

    def test_a_build_stored_without_events_keeps_its_matches(self, store: Store) -> None:
        # As the bot records a sampled passing build: the scanner's matches, no events.
        build = Build(build_uuid="ok-sampled", build_name="tempest-full", build_status="SUCCESS")
        match = Match("demo-1", "logs/screen-q-svc.txt", 20, "[-] delete failed")
        store.ingest(build, [], [match], when=NOW - timedelta(hours=1))
        (stored,) = [b for b in store.builds() if b.uuid == "ok-sampled"]
        assert (stored.events, stored.bugs) == (0, ("demo-1",))
        got = store.matches_between(NOW - timedelta(days=1))
        assert [(m.bug, m.filename, m.line, m.build.uuid) for m in got] == [
            ("demo-1", "logs/screen-q-svc.txt", 20, "ok-sampled")
        ]

    # -------------------------------------------------------------- retention

    def test_gc_drops_old_events_then_old_builds(self, store: Store) -> None:
        sigs = [make_signature("900", 'message:"delete failed"')]
        ingest_sample(store, sigs)
        before = {b.uuid: b for b in store.builds()}
        counts = store.gc(now=NOW, event_days=10, build_days=90)
        assert counts.builds == 0 and counts.matches == 0
        assert counts.events == before["b-old"].events
        kept = {b.uuid: b.events_kept for b in store.builds()}
        assert kept == {"b-fail-gate": True, "b-ok-check": True, "b-fail-check": True,
                        "b-old": False}  # fmt: skip
        assert "b-old" not in {uuid for uuid, _ in found(store, "*:*", days=30)}
        assert store.matches_for("900", days=90, now=NOW), "matches outlive events"

        later = NOW + timedelta(days=85)
        old_matches = sum(1 for m in store.matches_for("900", days=365, now=later)
                          if m.build.uuid == "b-old")  # fmt: skip
        counts = store.gc(now=later, event_days=10, build_days=90)
        assert counts.builds == 1 and counts.matches == old_matches
        assert counts.events == sum(b.events for u, b in before.items() if u != "b-old")
        assert not store.has_build("b-old")
        assert store.newest_event_time() is None
        assert found(store, "*:*", days=365) == []
        assert store.gc(now=later) == type(counts)()

    # -------------------------------------------------------------- reclassify

    def test_reclassify_reruns_only_new_or_changed_signatures(self, store: Store) -> None:
        original = make_signature("900", 'message:"delete failed"')
        sample = ingest_sample(store, [original])
        window = NOW - timedelta(days=90)

        first = store.reclassify([original])
        assert first.signatures == ("900",)
        assert store.reclassify([original]).signatures == ()

        added = make_signature("901", "message:traceback AND tags:screen")
        counts = store.reclassify([original, added])
        assert counts.signatures == ("901",)
        expected = sample.expected(added.query, window)
        assert expected
        got = store.matches_for("901", days=90, now=NOW)
        assert sorted((m.build.uuid, f"{m.filename}:{m.line}") for m in got) == expected
        assert counts.matches == len(expected)

        changed = make_signature("901", 'message:"could not be found"')
        assert store.reclassify([original, changed]).signatures == ("901",)
        got = store.matches_for("901", days=90, now=NOW)
        expected = sample.expected(changed.query, window)
        assert sorted((m.build.uuid, f"{m.filename}:{m.line}") for m in got) == expected
        assert {m.message for m in got} <= {
            str(e["message"])[:300] for _, _, events in sample.builds for _, e in events
        }

    def test_classify_a_stored_build_as_the_pipeline_would(self, store: Store) -> None:
        sigs = [make_signature(str(n), text) for n, text in enumerate(QUERY_SHAPES)]
        sample = ingest_sample(store)
        order = {s.bug: i for i, s in enumerate(sigs)}

        def key(match: Match) -> tuple[int, str, int]:
            return (order[match.bug], match.filename, match.line)

        for build, _, part in sample.builds[:3]:
            result = store.classify(build, sigs)
            expected = sorted(classify(sigs, build, part), key=key)
            assert expected, f"the sample should match something in {build.build_uuid}"
            # Every bug with its count; a cluster lists only its first max_hits matches.
            counts = Counter(match.bug for match in expected)
            assert result.totals == {sig.bug: counts.get(sig.bug, 0) for sig in sigs}
            assert result.bugs == list(counts)
            assert set(result.matches) <= set(expected)
            cap = getattr(getattr(store, "settings", None), "max_hits", None)
            listed = Counter(m.bug for m in result.matches)
            assert listed == {bug: min(n, cap or n) for bug, n in counts.items()}, (cap, listed)
            assert result.errors == {}
        nonvoting = Build(build_uuid="b-fail-gate", voting="0")
        assert store.classify(nonvoting, sigs).matches == []  # no allow-nonvoting match

    def test_reclassify_applies_the_classification_rules(self, store: Store) -> None:
        build = Build(build_uuid="nv", build_status="FAILURE", voting="0")
        store.ingest(build, [("f:1", {"message": "boom", "voting": "0"})], [], when=NOW)
        plain = make_signature("1", "message:boom")
        nonvoting = make_signature("2", "message:boom", allow_nonvoting=True)
        store.reclassify([plain, nonvoting])
        assert store.matches_for("1", now=NOW) == []
        assert [m.line for m in store.matches_for("2", now=NOW)] == [1]

    def test_reclassify_keeps_matches_of_builds_whose_events_are_gone(self, store: Store) -> None:
        sig = make_signature("900", 'message:"delete failed"')
        ingest_sample(store, [sig])
        old_before = [m for m in store.matches_for("900", days=90, now=NOW)
                      if m.build.uuid == "b-old"]  # fmt: skip
        store.gc(now=NOW)
        changed = make_signature("900", "message:zzzznotthere")
        counts = store.reclassify([changed])
        assert counts.builds == 3
        remaining = store.matches_for("900", days=90, now=NOW)
        assert [m for m in remaining if m.build.uuid != "b-old"] == []
        assert [m.line for m in remaining] == [m.line for m in old_before]

    def test_reclassify_since(self, store: Store) -> None:
        sample = ingest_sample(store)
        sig = make_signature("905", "tags:console")
        counts = store.reclassify([sig], since=NOW - timedelta(days=2))
        assert counts.builds == 2
        uuids = {m.build.uuid for m in store.matches_for("905", days=90, now=NOW)}
        assert uuids == {u for u, _ in sample.expected("tags:console", NOW - timedelta(days=2))}
