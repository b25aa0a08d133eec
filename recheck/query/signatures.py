"""Signatures, and loading signature files (``queries/<bug>.yaml``) into them.

A broken file must never hide the others: every problem with one file becomes a
``SignatureError`` naming the file, line and column, and loading goes on with the next.
"""

from __future__ import annotations

import datetime
import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from recheck.lib.yamlload import parse_with_fast_loader
from recheck.query import cache as querycache
from recheck.query.cache import compile_cached
from recheck.query.examples import EXAMPLE_KEYS, Example
from recheck.query.parser import Query, QuerySyntaxError, QueryTooLarge

__all__ = ["KNOWN_KEYS", "Signature", "SignatureError", "load_signature", "load_signatures"]

KNOWN_KEYS = (
    "query",
    "suppress-graph",
    "suppress-notification",
    "allow-nonvoting",
    "test_ids",
    "resolved_at",
    *EXAMPLE_KEYS,
)
MAX_FILE_BYTES = 128 << 10
"""A signature file's size at most: a query is at most MAX_QUERY_CHARS (32 KiB), and a
file the fast loader rejects is read again by PyYAML's pure-Python one for its message,
at about 0.3 s per 100 KB."""
MAX_YAML_DEPTH = 20
"""Collections nested in a signature file at most (a real one nests 2: its keys, a list
of test ids). PyYAML's composer recurses per level, and its RecursionError, deep down,
would hide every other file."""
# Every line break YAML counts when it reports a mark's line.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


@dataclass(frozen=True)
class Signature:
    """A known-bug signature: its query as written, compiled once, and its flags."""

    bug: str
    """Bug id: the file stem, e.g. ``1260311`` for ``queries/1260311.yaml``."""
    query: str
    """The Lucene query_string exactly as written in the file."""
    path: Path
    compiled: Query = field(repr=False, compare=False)
    line: int = 1
    """Line of the ``query:`` key in ``path``, where messages about the query point."""
    suppress_graph: bool = False
    suppress_notification: bool = False
    allow_nonvoting: bool = False
    test_ids: tuple[str, ...] = ()
    resolved_at: str | None = None
    """ISO date (or the text written) when the bug was marked resolved; None if open."""
    examples: tuple[Example, ...] = field(default=(), compare=False, repr=False)
    """Events the query must match (``examples:``) and must not (``counter-examples:``),
    for ``recheck check``; they change nothing else."""


@dataclass(frozen=True)
class SignatureError:
    """Why one signature file could not be used; ``line`` and ``column`` are 1-based."""

    path: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class _Invalid(Exception):
    """Internal: stops validating one file at its first problem."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


def load_signatures(directory: str | Path) -> tuple[list[Signature], list[SignatureError]]:
    """Load every ``*.yaml`` in ``directory``: signatures sorted by bug id, errors by path.

    Raises NotADirectoryError when ``directory`` is not a directory, since then there is
    nothing to report per file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory}: signature directory not found")
    signatures: list[Signature] = []
    errors: list[SignatureError] = []
    # One scandir, no stat per file (glob then is_file took 1,000 of them); sorted as
    # their Paths would be.
    with os.scandir(directory) as entries:
        names = sorted(e.name for e in entries if e.name.endswith(".yaml") and e.is_file())
    for path in (directory / name for name in names):
        loaded = load_signature(path)
        if isinstance(loaded, SignatureError):
            errors.append(loaded)
        else:
            signatures.append(loaded)
    querycache.save()
    signatures.sort(key=lambda s: s.bug)
    return signatures, errors


def load_signature(path: Path) -> Signature | SignatureError:
    """Load and compile one signature file; its bug id is the file stem."""
    try:
        return _load(path)
    except _Invalid as problem:
        return SignatureError(path, problem.line, problem.column, problem.message)
    except OSError as exc:
        return SignatureError(path, 1, 1, f"cannot read file: {exc.strerror or exc}")


