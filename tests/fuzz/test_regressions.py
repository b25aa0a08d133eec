"""The commands on the hostile inputs of issue 20 (items 3 and 5), end to end: an error
message and the promised exit status, never a traceback; one bad file hides no other."""

from __future__ import annotations

from pathlib import Path

import pytest

from recheck.cli.main import main
from recheck.query.parser import MAX_CLAUSES


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    (out + err).encode("utf-8")  # all of it printable
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    directory = tmp_path / "queries"
    directory.mkdir()
    (directory / "1.yaml").write_text('query: >-\n  message:"a b"\n')
    return directory


def test_match_reads_a_lone_surrogate_escape_as_a_replacement_character(
    tmp_path: Path, queries: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "e1", "message": "a \\udfff b"}\n{"id": "e\\udfff2", "message": "a b"}\n'
    )
    code, out, _ = _run(["match", str(events), "--queries", str(queries)], capsys)
    assert code == 0
    assert '"e1"' in out and '"e\ufffd2"' in out


def test_match_on_deep_nesting_exits_2_naming_the_line(
    tmp_path: Path, queries: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    events.write_text('{"id": "e1", "message": "a b"}\n{"id": "e2", "message": ' + deep + "}\n")
    code, _, err = _run(["match", str(events), "--queries", str(queries)], capsys)
    assert code == 2
    assert f"{events}:2: JSON nested too deeply" in err


def test_check_on_deep_yaml_reports_it_and_every_other_file(
    queries: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (queries / "2.yaml").write_text("query: " + "[" * 60_000 + "]" * 60_000 + "\n")
    (queries / "3.yaml").write_text("query: a\ntest_ids: " + "[" * 900 + "]" * 900 + "\n")
    (queries / "4.yaml").write_text("query: >-\n  " + " OR ".join(["x"] * (MAX_CLAUSES + 1)))
    (queries / "5.yaml").write_text("supress-graph: true\nquery: a\n")
    (queries / "6.yaml").write_text("query: " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, out, _ = _run(["check", str(queries)], capsys)
    assert code == 1
    assert f"{queries / '2.yaml'}:1:27: error: values nested more than" in out
    assert f"{queries / '3.yaml'}:2:30: error: values nested more than" in out
    assert f"{queries / '4.yaml'}:2:" in out and f"more than {MAX_CLAUSES:,} clauses" in out
    assert "did you mean 'suppress-graph'" in out
    assert f"{queries / '6.yaml'}:1:1: error: file is over" in out  # the 100k deep
    assert "6 signatures, 5 errors" in out


def test_check_prints_warnings_about_a_lone_surrogate(
    queries: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (queries / "2.yaml").write_text('query: "message:\\udfff*"\n')
    code, out, _ = _run(["check", str(queries)], capsys)
    assert code == 1 and "lone surrogate" in out


def test_a_stream_event_with_surrogates_is_queued_and_read_back_the_same() -> None:
    # Found by benchmarks/fuzz.py (seed 20, input 20217776): an escaped high surrogate
    # then a byte that is not UTF-8 (read by surrogateescape as a low one) made a pair,
    # which the queue's JSON wrote as one character.
    from recheck.bot.gerrit.events import FailureEvent, decode_event, failure_from_gerrit

    raw = (
        b'{"type": "comment-added", "author": {"username": "zuul", "name": "Zuul"}, '
        b'"comment": "\\n\\n- 3f2a https://logs/1/x : FAILURE in 1m", "change": {"number": 1, '
        b'"project": "openstack/nova", "branch": "master", "url": "u", "owner": {"name": '
        b'"\\ud83d\xd9ude00nova"}}, "patchSet": {"number": 2, "revision": "abc"}, '
        b'"eventCreatedOn": 1}'
    )
    found = failure_from_gerrit(decode_event(raw.decode("utf-8", "surrogateescape")), ("zuul",))
    assert found is not None
    assert found.author == "\ufffd\ufffdude00nova"
    text = found.to_json()
    text.encode("utf-8")
    assert FailureEvent.from_json(text) == found


def test_a_long_run_of_letters_in_text_with_an_accent_is_chopped_as_lucene_does() -> None:
    # Found by benchmarks/fuzz.py (seed 20, log input 20006604): a 250 KB line of one
    # letter with a few bytes that are not ASCII went through the tokenizer's full
    # Unicode rules, ~0.5 s per 255 letters (minutes a line). Its ASCII stretches are
    # now split as in an all-ASCII text; the tokens are Lucene's 255-unit pieces.
    from recheck.query.analysis import MAX_TOKEN_LENGTH, tokenize

    tokens = tokenize("\u00c9" + "E" * 250_000 + " x.y \u00e9t\u00e9")
    assert tokens[0] == "\u00e9" + "e" * (MAX_TOKEN_LENGTH - 1)
    assert [len(token) for token in tokens[1:-2]] == [255] * 979 + [101]
    assert tokens[-2:] == ["x.y", "\u00e9t\u00e9"]
