"""Signatures tested like code: ``examples:`` and ``counter-examples:`` in a signature
file, read with file:line:col errors, evaluated with the clauses each event did and did
not satisfy, and ``recheck check`` failing on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recheck.cli.main import main
from recheck.query.examples import Verdict, explain, failures
from recheck.query.nodes import Doc
from recheck.query.parser import sources
from recheck.query.signatures import Signature, SignatureError, load_signature, load_signatures

REPO = Path(__file__).resolve().parents[2]

QUERY = (
    'query: >-\n  message:"delete failed" AND\n  message:"PortNotFound" AND\n'
    '  tags:"screen-q-svc.txt"\n'
)


def load(tmp_path: Path, text: str, name: str = "1.yaml") -> Signature | SignatureError:
    path = tmp_path / name
    path.write_text(text)
    return load_signature(path)


def test_examples_are_read_with_their_index_line_and_event(tmp_path: Path) -> None:
    signature = load(
        tmp_path,
        QUERY + "examples:\n"
        "  - message: 'delete failed: PortNotFound'\n"
        "    tags: [screen-q-svc.txt]\n"
        "    pid: 2820\n"
        "    voting: true\n"
        "counter-examples:\n"
        "  - message: delete failed\n",
    )

    assert isinstance(signature, Signature)
    first, counter = signature.examples
    assert (first.name, first.line, first.must_match) == ("examples[0]", 6, True)
    # Numbers and booleans are the text they were written as, as in `recheck match`.
    assert first.event == {
        "message": "delete failed: PortNotFound",
        "tags": ["screen-q-svc.txt"],
        "pid": "2820",
        "voting": "true",
    }
    assert (counter.name, counter.line, counter.must_match) == ("counter-examples[0]", 11, False)
    assert failures(signature) == []


@pytest.mark.parametrize(
    ("tail", "where", "message"),
    [
        ("examples: foo\n", "5:11", "'examples' must be a list of events"),
        ("examples:\n  - just text\n", "6:5", "examples[0] must be an event: a mapping"),
        ("examples:\n  - tags: [console]\n", "6:5", "examples[0] has no 'message'"),
        (
            "counter-examples:\n  - message: x\n  - message: y\n    tags: console\n",
            "8:11",
            "counter-examples[1]: 'tags' must be a list such as [console",
        ),
        ("examples:\n  - message: {a: 1}\n", "6:14", "examples[0]: 'message' must be text"),
        ("examples:\n  - message: ~\n", "6:14", "examples[0]: 'message' must be text"),
        (
            "examples:\n  - message: x\n    tags: [console, [nested]]\n",
            "7:21",
            "examples[0]: each value of 'tags' must be text",
        ),
        (
            "examples:\n  - message: x\n    message: y\n",
            "7:5",
            "examples[0]: field 'message' given twice",
        ),
        ("examples:\n  - message: x\n    42: y\n", "7:5", "examples[0]: field names must be text"),
    ],
)
def test_malformed_examples_name_file_index_and_place(
    tmp_path: Path, tail: str, where: str, message: str
) -> None:
    error = load(tmp_path, QUERY + tail)

    assert isinstance(error, SignatureError)
    assert f"{error.line}:{error.column}" == where
    assert error.message.startswith(message), error.message
    assert str(error).startswith(f"{tmp_path / '1.yaml'}:{where}: ")


def test_a_malformed_example_does_not_stop_the_other_files(tmp_path: Path) -> None:
    load(tmp_path, QUERY + "examples: 3\n", "1.yaml")
    load(tmp_path, QUERY, "2.yaml")

    signatures, errors = load_signatures(tmp_path)

    assert [s.bug for s in signatures] == ["2"]
    assert [e.path.name for e in errors] == ["1.yaml"]


def test_failures_name_the_clauses_satisfied_and_not(tmp_path: Path) -> None:
    signature = load(
        tmp_path,
        QUERY + "examples:\n"
        "  - message: '[-] delete failed'\n"
        "    tags: [screen, screen-q-svc.txt]\n"
        "counter-examples:\n"
        "  - message: 'delete failed PortNotFound: Port 6a8a could not be found'\n"
        "    tags: [screen-q-svc.txt]\n",
    )
    assert isinstance(signature, Signature)

    missed, caught = failures(signature)

    # Clauses are quoted as written in the file (case and hyphens kept), not analyzed.
    assert str(missed) == (
        'examples[0] is not matched by the query; it satisfies message:"delete failed", '
        'tags:"screen-q-svc.txt"; it does not satisfy message:"PortNotFound"'
    )
    assert str(caught) == (
        "counter-examples[0] is matched by the query, but is a counter-example; it "
        'satisfies message:"delete failed", message:"PortNotFound", tags:"screen-q-svc.txt"'
    )


def test_explain_walks_or_groups_negations_and_nesting() -> None:
    text = 'message:"timed out" AND (tags:console OR filename:"job-output.txt") -message:retrying'
    root, texts = sources(text)

    console = Doc({"message": "it timed out, retrying", "tags": ["console"]})
    other = Doc({"message": "request timed out", "tags": ["screen"], "filename": "x.txt"})

    assert explain(root, texts, doc=console) == [
        Verdict('message:"timed out"', True),
        Verdict("tags:console", True),
        Verdict("NOT message:retrying", False),
    ]
    assert explain(root, texts, doc=other) == [
        Verdict('message:"timed out"', True),
        Verdict('(tags:console OR filename:"job-output.txt")', False),
        Verdict("NOT message:retrying", True),
    ]


def test_explain_without_source_texts_writes_clauses_from_the_tree() -> None:
    root, _ = sources("message:Foo AND tags:console")

    assert explain(root, doc=Doc({"message": "foo", "tags": ["screen"]})) == [
        Verdict("message:foo", True),
        Verdict("tags:console", False),
    ]


def test_check_fails_naming_file_index_and_clauses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(
        tmp_path,
        QUERY + "examples:\n"
        "  - message: 'delete failed PortNotFound'\n"
        "    tags: [screen-q-svc.txt]\n"
        "  - message: 'delete failed'\n"
        "    tags: [screen-q-svc.txt]\n",
    )
    load(tmp_path, 'query: message:"ok"\ncounter-examples:\n  - message: all is ok\n', "2.yaml")

    code = main(["check", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()

    assert code == 1
    assert lines == [
        f"{tmp_path / '1.yaml'}:8: error: examples[1] is not matched by the query; it "
        'satisfies message:"delete failed", tags:"screen-q-svc.txt"; it does not satisfy '
        'message:"PortNotFound"',
        f"{tmp_path / '2.yaml'}:3: error: counter-examples[0] is matched by the query, but is "
        'a counter-example; it satisfies message:"ok"',
        "2 signatures, 2 errors, 0 warnings, 3 examples (2 failed)",
    ]


def test_shipped_signatures_carry_passing_examples(capsys: pytest.CaptureFixture[str]) -> None:
    signatures, errors = load_signatures(REPO / "queries")
    with_examples = [s for s in signatures if s.examples]

    assert errors == []
    assert {s.bug for s in with_examples} >= {"demo-1", "demo-2", "demo-3"}
    assert all(any(not e.must_match for e in s.examples) for s in with_examples)
    assert [failures(s) for s in with_examples] == [[] for _ in with_examples]
    # Break one: the shipped example must then fail (the test can fail).
    demo = next(s for s in with_examples if s.bug == "demo-1")
    example = demo.examples[0]
    broken = {**example.event, "tags": ["console"]}
    assert not demo.compiled.matches(broken)


def test_examples_are_unknown_keys_elastic_recheck_can_skip() -> None:
    # elastic-recheck reads a signature with yaml.safe_load and takes 'query' and its
    # flags by name: the extra keys must leave those exactly as they were.
    data = yaml.safe_load((REPO / "queries" / "demo-1.yaml").read_text())

    assert set(data) == {"query", "examples", "counter-examples"}
    assert data["query"].startswith('message:"delete failed"')
