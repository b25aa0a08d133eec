"""The recheck command line: output formats, exit codes and error messages."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from recheck import __version__
from recheck.cli.main import main

CLI_FIXTURES = Path(__file__).parents[1] / "fixtures" / "cli"
EXPECTED_MATCH = json.loads((CLI_FIXTURES / "expected-match.json").read_text())
SUMMARY = re.compile(r"^(\d+) signatures?, (\d+) errors?, (\d+) warnings?$")


@pytest.fixture
def in_cli_fixtures(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from tests/fixtures/cli so paths in messages are the short relative ones."""
    monkeypatch.chdir(CLI_FIXTURES)
    return CLI_FIXTURES


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def run_match(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code, out, err = run(["match", *argv], capsys)
    return code, json.loads(out) if code == 0 else out, err


# --- recheck match ---------------------------------------------------------------------


def test_match_prints_golden_json(
    in_cli_fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, err = run_match(["--queries", "queries", "events.jsonl"], capsys)

    assert (code, err) == (0, "")
    assert result == EXPECTED_MATCH


def test_match_output_covers_every_signature_file_once(
    in_cli_fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, result, _ = run_match(["--queries", "queries", "events.jsonl"], capsys)

    bugs = sorted(p.stem for p in (in_cli_fixtures / "queries").glob("*.yaml"))
    assert sorted([*result["matches"], *result["errors"]]) == bugs
    assert not set(result["matches"]) & set(result["errors"])


def test_golden_file_says_what_the_fixture_events_mean() -> None:
    # Guards the golden file itself: these verdicts follow from the fixture by hand.
    matches = EXPECTED_MATCH["matches"]
    assert matches["2000003"] == ["console-1", "console-2"], "voting 1 (a number) is text '1'"
    assert matches["2000005"] == [], '"id" is not a searchable field'
    assert matches["2000008"] == ["screen-1"], "pid 2820 (a number) is text '2820'"
    assert matches["2000009"] == ["console-1", "console-2", "screen-2"], "false is text 'false'"
    assert EXPECTED_MATCH["errors"]["2000007"] == (
        "queries/2000007.yaml:2:1: unknown key 'supress-graph'; did you mean 'suppress-graph'?"
    )
    assert EXPECTED_MATCH["errors"]["2000006"].startswith(
        "queries/2000006.yaml:3:16: invalid query: "
    )


def test_match_reads_stdin(
    in_cli_fixtures: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (in_cli_fixtures / "events.jsonl").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))

    code, result, _ = run_match(["--queries", "queries", "-"], capsys)

    assert code == 0
    assert result == EXPECTED_MATCH


def test_match_via_console_script(in_cli_fixtures: Path) -> None:
    script = Path(sys.executable).with_name("recheck")
    assert script.exists(), f"{script} missing: install the package (pip install -e .)"

    done = subprocess.run(
        [str(script), "match", "--queries", "queries", "events.jsonl"],
        capture_output=True,
        text=True,
        check=False,
        cwd=in_cli_fixtures,
    )

    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == EXPECTED_MATCH


def test_match_defaults_to_queries_in_current_directory(
    in_cli_fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run_match(["events.jsonl"], capsys)

    assert code == 0
    assert result == EXPECTED_MATCH


def test_match_empty_events_gives_empty_lists(
    tmp_path: Path, in_cli_fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "none.jsonl").write_text("\n")

    code, result, _ = run_match(["--queries", "queries", str(tmp_path / "none.jsonl")], capsys)

    assert code == 0
    assert result["matches"] == {bug: [] for bug in EXPECTED_MATCH["matches"]}
    assert result["errors"] == EXPECTED_MATCH["errors"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"id": "a", "message": "x"}\n{"id": "b", message}\n', "events.jsonl:2: invalid JSON"),
        ('{"id": "a"}\n\n["not", "an", "object"]\n', "events.jsonl:3: expected a JSON object"),
        ('{"message": "no id"}\n', 'events.jsonl:1: the event has no "id"'),
        ('{"id": ["a"], "message": "x"}\n', 'events.jsonl:1: "id" must be a string or a number'),
        (
            '{"id": "a"}\n{"id": "b", "build": {"name": "x"}}\n',
            "events.jsonl:2: field 'build' must be text or a list of texts, found an object",
        ),
        ('{"id": "a", "tags": [["x"]]}\n', "events.jsonl:1: field 'tags' must be text"),
    ],
)
def test_match_unusable_event_line_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: str, message: str
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(lines)

    code, out, err = run(["match", "--queries", str(CLI_FIXTURES / "queries"), str(events)], capsys)

    assert (code, out) == (2, "")
    assert err.startswith("recheck match: error: ")
    assert f"{tmp_path}/{message}" in err


def test_match_non_utf8_event_line_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"id": "a"}\n{"id": "b", "message": "caf\xe9"}\n')

    code, _, err = run(["match", "--queries", str(CLI_FIXTURES / "queries"), str(events)], capsys)

    assert code == 2
    assert f"{events}:2: not valid UTF-8" in err


