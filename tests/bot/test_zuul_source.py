"""bot.source: zuul -- one comment per buildset, once Zuul has reported it, saying what the
Gerrit source says for the same report; jobs that can have no logs are decided at once.

A fake Zuul API (``/api/tenant/T/builds``, ``/buildset/UUID``, ``/build/UUID``) answers
with the payloads of tests/fixtures/zuul-api/; the logs are real build directories
served by ``LogSite``.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from bot_world import EVENTS, JENKINS_BUILD, ROOT, ZUUL_BUILD
from gerrit_fake import LogSite

from recheck.bot.gerrit.events import FailureEvent, MalformedEvent, failure_from_zuul
from recheck.bot.gerrit.stream import BUILDSET_SETTLE, MAX_PENDING, ZuulPoller
from recheck.bot.metrics import Metrics
from recheck.bot.queue import BotQueue
from recheck.bot.service import Service
from recheck.bot.triage import NO_LOG_URL, SignatureSet, Triage
from recheck.config.bot import BotSettings, ZuulSettings
from recheck.config.files import Config, FetchConfig
from recheck.logs.zuul import zuul_build_time
from recheck.models import UrlOnlyTracker

FIXTURES = Path(__file__).parents[1] / "fixtures" / "zuul-api"
LOG_HOST = "https://storage.bhs.cloud.ovh.net/v1/AUTH_dcaab5e32b234d56b626f72581e3644c/"
BUILDSET = "3b1c0f0e6a5d4c1e9f2a8b7c6d5e4f30"
"""The buildset of change 758776 patchset 4 (the recorded Zuul v3 event's report)."""
CYCLE = "e4d5c6b7a8f94e0d8c1b2a3f4e5d6c7b"
"""A Zuul 10 buildset testing two changes of a dependency cycle."""
CONFIG = Config(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), retries=0))


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class FakeZuul:
    """Zuul's REST API for one tenant, answering from records the test holds."""

    def __init__(self, logs: LogSite) -> None:
        self.logs = logs
        self.builds: list[dict[str, Any]] = []
        """Build records as ``/builds`` lists them, newest first."""
        self.buildsets: dict[str, dict[str, Any]] = {}
        self.buildset_status = 200
        """What ``/buildset/UUID`` answers with when not 200 (404: no such endpoint)."""
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _zuul_handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, listing: str, buildset: str | None = None) -> None:
        """Serve the records of fixture files, their log URLs pointed at ``logs``."""
        self.builds = self._local(_load(listing)) + self.builds
        if buildset is not None:
            record = self._local(_load(buildset))
            self.buildsets[record["uuid"]] = record

    def _local(self, data: Any) -> Any:
        """``data`` with each log URL served by ``logs``: the announce-release job's as
        the Zuul v3 devstack build, the others' as the Jenkins-era build."""
        text = json.dumps(data)
        for path in set(re.findall(re.escape(LOG_HOST) + r"([^\"]+?/)download-logs", text)):
            self.logs.serve(path, ZUUL_BUILD if "/announce-release/" in path else JENKINS_BUILD)
        return json.loads(text.replace(LOG_HOST, f"{self.logs.url}/logs/"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _zuul_handler(zuul: FakeZuul) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            zuul.requests.append(parts.path)
            kind, _, uuid = parts.path.removeprefix("/api/tenant/openstack/").partition("/")
            if kind == "builds":
                wanted = dict(parse_qsl(parts.query))
                listed = [
                    record for record in zuul.builds
                    if all(str(record.get(k)) == wanted[k] for k in ("result", "pipeline")
                           if k in wanted)
                ]  # fmt: skip
                skip = int(wanted.get("skip", 0))
                self._send(200, listed[skip : skip + int(wanted.get("limit", 50))])
            elif kind == "buildset" and zuul.buildset_status != 200:
                self._send(zuul.buildset_status, {"error": "no"})
            elif kind == "buildset" and uuid in zuul.buildsets:
                self._send(200, zuul.buildsets[uuid])
            elif kind == "build" and any(b["uuid"] == uuid for b in zuul.builds):
                self._send(200, next(b for b in zuul.builds if b["uuid"] == uuid))
            else:
                self._send(404, {"error": "not found"})

        def _send(self, status: int, data: Any) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def zuul() -> Iterator[FakeZuul]:
    with LogSite() as logs:
        fake = FakeZuul(logs)
        try:
            yield fake
        finally:
            fake.close()


class Queued:
    """What a poller queued: (source, raw) pairs."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def __call__(self, source: str, raw: str) -> int:
        self.rows.append((source, raw))
        return len(self.rows)

    def events(self, zuul: FakeZuul) -> list[Any]:
        found = []
        for source, raw in self.rows:
            assert source == "zuul"
            data = json.loads(raw)
            assert (data["zuul_url"], data["tenant"]) == (zuul.url, "openstack")
            found.append(failure_from_zuul(data["build"], data["zuul_url"], data["tenant"]))
        return found


def _poller(zuul: FakeZuul, enqueue: Any, clock: Any = time.time) -> ZuulPoller:
    settings = ZuulSettings(url=zuul.url, tenant="openstack", pipelines=("check",))
    return ZuulPoller(CONFIG, settings, enqueue, Metrics(), clock=clock)


class Gerrit:
    """A Reviewer keeping each comment posted: (event key, change, patchset, text)."""

    def __init__(self) -> None:
        self.comments: list[tuple[str, str, str, str]] = []

    def count(self, event: FailureEvent, text: str) -> int:
        return sum(1 for c in self.comments if (c[1], c[3]) == (event.change, text))

    def post(self, event: FailureEvent, text: str) -> None:
        self.comments.append((event.key, event.change, event.patchset, text))


def _service(gerrit: Gerrit, queue: BotQueue | None = None) -> Service:
    problems: list[str] = []
    return Service(
        BotSettings(log_timeout=120), queue or BotQueue(":memory:"),
        Triage(CONFIG, SignatureSet(ROOT / "queries", problems.append)), gerrit,
        UrlOnlyTracker("https://bugs.example.org/{bug}"),
    )  # fmt: skip


def test_a_buildset_is_one_comment_with_the_text_of_the_gerrit_source(zuul: FakeZuul) -> None:
    """Three failed voting jobs, a non-voting one, a NODE_FAILURE and a passing job: one
    comment, the one the recorded Gerrit event of the same report gets; the RETRY_LIMIT
    build without a log URL and the NODE_FAILURE are decided at once in both."""
    zuul.add("builds-758776-4.json", "buildset-758776-4.json")
    by_zuul = Gerrit()
    service = _service(by_zuul)
    started = time.monotonic()
    assert _poller(zuul, service.enqueue).poll_once()
    service.drain()
    [(key, change, patchset, text)] = by_zuul.comments
    assert (key, change, patchset) == (f"758776,4,{BUILDSET}", "758776", "4")

    by_gerrit = Gerrit()
    service = _service(by_gerrit)
    recorded = (EVENTS / "zuul-v3-comment-added.json").read_text()
    service.enqueue("gerrit", recorded.replace("https://zuul.opendev.org", zuul.url))
    service.drain()
    [(_, _, _, gerrit_text)] = by_gerrit.comments
    assert text == gerrit_text
    assert time.monotonic() - started < 60  # bot.log_timeout is 120: nothing waited for it
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert lines == [
        "- announce-release: https://bugs.example.org/demo-3",
        "- release-openstack-puppet (non-voting): unrecognized error",
        f"- tripleo-ci-centos-8-standalone: not checked: {NO_LOG_URL}",
        "- tripleo-ci-centos-8-content-provider: https://bugs.example.org/demo-1 "
        "https://bugs.example.org/demo-2",
        "- tripleo-ci-centos-8-containers-multinode: not checked: the job never ran (NODE_FAILURE)",
    ]


def test_a_buildset_is_queued_once_zuul_has_reported_it(zuul: FakeZuul) -> None:
    zuul.add("builds-758776-4.json", "buildset-758776-4.json")
    reported = zuul.buildsets[BUILDSET]
    running = copy.deepcopy(reported)
    running["result"] = None  # as Zuul 4 and later answer while jobs still run
    running["builds"][0].update(result=None, end_time=None, log_url=None)
    zuul.buildsets[BUILDSET] = running
    queued = Queued()
    poller = _poller(zuul, queued)
    assert poller.poll_once()
    assert queued.rows == []
    assert poller.poll_once()  # still running: asked again, still nothing
    assert zuul.requests.count(f"/api/tenant/openstack/buildset/{BUILDSET}") == 2
    zuul.buildsets[BUILDSET] = reported
    assert poller.poll_once()
    assert poller.poll_once()  # queued once only
    [event] = queued.events(zuul)
    assert (event.key, event.change, event.patchset) == (f"758776,4,{BUILDSET}", "758776", "4")
    assert (event.project, event.branch, event.queue) == (
        "openstack/puppet-tripleo", "stable/ussuri", "check"
    )  # fmt: skip
    assert event.url == "https://review.opendev.org/758776"
    assert [(job.name, job.result, job.voting) for job in event.jobs] == [
        ("announce-release", "FAILURE", True),
        ("release-openstack-puppet", "POST_FAILURE", False),
        ("tripleo-ci-centos-8-standalone", "RETRY_LIMIT", True),  # not its retries
        ("tripleo-ci-centos-8-content-provider", "TIMED_OUT", True),
        ("tripleo-ci-centos-8-containers-multinode", "NODE_FAILURE", True),
    ]
    page = f"{zuul.url}/t/openstack/build/"
    assert event.jobs[0].url == page + "33e2a0cad11148788abe0bb1e562ad91"


def test_a_restarted_poller_queues_the_buildset_again_and_the_queue_drops_it(
    zuul: FakeZuul,
) -> None:
    zuul.add("builds-758776-4.json", "buildset-758776-4.json")
    gerrit = Gerrit()
    queue = BotQueue(":memory:")
    service = _service(gerrit, queue)
    assert _poller(zuul, service.enqueue).poll_once()
    service.drain()
    assert _poller(zuul, service.enqueue).poll_once()  # a new process: nothing remembered
    service.drain()
    assert [row.state for row in queue.rows()] == ["done", "duplicate"]
    assert len(gerrit.comments) == 1


def test_a_buildset_of_two_changes_is_one_event_per_change(zuul: FakeZuul) -> None:
    """Zuul 10 tests a dependency cycle in one buildset, each build naming its change."""
    zuul.add("builds-zuul10-cycle.json", "buildset-zuul10-cycle.json")
    queued = Queued()
    assert _poller(zuul, queued).poll_once()
    nova, placement = queued.events(zuul)
    assert (nova.key, nova.project, nova.queue) == (f"921450,7,{CYCLE}", "openstack/nova", "check")
    assert [(job.name, job.result, job.voting) for job in nova.jobs] == [
        ("nova-tox-functional-py312", "FAILURE", True),
        ("nova-next", "ERROR", True),
        ("nova-emulation", "FAILURE", False),
        ("nova-grenade-multinode", "TIMED_OUT", True),  # its retried build left out
    ]
    assert placement.key == f"921451,3,{CYCLE}"
    assert [(job.name, job.result) for job in placement.jobs] == [
        ("openstack-tox-py312", "FAILURE")
    ]
    assert placement.url == "https://review.opendev.org/921451"


def test_error_and_node_failure_jobs_are_decided_without_looking_for_logs(
    zuul: FakeZuul,
) -> None:
    zuul.add("builds-zuul10-cycle.json", "buildset-zuul10-cycle.json")
    queued = Queued()
    assert _poller(zuul, queued).poll_once()
    nova = queued.events(zuul)[0]
    triage = Triage(CONFIG, SignatureSet(ROOT / "queries", print))
    before = len(zuul.requests)
    looked = triage.look(nova)
    try:
        assert triage.waiting(looked) == []
        errors = {item.job.name: item.outcome.error for item in looked if item.outcome}
    finally:
        triage.close(looked)
    assert errors == {"nova-next": "the job never ran (ERROR)"}
    asked = zuul.requests[before:]
    assert not any(path.endswith("3b4c5d6e7f8a49102b3c4d5e6f7a8b9c") for path in asked)


def test_only_non_voting_failures_or_a_dequeued_buildset_are_not_queued(zuul: FakeZuul) -> None:
    zuul.add("builds-zuul10-cycle.json", "buildset-zuul10-cycle.json")
    buildset = zuul.buildsets[CYCLE]
    buildset["result"] = "DEQUEUED"  # a new patchset replaced it: Zuul tells nobody
    queued = Queued()
    assert _poller(zuul, queued).poll_once()
    assert queued.rows == []
    buildset["result"] = "SUCCESS"
    for build in buildset["builds"]:
        if build["voting"] and build["result"] != "SUCCESS":
            build["result"] = "SUCCESS"
    assert failure_from_zuul(buildset, zuul.url, "openstack") is None  # nova-emulation only


def test_a_zuul_without_the_buildset_api_groups_the_listed_builds(zuul: FakeZuul) -> None:
    """Such a Zuul (404) writes a buildset's builds once it has reported: those listed are
    all there are."""
    zuul.add("builds-758776-4.json", "buildset-758776-4.json")
    zuul.buildset_status = 404
    queued = Queued()
    assert _poller(zuul, queued).poll_once()
    [event] = queued.events(zuul)
    assert event.key == f"758776,4,{BUILDSET}"
    assert event.project == "openstack/puppet-tripleo"
    # The builds asked for (bot.zuul.results): NODE_FAILURE is not one of the defaults.
    assert sorted(job.name for job in event.jobs) == [
        "announce-release",
        "release-openstack-puppet",
        "tripleo-ci-centos-8-content-provider",
        "tripleo-ci-centos-8-standalone",
    ]


def test_an_unreadable_buildset_is_waited_for_then_reported_as_seen(
    zuul: FakeZuul, caplog: pytest.LogCaptureFixture
) -> None:
    zuul.add("builds-758776-4.json", "buildset-758776-4.json")
    zuul.buildset_status = 500
    now = [time.time()]
    queued = Queued()
    poller = _poller(zuul, queued, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="recheck.bot"):
        assert poller.poll_once()  # the builds were listed: Zuul is there
    assert queued.rows == []
    [warning] = [r for r in caplog.records if r.getMessage() == "zuul_buildset_unreadable"]
    assert warning.__dict__["fields"]["buildset"] == BUILDSET
    now[0] += MAX_PENDING
    assert poller.poll_once()
    [event] = queued.events(zuul)
    assert event.key == f"758776,4,{BUILDSET}" and len(event.jobs) == 4


def test_a_buildset_zuul_never_reported_counts_once_its_builds_are_long_over(
    zuul: FakeZuul,
) -> None:
    zuul.add("builds-758776-4.json", "buildset-758776-4.json")
    zuul.buildsets[BUILDSET]["result"] = None
    last = max(
        end.timestamp()
        for build in zuul.buildsets[BUILDSET]["builds"]
        if (end := zuul_build_time(build, "end_time")) is not None
    )
    now = [last + 60]
    queued = Queued()
    poller = _poller(zuul, queued, clock=lambda: now[0])
    assert poller.poll_once()
    assert queued.rows == []  # a job may still wait for nodes
    now[0] = last + BUILDSET_SETTLE
    assert poller.poll_once()
    [event] = queued.events(zuul)
    assert len(event.jobs) == 5


def test_hostile_buildset_records_are_malformed_events() -> None:
    record: dict[str, Any] = _load("buildset-758776-4.json")
    for bad, problem in [
        ({**record, "uuid": None}, "without a 'uuid'"),
        ({**record, "builds": "all"}, "not a list of build records"),
        ({**record, "builds": [*record["builds"], 7]}, "not a list of build records"),
        ({**record, "builds": [{**record["builds"][1], "job_name": ["x"]}]}, "'job_name'"),
    ]:
        with pytest.raises(MalformedEvent, match=re.escape(problem)):
            failure_from_zuul(bad, "https://z", "t")
    odd = {**record, "result": ["FAILURE"], "builds": [{**record["builds"][1], "result": {}}]}
    assert failure_from_zuul(odd, "https://z", "t") is None  # no result Zuul gives: not failed