def _load(path: Path) -> Signature:
    with path.open("rb") as file:
        raw = file.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise _Invalid(
            1, 1, f"file is over {MAX_FILE_BYTES:,} bytes: a signature is a query and a few flags"
        )
    text = _decode(raw)
    return parse_with_fast_loader(
        lambda loader: _parse(path, text, loader), (_Invalid, yaml.YAMLError)
    )


class _BoundedLoader(yaml.SafeLoader):
    """The pure-Python safe loader, refusing collections nested over MAX_YAML_DEPTH.

    (libyaml's composer stops at 1,000 levels with an error, and then this one reads the
    file for the message; the constructors' recursion is bounded by the same depth.)"""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _Invalid(
                    *_mark(self.peek_event().start_mark),  # type: ignore[no-untyped-call]
                    f"values nested more than {MAX_YAML_DEPTH} levels deep; a signature's "
                    "values are text, true or false, or a list of test ids",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_depth(root: yaml.Node) -> None:
    """Refuse a tree whose longest chain of collections is over MAX_YAML_DEPTH, without
    recursion: PyYAML's constructors recurse along it, and aliases can make it long in a
    short file. (A chain that loops back through an alias is constructed once.)"""
    heights: dict[int, int] = {}  # id(node) -> collections on its longest chain down
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, list[yaml.Node]]] = []

    def enter(node: yaml.Node) -> None:
        if len(stack) + heights.get(id(node), 1) > MAX_YAML_DEPTH:
            raise _Invalid(
                *_mark(node.start_mark),
                f"values nested more than {MAX_YAML_DEPTH} levels deep; a signature's "
                "values are text, true or false, or a list of test ids",
            )
        on_path.add(id(node))
        stack.append((node, _children(node)))

    enter(root)
    while stack:
        node, children = stack[-1]
        while children:
            child = children.pop()
            if isinstance(child, yaml.ScalarNode):
                _check_surrogates(child)
            elif id(child) in heights:
                if len(stack) + heights[id(child)] > MAX_YAML_DEPTH:
                    enter(child)  # raises
            elif id(child) not in on_path and isinstance(child, yaml.CollectionNode):
                enter(child)
                break
        else:
            stack.pop()
            on_path.discard(id(node))
            below = [heights.get(id(c), 0) for c in _children(node)]
            heights[id(node)] = 1 + max(below, default=0)


def _check_surrogates(node: yaml.ScalarNode) -> None:
    """A ``\\ud83d\\ude00`` escape pair becomes the one character it stands for, as in
    Java; a lone surrogate escape is refused: it is half a character, which no message,
    event or cache file can hold."""
    value: str = node.value
    if value.isascii() or not _SURROGATE.search(value):
        return
    try:
        node.value = value.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise _Invalid(
            *_mark(node.start_mark),
            "text holds a lone surrogate (a \\u escape from d800 to dfff that is half a "
            "character): write the character itself",
        ) from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _parse(path: Path, text: str, loader_class: type[yaml.SafeLoader]) -> Signature:
    try:
        loader = (_BoundedLoader if loader_class is yaml.SafeLoader else loader_class)(text)
    except yaml.reader.ReaderError as exc:  # the pure-Python reader checks every character
        raise _not_allowed(text, exc) from None
    try:
        root = _compose(loader, text)
        if root is None:
            raise _Invalid(1, 1, "file is empty; a signature needs at least a 'query:' key")
        _check_depth(root)
        if not isinstance(root, yaml.MappingNode):
            raise _Invalid(
                *_mark(root.start_mark),
                "top level must be a mapping of keys (query: ..., suppress-graph: ...); "
                f"found {_kind(root)}",
            )
        fields = _fields(loader, root)
    finally:
        loader.dispose()

    if "query" not in fields:
        raise _Invalid(
            *_mark(root.start_mark),
            "missing required key 'query'; add the Lucene query that identifies the failure",
        )
    query_key, query_node, query = fields["query"]
    if query is None or (isinstance(query, str) and not query.strip()):
        raise _Invalid(
            *_mark(query_key.start_mark),
            "'query' is empty; write the Lucene query that identifies the failure",
        )
    if not isinstance(query, str):
        raise _Invalid(
            *_mark(query_node.start_mark),
            f"'query' must be a string, found {_kind(query_node)}; "
            "write it as a block scalar (query: >-) followed by the query text",
        )
    compiled = _compile(query, query_key, query_node, text)

    return Signature(
        bug=path.stem,
        query=query,
        path=path,
        compiled=compiled,
        line=query_key.start_mark.line + 1,
        suppress_graph=_flag(fields, "suppress-graph"),
        suppress_notification=_flag(fields, "suppress-notification"),
        allow_nonvoting=_flag(fields, "allow-nonvoting"),
        test_ids=_test_ids(fields["test_ids"]) if "test_ids" in fields else (),
        resolved_at=_resolved_at(fields["resolved_at"]) if "resolved_at" in fields else None,
        examples=tuple(
            example
            for key in EXAMPLE_KEYS
            if key in fields
            for example in _examples(fields[key], matches=key == "examples")
        ),
    )


