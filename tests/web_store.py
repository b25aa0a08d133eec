"""A real embedded store for the page tests: real builds' logs ingested, plus generated builds.

The two real build directories of tests/fixtures/builds are ingested through the
pipeline (``ingest_build``) as several builds with different fields and times; the
generated builds are slices of the real events of examples/sample-events.jsonl (slices
from event 210 on hold a line demo bug demo-1 matches; earlier ones match nothing),
classified by the engine. ``Made`` records what was ingested so that tests compute
what a page should say from it, never from the code under test.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from store_contract import classify, sample_events, with_build

from recheck.logs.build import Build
from recheck.logs.sources import open_source
from recheck.pipeline import ingest_build
from recheck.query.signatures import Signature, load_signatures
from recheck.store import Store

ROOT = Path(__file__).resolve().parent.parent
BUILDS = ROOT / "tests" / "fixtures" / "builds"
QUERIES = ROOT / "queries"
NEUTRON = BUILDS / "gate-tempest-devstack-vm-neutron"
ZUULV3 = BUILDS / "devstack-zuulv3"
LOGS = "https://logs.example.org/"

JOBS = ("tempest-full", "grenade", "nova-next", "openstack-tox-py311")
STATUSES = ("FAILURE", "FAILURE", "SUCCESS")
BRANCHES = ("master", "stable/2024.1")
PROJECTS = ("openstack/nova", "openstack/neutron", "openstack/cinder", "x/whitebox", "x/octavia")


@dataclass(frozen=True)
class Made:
    """One ingested build and the bugs the engine found in it."""

    build: Build
    time: datetime
    bugs: frozenset[str]


@dataclass
class Data:
    """What ``fill_store`` ingested."""

    now: datetime
    builds: list[Made] = field(default_factory=list)

    def failed_gate(self, days: float) -> list[Made]:
        """Failed voting gate builds of the last ``days``."""
        since = self.now - timedelta(days=days)
        return [
            m
            for m in self.builds
            if m.time >= since
            and m.build.build_status == "FAILURE"
            and m.build.build_queue == "gate"
            and m.build.voting != "0"
        ]


def shipped_signatures() -> list[Signature]:
    """The signatures of queries/: 91 real elastic-recheck ones and three demo ones."""
    signatures, errors = load_signatures(QUERIES)
    assert not errors
    return signatures


def fill_store(store: Store, now: datetime, generated: int = 40) -> Data:
    """Ingest the real builds and ``generated`` builds spread over the last 10 days."""
    signatures = shipped_signatures()
    data = Data(now)
    real = [
        # (logs, uuid, job, status, queue, project, age)
        (NEUTRON, "neutron-gate-1", "gate-tempest-devstack-vm-neutron", "FAILURE", "gate",
         "openstack/neutron", timedelta(hours=2)),
        (NEUTRON, "neutron-gate-2", "gate-tempest-devstack-vm-neutron", "FAILURE", "gate",
         "openstack/neutron", timedelta(days=4, hours=3)),
        (NEUTRON, "neutron-check-ok", "gate-tempest-devstack-vm-neutron", "SUCCESS", "check",
         "openstack/nova", timedelta(days=3)),
        (ZUULV3, "cinder-gate-1", "tempest-full", "FAILURE", "gate",
         "openstack/cinder", timedelta(hours=30)),
    ]  # fmt: skip
    for logs, uuid, job, status, queue, project, age in real:
        source = open_source(str(logs))
        build = Build(
            build_uuid=uuid, build_short_uuid=uuid[:7], build_name=job, build_status=status,
            build_queue=queue, project=project, voting="1", build_branch="master",
            build_change="9" + str(len(data.builds)), build_patchset="1",
            log_url=f"{LOGS}{uuid}/",
        )  # fmt: skip
        found = ingest_build(store, source, build, signatures, when=now - age)
        data.builds.append(Made(build, now - age, frozenset(m.bug for m in found.matches)))
    events = sample_events()
    rng = random.Random(8)
    for number in range(generated):
        start = rng.randrange(0, 270)
        build = Build(
            build_uuid=f"gen-{number:03d}", build_short_uuid=f"gen-{number:03d}"[:7],
            build_name=rng.choice(JOBS), build_status=rng.choice(STATUSES),
            build_queue=rng.choice(("gate", "gate", "check")), project=rng.choice(PROJECTS),
            voting="0" if number % 9 == 4 else "1", build_branch=rng.choice(BRANCHES),
            build_change=str(800000 + number), build_patchset="2", log_url=f"{LOGS}gen/{number}/",
        )  # fmt: skip
        when = now - timedelta(minutes=rng.randrange(10, 10 * 24 * 60))
        part = with_build(events[start : start + 30], build)
        matches = classify(signatures, build, part)
        store.ingest(build, part, matches, when=when)
        data.builds.append(Made(build, when, frozenset(m.bug for m in matches)))
    return data


URL_ONLY = "bug_tracker:\n  type: url\n"
"""A bot.yaml that keeps the commands from asking Launchpad (no network in tests)."""


def write_config(directory: Path, extra: str = "") -> Path:
    """A bot.yaml in ``directory`` with a links-only bug tracker plus ``extra``."""
    path = directory / "bot.yaml"
    path.write_text(URL_ONLY + extra, encoding="utf-8")
    return path


@contextmanager
def serving(store: Path, config: Path, queries: Path = QUERIES) -> Iterator[str]:
    """``recheck serve`` on a free port as a real process; yields its URL, then stops it."""
    script = Path(sys.executable).with_name("recheck")
    command = [str(script), "serve", "--port", "0", "--cache", "0", "--store", str(store),
               "--config", str(config), "--queries", str(queries)]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://\S+/)", line)
        assert found, f"recheck serve said {line!r}"
        yield found[1]
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
