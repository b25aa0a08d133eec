"""A build's logs, from any source, as events: choose the files, read them, split them.

Only the files the file rules select are read (``recheck.logs.logfiles``), one at a time, in
path order, each streamed, so memory does not grow with the build's size. A file that
cannot be read to its end is a ``FileProblem`` for that file: the events read before it
are kept, because a truncated upload usually still holds the lines that explain the
failure, and the other files are read as usual. A build with no file to read is an
error (``NoLogFilesError``), never a build where no known bug matched.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO, TypeVar

from recheck.logs.blocksplit import split_stream
from recheck.logs.build import INVENTORY_PATH, Build, BuildInfoError, parse_inventory
from recheck.logs.forkedsplit import ForkedSplit
from recheck.logs.localdir import DirSource, FileSource
from recheck.logs.logfiles import (
    DEFAULT_FILE_RULES,
    FileRule,
    file_tagger,
    known_names,
    logical_name,
)
from recheck.logs.source import (
    COMPRESSION_ERRORS,
    READ_ERRORS,
    BinaryFileError,
    FileProblem,
    LogSource,
    ProblemHandler,
    SourceError,
    open_text_stream,
    read_error_message,
)
from recheck.logs.split import MAX_EVENT_CHARS
from recheck.models import Event

_T = TypeVar("_T")

__all__ = [
    "EventBlock",
    "NoLogFilesError",
    "build_end_time",
    "build_event_blocks",
    "build_events",
    "build_files",
    "open_build_file",
    "read_build_info",
    "unread_files",
]

_INVENTORY_NAMES = (INVENTORY_PATH, INVENTORY_PATH + ".gz")
_SUBUNIT_NAMES = ("testrepository.subunit", "testrepository.subunit.gz")
"""recheck.logs.testresults.SUBUNIT_NAMES, not imported: that module loads python-subunit."""


class NoLogFilesError(SourceError):
    """None of the build's files is one recheck reads: nothing could be classified."""


def read_build_info(source: LogSource, options: Build | None = None) -> Build:
    """The build's metadata: what the source knows, gaps filled from its inventory.yaml,
    then ``options`` over both.

    What the source knows comes from Zuul's API when the build was found there; it is
    authoritative (the inventory is written before the job runs, and a copied or stale
    one must not rename a build), so the inventory only adds fields the API did not give.
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
            build = inventory.updated(build.event_fields())
            break
    if options is not None:
        build = build.updated(options.event_fields())
    return build


def build_files(
    source: LogSource, rules: Iterable[FileRule] = DEFAULT_FILE_RULES
) -> list[tuple[str, list[str]]]:
    """``(path in the build, tags)`` for every file the rules select, in path order.

    Raises NoLogFilesError when they select none, naming the files that are there.
    """
    rules = tuple(rules)
    found: list[tuple[str, list[str]]] = []
    paths = source.paths()
    file_tags = file_tagger(rules)
    for path in paths:
        tags = file_tags(path)
        if tags is not None:
            found.append((path, tags))
    if not found:
        raise NoLogFilesError(_no_log_files(source.location, paths, rules))
    return sorted(found)


def unread_files(source: LogSource, rules: Iterable[FileRule] = DEFAULT_FILE_RULES) -> list[str]:
    """The build's files no rule selects, in path order (inventory and subunit left out:
    they are read, for build fields and test results)."""
    file_tags = file_tagger(rules)
    return [
        path
        for path in source.paths()
        if path not in _INVENTORY_NAMES
        and path.rsplit("/", 1)[-1] not in _SUBUNIT_NAMES
        and file_tags(path) is None
    ]


def _no_log_files(location: str, paths: list[str], rules: tuple[FileRule, ...]) -> str:
    if not paths:
        there = "it holds no files"
    else:
        shown = ", ".join(paths[:_SHOWN_PATHS])
        more = f" and {len(paths) - _SHOWN_PATHS:,} more" if len(paths) > _SHOWN_PATHS else ""
        there = f"none of its files has a name recheck reads: {shown}{more}"
    return (
        f"no log files in {location} ({there}); known names: {', '.join(known_names(rules))} "
        "(where they must sit: the file rules, files: in bot.yaml); "
        "or name one log file, which is always read"
    )


_SHOWN_PATHS = 5
"""Files named in a message about a build's files; the rest are counted."""


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
    workers: int = 1,
) -> Iterator[tuple[str, Event]]:
    """``("<filename>:<line>", event)`` for every event of the build, file by file.

    Every event gets ``filename`` (the path in the build without ``.gz``, as logstash
    named it) and the build's fields. File problems go to ``on_problem`` (ignored if
    None) and never stop the other files. ``workers``: see ``build_event_blocks``.
    Raises NoLogFilesError (at once, before any event) when no file is selected.
    """
    blocks = build_event_blocks(
        source, build, EventBlock.events, rules=rules, keep_debug=keep_debug,
        max_event_chars=max_event_chars, on_problem=on_problem, workers=workers,
    )  # fmt: skip
    return (item for block in blocks for item in block)


