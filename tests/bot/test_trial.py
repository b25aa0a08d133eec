"""The README's bot trial (examples/): recorded-shape events, fixture logs served from disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recheck.config.files import Config, FetchConfig
from recheck.logs.source import SourceError
from recheck.logs.sources import open_source

ROOT = Path(__file__).parents[2]
BUILDS = ROOT / "tests" / "fixtures" / "builds"


def test_the_readme_trial_prints_the_comments_and_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "RECHECK_CACHE_DIR": ""}
    env.pop("RECHECK_HOME", None)
    env.pop("RECHECK_CONFIG", None)
    before = set(ROOT.rglob("*.sqlite"))
    done = subprocess.run(
        [sys.executable, "-m", "recheck", "bot", "--config", "examples/bot.yaml", "--once",
         "--dry-run", "--replay", "examples/events.jsonl"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = [json.loads(line) for line in done.stdout.splitlines()]
    by_change = {item["change"]: item for item in said}
    assert set(by_change) == {"44670", "458341"}
    assert "bugs/demo-1" in by_change["44670"]["message"]
    assert "bugs/demo-2" in by_change["44670"]["message"]
    assert "bugs/demo-3" in by_change["458341"]["message"]
    assert list(tmp_path.iterdir()) == []
    assert set(ROOT.rglob("*.sqlite")) == before
    assert not (ROOT / ".recheck").exists()


def _config(tmp_path: Path) -> Config:
    root = ("https://logs.example.org/1/2/", BUILDS / "devstack-zuulv3")
    return Config(fetch=FetchConfig(local_roots=(root,)), path=tmp_path / "bot.yaml")


def test_a_local_root_serves_its_urls_from_disk(tmp_path: Path) -> None:
    with open_source("https://logs.example.org/1/2", _config(tmp_path)) as source:
        assert "job-output.txt" in source.paths()


@pytest.mark.parametrize(
    "url",
    ["https://logs.example.org/1/2/../../../../etc", "https://logs.example.org/1/2/%2e%2e/x/../.."],
)
def test_a_local_root_never_leads_outside_itself(url: str, tmp_path: Path) -> None:
    try:
        with open_source(url, _config(tmp_path)) as source:
            paths = source.paths()
    except SourceError:
        return
    assert all(not p.startswith("/") and ".." not in p.split("/") for p in paths)
