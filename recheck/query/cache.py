"""Compiled queries kept between runs, so that a command need not parse them all again.

Parsing 1,000 query strings takes ~60 ms of every command that loads signatures; reading
their compiled trees back takes ~10 ms. The cache is one JSON file mapping query text to
tree, in ``$RECHECK_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/recheck``, else
``~/.cache/recheck``. Its name carries a digest of the code and data that compile queries
(this package's parser and analyzer sources, the Unicode and ``regex`` versions), so a
tree is only ever read by the code that made it. It holds data, never code: the node
types below as JSON lists; a query with a wildcard, regexp, fuzzy or range term (which
compiles to a test function) is compiled every time. A file that cannot be read or
decoded is ignored and written again; one that cannot be written is no error. The file
is bounded (entries, bytes, bytes an entry), so that one huge query cannot make every
later command read megabytes.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import threading
import unicodedata
import zlib
from pathlib import Path
from typing import Any

from recheck.query.nodes import Bool, Exists, MatchAll, MatchNone, Node, Phrase, Term
from recheck.query.parser import Query, compile_query

__all__ = [
    "MAX_ENTRIES",
    "MAX_ENTRY_BYTES",
    "MAX_FILE_BYTES",
    "cache_file",
    "compile_cached",
    "save",
]

MAX_ENTRIES = 20_000
"""Trees kept in the file at most: those used last first."""
MAX_ENTRY_BYTES = 16_384
"""An entry (query text and tree as JSON) larger than this is not kept: the largest real
signature takes about 700 bytes, and compiling a big query costs little next to reading
it back in every later command (a 500,000-term one made them 6x slower)."""
MAX_FILE_BYTES = 4 << 20
"""The file's size at most, entries used last first (1,000 signatures take about 350 KB);
a larger file, as an older version or another hand may have left, is not read."""


_lock = threading.Lock()
_loaded: dict[str, Any] | None = None  # query text -> tree as read from the file
_used: dict[str, Any] = {}  # trees asked for in this process, new ones included
_changed = False


def cache_file() -> Path | None:
    """Where the compiled queries are kept; None when caching is turned off."""
    configured = os.environ.get("RECHECK_CACHE_DIR")
    if configured is not None:
        if not configured:
            return None
        directory = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME")
        if not base:
            try:
                base = str(Path.home() / ".cache")
            except RuntimeError:  # no home directory: no cache, rather than no recheck
                return None
        directory = Path(base) / "recheck"
    return directory / f"queries-{_code_digest()}.json"


def compile_cached(text: str) -> Query:
    """``compile_query(text)``, from the cache when it holds the tree."""
    global _changed
    with _lock:
        entries = _entries()
        tree = entries.get(text)
    if tree is not None:
        try:
            query = Query(text, _decode(tree))
        except (TypeError, ValueError, IndexError, KeyError, RecursionError):
            query = None  # a damaged entry: compiled again below
        if query is not None:
            with _lock:
                _used[text] = tree
            return query
    query = compile_query(text)  # raises QuerySyntaxError as ever
    encoded = _encode(query.root)
    if encoded is not None and _cacheable(text, encoded):
        with _lock:
            _used[text] = encoded
            _changed = True
    return query


def save() -> None:
    """Write the cache file if this process compiled queries it did not hold."""
    global _changed
    path = cache_file()
    with _lock:
        if not _changed or path is None:
            return
        entries = dict(_used)  # most recently used first
        for text, tree in (_loaded or {}).items():
            if len(entries) >= MAX_ENTRIES:
                break
            entries.setdefault(text, tree)
        _changed = False
    import tempfile  # here: only a run that compiled new queries writes

    content = _ENCODER.encode(entries)
    if len(content) > MAX_FILE_BYTES:  # rare: measure each entry, keep the first that fit
        kept: list[str] = []
        size = 2
        for text, tree in entries.items():
            item = f"{_ENCODER.encode(text)}:{_ENCODER.encode(tree)}"
            if len(item) > MAX_ENTRY_BYTES:
                continue
            size += len(item) + 1
            if size > MAX_FILE_BYTES:
                break
            kept.append(item)
        content = "{" + ",".join(kept) + "}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=".queries-", delete=False
        ) as out:
            out.write(content)
        os.replace(out.name, path)
        for stale in path.parent.glob("queries-*.json"):  # made by other versions
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written only costs the next run some time


def _entries() -> dict[str, Any]:
    global _loaded
    if _loaded is None:
        _loaded = {}
        path = cache_file()
        if path is not None:
            try:
                with path.open("rb") as file:
                    content = file.read(MAX_FILE_BYTES + 1)
                data = json.loads(content) if len(content) <= MAX_FILE_BYTES else None
                if isinstance(data, dict):
                    _loaded = data
            except (OSError, ValueError, RecursionError):
                pass
    return _loaded


# ensure_ascii (json's default): the file stays ASCII whatever the queries hold, and
# its size in bytes is its length in characters, which the bounds above count.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _cacheable(text: str, tree: list[Any]) -> bool:
    """Whether the entry is small enough to keep, and reads back as written: JSON joins
    a surrogate pair into one character, so a text holding one would come back as
    another text (and a lone one is no text a file can hold)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return len(_ENCODER.encode(text)) + len(_ENCODER.encode(tree)) + 2 <= MAX_ENTRY_BYTES


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    # CRC-32 and lengths, not a cryptographic hash: this tells versions apart, it guards
    # against no one (and importing hashlib costs more than a third of what it would).
    here = Path(__file__).parent
    parts = [unicodedata.unidata_version.encode()]
    # Every module of this package: whichever of them decides what a query compiles to.
    for path in sorted(here.glob("*.py")):
        source = path.read_bytes()
        parts.append(f"{path.name} {len(source)} {zlib.crc32(source)}".encode())
    # The third-party regex module tokenizes non-ASCII text; its installed files stand
    # for its version (importing it to ask would cost more than the cache saves).
    spec = importlib.util.find_spec("regex")
    if spec is not None and spec.origin is not None:
        for found in sorted(Path(spec.origin).parent.glob("*.py")):
            stat = found.stat()
            parts.append(f"{found.name} {stat.st_size} {stat.st_mtime_ns}".encode())
    joined = b"\n".join(parts)
    return f"{zlib.crc32(joined):08x}{len(joined):x}"


def _encode(node: Node) -> list[Any] | None:
    """The tree as JSON lists; None if part of it cannot be written (a test function)."""
    if isinstance(node, Term):
        return ["term", node.field, node.term]
    if isinstance(node, Phrase):
        return ["phrase", node.field, list(node.terms), node.slop]
    if isinstance(node, Exists):
        return ["exists", node.field]
    if isinstance(node, MatchAll):
        return ["all"]
    if isinstance(node, MatchNone):
        return ["none"]
    if isinstance(node, Bool):
        clauses = [[_encode(q) for q in part] for part in (node.must, node.should, node.must_not)]
        if any(q is None for part in clauses for q in part):
            return None
        return ["bool", *clauses]
    return None


def _decode(tree: list[Any]) -> Node:
    kind = tree[0]
    if kind == "term":
        return Term(str(tree[1]), str(tree[2]))
    if kind == "phrase":
        return Phrase(str(tree[1]), tuple(str(t) for t in tree[2]), int(tree[3]))
    if kind == "exists":
        return Exists(str(tree[1]))
    if kind == "all":
        return MatchAll()
    if kind == "none":
        return MatchNone()
    if kind == "bool":
        must, should, must_not = (tuple(_decode(q) for q in part) for part in tree[1:4])
        return Bool(must, should, must_not)
    raise ValueError(f"unknown node {kind!r}")