@dataclass
class EventBlock:
    """A few MiB of one file's events, as ``build_event_blocks`` gives them to its encoder.

    The events are as split (prefix fields, ``message``, ``tags``): an encoder that
    writes what every event of a file shares once per file (``filename``, the build's
    fields) reads them so; ``events()`` gives them as ``build_events`` does.
    """

    filename: str
    """The file's name in the build without ``.gz`` (as logstash named it)."""
    number: int
    """The block's place in the build: larger for each later block (not contiguous)."""
    split: list[tuple[int, Event]]
    """``(first line number, event)`` as the splitter made them."""
    fields: Mapping[str, str]
    """The build's event fields (``Build.event_fields``)."""

    def events(self) -> list[tuple[str, Event]]:
        """``("<filename>:<line>", event)`` with ``filename`` and the build's fields
        added to each event (in place: the block's events are changed)."""
        filename = self.filename
        fields = self.fields
        events: list[tuple[str, Event]] = []
        for line, event in self.split:
            event["filename"] = filename
            event.update(fields)
            events.append((f"{filename}:{line}", event))
        return events


def build_event_blocks(
    source: LogSource,
    build: Build,
    encode: Callable[[EventBlock], _T],
    *,
    rules: Iterable[FileRule] = DEFAULT_FILE_RULES,
    keep_debug: bool = False,
    max_event_chars: int = MAX_EVENT_CHARS,
    on_problem: ProblemHandler | None = None,
    workers: int = 1,
) -> Iterator[_T]:
    """What ``encode`` makes of each block of the build's events (``build_events``'s
    events, a few MiB of a file at a time), in order.

    With ``workers`` above 1, the files of a local build are split (and ``encode``
    run) by that many forked processes (``recheck.logs.forkedsplit``), from a process
    without other threads only (else in this one). Raises NoLogFilesError at once, as
    ``build_events`` does.
    """
    # Not a generator itself: a build without log files fails when this is called, so a
    # store never starts writing a build that has nothing to store; workers start now.
    files = build_files(source, rules)
    fields = build.event_fields()

    def finish(path: str, number: int, block: list[tuple[int, Event]]) -> _T:
        return encode(EventBlock(logical_name(path), number, block, fields))

    local = isinstance(source, DirSource | FileSource)
    if workers > 1 and local and threading.active_count() == 1:

        def opener(path: str, problems: list[FileProblem]) -> BinaryIO | None:
            return open_build_file(source, path, problems.append)

        forked = ForkedSplit(
            files, opener, finish, workers=workers, keep_debug=keep_debug,
            max_event_chars=max_event_chars,
        )  # fmt: skip
        return _forked(forked, on_problem)
    return _blocks(source, files, finish, keep_debug, max_event_chars, on_problem)


def _forked(forked: ForkedSplit[_T], on_problem: ProblemHandler | None) -> Iterator[_T]:
    for _, payload, problems in forked.blocks():
        if payload is not None:
            yield payload
        for problem in problems:
            _report(on_problem, problem)


