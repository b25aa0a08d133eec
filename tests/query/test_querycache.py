"""Compiled queries read back from the cache are the queries the parser makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from recheck.query import cache as querycache
from recheck.query import compile_query
from recheck.query.signatures import load_signatures

ROOT = Path(__file__).parents[2]
REAL = ROOT / "tests" / "fixtures" / "queries" / "elastic-recheck-2020"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh process's cache state, kept in ``tmp_path``."""
    monkeypatch.setenv("RECHECK_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(querycache, "_loaded", None)
    monkeypatch.setattr(querycache, "_used", {})
    monkeypatch.setattr(querycache, "_changed", False)
    return tmp_path


def _restart() -> None:
    """As if a new process began: what was read or compiled is forgotten."""
    querycache._loaded = None
    querycache._used = {}
    querycache._changed = False


def _queries() -> list[str]:
    texts = [yaml.safe_load(p.read_text())["query"] for p in sorted(REAL.glob("*.yaml"))]
    return [*texts, 'message:"Timed out" AND tags:console', "message:foo*", "a OR (b AND -c)"]


def test_queries_read_back_from_the_cache_equal_freshly_compiled_ones(cache_dir: Path) -> None:
    texts = _queries()
    first = [querycache.compile_cached(text) for text in texts]
    querycache.save()
    [written] = cache_dir.glob("queries-*.json")
    cached = json.loads(written.read_text())
    assert "message:foo*" not in cached  # a wildcard compiles to a test function
    assert len(cached) == len(set(texts)) - 1
    _restart()
    again = [querycache.compile_cached(text) for text in texts]
    assert again == first == [compile_query(text) for text in texts]
    assert not querycache._changed  # all read back: nothing new to write


def test_signatures_load_the_same_with_a_warm_cache(cache_dir: Path) -> None:
    cold, cold_errors = load_signatures(REAL)
    assert list(cache_dir.glob("queries-*.json"))
    _restart()
    warm, warm_errors = load_signatures(REAL)
    assert warm == cold and warm_errors == cold_errors


@pytest.mark.parametrize(
    "content",
    [b"\x00garbage", b"[1, 2]", b'{"message:x": ["bool", 1]}', b'{"message:x": ["nope"]}',
     b'{"message:x": 3}', b"[" * 100_000],
)  # fmt: skip
def test_a_damaged_cache_is_ignored_and_written_again(cache_dir: Path, content: bytes) -> None:
    path = querycache.cache_file()
    assert path is not None
    path.write_bytes(content)
    assert querycache.compile_cached("message:x") == compile_query("message:x")
    querycache.save()
    assert json.loads(path.read_text())["message:x"] == ["term", "message", "x"]


def test_an_empty_cache_dir_setting_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECHECK_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    assert querycache.cache_file() is None
    assert querycache.compile_cached("message:x") == compile_query("message:x")
    querycache.save()
    assert list(tmp_path.iterdir()) == []


def test_files_made_by_other_code_are_removed(cache_dir: Path) -> None:
    stale = cache_dir / "queries-0123456789abcdef.json"
    stale.write_text('{"message:x": ["none"]}')  # what other code compiled, never read
    assert querycache.compile_cached("message:x") == compile_query("message:x")
    querycache.save()
    assert not stale.exists()


def test_without_a_home_directory_there_is_no_cache_and_no_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECHECK_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert querycache.cache_file() is None
    assert querycache.compile_cached("message:x") == compile_query("message:x")