def test_match_missing_events_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["match", str(tmp_path / "nope.jsonl")], capsys)

    assert (code, out) == (2, "")
    assert f"cannot read events file {tmp_path / 'nope.jsonl'}: No such file or directory" in err


def test_match_missing_queries_dir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"id": "a"}\n')

    code, out, err = run(["match", "--queries", str(tmp_path / "q"), str(events)], capsys)

    assert (code, out) == (2, "")
    assert "signature directory not found" in err


# --- recheck check ---------------------------------------------------------------------


def test_check_reports_errors_and_warnings_and_exits_1(
    in_cli_fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["check", "queries"], capsys)

    lines = out.splitlines()
    assert code == 1
    # Two signatures test only build fields: each matches every event of the builds it
    # selects (issue 16's broad signatures).
    broad = (
        "warning: broad: the query needs no word of an event's text (only field filters "
        "such as tags or filename, negations, _exists_): it matches every event of the "
        "files or builds it selects"
    )
    assert lines[0] == f"queries/2000003.yaml:1: {broad}"
    assert lines[1] == (
        "queries/2000005.yaml:2: warning: unknown field 'id': no event has it, so it never matches"
    )
    assert lines[2].startswith("queries/2000006.yaml:3:16: error: invalid query: ")
    assert lines[3] == (
        "queries/2000007.yaml:2:1: error: unknown key 'supress-graph'; "
        "did you mean 'suppress-graph'?"
    )
    assert lines[4] == f"queries/2000009.yaml:1: {broad}"
    assert lines[5:] == ["9 signatures, 2 errors, 3 warnings"]
    assert "\x1b[" not in out, "no colour codes when stdout is not a terminal"


def test_check_real_signatures_pass(
    real_queries_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["check", str(real_queries_dir)], capsys)

    summary = SUMMARY.match(out.splitlines()[-1])
    assert summary is not None, out
    assert (code, summary.group(1), summary.group(2)) == (0, "91", "0")


def test_check_warnings_fail_only_with_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "1.yaml").write_text("query: >-\n  message:*Error AND tags:console\n")

    relaxed, out, _ = run(["check", str(tmp_path)], capsys)
    strict, _, _ = run(["check", "--strict", str(tmp_path)], capsys)

    assert (relaxed, strict) == (0, 1)
    assert out.splitlines()[0].startswith(f"{tmp_path / '1.yaml'}:1: warning: leading wildcard")
    assert out.splitlines()[-1] == "1 signature, 0 errors, 1 warning"


def test_check_known_fields_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "1.yaml").write_text("query: message:x AND flavor:big\n")

    default_code, default_out, _ = run(["check", "--strict", str(tmp_path)], capsys)
    code, out, _ = run(
        ["check", "--strict", "--known-fields", "message, flavor", str(tmp_path)], capsys
    )

    assert default_code == 1
    assert "warning: unknown field 'flavor'" in default_out
    assert (code, out) == (0, "1 signature, 0 errors, 0 warnings\n")


