"""A build directory classified end to end (recheck.pipeline, `recheck events|classify`)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from recheck.cli.main import main
from recheck.logs.build import Build
from recheck.logs.buildlogs import build_events
from recheck.logs.eventfile import iter_events
from recheck.logs.localdir import DirSource
from recheck.models import Match
from recheck.pipeline import classify_build
from recheck.query.matcher import match_events
from recheck.query.signatures import Signature, load_signatures

ROOT = Path(__file__).parents[1]
BUILDS = Path(__file__).parent / "fixtures" / "builds"
JENKINS = BUILDS / "gate-tempest-devstack-vm-neutron"
ZUUL = BUILDS / "devstack-zuulv3"
LOG_URL = "https://logs.openstack.org/70/44670/3/gate/gate-tempest-devstack-vm-neutron/02d68e3"


@pytest.fixture(scope="module")
def shipped_signatures() -> list[Signature]:
    signatures, errors = load_signatures(ROOT / "queries")
    assert errors == []
    return signatures


def test_the_demo_signatures_classify_the_real_jenkins_build(
    shipped_signatures: list[Signature],
) -> None:
    result = classify_build(DirSource(JENKINS), shipped_signatures, Build(build_status="FAILURE"))
    assert result.bugs == ["demo-1", "demo-2"]
    assert result.matches == [
        Match("demo-1", "logs/screen-q-svc.txt", 20, result.matches[0].message),
        Match(
            "demo-2",
            "console.html",
            110,
            "AssertionError: State change timeout exceeded!(400s) While waitingfor "
            "set(['running', '_GONE']) at \"pending\"",
        ),
    ]
    assert result.matches[0].message.startswith("[-] delete failed\n")
    assert len(result.matches[0].message) == 300  # an excerpt, not the whole traceback
    assert result.problems == []


def test_non_voting_builds_only_use_allow_nonvoting_signatures(
    shipped_signatures: list[Signature],
) -> None:
    result = classify_build(DirSource(JENKINS), shipped_signatures, Build(voting="0"))
    assert result.bugs == []
    assert "non-voting" in result.skipped["demo-2"]
    zuul = classify_build(DirSource(ZUUL), shipped_signatures, Build(voting="0"))
    assert zuul.bugs == ["demo-3"]  # the one demo signature with allow-nonvoting


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["classify", str(JENKINS), "--queries", str(ROOT / "queries"), "--format", "json"]
    code, out, _ = _run([*argv, "--build-name", "gate-tempest", "--log-url", LOG_URL], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["build"] == {"build_name": "gate-tempest", "log_url": LOG_URL}
    assert result["bugs"] == ["demo-1", "demo-2"]
    assert result["matches"][1] == {
        "bug": "demo-2",
        "filename": "console.html",
        "line": 110,
        "message": "AssertionError: State change timeout exceeded!(400s) While waitingfor "
        "set(['running', '_GONE']) at \"pending\"",
        "url": f"{LOG_URL}/console.html#110",
    }


def test_classify_text_names_bug_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["classify", str(ZUUL), "--queries", str(ROOT / "queries")], capsys)
    assert code == 0
    assert out.splitlines() == [
        "tempest-full (5b2e9c1, check)",
        "bug demo-3: 1 matching event",
        "  controller/logs/screen-c-vol.txt:9: May 26 20:44:32.284561 "
        "ubuntu-xenial-rax-dfw-9013276 cinder-volume[27348]: "
        "error: cannot switch to a different thread",
    ]


def test_events_output_is_what_match_reads(
    capsys: pytest.CaptureFixture[str], shipped_signatures: list[Signature]
) -> None:
    code, out, _ = _run(["events", str(JENKINS), "--build-status", "FAILURE"], capsys)
    assert code == 0
    events = list(iter_events(io.StringIO(out), "<events>"))
    assert len(events) == len(out.splitlines())
    assert events[0][0] == "console.html:2"
    assert all(event["build_status"] == "FAILURE" for _, event in events)
    matches = match_events(shipped_signatures, events)
    assert matches["demo-1"] == ["logs/screen-q-svc.txt:20"]
    assert matches["demo-2"] == ["console.html:110"]


def test_events_keep_debug(capsys: pytest.CaptureFixture[str]) -> None:
    _, default, _ = _run(["events", str(JENKINS)], capsys)
    _, kept, _ = _run(["events", str(JENKINS), "--keep-debug"], capsys)
    assert '"loglevel": "DEBUG"' not in default
    assert kept.count('"loglevel": "DEBUG"') > 20


def test_a_source_that_is_not_a_directory_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(["events", str(tmp_path / "missing")], capsys)
    assert code == 2
    assert out == ""
    assert "missing: no such file or directory; SOURCE is a build's log directory" in err


def test_a_truncated_file_is_a_warning_not_a_failure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "console.html.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    code, _, err = _run(["events", str(tmp_path)], capsys)
    assert code == 0
    assert "recheck events: warning: console.html.gz: compressed data is truncated" in err


SUBUNIT = Path(__file__).parent / "fixtures" / "subunit" / "tempest-failures.subunit"


def _test_ids_signature(tmp_path: Path, test_id: str) -> Signature:
    path = tmp_path / "queries" / "1775947.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f'query: message:"Timed out"\ntest_ids:\n  - {test_id}\n')
    signatures, errors = load_signatures(path.parent)
    assert errors == []
    return signatures[0]


@pytest.mark.parametrize(
    ("test_id", "with_stream", "bugs", "skipped"),
    [
        (
            "neutron_tempest_plugin.scenario.test_dns_integration.DNSIntegrationTests.test_fip",
            True,
            ["1775947"],
            None,
        ),
        (
            "neutron_tempest_plugin.scenario.test_dns_integration.DNSIntegrationTests.test_server_with_fip",
            True,
            [],
            "none of its test_ids failed",
        ),
        ("tempest.api.compute.servers.test_create_server", False, [], "no subunit stream"),
    ],
)
def test_a_signature_with_test_ids_needs_one_of_them_failed(
    tmp_path: Path, test_id: str, with_stream: bool, bugs: list[str], skipped: str | None
) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "job-output.txt").write_text("2021-06-23 05:14:53.561762 | Timed out waiting\n")
    if with_stream:
        (build / "testrepository.subunit").write_bytes(SUBUNIT.read_bytes())
    signature = _test_ids_signature(tmp_path, test_id)
    result = classify_build(DirSource(build), [signature], Build())
    assert result.bugs == bugs
    if skipped is None:
        assert result.skipped == {}
    else:
        assert skipped in result.skipped["1775947"]


@pytest.mark.parametrize("build_dir", [JENKINS, ZUUL], ids=["jenkins", "zuulv3"])
def test_forked_workers_classify_as_one_process_does(
    shipped_signatures: list[Signature], build_dir: Path, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "build"
    shutil.copytree(build_dir, root)
    # A problem found inside a worker must reach the result too.
    logs = "logs" if build_dir == JENKINS else "controller/logs"
    broken = root / logs / "devstacklog.txt.gz"  # console-tagged: signatures look at it
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    build = Build(build_status="FAILURE")
    serial = classify_build(DirSource(root), shipped_signatures, build)
    seen: list[str] = []
    forked = classify_build(
        DirSource(root), shipped_signatures, build, workers=2, on_file=seen.append
    )
    assert serial.matches, "the fixture build should match some signature"
    assert forked.matches == serial.matches
    assert forked.problems == serial.problems
    assert [problem.path for problem in forked.problems] == [f"{logs}/devstacklog.txt.gz"]
    assert forked.stats == serial.stats
    assert len(seen) == len(set(seen))  # each file announced once
    # Every file read, and the broken one that could not be.
    assert len(seen) == serial.stats.files - serial.stats.files_skipped + 1


@pytest.mark.parametrize("query", ["message:\0a*", "?\0foo", "\0* ~", 'message:"\0"', "a\0b*"])
def test_a_signature_with_a_nul_never_stops_the_others(
    query: str, shipped_signatures: list[Signature], tmp_path: Path
) -> None:
    # A NUL once emptied the literal handed to hyperscan, which then refused the whole
    # set: every signature failed in classify, match and ingest (and in the bot).
    (tmp_path / "1.yaml").write_text(f"query: {json.dumps(query)}\n")
    hostile, errors = load_signatures(tmp_path)
    assert errors == []
    signatures = [*shipped_signatures, *hostile]
    result = classify_build(DirSource(JENKINS), signatures, Build(build_status="FAILURE"))
    assert result.bugs == ["demo-1", "demo-2"]
    events = list(build_events(DirSource(JENKINS), Build()))
    matched = match_events(signatures, events)
    assert matched["demo-1"] and matched["demo-2"]
