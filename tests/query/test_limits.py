"""Hostile signatures (issue 20, items 3 and 5): size limits, deep YAML, the cache's bounds.

Each test reproduces a report: a 500,000-term query that took 34 s to check and filled
the compiled-query cache, YAML nested 100,000 deep that crashed ``check`` for every file,
and what the fuzzing suite found (infinite slops, lone surrogates, control characters).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from recheck.query import cache as querycache
from recheck.query import compile_query, lint_query
from recheck.query.nodes import Bool, MatchNone, Phrase, Term, TokenTest, leaf_count
from recheck.query.parser import MAX_CLAUSES, MAX_QUERY_CHARS, QuerySyntaxError, QueryTooLarge
from recheck.query.prefilter import Prefilter
from recheck.query.signatures import (
    MAX_FILE_BYTES,
    MAX_YAML_DEPTH,
    Signature,
    SignatureError,
    load_signature,
    load_signatures,
)


def _terms(count: int, sep: str = " OR ") -> str:
    return sep.join(f"{i:x}" for i in range(count))  # short: 4,096 of them fit the length


# ---------------------------------------------------------------- clause and length limits


@pytest.mark.parametrize("sep", [" OR ", " ", " AND ", ")(", " m:"])
def test_a_query_of_max_clauses_compiles_and_one_more_is_refused(sep: str) -> None:
    text = _terms(MAX_CLAUSES, sep)
    if sep == ")(":
        text = f"({text})"
    assert len(text) <= MAX_QUERY_CHARS
    assert leaf_count(compile_query(text).root) == MAX_CLAUSES
    over = text.replace("0", "0 extra", 1)
    with pytest.raises(QueryTooLarge) as caught:
        compile_query(over)
    assert f"more than {MAX_CLAUSES:,} clauses" in caught.value.message
    # the position is the clause that crosses the limit, for check's file:line:col
    assert over[caught.value.position or 0 :].startswith(f"{MAX_CLAUSES - 1:x}")


def test_each_word_of_a_phrase_counts_as_a_clause() -> None:
    assert leaf_count(Phrase("message", ("a", "b", "c"), 0)) == 3
    assert leaf_count(Bool(should=(Term("m", "a"), Bool(must=(Term("m", "b"),))))) == 2
    with pytest.raises(QueryTooLarge):
        compile_query('"' + _terms(MAX_CLAUSES + 1, " ") + '"')


def test_an_overlong_query_is_refused_before_it_is_parsed() -> None:
    text = "a " * (MAX_QUERY_CHARS // 2) + "("  # long, and also a syntax error
    started = time.perf_counter()
    for check in (compile_query, lint_query):
        with pytest.raises(QueryTooLarge) as caught:
            check(text)
        assert caught.value.position == MAX_QUERY_CHARS
        assert f"over the limit of {MAX_QUERY_CHARS:,}" in str(caught.value)
    assert compile_query("a" * MAX_QUERY_CHARS)  # the limit itself is allowed
    # the report's 500,000-term OR (5.4 MB): refused at once, not in 34 s
    huge = _terms(500_000)
    with pytest.raises(QueryTooLarge):
        compile_query(huge)
    assert time.perf_counter() - started < 10


def test_real_signatures_are_far_below_the_limits(real_queries_dir: Path) -> None:
    signatures, errors = load_signatures(real_queries_dir)
    assert not errors
    assert max(len(s.query) for s in signatures) * 50 < MAX_QUERY_CHARS
    assert max(leaf_count(s.compiled.root) for s in signatures) * 100 < MAX_CLAUSES


def test_check_reports_a_too_large_query_at_its_line_and_loads_the_others(
    tmp_path: Path,
) -> None:
    (tmp_path / "1.yaml").write_text('query: >-\n  message:"ok"\n')
    (tmp_path / "2.yaml").write_text("query: >-\n  " + _terms(MAX_CLAUSES + 10) + "\n")
    (tmp_path / "3.yaml").write_text("query: >-\n  " + "a" * (MAX_QUERY_CHARS + 1) + "\n")
    signatures, errors = load_signatures(tmp_path)
    assert [s.bug for s in signatures] == ["1"]
    clauses, chars = errors
    assert (clauses.line, chars.line, chars.column) == (2, 2, MAX_QUERY_CHARS + 3)
    assert f"invalid query: query has more than {MAX_CLAUSES:,} clauses" in clauses.message
    assert "escape Lucene's special characters" not in clauses.message  # no syntax hint


# ---------------------------------------------------------------- YAML nesting and size


@pytest.mark.parametrize("depth", [MAX_YAML_DEPTH, 999, 1001, 60_000])  # 60,000: 120 KB
@pytest.mark.parametrize(
    "template",
    ["query: {deep}\n", "query: a\ntest_ids: {deep}\n", "? {deep}\n: a\n", "query: a\n{deep}: b"],
)
def test_deeply_nested_yaml_is_an_error_of_its_file(
    tmp_path: Path, depth: int, template: str
) -> None:
    (tmp_path / "1.yaml").write_text('query: message:"ok"\n')
    (tmp_path / "2.yaml").write_text(template.format(deep="[" * depth + "]" * depth))
    signatures, [error] = load_signatures(tmp_path)
    assert [s.bug for s in signatures] == ["1"]
    assert error.path.name == "2.yaml"
    if depth >= MAX_YAML_DEPTH and "{deep}:" not in template:  # (a key that long: YAML says)
        assert f"nested more than {MAX_YAML_DEPTH} levels deep" in error.message


def test_aliases_cannot_hide_depth_or_multiply_work(tmp_path: Path) -> None:
    chain = "query: a\nx: &a0 [1]\n" + "".join(
        f"y{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]\n" for i in range(1, 40)
    )
    path = tmp_path / "1.yaml"
    path.write_text(chain)
    started = time.perf_counter()
    loaded = load_signature(path)
    assert isinstance(loaded, SignatureError)
    assert "nested more than" in loaded.message
    assert time.perf_counter() - started < 5
    path.write_text("query: a\nx: &a [*a]\n")  # a list holding itself
    assert isinstance(load_signature(path), SignatureError)


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "1.yaml"
    path.write_text("query: a\n#" + "x" * MAX_FILE_BYTES + "\n")
    loaded = load_signature(path)
    assert isinstance(loaded, SignatureError)
    assert f"over {MAX_FILE_BYTES:,} bytes" in loaded.message


@pytest.mark.parametrize("char", ["\x01", "\x15", "\x7f", "\ufffe"])
def test_a_control_character_is_an_error_naming_it(tmp_path: Path, char: str) -> None:
    path = tmp_path / "1.yaml"
    path.write_text(f"query: >-\n  message:a{char}b\n")
    loaded = load_signature(path)
    assert isinstance(loaded, SignatureError)
    assert (loaded.line, loaded.column) == (2, 12)
    assert "is not allowed" in loaded.message


def test_surrogate_escapes_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "1.yaml"
    path.write_text('query: "message:\\ud83d\\ude00 OR message:b"\n')  # a pair: one emoji
    loaded = load_signature(path)
    assert isinstance(loaded, Signature)
    assert loaded.query == "message:\U0001f600 OR message:b"
    path.write_text('query: "message:a \\udfff b"\n')  # half a character
    loaded = load_signature(path)
    assert isinstance(loaded, SignatureError)
    assert (loaded.line, loaded.column) == (1, 8)
    assert "lone surrogate" in loaded.message
    str(loaded).encode("utf-8")


# ---------------------------------------------------------------- what the fuzzer found


@pytest.mark.parametrize(
    "query,edits_or_error",
    [
        ('"a b"~' + "9" * 60, None),  # OverflowError: the slop is Java's (int) of infinity
        ('"a b"~1e39', None),
        ("abc~" + "9" * 60, "fractional edit distances"),  # Java: Infinity != (int) Infinity
        ("abc~1e39", "fractional edit distances"),
    ],
)
def test_infinite_slops_are_handled_as_lucene_does(query: str, edits_or_error: str | None) -> None:
    if edits_or_error is None:
        assert compile_query(query).matches({"message": "a x b"})
    else:
        with pytest.raises(QuerySyntaxError, match=edits_or_error):
            compile_query(query)


def test_slops_are_32_bit_floats_as_in_java() -> None:
    # 2.9999999999f is 3.0f: the phrase allows 3 moves, as Lucene's does
    assert compile_query('"a b"~2.9999999999').matches({"message": "a x y z b"})
    assert not compile_query('"a b"~2.99').matches({"message": "a x y z b"})
    assert compile_query("abcd~1f").matches({"message": "abxd"})  # Java takes the suffix


def test_messages_about_a_lone_surrogate_can_be_printed() -> None:
    for warning in lint_query("f\udfff:*a OR /x\udfff/", known_fields=["message"]):
        warning.encode("utf-8")
        assert "\\udfff" in warning or "never matches" in warning
    with pytest.raises(QuerySyntaxError) as caught:
        compile_query("a\\u00\udfff")
    str(caught.value).encode("utf-8")


# ---------------------------------------------------------------- the compiled-query cache


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECHECK_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(querycache, "_loaded", None)
    monkeypatch.setattr(querycache, "_used", {})
    monkeypatch.setattr(querycache, "_changed", False)
    return tmp_path


def _written() -> dict[str, object]:
    path = querycache.cache_file()
    assert path is not None
    data: dict[str, object] = json.loads(path.read_text())
    return data


def test_a_large_entry_is_not_cached(cache_dir: Path) -> None:
    big = _terms(2000)
    querycache.compile_cached(big)
    querycache.compile_cached("message:small")
    querycache.save()
    assert list(_written()) == ["message:small"]


def test_the_cache_file_keeps_the_entries_used_last_within_its_size(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(querycache, "MAX_FILE_BYTES", 2000)
    texts = [f"message:word{i}" for i in range(100)]
    for text in texts:
        querycache.compile_cached(text)
    querycache.save()
    path = querycache.cache_file()
    assert path is not None
    kept = _written()
    assert path.stat().st_size <= 2000
    assert 0 < len(kept) < len(texts)
    assert list(kept) == texts[: len(kept)]


def test_an_oversized_cache_file_is_not_read(cache_dir: Path) -> None:
    path = querycache.cache_file()
    assert path is not None
    path.write_text(
        json.dumps(
            {"message:x": ["term", "message", "WRONG"], "pad": "x" * querycache.MAX_FILE_BYTES}
        )
    )
    assert querycache.compile_cached("message:x") == compile_query("message:x")
    querycache.save()
    assert path.stat().st_size < 1000


def test_a_query_json_cannot_read_back_is_not_cached(cache_dir: Path) -> None:
    pair = "message:\ud83d\ude00"  # JSON would read it back as one character
    querycache.compile_cached(pair)
    querycache.compile_cached("message:\udfff")
    querycache.compile_cached("message:ok")
    querycache.save()
    assert list(_written()) == ["message:ok"]


@pytest.mark.parametrize("query", ["message:" + "a" * 256 + "*", "message:*" + "b?" * 128 + "*"])
def test_a_wildcard_longer_than_any_token_matches_nothing(query: str) -> None:
    # Tokens are at most 255 characters, and hyperscan refused such a literal, which
    # turned it off for every signature of the run.
    compiled = compile_query(query)
    assert isinstance(compiled.root, MatchNone)
    assert compiled.required_literals() == [[]]
    assert isinstance(compile_query("message:" + "a" * 255 + "*").root, TokenTest)
    assert isinstance(compile_query("message:*" + "b?" * 127 + "b*").root, TokenTest)


@pytest.mark.parametrize(
    "query", ["/\udfff(a|b)+/", "message:\udfffab*", '"ab\udfff cd"', "x\udfffyz*"]
)
def test_a_raw_lone_surrogate_is_never_handed_to_the_scanners(query: str) -> None:
    # Lucene takes a lone surrogate in a query (a Java string may hold one); the literal
    # the prefilter and scanner look for must be UTF-8, so it is the part beside it.
    compiled = compile_query(query)
    for alternatives in compiled.required_literals() or []:
        for _, literal in alternatives:
            literal.encode("utf-8")
    Prefilter([compiled])


@pytest.mark.parametrize("bound", ["2147483648", "1" + "0" * 42])
def test_a_numeric_interval_beyond_java_int_is_refused_as_lucene_does(bound: str) -> None:
    # It was built digit by digit, two branches a digit: 5 GB and counting for 10^42.
    with pytest.raises(QuerySyntaxError, match="interval syntax error"):
        compile_query(f"message:/<1-{bound}>/")
    assert compile_query("message:/<0-2147483647>/").matches({"message": "2147483647"})


def test_repeated_plus_does_not_double_the_pattern() -> None:
    # (r+)+ is r+; built as ee* each time, 26 of them took minutes.
    started = time.perf_counter()
    query = compile_query("message:/[0-9]" + "+" * 40 + "/")
    assert query.matches({"message": "123"}) and not query.matches({"message": "x"})
    assert time.perf_counter() - started < 5
