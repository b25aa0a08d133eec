"""The bot's test world: a fake Gerrit, a logs server, bot.yaml, and the bot as a process.

Events are the recorded real ones of tests/fixtures/events/, with only their log hosts
pointed at the local logs server (``LogSite``), which serves real build directories
of tests/fixtures/builds/ under the events' own log paths.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gerrit_fake import FakeGerrit, LogSite

ROOT = Path(__file__).parents[1]
EVENTS = Path(__file__).parent / "fixtures" / "events"
JENKINS_EVENTS: list[dict[str, Any]] = json.loads((EVENTS / "gerrit-jenkins-2014.json").read_text())
ZUUL_BUILDS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "zuul-api" / "builds.json").read_text()
)
JENKINS_BUILD = "gate-tempest-devstack-vm-neutron"  # bugs demo-1 and demo-2
ZUUL_BUILD = "devstack-zuulv3"  # bug demo-3 (allow-nonvoting)

# Which fixture build answers for each failed job's log path in the recorded events.
JENKINS_ROUTES = {
    "61/65361/2/check/check-requirements-integration-dsvm/8209fb4": JENKINS_BUILD,
    "02/65902/3/check/check-grenade-dsvm-neutron/59354b6": ZUUL_BUILD,
    "78/63078/19/check/check-tempest-dsvm-full/ab07162": JENKINS_BUILD,
    "49/64749/6/check/gate-keystone-python26/d3fd328": ZUUL_BUILD,
    "49/64749/6/check/gate-keystone-python27/5dd41fe": JENKINS_BUILD,
    "49/64750/6/gate/gate-keystone-python26/d3fd328": JENKINS_BUILD,
    "49/64750/6/gate/gate-keystone-python27/5dd41fe": ZUUL_BUILD,
}
FAILED_JENKINS = [1, 2, 5, 6]
"""Indexes of the recorded events that report failed jobs."""


@dataclass
class World:
    """Everything one bot test needs, on free localhost ports under ``tmp``."""

    tmp: Path
    gerrit: FakeGerrit
    logs: LogSite
    bots: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def serve_jenkins_logs(self) -> None:
        for path, build in JENKINS_ROUTES.items():
            self.logs.serve(path, build)

    def jenkins_event(self, index: int) -> str:
        """Recorded event ``index`` as one stream line, its log host made local."""
        event = JENKINS_EVENTS[index]
        text = json.dumps(event)
        return text.replace("http://logs.openstack.org/", f"{self.logs.url}/logs/")

    def zuul_event(self) -> str:
        """The Zuul v3 event, its Zuul made local; its builds' records served."""
        text = (EVENTS / "zuul-v3-comment-added.json").read_text()
        return json.dumps(json.loads(text.replace("https://zuul.opendev.org", self.logs.url)))

    def serve_zuul_builds(self) -> None:
        """announce-release -> devstack-zuulv3 logs; release-openstack-puppet ->
        Jenkins-era logs; the TIMED_OUT build -> Jenkins-era logs; the RETRY_LIMIT
        build has no record (its logs never appear)."""
        announce, release = ZUUL_BUILDS[1], ZUUL_BUILDS[2]
        self.logs.builds[announce["uuid"]] = {
            **announce, "result": "FAILURE", "log_url": self.logs.serve("z/announce", ZUUL_BUILD)
        }  # fmt: skip
        self.logs.builds[release["uuid"]] = {
            **release, "result": "POST_FAILURE", "voting": False,
            "log_url": self.logs.serve("z/release", JENKINS_BUILD),
        }  # fmt: skip
        timed_out = "d850dbd8565f449eb60bf4517e09bca5"
        self.logs.builds[timed_out] = {
            **ZUUL_BUILDS[0], "uuid": timed_out, "result": "TIMED_OUT",
            "job_name": "tripleo-ci-centos-8-content-provider",
            "log_url": self.logs.serve("z/timed-out", JENKINS_BUILD),
        }  # fmt: skip

    def config(self, queries: Path | None = None, **bot: Any) -> Path:
        """Write bot.yaml for this world; ``bot`` overrides keys of its ``bot:`` section."""
        password = self.tmp / "gerrit-password"
        password.write_text(self.gerrit.password + "\n")
        section = {
            "log_timeout": 3, "log_poll": 0.2, "retry": 0.2, "metrics": "127.0.0.1:0",
            "state": str(self.tmp / "bot.sqlite"),
            "success_sample": 0,  # tests count the queue's rows: no sampled passing jobs
            **bot,
        }  # fmt: skip
        data = {
            "fetch": {"allowed_hosts": ["127.0.0.1"], "retries": 0, "read_timeout": 10},
            "store": {"path": str(self.tmp / "store")},
            "bot": section,
            "gerrit": {
                "host": "127.0.0.1",
                "port": self.gerrit.ssh_port,
                "user": self.gerrit.user,
                "key_file": str(self.gerrit.key_file),
                "known_hosts": str(self.gerrit.known_hosts),
                "url": self.gerrit.url,
                "http_user": self.gerrit.user,
                "http_password_file": str(password),
            },
            "bug_url": "https://bugs.example.org/{bug}",
        }
        path = self.tmp / "bot.yaml"
        path.write_text(json.dumps(data, indent=1))  # JSON is YAML
        return path

    def start(
        self, *args: str, crash_at: str | None = None, queries: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``recheck bot`` (stderr to bot-N.log); the caller waits for what it needs."""
        env = {**os.environ, "RECHECK_HOME": str(self.tmp / "home")}
        env.pop("RECHECK_BOT_CRASH_AT", None)
        if crash_at:
            env["RECHECK_BOT_CRASH_AT"] = crash_at
        log = open(self.tmp / f"bot-{len(self.bots)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "recheck",
             "bot", "--config", str(self.tmp / "bot.yaml"),
             "--queries", str(queries or ROOT / "queries"), *args],
            cwd=self.tmp, env=env, stdout=subprocess.PIPE, stderr=log,
        )  # fmt: skip
        log.close()
        self.bots.append(process)
        return process

    def logs_of(self, index: int = -1) -> list[dict[str, Any]]:
        """The JSON log lines of bot ``index``."""
        number = index % len(self.bots)
        lines = (self.tmp / f"bot-{number}.log").read_text().splitlines()
        found = []
        for line in lines:
            try:
                found.append(json.loads(line))
            except ValueError:
                found.append({"event": "not-json", "text": line})
        return found

    def states(self) -> dict[str, int]:
        """Queue rows per state, read from the bot's queue file."""
        path = self.tmp / "bot.sqlite"
        if not path.exists():
            return {}
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
            try:
                rows = conn.execute("SELECT state, COUNT(*) FROM inbox GROUP BY state").fetchall()
            except sqlite3.OperationalError:
                return {}
        return dict(rows)

    def stop_all(self) -> None:
        for process in self.bots:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fake Gerrit and a logs server for one test; its bots are stopped at the end."""
    with FakeGerrit(tmp_path) as gerrit, LogSite() as logs:
        world = World(tmp_path, gerrit, logs)
        try:
            yield world
        finally:
            world.stop_all()
