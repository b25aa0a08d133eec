"""A failed build against a passing run of the same job: the cause a human would mark
ranks first or nearly so, in each kind of log recheck is given.

The failed builds are real logs (tests/fixtures/logs); each passing run is the same log
as another run writes it (``runs.other_run``: fresh timestamps, ids, pids, durations,
node names) without the lines a human marks as the failure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from runs import other_run, without

from recheck.cli.main import main
from recheck.logs.build import Build
from recheck.logs.localdir import FileSource, local_source
from recheck.logs.logfiles import DEFAULT_FILE_RULES
from recheck.scan.anomaly.draft import draft
from recheck.scan.anomaly.rank import line_score
from recheck.scan.anomaly.reading import BuildLogs

LOGS = Path(__file__).parents[2] / "fixtures" / "logs"


def _logs(path: Path) -> BuildLogs:
    source = local_source(path)
    rules = source.rules() if isinstance(source, FileSource) else DEFAULT_FILE_RULES
    return BuildLogs(source, rules, Build(), str(path))


def _pair(
    tmp_path: Path, name: str, failed_text: str, cause_region: set[int], **swap: str
) -> tuple[Path, Path]:
    failed = tmp_path / "failed" / name
    good = tmp_path / "good" / name
    failed.parent.mkdir()
    good.parent.mkdir()
    failed.write_text(failed_text, encoding="utf-8")
    passing = without(failed_text, cause_region)
    for old, new in swap.items():
        passing = passing.replace(old.replace("_", " "), new.replace("_", " "))
    good.write_text(other_run(passing), encoding="utf-8")
    return failed, good


def _top_lines(failed: Path, good: Path, top: int = 3) -> list[int]:
    report = draft(_logs(failed), [_logs(good)], top=top, wanted=0)
    return [anomaly.line for anomaly in report.anomalies]


def _error_lines(lines: list[str]) -> set[int]:
    """The oslo.log lines of errors and their tracebacks: what a human marks."""
    return {n for n, line in enumerate(lines, 1) if re.search(r" (?:ERROR|TRACE|CRITICAL) ", line)}


def _text(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def test_console_log_a_failed_test_and_its_assertion_rank_first(tmp_path: Path) -> None:
    text = _text("console.html.excerpt.txt")
    lines = text.split("\n")
    # The passing run: the same tests say "ok", no failure report after them.
    fails = {n for n, line in enumerate(lines, 1) if "... FAIL" in line}
    report = set(range(469, 535))
    failed, good = _pair(tmp_path, "console.html", text, fails | report)
    good.write_text(
        other_run(
            "\n".join(
                line.replace("... FAIL", "... ok")
                for n, line in enumerate(lines, 1)
                if n not in report
            ).replace("Finished: FAILURE", "Finished: SUCCESS")
        ),
        encoding="utf-8",
    )
    causes = {
        n
        for n, line in enumerate(lines, 1)
        if re.search(r"\.\.\. FAIL|^.{26}FAIL: |AssertionError", line)
    }
    assert set(_top_lines(failed, good, 3)) & causes


def test_oslo_service_log_the_error_with_its_traceback_ranks_first(tmp_path: Path) -> None:
    text = _text("neutron-server.excerpt.log")
    lines = text.split("\n")
    traceback = _error_lines(lines)
    failed, good = _pair(tmp_path, "screen-q-svc.txt", text, traceback)
    top = _top_lines(failed, good, 2)
    assert top and lines[top[0] - 1].split()[3] in ("ERROR", "TRACE")
    assert "Unrecoverable error" in lines[top[0] - 1] or "AssertionError" in lines[top[0] - 1]


def test_syslog_on_another_node_a_killed_process_ranks_first(tmp_path: Path) -> None:
    text = _text("syslog.excerpt.txt")
    # The passing run ran on another node: every line names another host.
    failed, good = _pair(tmp_path, "syslog.txt", text, {148}, hpcloud_b3="rax_iad")
    assert 148 in _top_lines(failed, good, 3)


def test_plain_program_output_any_name_the_assertion_ranks_near_the_top(tmp_path: Path) -> None:
    # A program's output without any prefix, in a file of a name no rule knows.
    lines = [line[26:] for line in _text("console.html.excerpt.txt").split("\n")]
    text = "\n".join(lines)
    cause = next(n for n, line in enumerate(lines, 1) if line.startswith("AssertionError"))
    report = set(range(469, 535))
    failed, good = _pair(tmp_path, "run-tests.out", text, report)
    top = _top_lines(failed, good, 5)
    assert cause in top or set(top) & {n for n in report if "FAIL" in lines[n - 1]}


def test_identical_runs_have_no_anomaly(tmp_path: Path) -> None:
    text = _text("neutron-server.excerpt.log")
    failed, good = _pair(tmp_path, "screen-q-svc.txt", text, set())
    assert _top_lines(failed, good) == []


def _oslo_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A neutron-server log with a traceback, and a passing run without it."""
    text = _text("neutron-server.excerpt.log")
    lines = text.split("\n")
    traceback = _error_lines(lines)
    return _pair(tmp_path, "screen-q-svc.txt", text, traceback)