_Field = tuple[yaml.Node, yaml.Node, Any]
"""A top-level entry: its key node, its value node, and the value as constructed."""


def _decode(raw: bytes) -> str:
    try:
        # utf-8-sig: editors on Windows add a byte-order mark that is not part of the YAML.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        raise _Invalid(
            line,
            column,
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); re-save it as UTF-8",
        ) from None


def _compose(loader: yaml.SafeLoader, text: str) -> yaml.Node | None:
    """Parse the YAML into nodes, keeping the marks we need for line:column messages."""
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _mark(mark) if mark is not None else (1, 1)
        what = exc.problem or "syntax error"
        context = f" ({exc.context})" if exc.context else ""
        raise _Invalid(
            line,
            column,
            f"invalid YAML: {what}{context}; check indentation and quoting "
            "(a query is safest as a block scalar: 'query: >-' then the query on indented lines)",
        ) from None
    except yaml.reader.ReaderError as exc:
        raise _not_allowed(text, exc) from None


def _not_allowed(text: str, exc: yaml.reader.ReaderError) -> _Invalid:
    line, column = _offset_to_line_column(text, exc.position)
    return _Invalid(
        line, column, f"invalid YAML: character {exc.character!r} is not allowed; remove it"
    )


def _fields(loader: yaml.SafeLoader, root: yaml.MappingNode) -> dict[str, _Field]:
    """Check the top-level keys and construct each value (safe constructors only)."""
    fields: dict[str, _Field] = {}
    for key_node, value_node in root.value:
        try:
            key = loader.construct_object(key_node, deep=True)
        except yaml.YAMLError as exc:
            raise _Invalid(
                *_mark(key_node.start_mark), f"invalid YAML key: {_problem(exc)}"
            ) from None
        if not isinstance(key, str):
            raise _Invalid(
                *_mark(key_node.start_mark),
                f"keys must be names, found {_kind(key_node)}; known keys: {', '.join(KNOWN_KEYS)}",
            )
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.6)
            hint = (
                f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(KNOWN_KEYS)}"
            )
            raise _Invalid(*_mark(key_node.start_mark), f"unknown key '{key}'; {hint}")
        if key in fields:
            first_line = fields[key][0].start_mark.line + 1
            raise _Invalid(
                *_mark(key_node.start_mark),
                f"duplicate key '{key}' (first given on line {first_line}); keep only one",
            )
        try:
            value = loader.construct_object(value_node, deep=True)
        except yaml.YAMLError as exc:
            raise _Invalid(
                *_mark(value_node.start_mark), f"invalid YAML value: {_problem(exc)}"
            ) from None
        fields[key] = (key_node, value_node, value)
    return fields


def _check(field: _Field, is_valid: Callable[[Any], bool], expected: str) -> Any:
    key_node, value_node, value = field
    if not is_valid(value):
        raise _Invalid(
            *_mark(value_node.start_mark),
            f"'{key_node.value}' must be {expected}, found {_kind(value_node)}",
        )
    return value


def _flag(fields: dict[str, _Field], key: str) -> bool:
    if key not in fields:
        return False
    return bool(_check(fields[key], lambda v: isinstance(v, bool), "true or false"))


