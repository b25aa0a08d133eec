"""A build's logs, from any source, as events: choose the files, read them, split them.

Only the files the file rules select are read (``recheck.logs.logfiles``), one at a time, in
path order, each streamed, so memory does not grow with the build's size. A file that
cannot be read to its end is a ``FileProblem`` for that file: the events read before it
are kept, because a truncated upload usually still holds the lines that explain the
failure, and the other files are read as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from recheck.logs.build import INVENTORY_PATH, Build, BuildInfoError, parse_inventory
from recheck.logs.logfiles import DEFAULT_FILE_RULES, FileRule, file_tags, logical_name
from recheck.logs.source import (
    COMPRESSION_ERRORS,
    READ_ERRORS,
    BinaryFileError,
    FileProblem,
    LogSource,
    ProblemHandler,
    open_text_stream,
    read_error_message,
)
from recheck.logs.split import MAX_EVENT_CHARS, read_lines, split_lines
from recheck.models import Event

__all__ = ["build_events", "build_files", "open_build_file", "read_build_info"]

_INVENTORY_NAMES = (INVENTORY_PATH, INVENTORY_PATH + ".gz")


def read_build_info(source: LogSource, options: Build | None = None) -> Build:
    """The build's metadata: what the source knows, its inventory.yaml, then ``options``.

    Raises BuildInfoError for an inventory that is not a Zuul inventory.
    """
    build = source.build_info()
    paths = set(source.paths())
    for name in _INVENTORY_NAMES:
        if name in paths:
            try:
                with open_text_stream(source.open(name)) as stream:
                    text = stream.read(1 << 22).decode("utf-8", errors="replace")
            except READ_ERRORS as exc:
                raise BuildInfoError(
                    f"{source.location}/{name}: cannot read it ({exc}); "
                    "pass the build fields as options instead"
                ) from None
            inventory = parse_inventory(text, f"{source.location}/{name}")
            build = build.updated(inventory.event_fields())
            break
    if options is not None:
        build = build.updated(options.event_fields())
    return build


def build_files(
    source: LogSource, rules: Iterable[FileRule] = DEFAULT_FILE_RULES
) -> list[tuple[str, list[str]]]:
    """``(path in the build, tags)`` for every file the rules select, in path order."""
    rules = tuple(rules)
    found: list[tuple[str, list[str]]] = []
    for path in source.paths():
        tags = file_tags(path, rules)
        if tags is not None:
            found.append((path, tags))
    return sorted(found)


def open_build_file(
    source: LogSource, path: str, on_problem: ProblemHandler | None
) -> BinaryIO | None:
    """The file's text bytes (decompressed), or None after reporting why it can't be read."""
    try:
        return open_text_stream(source.open(path))
    except BinaryFileError as exc:
        _report(on_problem, FileProblem(path, str(exc)))
    except COMPRESSION_ERRORS as exc:
        _report(on_problem, FileProblem(path, read_error_message(exc, "at its start")))
    except (OSError, ValueError) as exc:
        message = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        _report(on_problem, FileProblem(path, f"cannot open: {message}"))
    return None


def build_events(
    source: LogSource,
    build: Build,
    *,
    rules: Iterable[FileRule] = DEFAULT_FILE_RULES,
    keep_debug: bool = False,
    max_event_chars: int = MAX_EVENT_CHARS,
    on_problem: ProblemHandler | None = None,
) -> Iterator[tuple[str, Event]]:
    """``("<filename>:<line>", event)`` for every event of the build, file by file.

    Every event gets ``filename`` (the path in the build without ``.gz``, as logstash
    named it) and the build's fields. File problems go to ``on_problem`` (ignored if
    None) and never stop the other files.
    """
    build_fields = build.event_fields()
    for path, tags in build_files(source, rules):
        filename = logical_name(path)
        stream = open_build_file(source, path, on_problem)
        if stream is None:
            continue
        problems: list[str] = []
        with stream:
            lines = _guarded(read_lines(stream, max_event_chars), problems)
            for line, event in split_lines(
                lines, tags, keep_debug=keep_debug, max_event_chars=max_event_chars
            ):
                event["filename"] = filename
                event.update(build_fields)
                yield f"{filename}:{line}", event
        for message in problems:
            _report(on_problem, FileProblem(path, message))


def _guarded(lines: Iterator[str], problems: list[str]) -> Iterator[str]:
    """Yield ``lines`` until a read error, which is recorded instead of raised."""
    count = 0
    try:
        for line in lines:
            count += 1
            yield line
    except READ_ERRORS as exc:
        problems.append(read_error_message(exc, f"after line {count}"))


def _report(on_problem: ProblemHandler | None, problem: FileProblem) -> None:
    if on_problem is not None:
        on_problem(problem)
