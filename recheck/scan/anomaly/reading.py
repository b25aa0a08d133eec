"""Read builds' files for comparison: baselines into one set of line keys, the failed
build into the lines whose key no baseline has.

Files are read through ``recheck.logs`` (the file rules choose them and their tags,
``open_build_file`` decompresses and refuses binary files), in chunks of whole lines,
never split into events: comparing is per line, and a chunk's keys are computed at once
(``recheck.scan.anomaly.normalize.line_keys``). The files of local builds are shared out
between processes (``recheck.scan.forkmap``), biggest first; the failed build's are read
after the baselines', by processes forked with the baseline keys in their memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from recheck.logs.build import Build
from recheck.logs.buildlogs import NoLogFilesError, build_files, open_build_file
from recheck.logs.localdir import DirSource, FileSource
from recheck.logs.logfiles import FileRule, file_tags, logical_name
from recheck.logs.source import READ_ERRORS, FileProblem, LogSource, read_error_message
from recheck.logs.split import file_format
from recheck.scan.anomaly.normalize import line_keys, syslog_host
from recheck.scan.anomaly.novel import NovelLines
from recheck.scan.forkmap import fork_map

__all__ = ["BuildLogs", "FileNovelty", "baseline_keys", "novel_lines"]

CHUNK_BYTES = 8 << 20
"""Text read and keyed at a time: big enough that per-chunk costs vanish."""
MAX_LINE_READ = 1 << 20
"""Of a line longer than this, only the start is compared (the rest is skipped)."""
MAX_NOVEL_LINES = 100_000
"""Novel lines kept per file (a failed build of a different kind than its baselines
would otherwise keep all its lines); past it they are only counted."""
MAX_LINE_BYTES = 4096
"""Of a novel line, this much is kept to show and to draft a query from."""
_MIN_KEY_BYTES = 3
"""A line whose key is shorter (blank, only numbers or ids) cannot be told apart."""


@dataclass
class BuildLogs:
    """One build to compare: its logs, the rules choosing its files, its fields."""

    source: LogSource
    rules: tuple[FileRule, ...]
    build: Build
    name: str
    """How messages name it: its path, URL or uuid."""

    def files(self) -> list[tuple[str, list[str]]]:
        """(path, tags) of the files read; raises NoLogFilesError when there are none.

        A local directory none of whose files the rules name (a folder of ``app.log``
        and ``worker.log``) is read whole, each file as a log file named on its own is:
        its format told by its first lines. Comparing needs no known names.
        """
        try:
            return build_files(self.source, self.rules)
        except NoLogFilesError:
            if not isinstance(self.source, DirSource):
                raise
            found = []
            for path in self.source.paths():
                single = FileSource(self.source.root / path)
                tags = file_tags(single.path.name, single.rules(self.rules))
                if tags is not None:
                    found.append((path, tags))
            if not found:
                raise
            return found

    @property
    def local(self) -> bool:
        return isinstance(self.source, DirSource | FileSource)


@dataclass
class FileNovelty:
    """A failed build's file: its lines no baseline has, and how long it is."""

    path: str
    filename: str
    tags: list[str]
    lines: int = 0
    novel: NovelLines = field(default_factory=NovelLines)
    """(line number, text, key) of each novel line, in order (at most MAX_NOVEL_LINES)."""
    repeats: Counter[bytes] = field(default_factory=Counter)
    """How often each novel key occurs in the file."""
    problems: list[FileProblem] = field(default_factory=list)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Whole-line chunks of the stream (the last one ends with ``\\n`` too)."""
    while block := stream.read(CHUNK_BYTES):
        if not block.endswith(b"\n"):
            block += stream.readline(MAX_LINE_READ)
            if not block.endswith(b"\n"):  # a huge line, or the end: cut it here
                block += b"\n"
                while (more := stream.readline(MAX_LINE_READ)) and not more.endswith(b"\n"):
                    pass
        yield block


def _keyed_chunks(
    logs: BuildLogs, path: str, tags: list[str], problems: list[FileProblem]
) -> Iterator[tuple[bytes, list[bytes]]]:
    """(chunk, its lines' keys) of the file; a read error ends it as a problem."""
    stream = open_build_file(logs.source, path, problems.append)
    if stream is None:
        return
    syslog = file_format(tags) == "syslog"
    host: bytes | None = None
    with stream:
        try:
            for chunk in _chunks(stream):
                if syslog and host is None:
                    host = syslog_host(chunk)
                keys = line_keys(chunk, host=host)
                keys.pop()  # after the last newline
                yield chunk, keys
        except READ_ERRORS as exc:
            problems.append(FileProblem(path, read_error_message(exc, "while reading it")))


def _file_keys(logs: BuildLogs, path: str, tags: list[str]) -> tuple[set[bytes], list[FileProblem]]:
    keys: set[bytes] = set()
    problems: list[FileProblem] = []
    for _, chunk_keys in _keyed_chunks(logs, path, tags, problems):
        keys.update(chunk_keys)
    return keys, problems


def _tasks(builds: Sequence[BuildLogs]) -> list[tuple[int, str, list[str]]]:
    tasks = [
        (index, path, tags) for index, logs in enumerate(builds) for path, tags in logs.files()
    ]

    def size(task: tuple[int, str, list[str]]) -> int:
        source = builds[task[0]].source
        return source.size(task[1]) if isinstance(source, DirSource) else 0

    return sorted(tasks, key=lambda task: -size(task))


def _processes(builds: Sequence[BuildLogs], workers: int) -> int:
    return workers if all(logs.local for logs in builds) else 1


def baseline_keys(
    baselines: Sequence[BuildLogs],
    workers: int = 1,
    on_problem: Callable[[FileProblem], None] | None = None,
) -> set[bytes]:
    """Every line key of every file of the baselines."""
    tasks = _tasks(baselines)

    def read(task: tuple[int, str, list[str]]) -> tuple[set[bytes], list[FileProblem]]:
        return _file_keys(baselines[task[0]], task[1], task[2])

    union: set[bytes] = set()
    for keys, problems in fork_map(read, tasks, _processes(baselines, workers)):
        union |= keys
        for problem in problems:
            if on_problem is not None:
                on_problem(problem)
    return union


def _file_novelty(
    logs: BuildLogs,
    path: str,
    tags: list[str],
    known: set[bytes] | set[int],
    keyed: Callable[[bytes], int] | None,
) -> FileNovelty:
    result = FileNovelty(path, logical_name(path), tags)
    for chunk, keys in _keyed_chunks(logs, path, tags, result.problems):
        if keyed is None:
            novel = set(keys) - known
        else:
            novel = {key for key in set(keys) if keyed(key) not in known}
        if novel:
            _record(result, chunk, keys, novel)
        result.lines += len(keys)
    return result


def _record(result: FileNovelty, chunk: bytes, keys: list[bytes], novel: set[bytes]) -> None:
    texts = chunk.split(b"\n")
    room = MAX_NOVEL_LINES - len(result.novel)
    kept: list[tuple[int, str, bytes]] = []
    for index, key in enumerate(keys):
        if key not in novel or len(key.strip()) < _MIN_KEY_BYTES:
            continue
        result.repeats[key] += 1
        if len(kept) < room:
            text = texts[index][:MAX_LINE_BYTES].rstrip(b"\r").decode("utf-8", errors="replace")
            kept.append((result.lines + index + 1, text, key))
    result.novel.extend(kept)


def novel_lines(
    failed: BuildLogs,
    known: set[bytes] | set[int],
    workers: int = 1,
    keyed: Callable[[bytes], int] | None = None,
) -> list[FileNovelty]:
    """The failed build's files, each with its lines whose key is not in ``known``
    (or whose ``keyed(key)`` is not, when ``known`` holds digests of keys)."""
    tasks = _tasks([failed])

    def read(task: tuple[int, str, list[str]]) -> FileNovelty:
        return _file_novelty(failed, task[1], task[2], known, keyed)

    found = fork_map(read, tasks, _processes([failed], workers))
    return sorted(found, key=lambda novelty: novelty.path)
