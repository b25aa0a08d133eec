"""The Launchpad bug tracker: real launchpadlib against a local fake of Launchpad's service."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from launchpad_fake import FakeLaunchpad

from recheck.bot.launchpad import LaunchpadSettings, LaunchpadTracker, tracker_from_config
from recheck.config.files import ConfigError, parse_config
from recheck.models import BugInfo, UrlOnlyTracker

BUG = BugInfo("1458945", "Use graduated oslo.policy", "Fix Released", ("sahara", "barbican"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def launchpad() -> Iterator[FakeLaunchpad]:
    fake = FakeLaunchpad()
    fake.start()
    yield fake
    fake.release.set()
    fake.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_tracker(
    fake: FakeLaunchpad, cache: Path, clock: Clock, **changes: float
) -> LaunchpadTracker:
    settings = LaunchpadSettings(
        cache_dir=cache,
        service_root=fake.service_root,
        cache_ttl=changes.get("cache_ttl", 100.0),
        missing_ttl=changes.get("missing_ttl", 50.0),
        timeout=changes.get("timeout", 30.0),
        outage_pause=changes.get("outage_pause", 60.0),
    )
    return LaunchpadTracker(settings, clock)


def test_lookup_reads_title_status_and_projects(launchpad, tmp_path, clock) -> None:
    tracker = make_tracker(launchpad, tmp_path, clock)
    assert tracker.lookup("1458945") == BUG
    assert tracker.url("1458945") == "https://bugs.launchpad.net/bugs/1458945"
    assert launchpad.bug_requests() == ["/devel/bugs/1458945", "/devel/bugs/1458945/bug_tasks"]


def test_answers_are_cached_on_disk_until_the_ttl(launchpad, tmp_path, clock) -> None:
    tracker = make_tracker(launchpad, tmp_path, clock)
    assert tracker.lookup("1458945") == BUG
    clock.now += 99
    assert tracker.lookup("1458945") == BUG
    # A new process (a restarted bot) reads the same cache without asking Launchpad.
    assert make_tracker(launchpad, tmp_path, clock).lookup("1458945") == BUG
    assert len(launchpad.bug_requests()) == 2
    assert json.loads((tmp_path / "bugs" / "1458945.json").read_text())["title"] == BUG.title
    clock.now += 2  # past the TTL
    assert tracker.lookup("1458945") == BUG
    assert len(launchpad.bug_requests()) == 4


@pytest.mark.parametrize("private", [True, False], ids=["private-401", "missing-404"])
def test_private_or_missing_bugs_give_none_and_are_remembered(
    launchpad, tmp_path, clock, private: bool
) -> None:
    if private:
        launchpad.private.add("1458945")
    bug = "1458945" if private else "1999999"
    tracker = make_tracker(launchpad, tmp_path, clock)
    assert tracker.lookup(bug) is None
    assert tracker.lookup(bug) is None
    assert len(launchpad.bug_requests()) == 1
    clock.now += 51  # past missing_ttl: asked again (it may have been made public)
    launchpad.private.clear()
    assert tracker.lookup(bug) == (BUG if private else None)


def test_outage_gives_none_then_pauses_lookups(launchpad, tmp_path, clock) -> None:
    launchpad.stop()
    tracker = make_tracker(launchpad, tmp_path, clock)
    assert tracker.lookup("1458945") is None  # connection refused: no exception
    launchpad.start()
    assert tracker.lookup("1458945") is None  # within outage_pause: Launchpad not asked
    assert launchpad.requests == []
    clock.now += 61
    assert tracker.lookup("1458945") == BUG


def test_a_lookup_answered_before_its_callback_is_added_does_not_deadlock(
    launchpad, tmp_path, clock
) -> None:
    """A fetch that is done before ``add_done_callback`` runs its callback at once, in
    the caller's thread (a refused connection is that quick): the suite once hung here."""
    tracker = make_tracker(launchpad, tmp_path, clock)
    submit = tracker._worker.submit

    def submit_and_wait(fn, *args):
        future = submit(fn, *args)
        future.result(timeout=30)  # done before the caller adds its callback
        return future

    tracker._worker.submit = submit_and_wait
    answers = []
    lookup = threading.Thread(target=lambda: answers.append(tracker.lookup("1458945")))
    lookup.daemon = True  # a deadlocked one must not keep the test run alive
    lookup.start()
    lookup.join(60)
    assert not lookup.is_alive(), "the lookup deadlocked on the tracker's own lock"
    assert answers == [BUG]
    assert tracker._in_flight == {}