def _test_ids(field: _Field) -> tuple[str, ...]:
    _check(field, lambda v: isinstance(v, list), "a list of test ids ('- tempest.api...' lines)")
    _, value_node, value = field
    for item_node, item in zip(value_node.value, value, strict=True):
        if not isinstance(item, str) or not item.strip():
            raise _Invalid(
                *_mark(item_node.start_mark),
                f"each test id must be a non-empty string, found {_kind(item_node)}",
            )
    return tuple(value)


def _examples(field: _Field, *, matches: bool) -> list[Example]:
    """``examples:`` or ``counter-examples:``: a list of events, each a mapping of field
    names to text (or lists of text), ``message`` required, ``tags`` a list."""
    key_node, value_node, _ = field
    name = str(key_node.value)
    _check(field, lambda v: isinstance(v, list), "a list of events ('- message: ...' items)")
    found: list[Example] = []
    for index, item_node in enumerate(value_node.value):
        where = f"{name}[{index}]"
        if not isinstance(item_node, yaml.MappingNode):
            raise _Invalid(
                *_mark(item_node.start_mark),
                f"{where} must be an event: a mapping of field names to text "
                f"(message: ..., tags: [...]), found {_kind(item_node)}",
            )
        event: dict[str, str | list[str]] = {}
        for field_node, text_node in item_node.value:
            if not isinstance(field_node, yaml.ScalarNode) or not field_node.tag.endswith(":str"):
                raise _Invalid(
                    *_mark(field_node.start_mark),
                    f"{where}: field names must be text, found {_kind(field_node)}",
                )
            field_name = str(field_node.value)
            if field_name in event:
                raise _Invalid(
                    *_mark(field_node.start_mark),
                    f"{where}: field '{field_name}' given twice; keep only one",
                )
            event[field_name] = _example_value(where, field_name, text_node)
        if "message" not in event:
            raise _Invalid(
                *_mark(item_node.start_mark),
                f"{where} has no 'message'; copy the log line the signature is about",
            )
        found.append(Example(index, item_node.start_mark.line + 1, event, matches))
    return found


def _example_value(where: str, name: str, node: yaml.Node) -> str | list[str]:
    """An example field's value as an event holds it: text as written (``42`` and
    ``true`` are the text they were written as, as in ``recheck match``), or a list."""
    if isinstance(node, yaml.ScalarNode) and not node.tag.endswith(":null"):
        if name == "tags":
            raise _Invalid(
                *_mark(node.start_mark),
                f"{where}: 'tags' must be a list such as [console, screen-n-cpu.txt], "
                f"found {_kind(node)}",
            )
        return str(node.value)
    if isinstance(node, yaml.SequenceNode):
        values: list[str] = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode) or item.tag.endswith(":null"):
                raise _Invalid(
                    *_mark(item.start_mark),
                    f"{where}: each value of '{name}' must be text, found {_kind(item)}",
                )
            values.append(str(item.value))
        return values
    raise _Invalid(
        *_mark(node.start_mark),
        f"{where}: '{name}' must be text or a list of text, found {_kind(node)}",
    )


def _resolved_at(field: _Field) -> str | None:
    # YAML turns an unquoted 2020-01-31 into a date; keep it as the ISO text it was.
    value = _check(
        field,
        lambda v: v is None or isinstance(v, str | datetime.date),
        "a date such as 2020-01-31",
    )
    if isinstance(value, datetime.date):
        return value.isoformat()
    return None if value is None else str(value)


def _compile(query: str, key: yaml.Node, node: yaml.Node, text: str) -> Query:
    try:
        return compile_cached(query)
    except QuerySyntaxError as exc:
        if exc.position is None:
            line, column = _mark(key.start_mark)
        else:
            line, column = _locate_in_scalar(_LINE_BREAK.split(text), node, exc.position)
        hint = (
            ""
            if isinstance(exc, QueryTooLarge)
            else "; check brackets and quotes, and escape Lucene's special characters "
            '+ - ! ( ) { } [ ] ^ " ~ * ? : \\ / with a backslash'
        )
        raise _Invalid(line, column, f"invalid query: {exc.message}{hint}") from None
    except Exception as exc:  # one engine crash must not hide the other signatures
        raise _Invalid(
            *_mark(key.start_mark),
            f"internal error compiling the query ({type(exc).__name__}: {exc}); "
            "this is a recheck bug: please report it with this file",
        ) from None