def test_check_empty_directory_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", str(tmp_path)], capsys)

    assert code == 0
    assert out.splitlines() == [
        f"{tmp_path}: warning: no *.yaml signature files found",
        "0 signatures, 0 errors, 1 warning",
    ]


def test_check_missing_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["check", str(tmp_path / "nope")], capsys)

    assert code == 2
    assert "signature directory not found" in err


# --- top level -------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)

    assert (code, out) == (0, f"recheck {__version__}\n")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([], capsys)

    assert code == 2
    assert "check" in err and "match" in err


def test_unknown_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["match", "--nope", "x.jsonl"], capsys)

    assert code == 2
    assert "unrecognized arguments: --nope" in err


def test_match_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """`recheck match ... | head -1`: the reader leaves early; no traceback, status 0."""
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "1.yaml").write_text('query: message:"boom"\n')
    events = tmp_path / "events.jsonl"
    # ~1 MB of output: far more than a pipe holds, so recheck is still writing when the
    # reader goes away.
    events.write_text("".join(f'{{"id": "event-{i}", "message": "boom"}}\n' for i in range(60_000)))
    script = Path(sys.executable).with_name("recheck")
    recheck = subprocess.Popen(
        [str(script), "match", "--queries", str(queries), str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert recheck.stdout is not None and recheck.stderr is not None
    recheck.stdout.read(1)
    recheck.stdout.close()  # what `head` does after its first line
    with recheck.stderr:
        stderr = recheck.stderr.read().decode()
    assert recheck.wait(timeout=120) == 0
    assert "Traceback" not in stderr


def test_check_names_a_broad_clause_with_its_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "1.yaml").write_text(
        "suppress-graph: true\nquery: >-\n"
        '  (message:"A" AND message:"B") OR message:"C" tags:"console"\n'
    )

    code, out, _ = run(["check", str(tmp_path)], capsys)

    assert code == 0
    assert out.splitlines()[0].startswith(
        f"{tmp_path / '1.yaml'}:2: warning: broad: clause 'tags:console' needs no word"
    )


# --- recheck classify ------------------------------------------------------------------


def test_classify_says_when_a_count_is_a_lower_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, queries = tmp_path / "build", tmp_path / "q"
    build.mkdir()
    queries.mkdir()
    line = "2021-06-23 05:14:53.561762 | ssh: Connection refused\n"
    (build / "job-output.txt").write_text(line * 50)
    (build / "console.html").write_text(line * 3)
    (queries / "1.yaml").write_text('query: message:"connection refused"\n')

    code, out, _ = run(["classify", str(build), "--queries", str(queries)], capsys)
    assert code == 0
    assert out.splitlines()[1] == "bug 1: at least 14 matching events (first 10 shown)"
    assert len(out.splitlines()) == 12

    code, out, _ = run(
        ["classify", str(build), "--queries", str(queries), "--examples", "100"], capsys
    )
    assert out.splitlines()[1] == "bug 1: 53 matching events"

    code, out, _ = run(
        ["classify", str(build), "--queries", str(queries), "--format", "json", "-j", "1"],
        capsys,
    )
    result = json.loads(out)
    assert result["counts"] == {"1": {"matching_events": 14, "exact": False}}
    assert len(result["matches"]) == 10


def test_classify_without_hyperscan_says_a_big_build_is_slow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from recheck.cli import classify

    build, queries = tmp_path / "build", tmp_path / "q"
    build.mkdir()
    queries.mkdir()
    (build / "job-output.txt").write_text("2021-06-23 05:14:53.561762 | hello\n" * 100)
    (queries / "1.yaml").write_text("query: message:hello\n")
    monkeypatch.setattr(classify, "hyperscan_available", lambda: False)
    monkeypatch.setattr(classify, "SLOW_BUILD_BYTES", 1000)

    code, _, err = run(["classify", str(build), "--queries", str(queries)], capsys)

    assert code == 0
    assert "hyperscan is not installed" in err
    assert "pip install 'recheck[fast]'" in err
    assert len(err.splitlines()) == 1