def test_json_has_exactly_the_issue_shape_and_proposals_are_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed, good = _oslo_pair(tmp_path)
    assert main(["draft", str(failed), "--baseline", str(good), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"anomalies", "proposals"}
    assert out["anomalies"] and set(out["anomalies"][0]) == {"filename", "line", "text", "score"}
    assert out["proposals"]
    for proposal in out["proposals"]:
        assert set(proposal) == {"query", "matches_failed", "baseline_hits", "history"}
        assert proposal["matches_failed"] is True and proposal["baseline_hits"] == 0
        assert set(proposal["history"]) == {"failure_builds", "success_builds"}
        assert not re.search(r"\d", proposal["query"].split(" AND tags:")[0])  # no volatile ids
        assert 'tags:"screen-q-svc.txt"' in proposal["query"]


def test_write_makes_a_signature_file_whose_example_recheck_check_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed, good = _oslo_pair(tmp_path)
    target = tmp_path / "queries" / "draft-1.yaml"
    assert main(["draft", str(failed), "--baseline", str(good), "--write", str(target)]) == 0
    written = target.read_text(encoding="utf-8")
    assert written.startswith("query: ") and "examples:" in written
    capsys.readouterr()
    assert main(["check", str(target.parent)]) == 0
    assert "1 example (0 failed)" in capsys.readouterr().out
    # Never replaced.
    assert main(["draft", str(failed), "--baseline", str(good), "--write", str(target)]) == 2


def test_no_baseline_and_no_store_says_to_pass_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECHECK_HOME", raising=False)
    log = tmp_path / "x.log"
    log.write_text("error: boom\n", encoding="utf-8")
    assert main(["draft", str(log)]) == 2
    assert "--baseline" in capsys.readouterr().err
    # A mistyped path is said to be one (it could only be a stored build's uuid).
    assert main(["draft", "nope.log", "--baseline", str(log)]) == 2
    assert "nope.log: no such file or directory" in capsys.readouterr().err


def test_stored_builds_by_uuid_and_the_job_s_passing_builds_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _text("neutron-server.excerpt.log")
    lines = text.split("\n")
    cause = _error_lines(lines)
    # Both runs rewritten (timestamps no clock reads), so both are stored as of now.
    failed = tmp_path / "f" / "screen-q-svc.txt"
    good = tmp_path / "g" / "screen-q-svc.txt"
    failed.parent.mkdir()
    good.parent.mkdir()
    failed.write_text(other_run(text, seed=5), encoding="utf-8")
    good.write_text(other_run(without(text, cause), seed=6), encoding="utf-8")
    store = str(tmp_path / "store")
    for path, status, uuid in ((failed, "FAILURE", "f" * 32), (good, "SUCCESS", "a" * 32)):
        _ingest(store, path, status, uuid, None, tmp_path)
    capsys.readouterr()
    assert main(["draft", "f" * 32, "--store", store, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["anomalies"]
    assert out["anomalies"][0]["line"] in cause
    assert out["proposals"] and out["proposals"][0]["history"] == {
        "failure_builds": 1,
        "success_builds": 0,
    }
    # Without a passing build of the job in the store: an error saying what to pass.
    capsys.readouterr()
    assert main(["draft", "a" * 32, "--store", store]) == 2
    assert "no SUCCESS build of job neutron-job" in capsys.readouterr().err


def _ingest(
    store: str, path: Path, status: str, uuid: str, change: str | None, queries: Path
) -> None:
    argv = ["ingest", str(path), "--store", store, "--queries", str(queries)]
    argv += ["--build-name", "neutron-job", "--build-status", status, "--build-uuid", uuid]
    argv += ["--build-change", change] if change is not None else []
    assert main(argv) == 0


def test_clusters_group_uncategorized_failures_by_their_top_anomaly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _text("neutron-server.excerpt.log")
    lines = text.split("\n")
    cause = _error_lines(lines)
    store = str(tmp_path / "store")
    passing = tmp_path / "pass" / "screen-q-svc.txt"
    passing.parent.mkdir()
    passing.write_text(other_run(without(text, cause), seed=1), encoding="utf-8")
    _ingest(store, passing, "SUCCESS", "0" * 32, "100", tmp_path)
    # Three failures with the traceback (two changes), one with another error.
    for index, change in enumerate(("101", "102", "102")):
        failed = tmp_path / f"f{index}" / "screen-q-svc.txt"
        failed.parent.mkdir()
        failed.write_text(other_run(text, seed=10 + index), encoding="utf-8")
        _ingest(store, failed, "FAILURE", f"{index + 1}" * 32, change, tmp_path)
    other = tmp_path / "other" / "screen-q-svc.txt"
    other.parent.mkdir()
    other_text = (
        without(text, cause) + "2015-10-29 10:52:00.000 77 ERROR neutron.db [-] DB gone away\n"
    )
    other.write_text(other_run(other_text, seed=20), encoding="utf-8")
    _ingest(store, other, "FAILURE", "9" * 32, "103", tmp_path)
    capsys.readouterr()
    assert main(["clusters", "--store", store, "--days", "100000", "--format", "json"]) == 0
    clusters = json.loads(capsys.readouterr().out)
    assert [len(cluster["builds"]) for cluster in clusters] == [3, 1]
    first, second = clusters
    assert set(first) == {"key", "builds", "jobs", "first_seen", "last_seen", "proposal"}
    assert set(first["builds"]) == {"1" * 32, "2" * 32, "3" * 32}
    assert first["jobs"] == ["neutron-job"]
    assert "<num>" not in first["proposal"] and 'tags:"screen-q-svc.txt"' in first["proposal"]
    assert second["builds"] == ["9" * 32] and "DB gone away" in second["key"]
    assert main(["clusters", "--store", store, "--days", "100000"]) == 0
    assert "3 builds, 2 changes" in capsys.readouterr().out


def test_a_broken_anomaly_book_is_reported_and_the_build_still_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    log = tmp_path / "a" / "run.log"
    log.parent.mkdir()
    log.write_text("ERROR: boom\n", encoding="utf-8")
    _ingest(store, log, "FAILURE", "1" * 32, "1", tmp_path)
    (tmp_path / "store" / "anomalies.sqlite").write_bytes(b"not a database" * 100)
    capsys.readouterr()
    _ingest(store, log, "FAILURE", "2" * 32, "2", tmp_path)
    captured = capsys.readouterr()
    assert "anomalies.sqlite" in captured.err and "1 ingested" in captured.out


def test_an_anomaly_the_history_shows_in_passing_builds_ranks_below_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECHECK_HOME", raising=False)
    noise = "ERROR: cache warmup slow on this node"
    failed = tmp_path / "f" / "run.log"
    good = tmp_path / "g" / "run.log"
    passing = tmp_path / "p" / "run.log"
    for path, text in (
        (failed, f"start\nERROR: volume attach refused by backend\nmiddle\n{noise}\nend\n"),
        (good, "start\nmiddle\nend\n"),
        (passing, f"start\n{noise}\nend\n"),
    ):
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
    argv = ["draft", str(failed), "--baseline", str(good), "--format", "json"]
    assert main(argv) == 0
    without_history = json.loads(capsys.readouterr().out)["anomalies"]
    assert without_history[0]["text"] == noise  # nearer the end
    store = str(tmp_path / "store")
    _ingest(store, passing, "SUCCESS", "p" * 32, "1", tmp_path)
    capsys.readouterr()
    assert main([*argv, "--store", store]) == 0
    with_history = json.loads(capsys.readouterr().out)["anomalies"]
    assert with_history[0]["text"] == "ERROR: volume attach refused by backend"


@pytest.mark.parametrize(
    ("cause", "verdict"),
    [
        # Real shapes of lines that say why, above lines that only say that it failed.
        ("fatal: [controller]: FAILED! => {\"msg\": \"No package matching 'x'\"}",
         "controller : ok=12 changed=3 unreachable=0 failed=1 skipped=2"),
        ("E       AssertionError: assert 200 == 404",
         "======= 1 failed, 10 passed in 0.52s ======="),
        ("foo.c:12:5: error: 'bar' undeclared (first use in this function)",
         "make: *** [Makefile:7: all] Error 1"),
        ("panic: runtime error: invalid memory address or nil pointer dereference",
         "FAIL\tgithub.com/x/y\t0.012s"),
        ("2013-09-27 18:47:11.725 | AssertionError: State change timeout exceeded!(400s)",
         "2013-09-27 18:49:31.824999 | Finished: FAILURE"),
        ("Exception in thread \"main\" java.lang.NullPointerException",
         "BUILD FAILED"),
    ],
)  # fmt: skip
def test_a_line_that_says_why_outscores_one_that_says_it_failed(cause: str, verdict: str) -> None:
    assert line_score(cause) > line_score(verdict)


def test_a_baseline_of_another_file_name_still_refuses_a_phrase_it_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The issue's labelled pairs: single files of any name, failed.log against good.log.
    failed = tmp_path / "failed.log"
    good = tmp_path / "good.log"
    failed.write_text("start\nERROR: disk full on /var\nERROR: quota service down\n", "utf-8")
    good.write_text("start\nnote: ERROR: disk full on /var (expected in this test)\n", "utf-8")
    assert main(["draft", str(failed), "--baseline", str(good), "--format", "json"]) == 0
    queries = [p["query"] for p in json.loads(capsys.readouterr().out)["proposals"]]
    assert queries and all("disk full" not in query for query in queries)
    assert any("quota service down" in query for query in queries)


def test_a_directory_of_logs_no_rule_names_is_read_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = tmp_path / "failed" / "worker"
    good = tmp_path / "good" / "worker"
    failed.mkdir(parents=True)
    good.mkdir(parents=True)
    (failed / "app.log").write_text("start\nERROR: worker crashed: out of memory\nend\n", "utf-8")
    (good / "app.log").write_text("start\nend\n", "utf-8")
    argv = ["draft", str(failed.parent), "--baseline", str(good.parent), "--format", "json"]
    assert main(argv) == 0
    [anomaly] = json.loads(capsys.readouterr().out)["anomalies"]
    assert (anomaly["filename"], anomaly["line"]) == ("worker/app.log", 2)