def _locate_in_scalar(lines: list[str], node: yaml.Node, offset: int) -> tuple[int, int]:
    """Best-effort 1-based (line, column) in the file of character ``offset`` of a scalar.

    YAML folds and unindents multi-line scalars (``>``, ``|``, plain) and unescapes quoted
    ones, so an offset in the value is not an offset in the file: find each source line's
    text in the value, in order, and map the offset through the line that holds it.
    """
    value: str = node.value
    start, end = node.start_mark, node.end_mark
    style = getattr(node, "style", None)
    quoted = style in ('"', "'")
    first = start.line + 1 if style in ("|", ">") else start.line
    # (value offset, line, source column of each content character and one past the end)
    segments: list[tuple[int, int, list[int]]] = []
    cursor = 0
    for line_no in range(first, min(end.line, len(lines) - 1) + 1):
        source = lines[line_no]
        begin = start.column + (1 if quoted else 0) if line_no == start.line else 0
        stop = end.column - (1 if quoted else 0) if line_no == end.line else len(source)
        content, columns = _unquote(source, begin, stop, style)
        if not content:
            continue
        found = value.find(content, cursor)
        if found < 0:
            continue  # folding changed this line beyond recognition; map through the others
        segments.append((found, line_no, columns))
        cursor = found + len(content)
    if not segments:
        return _mark(start)
    chosen = segments[0]
    for segment in segments:
        if segment[0] > offset:
            break
        chosen = segment
    value_offset, line_no, columns = chosen
    return line_no + 1, columns[min(max(offset - value_offset, 0), len(columns) - 1)] + 1


def _unquote(source: str, begin: int, stop: int, style: str | None) -> tuple[str, list[int]]:
    """One source line's share of a scalar's value, with each character's source column.

    Leading and trailing blanks are dropped (YAML folds them away); in quoted scalars
    escapes (``\\"``, ``\\x41``, ``''``) become the one character they stand for.
    """
    while begin < stop and source[begin] in " \t":
        begin += 1
    while stop > begin and source[stop - 1] in " \t":
        stop -= 1
    chars: list[str] = []
    columns: list[int] = []
    i = begin
    while i < stop:
        char, step = source[i], 1
        if style == "'" and source.startswith("''", i):
            step = 2
        elif style == '"' and char == "\\" and i + 1 < stop:
            code = source[i + 1]
            if code in _YAML_ESCAPES:
                char, step = _YAML_ESCAPES[code], 2
            elif code in _YAML_HEX_ESCAPES:
                digits = source[i + 2 : i + 2 + _YAML_HEX_ESCAPES[code]]
                # YAML already rejected malformed escapes, so these digits are hex
                char, step = chr(int(digits, 16)), 2 + len(digits)
        chars.append(char)
        columns.append(i)
        i += step
    columns.append(stop)
    return "".join(chars), columns


_YAML_ESCAPES: dict[str, str] = yaml.scanner.Scanner.ESCAPE_REPLACEMENTS
_YAML_HEX_ESCAPES: dict[str, int] = yaml.scanner.Scanner.ESCAPE_CODES


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        return exc.problem
    return str(exc)


def _mark(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _offset_to_line_column(text: str, offset: int) -> tuple[int, int]:
    before = _LINE_BREAK.split(text[:offset])
    return len(before), len(before[-1]) + 1


def _kind(node: yaml.Node) -> str:
    """Describe a node the way a triager wrote it: 'a list', 'the number 42'..."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    if tag == "null":
        return "nothing (null)"
    if tag == "str":
        return f"the text {node.value!r}"
    return f"the {tag} {node.value!r}"