def _blocks(
    source: LogSource,
    files: list[tuple[str, list[str]]],
    finish: Callable[[str, int, list[tuple[int, Event]]], _T],
    keep_debug: bool,
    max_event_chars: int,
    on_problem: ProblemHandler | None,
) -> Iterator[_T]:
    number = 0
    for path, tags in files:
        stream = open_build_file(source, path, on_problem)
        if stream is None:
            continue
        problems: list[str] = []

        def failed(exc: BaseException, lines: int, problems: list[str] = problems) -> None:
            problems.append(read_error_message(exc, f"after line {lines}"))

        with stream:
            for block in split_stream(
                stream,
                tags,
                keep_debug=keep_debug,
                max_event_chars=max_event_chars,
                on_read_error=failed,
            ):
                yield finish(path, number, block)
                number += 1
        for message in problems:
            _report(on_problem, FileProblem(path, message))


def _report(on_problem: ProblemHandler | None, problem: FileProblem) -> None:
    if on_problem is not None:
        on_problem(problem)


def build_end_time(
    source: LogSource, rules: Iterable[FileRule] = DEFAULT_FILE_RULES, *, read_logs: bool = True
) -> datetime | None:
    """When the build ended, as aware UTC: Zuul's record of it when the source has one,
    else (with ``read_logs``) the newest timestamp its log files end with; None if unknown.

    The inventory holds no time (Zuul writes it before the job runs). Local logs are
    all looked at (the end of each file); fetched ones only their console logs, which
    end when the build does, to download one file again rather than the whole build.
    Raises NoLogFilesError as ``build_files`` does.
    """
    known = getattr(source, "end_time", None)  # recheck.logs.zuul.ZuulBuildSource
    if isinstance(known, datetime):
        return known
    if not read_logs:
        return None
    files = build_files(source, rules)
    if not isinstance(source, DirSource | FileSource):
        files = [(path, tags) for path, tags in files if "console" in tags]
    times = [_last_time(_tail(source, path)) for path, _ in files]
    return max((moment for moment in times if moment is not None), default=None)


_TAIL_BYTES = 1 << 16
"""The end of a file looked at for its last timestamp."""

_LINE_TIME = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,]\d+)?\s?(Z|[+-]\d\d:?\d\d)?"
)
"""An ISO timestamp starting a line: console (``<time> | ``) and oslo.log lines."""


def _tail(source: LogSource, path: str) -> bytes:
    """The last ``_TAIL_BYTES`` of the file's text (empty if it cannot be read)."""
    try:
        raw = source.open(path)
    except READ_ERRORS:
        return b""  # reading it for events reports the problem
    try:
        # A plain local file is read from near its end; anything else (compressed,
        # fetched) has to be read through.
        if raw.seekable() and raw.read(2) != b"\x1f\x8b":
            size = raw.seek(0, io.SEEK_END)
            raw.seek(max(0, size - _TAIL_BYTES))
            return raw.read(_TAIL_BYTES)
        if raw.seekable():
            raw.seek(0)
        tail = b""
        with open_text_stream(raw) as stream:
            while chunk := stream.read(1 << 20):
                tail = (tail + chunk)[-_TAIL_BYTES:]
        return tail
    except READ_ERRORS:
        return b""
    finally:
        raw.close()


def _last_time(tail: bytes) -> datetime | None:
    """The timestamp of the last line of ``tail`` that starts with one, if plausible."""
    latest = datetime.now(UTC) + timedelta(days=1)
    for line in reversed(tail.splitlines()):
        found = _LINE_TIME.match(line)
        if found is None:
            continue
        try:
            year, month, day, hour, minute, second = (int(found[n]) for n in range(1, 7))
            moment = datetime(year, month, day, hour, minute, second, tzinfo=_zone(found[7]))
        except ValueError:
            continue
        moment = moment.astimezone(UTC)
        if moment <= latest:  # a clock gone wrong must not date a build in the future
            return moment
    return None


def _zone(text: bytes | None) -> timezone:
    if text is None or text == b"Z":
        return UTC
    digits = text[1:].replace(b":", b"")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-offset if text.startswith(b"-") else offset)
