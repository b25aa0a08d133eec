"""Log sources on the local disk: a build's log directory, or one log file.

The directory is a build's log root as a logs server stores it (``job-output.txt``,
``controller/logs/screen-n-cpu.txt.gz``, ``zuul-info/inventory.yaml`` ...). A single
file is a build of one file, tagged as the file rules tag that file name wherever it
sits (``screen-n-cpu.txt`` gets the tags of ``controller/logs/screen-n-cpu.txt``); a
name no rule knows is still read, its format told by its first lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from recheck.logs.build import Build
from recheck.logs.logfiles import DEFAULT_FILE_RULES, FileRule, content_tags, logical_name
from recheck.logs.source import READ_ERRORS, LogSource, SourceError, open_text_stream

SNIFF_BYTES = 1 << 16
"""How much of a file no rule names is read to tell its format."""

__all__ = ["DirSource", "FileSource", "local_source"]


class DirSource(LogSource):
    """A build's log root in a local directory."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise SourceError(f"{root}: not a directory; pass a build's log directory or file")
        self.root = root
        self._paths: list[str] | None = None

    @property
    def location(self) -> str:
        return str(self.root)

    def paths(self) -> list[str]:
        """The build's files, listed once: a command asks for them several times (build
        fields, test results, files to read, files not read), and listing 20,000 files
        with a ``stat`` each cost more than classifying them."""
        if self._paths is None:
            self._paths = sorted(_files(str(self.root)))
        return list(self._paths)

    def open(self, path: str) -> BinaryIO:
        return open(os.path.join(self.root, path), "rb")

    def size(self, path: str) -> int:
        """The file's size in bytes (0 if it went away), to share out work by size."""
        try:
            return os.stat(os.path.join(self.root, path)).st_size
        except OSError:
            return 0

    def build_info(self) -> Build:
        return Build()


class FileSource(LogSource):
    """One log file, read as a build of that single file."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        self.path = path

    @property
    def location(self) -> str:
        return str(self.path)

    def paths(self) -> list[str]:
        return [self.path.name]

    def open(self, path: str) -> BinaryIO:
        return open(self.path, "rb")

    def build_info(self) -> Build:
        return Build()

    def rules(self, rules: tuple[FileRule, ...] = DEFAULT_FILE_RULES) -> tuple[FileRule, ...]:
        """File rules that tag this file as its name would be tagged anywhere in a build.

        A file no rule names is still read, since the user asked for it explicitly: as
        an oslo.log, console or syslog file when its first lines are one (then tagged
        ``oslofmt``, ``console`` or ``syslog``), else as plain lines (one event per line).
        """
        name = logical_name(self.path.name)
        for rule in rules:
            if rule.matches(name) or any(
                rule.matches(f"{prefix}/{name}") for prefix in _prefixes(rule.pattern)
            ):
                return (FileRule(name, rule.tags),)
        return (FileRule(name, self._content_tags()),)

    def _content_tags(self) -> tuple[str, ...]:
        try:
            with open_text_stream(self.open(self.path.name)) as stream:
                sample = stream.read(SNIFF_BYTES)
        except READ_ERRORS:
            return ()  # reading it for events reports the problem
        lines = sample.decode("utf-8", errors="replace").splitlines()
        if len(sample) == SNIFF_BYTES:
            lines = lines[:-1]  # cut in the middle
        return content_tags(lines)


def _files(root: str) -> Iterator[str]:
    """The regular files under ``root``, as ``/``-separated paths relative to it.

    Symlinks are not followed: a link out of the build directory must not pull in files
    that are not the build's. Told apart by the directory listing's own file types (no
    ``stat`` a file), with a stack rather than recursion (a build may nest deep), and an
    unreadable directory is passed over, as ``os.walk`` does.
    """
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, f"{prefix}{entry.name}/"))
                    elif entry.is_file(follow_symlinks=False):
                        yield prefix + entry.name
        except OSError:
            continue


def _prefixes(pattern: str) -> list[str]:
    """Directory parts under which ``pattern`` could name a file (``*`` as a placeholder)."""
    parent = str(PurePosixPath(pattern).parent)
    if parent == ".":
        return []
    return [parent.replace("**/", "").replace("*", "x")]


def local_source(path: Path) -> DirSource | FileSource:
    """The local source at ``path``: a directory or a single file."""
    if path.is_dir():
        return DirSource(path)
    if path.is_file():
        return FileSource(path)
    raise SourceError(
        f"{path}: no such file or directory; SOURCE is a build's log directory, a log file "
        "or a log URL"
    )
