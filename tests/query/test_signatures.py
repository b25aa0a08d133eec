"""Loading signature files: the real ones load, and every kind of mistake is reported
as file:line:col with what to do, without stopping the other files from loading."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from recheck.models import Event
from recheck.query import QuerySyntaxError
from recheck.query import signatures as signatures_module
from recheck.query.signatures import SignatureError, load_signature, load_signatures

GOOD = 'query: >-\n  message:"Hash Sum mismatch" AND\n  tags:console\n'


def test_all_real_signatures_load_and_compile(real_queries_dir: Path) -> None:
    signatures, errors = load_signatures(real_queries_dir)

    assert errors == []
    stems = sorted(p.stem for p in real_queries_dir.glob("*.yaml"))
    assert len(stems) == 91
    assert [s.bug for s in signatures] == stems
    for signature in signatures:
        assert signature.path == real_queries_dir / f"{signature.bug}.yaml"
        assert signature.query.strip()
        assert isinstance(signature.compiled.matches({"message": "x"}), bool)


def test_real_signature_flags_are_read(real_queries_dir: Path) -> None:
    by_bug = {s.bug: s for s in load_signatures(real_queries_dir)[0]}

    placeholder = by_bug["1410969"]  # suppress-graph and suppress-notification, 2 comments
    assert (placeholder.suppress_graph, placeholder.suppress_notification) == (True, True)
    assert placeholder.line == 2
    assert placeholder.allow_nonvoting is False
    assert by_bug["1260311"].suppress_graph is True
    assert by_bug["1260311"].suppress_notification is False
    assert sum(s.allow_nonvoting for s in by_bug.values()) == 1
    assert by_bug["1798475"].test_ids == (
        "neutron.tests.fullstack.test_l3_agent.TestHAL3Agent"
        ".test_ha_router_restart_agents_no_packet_lost",
    )
    assert all(s.resolved_at is None for s in by_bug.values())


def test_real_signature_query_is_the_folded_text(real_queries_dir: Path) -> None:
    signature = load_signature(real_queries_dir / "1260311.yaml")

    assert not isinstance(signature, SignatureError)
    # `query: >` folds the two lines into one and keeps the final newline.
    assert signature.query == (
        'message:"java.io.InterruptedIOException"'
        ' AND (tags:"console.html" OR tags:"job-output.txt")\n'
    )
    hit: Event = {"message": "Caused by: java.io.InterruptedIOException", "tags": ["console.html"]}
    miss: Event = {"message": "Caused by: java.io.InterruptedIOException", "tags": ["screen"]}
    assert signature.compiled.matches(hit)
    assert not signature.compiled.matches(miss)


def test_optional_keys_are_parsed(tmp_path: Path) -> None:
    (tmp_path / "42.yaml").write_text(
        "query: message:foo\n"
        "suppress-graph: true\n"
        "suppress-notification: false\n"
        "allow-nonvoting: true\n"
        "test_ids:\n  - tempest.a.b\n  - tempest.c\n"
        "resolved_at: 2020-01-31\n"
    )
    (tmp_path / "43.yaml").write_text("query: message:foo\nresolved_at: 'soon after Ussuri'\n")

    signatures, errors = load_signatures(tmp_path)

    assert errors == []
    first, second = signatures
    assert first.bug == "42"
    assert (first.suppress_graph, first.suppress_notification, first.allow_nonvoting) == (
        True,
        False,
        True,
    )
    assert first.test_ids == ("tempest.a.b", "tempest.c")
    assert first.resolved_at == datetime.date(2020, 1, 31).isoformat()
    assert second.resolved_at == "soon after Ussuri"
    assert (second.suppress_graph, second.test_ids) == (False, ())


# (file name, content, expected "line:col", expected start of the message)
ERROR_CASES = [
    (
        "unknown_key.yaml",
        "query: x\nsuppress_graph: true\n",
        "2:1",
        "unknown key 'suppress_graph'; did you mean 'suppress-graph'?",
    ),
    ("unknown_far.yaml", "query: x\nowner: me\n", "2:1", "unknown key 'owner'; known keys: query,"),
    (
        "bool_type.yaml",
        "query: x\nsuppress-graph: sometimes\n",
        "2:17",
        "'suppress-graph' must be true or false, found the text 'sometimes'",
    ),
    (
        "bool_number.yaml",
        "query: x\nallow-nonvoting: 1\n",
        "2:18",
        "'allow-nonvoting' must be true or false, found the int '1'",
    ),
    (
        "query_list.yaml",
        "query:\n  - message:foo\n",
        "2:3",
        "'query' must be a string, found a list",
    ),
    (
        "test_ids_text.yaml",
        "query: x\ntest_ids: tempest.a\n",
        "2:11",
        "'test_ids' must be a list of test ids",
    ),
    (
        "test_ids_item.yaml",
        "query: x\ntest_ids:\n  - tempest.a\n  - 7\n",
        "4:5",
        "each test id must be a non-empty string, found the int '7'",
    ),
    (
        "resolved_type.yaml",
        "query: x\nresolved_at: [1]\n",
        "2:14",
        "'resolved_at' must be a date such as 2020-01-31, found a list",
    ),
    ("empty_query.yaml", "# bug\nquery: >\n\nsuppress-graph: true\n", "2:1", "'query' is empty"),
    ("blank_query.yaml", "query: '   '\n", "1:1", "'query' is empty"),
    ("missing_query.yaml", "suppress-graph: true\n", "1:1", "missing required key 'query'"),
    (
        "duplicate.yaml",
        "query: a\nquery: b\n",
        "2:1",
        "duplicate key 'query' (first given on line 1)",
    ),
    ("not_mapping.yaml", "- query: x\n", "1:1", "top level must be a mapping"),
    ("yaml_syntax.yaml", 'query: >\n  message:"a"\n bad: [\n', "3:2", "invalid YAML:"),
    ("yaml_tab.yaml", "query: x\n\tsuppress-graph: true\n", "2:1", "invalid YAML:"),
    (
        "unclosed_quote.yaml",
        'query: "message:foo\n',
        "2:1",
        "invalid YAML: found unexpected end of stream",
    ),
    ("python_tag.yaml", "query: !!python/object:os.system x\n", "1:8", "invalid YAML value:"),
    ("empty.yaml", "", "1:1", "file is empty"),
    ("comments_only.yaml", "# nothing here yet\n", "1:1", "file is empty"),
]


@pytest.mark.parametrize(
    ("name", "content", "where", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_each_mistake_names_file_line_column(
    tmp_path: Path, name: str, content: str, where: str, message: str
) -> None:
    (tmp_path / "1000.yaml").write_text(GOOD)
    (tmp_path / name).write_text(content)

    signatures, errors = load_signatures(tmp_path)

    assert [s.bug for s in signatures] == ["1000"], "a bad file must not stop the others"
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"{tmp_path / name}:{where}: {message}")


def test_non_utf8_file_points_at_the_bad_byte(tmp_path: Path) -> None:
    (tmp_path / "1000.yaml").write_text(GOOD)
    (tmp_path / "latin1.yaml").write_bytes(b'query: >\n  message:"caf\xe9"\n')

    signatures, errors = load_signatures(tmp_path)

    assert [s.bug for s in signatures] == ["1000"]
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'latin1.yaml'}:2:15: file is not valid UTF-8 (byte 0xe9); re-save it as UTF-8"
    ]


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "1.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())

    signatures, errors = load_signatures(tmp_path)

    assert errors == [] and [s.bug for s in signatures] == ["1"]


def test_unparseable_query_points_into_the_block(tmp_path: Path) -> None:
    path = tmp_path / "1.yaml"
    path.write_text('# comment\nquery: >\n  message:"a" AND (tags:b\nsuppress-graph: true\n')

    error = load_signature(path)

    assert isinstance(error, SignatureError)
    assert error.line == 3, "the parenthesis error is on the query's only content line"
    assert error.message.startswith("invalid query: ")


@pytest.mark.parametrize("query", ["NOT NOT x", "NOT +x", "a AND (b", "a)"])
def test_queries_lucene_rejects_are_errors(tmp_path: Path, query: str) -> None:
    (tmp_path / "1.yaml").write_text(f"query: '{query}'\n")

    signatures, errors = load_signatures(tmp_path)

    assert signatures == []
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [(1, "invalid query")]


# Each query holds one "@"; a fake compiler reports a syntax error at its offset in the
# (folded) query text, and the error must point at the "@" in the file.
POSITION_CASES = {
    "folded": 'query: >\n  message:"a"\n  AND tags:@b\nsuppress-graph: true\n',
    "folded_strip": "query: >-\n    message:x AND\n    (tags:y OR @)\n",
    "literal": "query: |\n  message:a\n    AND @tags\n",
    "folded_more_indented": "query: >\n  message:a\n\n    indented @ line\n  back\n",
    "plain_one_line": "query: message:a AND @\n",
    "plain_multi_line": "query: message:a\n  AND tags:b\n  OR @c\n",
    "double_quoted": 'query: "message:\\"a\\" AND @"\n',
    "double_quoted_escapes": 'query: "message:\\x41\\u00e9\\t\\\\ AND\n  tags:\\"b\\" OR @"\n',
    "single_quoted_escape": "query: 'message:\"it''s\" AND @'\n",
    "single_quoted": "query: 'message:a AND\n  @'\n",
    "after_comment_key": "# owner: someone\nsuppress-graph: true\nquery: >-\n  x\n  y @\n",
}


@pytest.mark.parametrize("name", list(POSITION_CASES))
def test_query_error_position_maps_into_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    content = POSITION_CASES[name]

    def fake_compile(text: str, default_field: str = "message") -> object:
        raise QuerySyntaxError("unexpected '@'", text.index("@"))

    monkeypatch.setattr(signatures_module, "compile_cached", fake_compile)
    path = tmp_path / "1.yaml"
    path.write_text(content)

    error = load_signature(path)

    lines = content.split("\n")
    line = next(i for i, text in enumerate(lines) if "@" in text)
    assert isinstance(error, SignatureError)
    assert (error.line, error.column) == (line + 1, lines[line].index("@") + 1)
    assert error.message.startswith("invalid query: unexpected '@'")


def test_query_error_at_end_points_after_the_last_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_compile(text: str, default_field: str = "message") -> object:
        raise QuerySyntaxError("unexpected end of query", len(text))

    monkeypatch.setattr(signatures_module, "compile_cached", fake_compile)
    path = tmp_path / "1.yaml"
    path.write_text("query: >-\n  message:a AND\n  (tags:b\nallow-nonvoting: true\n")

    error = load_signature(path)

    assert isinstance(error, SignatureError)
    assert (error.line, error.column) == (3, len("  (tags:b") + 1)


def test_engine_crash_is_reported_for_that_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_compile = signatures_module.compile_cached

    def flaky_compile(text: str, default_field: str = "message") -> object:
        if "boom" in text:
            raise RecursionError("too deep")
        return real_compile(text)

    monkeypatch.setattr(signatures_module, "compile_cached", flaky_compile)
    (tmp_path / "1.yaml").write_text(GOOD)
    (tmp_path / "2.yaml").write_text("\nquery: boom\n")

    signatures, errors = load_signatures(tmp_path)

    assert [s.bug for s in signatures] == ["1"]
    assert [(e.path.name, e.line) for e in errors] == [("2.yaml", 2)]
    assert "internal error compiling the query (RecursionError: too deep)" in errors[0].message


def test_only_yaml_files_are_loaded_sorted_by_bug(tmp_path: Path) -> None:
    for name in ("300.yaml", "1000.yaml", "20.yaml"):
        (tmp_path / name).write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not a signature")
    (tmp_path / "old.yml").write_text("query: [")
    (tmp_path / "dir.yaml").mkdir()

    signatures, errors = load_signatures(tmp_path)

    assert errors == []
    assert [s.bug for s in signatures] == ["1000", "20", "300"]


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="signature directory not found"):
        load_signatures(tmp_path / "nope")
