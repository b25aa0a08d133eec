"""A build's logs from a local directory: the selected files, split into events.

The directory is a build's log root as a logs server stores it (``job-output.txt``,
``controller/logs/screen-n-cpu.txt.gz``, ``zuul-info/inventory.yaml`` ...). Only the
files the file rules select are read (``recheck.logfiles``), one at a time, in path
order, each streamed line by line, so memory does not grow with the build's size.

A file that cannot be read to its end (a truncated or corrupt ``.gz``, a read error)
is a **file problem**, reported through ``on_problem`` with the file's path; the
events read before the problem are kept, because a truncated upload usually still
holds the lines that explain the failure, and the rest of the build is read as usual.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from recheck.build import INVENTORY_PATH, Build, load_inventory
from recheck.logfiles import DEFAULT_FILE_RULES, FileRule, file_tags, logical_name
from recheck.models import Event
from recheck.split import MAX_EVENT_CHARS, read_lines, split_lines

__all__ = ["FileProblem", "build_events", "build_files", "read_build_info"]


@dataclass(frozen=True)
class FileProblem:
    """A file of the build that could not be read completely, and why."""

    path: str
    """The file's path in the build, as on disk (``.gz`` included)."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def read_build_info(root: Path, options: Build | None = None) -> Build:
    """The build's metadata: its ``zuul-info/inventory.yaml`` if any, then ``options``."""
    build = Build()
    inventory = root / INVENTORY_PATH
    if inventory.is_file():
        build = load_inventory(inventory)
    if options is not None:
        build = build.updated(options.event_fields())
    return build


def build_files(
    root: Path, rules: Iterable[FileRule] = DEFAULT_FILE_RULES
) -> Iterator[tuple[str, list[str]]]:
    """``(path in the build, tags)`` for every file the rules select, in path order."""
    rules = tuple(rules)
    found: list[tuple[str, list[str]]] = []
    # Symlinks are not followed: a link out of the build directory must not pull in
    # files that are not the build's.
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in names:
            full = Path(directory, name)
            if full.is_symlink() or not full.is_file():
                continue
            relative = full.relative_to(root).as_posix()
            tags = file_tags(relative, rules)
            if tags is not None:
                found.append((relative, tags))
    yield from sorted(found)


def build_events(
    root: Path,
    build: Build,
    *,
    rules: Iterable[FileRule] = DEFAULT_FILE_RULES,
    keep_debug: bool = False,
    max_event_chars: int = MAX_EVENT_CHARS,
    on_problem: Callable[[FileProblem], None] | None = None,
) -> Iterator[tuple[str, Event]]:
    """``("<filename>:<line>", event)`` for every event of the build, file by file.

    Every event gets ``filename`` (the path in the build without ``.gz``, as logstash
    named it) and the build's fields. File problems go to ``on_problem`` (ignored if
    None) and never stop the other files.
    """
    build_fields = build.event_fields()
    for path, tags in build_files(root, rules):
        filename = logical_name(path)
        problems: list[str] = []
        try:
            stream = _open(root / path)
        except OSError as exc:
            _report(on_problem, FileProblem(path, f"cannot open: {exc.strerror or exc}"))
            continue
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


def _open(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        # GzipFile is a binary stream; typeshed just does not declare it a BinaryIO.
        return cast(BinaryIO, gzip.open(path, "rb"))
    return open(path, "rb")


def _guarded(lines: Iterator[str], problems: list[str]) -> Iterator[str]:
    """Yield ``lines`` until a read error, which is recorded instead of raised."""
    count = 0
    try:
        for line in lines:
            count += 1
            yield line
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        problems.append(
            f"compressed data is truncated or corrupt after line {count} ({exc}); "
            "kept the events before it, the rest of the file is missing"
        )
    except OSError as exc:
        problems.append(f"read error after line {count}: {exc.strerror or exc}")


def _report(on_problem: Callable[[FileProblem], None] | None, problem: FileProblem) -> None:
    if on_problem is not None:
        on_problem(problem)