def test_server_errors_are_an_outage_and_stale_data_is_used(launchpad, tmp_path, clock) -> None:
    tracker = make_tracker(launchpad, tmp_path, clock)
    assert tracker.lookup("1458945") == BUG
    clock.now += 101  # the entry is stale...
    launchpad.status_override = 503  # ...and Launchpad answers 503 (not retried for 31 s)
    assert tracker.lookup("1458945") == BUG
    assert launchpad.bug_requests()[-1] == "/devel/bugs/1458945"
    launchpad.status_override = None
    assert tracker.lookup("1999999") is None  # paused: not asked
    assert launchpad.bug_requests()[-1] == "/devel/bugs/1458945"


def test_a_hanging_launchpad_does_not_hold_the_caller(launchpad, tmp_path, clock) -> None:
    tracker = make_tracker(launchpad, tmp_path, clock, timeout=0.2)
    launchpad.release.clear()  # bug requests hang
    assert tracker.lookup("1458945") is None
    launchpad.release.set()
    # The lookup still finishes in the background and fills the cache for next time.
    deadline = time.monotonic() + 30
    while tracker.cache.get("1458945") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tracker.lookup("1458945") == BUG
    assert tracker.lookup("1999999") is None  # paused after the hang: not asked
    assert "/devel/bugs/1999999" not in launchpad.requests


def test_non_numeric_ids_and_corrupt_cache(launchpad, tmp_path, clock) -> None:
    tracker = make_tracker(launchpad, tmp_path, clock)
    assert tracker.lookup("bug-17") is None
    assert launchpad.requests == []
    (tmp_path / "bugs").mkdir()
    (tmp_path / "bugs" / "1458945.json").write_text("{not json")
    assert tracker.lookup("1458945") == BUG


def test_tracker_from_config(tmp_path: Path) -> None:
    default = tracker_from_config(parse_config("store: {path: data}\n", tmp_path / "bot.yaml"))
    assert isinstance(default, LaunchpadTracker)
    assert default.settings.cache_dir == tmp_path / "data" / "launchpad"
    assert default.settings.service_root == "https://api.launchpad.net/"
    links = tracker_from_config(
        parse_config(
            'bug_tracker: {type: url, url: "https://bugs.example.org/{bug}"}\n',
            tmp_path / "bot.yaml",
        )
    )
    assert links == UrlOnlyTracker("https://bugs.example.org/{bug}")
    assert links.url("5") == "https://bugs.example.org/5"
    tuned = tracker_from_config(
        parse_config(
            "bug_tracker: {service_root: 'http://127.0.0.1:9/', cache_ttl: 60, timeout: 2}\n",
            tmp_path / "bot.yaml",
        )
    )
    assert isinstance(tuned, LaunchpadTracker)
    assert (tuned.settings.cache_ttl, tuned.settings.timeout) == (60.0, 2.0)
    # The bot's bug_url (what its Gerrit comments link to) is the IRC links' too.
    both = "bug_url: https://bugs.example.org/{bug}\nbug_tracker: {url: 'https://x/{bug}'}\n"
    assert tracker_from_config(parse_config(both, tmp_path / "bot.yaml")).url("5") == (
        "https://bugs.example.org/5"
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("bug_tracker: {cache_tll: 5}", "unknown key 'bug_tracker.cache_tll'"),
        ("bug_tracker: {url: 'https://x.org/bugs'}", "bug_tracker.url must be"),
        ("bug_tracker: {type: jira}", "bug_tracker.type must be launchpad or url"),
        ("bug_tracker: {timeout: 0}", "bug_tracker.timeout must be a number"),
        ("bug_tracker: {service_root: 'ftp://x'}", "bug_tracker.service_root must be"),
    ],
)
def test_bad_tracker_settings_are_errors(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        tracker_from_config(parse_config(section + "\n", tmp_path / "bot.yaml"))
    assert str(tmp_path / "bot.yaml") in str(error.value)
