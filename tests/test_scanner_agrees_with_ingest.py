"""The bot comments from the scanner (``classify_build``) and stores the build behind the
comment (``ingest_build``): what it stores must say what it commented. Both are exact,
so on the real fixture builds they agree bug for bug, and the scanner's examples are
the first of the matches stored, and of those the store finds again in the events it
holds (issue 16 item 4). Read from disk and over HTTP, where ingest has its own path."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from gerrit_fake import LogSite

from recheck.config.files import Config, FetchConfig
from recheck.logs.build import Build
from recheck.logs.buildlogs import read_build_info
from recheck.logs.localdir import DirSource
from recheck.logs.source import LogSource
from recheck.logs.sources import open_source
from recheck.pipeline import DEFAULT_EXAMPLES, classify_build, ingest_build
from recheck.query.signatures import Signature, load_signatures
from recheck.store import open_store

ROOT = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
BUILDS = FIXTURES / "builds"
EXCERPTS = {
    "console.html": "console.html.excerpt.txt",
    "logs/screen-n-cpu.txt": "nova-compute.excerpt.log",
    "logs/screen-q-svc.txt": "neutron-server.excerpt.log",
    "logs/screen-c-api.txt": "screen-c-api.excerpt.txt",
    "logs/syslog.txt": "syslog.excerpt.txt",
}
"""A third build: the real log excerpts of tests/fixtures/logs, where broad signatures
match many events (more than the scanner keeps as examples)."""
BROAD = [
    'message:"No valid host was found" OR tags:"screen-n-cpu.txt"',
    'NOT message:"DEBUG" AND NOT message:"INFO"',
    'message:fail* AND tags:"console"',
    "message:err* OR message:warn*",
    'message:* AND tags:"syslog"',
    '_exists_:build_name AND message:"error"',
    "loglevel:ERROR",
    'message:"Traceback" OR filename:"console.html"',
]


@pytest.fixture(scope="module")
def signatures(tmp_path_factory: pytest.TempPathFactory) -> list[Signature]:
    """The shipped signatures, the 91 real elastic-recheck queries of 2020, and broad ones."""
    shipped, errors = load_signatures(ROOT / "queries")
    real, more = load_signatures(FIXTURES / "queries" / "elastic-recheck-2020")
    directory = tmp_path_factory.mktemp("broad")
    for index, query in enumerate(BROAD):
        (directory / f"broad-{index}.yaml").write_text(json.dumps({"query": query}))
    broad, most = load_signatures(directory)
    assert errors == more == most == [] and len(broad) == len(BROAD)
    return shipped + real + broad


@pytest.fixture(scope="module")
def excerpts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("excerpts")
    for target, name in EXCERPTS.items():
        (directory / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / "logs" / name, directory / target)
    return directory


@contextmanager
def _opened(directory: Path, over: str) -> Iterator[LogSource]:
    if over == "disk":
        yield DirSource(directory)
        return
    with LogSite() as site:
        site.routes["build"] = directory
        config = Config(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), retries=0))
        with open_source(f"{site.url}/logs/build/", config) as source:
            yield source


@pytest.mark.parametrize("name", [*sorted(path.name for path in BUILDS.iterdir()), "excerpts"])
@pytest.mark.parametrize("voting", ["1", "0"])
@pytest.mark.parametrize("over", ["disk", "http"])
def test_the_scanner_finds_the_bugs_ingest_stores(
    tmp_path: Path, signatures: list[Signature], excerpts: Path, name: str, voting: str, over: str
) -> None:
    with _opened(excerpts if name == "excerpts" else BUILDS / name, over) as source:
        _agree(tmp_path, signatures, source, voting, excerpts=name == "excerpts")


def _agree(
    tmp_path: Path, signatures: list[Signature], source: LogSource, voting: str, excerpts: bool
) -> None:
    options = Build(build_uuid="b" * 32, build_status="FAILURE", voting=voting)
    scanned = classify_build(source, signatures, options)
    build = read_build_info(source, options)  # as the bot and `recheck ingest` do
    with open_store(tmp_path / "store") as store:
        ingested = ingest_build(store, source, build, signatures)
        [stored] = store.builds()
        held = store.classify(build, signatures)
    bugs = list(dict.fromkeys(match.bug for match in ingested.matches))
    assert scanned.bugs == bugs == held.bugs
    assert list(stored.bugs) == sorted(bugs)
    for bug in bugs:
        every = [match for match in ingested.matches if match.bug == bug]
        examples = [match for match in scanned.matches if match.bug == bug]
        again = [(m.filename, m.line) for m in held.matches if m.bug == bug]
        assert examples == every[:DEFAULT_EXAMPLES]
        assert again == [(m.filename, m.line) for m in every]
        if bug not in scanned.capped:
            assert scanned.counts[bug] == len(every)
    if voting == "1":
        assert bugs, "the fixture builds show known bugs to voting jobs"
    if excerpts and voting == "1":
        assert scanned.capped, "some signature matched more events than the examples kept"
