"""Split a whole log file into events a block at a time: ``split_lines``'s events, faster.

``split_lines`` decides every line on its own (read, decode, test, append). Here the
file is read in blocks of a few MiB cut where an event surely begins
(``event_start_test``), so that each block splits alone; a block is decoded at once,
its event starts are found by one regex pass, and each event's text is one slice of the
block (its continuation lines with their line breaks, as ``split_lines`` joins them).
Only the first line of each event is parsed, by ``split``'s own ``_parse``.

Lines ``split_lines`` drops (xtrace ``+ `` lines, ``<pre>``) are cut out of the block
first, their line numbers remembered. A block holding anything the fast path does not
model (a carriage return left after a line break; an event longer than
``max_event_chars``) is split by ``split_lines`` itself, so the events are always
exactly those ``split_lines`` gives (``tests/logs/test_blocksplit.py`` checks both on
the same inputs).
"""

from __future__ import annotations

import io
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

from recheck.logs.source import READ_ERRORS
from recheck.logs.split import (
    _CONSOLE_START,
    _JENKINS_START,
    _OSLO_FOLD,
    _OSLO_START,
    MAX_EVENT_CHARS,
    PARSE_FAILURE_TAG,
    StartTest,
    Text,
    _oslo_match,
    _parse,
    event_start_test,
    file_format,
    read_lines,
    split_lines,
)
from recheck.models import Event

__all__ = ["BLOCK_BYTES", "BlockSplitter", "Piece", "last_start", "pieces", "split_stream"]

BLOCK_BYTES = 4 << 20
"""Bytes split at a time (and the piece a read error may lose, at most)."""
_READ_BYTES = 1 << 16
"""One read: a read error loses what it was reading, as ``read_lines`` would."""
_MAX_CARRY = 64 << 20
"""Bytes kept while no line in them surely begins an event; past it, the rest of the
file goes through ``split_lines`` line by line (bounded memory, same events)."""

_STARTS = {
    "console": re.compile(rf"\n(?:{_CONSOLE_START.pattern}|{_JENKINS_START.pattern})", re.ASCII),
    "oslofmt": re.compile(rf"\n{_OSLO_START.pattern}", re.ASCII),
}
"""Where an event may begin, found in a whole block: the line patterns of
``split_lines`` after a line break (none of them can cross one). A pattern starting
with a literal is searched for that literal first: far faster than ``^`` tried at every
character."""

ReadProblem = Callable[[BaseException, int], None]
"""Told a read error and the number of lines read before it."""


@dataclass
class Piece:
    """A stretch of a file to split: a block, or the rest of the file, or a read error."""

    data: bytes
    line: int
    """The number of the first line of ``data`` (for an error: the lines read before it)."""
    rest: bool = False
    """``data`` and everything after it in the stream: no line in ``_MAX_CARRY`` bytes
    surely begins an event, so the rest goes through ``split_lines``."""
    error: BaseException | None = None
    """The read error that ended the file (``data`` is empty)."""


def split_stream(
    stream: BinaryIO,
    tags: Sequence[str],
    *,
    keep_debug: bool = False,
    max_event_chars: int = MAX_EVENT_CHARS,
    on_read_error: ReadProblem | None = None,
) -> Iterator[list[tuple[int, Event]]]:
    """The events of ``stream``, as ``split_lines(read_lines(stream), tags)`` gives them,
    a block's worth (a list of ``(first line number, event)``) at a time.

    A read error ends the file: the events of the complete lines read before it are
    given, then ``on_read_error`` is told (raised if None).
    """
    splitter = BlockSplitter(tags, keep_debug, max_event_chars)
    for piece in pieces(stream, tags, max_event_chars):
        if piece.error is not None:
            if on_read_error is None:
                raise piece.error
            on_read_error(piece.error, piece.line)
        elif piece.rest:
            yield from splitter.rest(piece.data, stream, piece.line, on_read_error)
        else:
            yield splitter.split(piece.data, piece.line)


def pieces(stream: BinaryIO, tags: Sequence[str], max_event_chars: int) -> Iterator[Piece]:
    """``stream`` cut into blocks that each begin where an event surely begins; after a
    ``rest`` piece, the caller reads the rest of the stream itself."""
    starts = event_start_test(tags)
    carry = b""
    line = 1
    while True:
        block, error = _read_block(stream)
        data = carry + block if carry else block
        if error is not None:
            data = data[: data.rfind(b"\n") + 1]  # a partial last line is not read
        if not block or error is not None:
            if data:
                yield Piece(data, line)
                line += data.count(b"\n")
            if error is not None:
                yield Piece(b"", line - 1, error=error)
            return
        cut = last_start(data, len(data), starts)
        if cut is None:
            if len(data) > _MAX_CARRY:
                yield Piece(data, line, rest=True)
                return
            carry = data
            continue
        yield Piece(data[:cut], line)
        line += data.count(b"\n", 0, cut)
        carry = data[cut:]


def _read_block(stream: BinaryIO) -> tuple[bytes, BaseException | None]:
    """About BLOCK_BYTES of ``stream`` (less at its end), and the read error that ended it.

    A plain file is read a piece at a time; any other stream (decompressed, fetched) a
    line at a time, as ``read_lines`` reads it, so that a read error (a truncated gzip,
    a download deadline) loses no more of it than the line it was reading.
    """
    plain = isinstance(stream, io.BufferedReader) and isinstance(stream.raw, io.FileIO)
    read = stream.read if plain else stream.readline
    pieces: list[bytes] = []
    size = 0
    try:
        while size < BLOCK_BYTES:
            piece = read(_READ_BYTES)
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
    except READ_ERRORS as exc:
        return b"".join(pieces), exc
    return b"".join(pieces), None


def last_start(data: Text, size: int, starts: StartTest, begin: int = 0) -> int | None:
    """The start of the last complete line of ``data[begin:size]`` (not its first) that
    begins an event."""
    end = data.rfind(b"\n", begin, size)
    while end > begin:
        start = data.rfind(b"\n", begin, end) + 1
        if start <= begin:
            return None
        if starts(data, start, end):
            return start
        end = start - 1
    return None


class _Joined(io.RawIOBase):
    """``data`` followed by the rest of ``stream``, for ``read_lines``."""

    def __init__(self, data: bytes, stream: BinaryIO) -> None:
        self._data = io.BytesIO(data)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        text = self._data.readline(limit)
        if text.endswith(b"\n") or (limit >= 0 and len(text) >= limit):
            return text
        more = self._stream.readline(-1 if limit < 0 else limit - len(text))
        return text + more


class BlockSplitter:
    """Splits blocks that begin where an event surely begins."""

    def __init__(self, tags: Sequence[str], keep_debug: bool, max_event_chars: int) -> None:
        self.tags = list(tags)
        self.fmt = file_format(tags)
        self.keep_debug = keep_debug
        self.limit = max_event_chars
        self.xtrace = "screen" in tags
        self.failed_tags = [*tags, PARSE_FAILURE_TAG]
        dropped = []
        if "screen" in tags:
            dropped.append(r"\n\+ [^\n]*")  # devstack's xtrace
        if self.fmt == "console":
            dropped.append(r"\n</?pre>(?=\n|\Z)")  # Jenkins' console.html
        self.dropped = re.compile("|".join(dropped)) if dropped else None

    def split(self, data: bytes, first_line: int) -> list[tuple[int, Event]]:
        text = data.decode("utf-8", errors="replace")
        found = None
        if "\r" in text:
            text = text.replace("\r\n", "\n")  # read_lines takes one off each line's end
        if not ("\r" in text and (text.endswith("\r") or "\r\n" in text)):
            text, dropped = self._without_dropped(text)
            found = self._fast(text, first_line, dropped)
        if found is not None:
            return found
        events = split_lines(
            read_lines(io.BytesIO(data), self.limit),
            self.tags,
            keep_debug=self.keep_debug,
            max_event_chars=self.limit,
        )
        return [(number + first_line - 1, event) for number, event in events]

    def rest(
        self, data: bytes, stream: BinaryIO, line: int, on_read_error: ReadProblem | None
    ) -> Iterator[list[tuple[int, Event]]]:
        """The events of ``data`` and the rest of ``stream``, line by line."""
        lines = read_lines(cast(BinaryIO, _Joined(data, stream)), self.limit)
        batch: list[tuple[int, Event]] = []
        count = 0

        def counted() -> Iterator[str]:
            nonlocal count
            for text in lines:
                count += 1
                yield text

        events = split_lines(
            counted(), self.tags, keep_debug=self.keep_debug, max_event_chars=self.limit
        )
        try:
            for number, event in events:
                batch.append((number + line - 1, event))
                if len(batch) >= 10_000:
                    yield batch
                    batch = []
        except READ_ERRORS as exc:
            if batch:
                yield batch
            if on_read_error is None:
                raise
            on_read_error(exc, line - 1 + count)
            return
        if batch:
            yield batch

    def _without_dropped(self, text: str) -> tuple[str, list[int]]:
        """``text`` without the lines ``split_lines`` drops, and where each was (in the
        text without them), to number the lines after it."""
        pattern = self.dropped
        if pattern is None:
            return text, []
        # Searched after a line break (a literal: fast), the text's first line too.
        text = "\n" + text
        if pattern.search(text) is None:
            return text[1:], []
        pieces: list[str] = []
        dropped: list[int] = []
        kept = 0
        removed = 0
        for match in pattern.finditer(text):  # the line break before a line, and the line
            pieces.append(text[kept : match.start()])
            dropped.append(match.start() - removed)
            removed += match.end() - match.start()
            kept = match.end()
        pieces.append(text[kept:])
        return "".join(pieces)[1:], dropped

    def _fast(
        self, text: str, first_line: int, dropped: list[int]
    ) -> list[tuple[int, Event]] | None:
        """The events of ``text``, whose lines were preceded by dropped ones at the
        positions ``dropped``; None if one is longer than an event keeps."""
        if not text:
            return []
        body = text[:-1] if text.endswith("\n") else text  # the last line's break ends it
        fmt = self.fmt
        limit = self.limit
        out: list[tuple[int, Event]] = []
        pattern = _STARTS.get(fmt or "")
        if pattern is None:  # every line begins an event
            position = 0
            for number, first in enumerate(body.split("\n"), first_line):
                if len(first) > limit:
                    return None
                event = self._event(first, _parse(first, fmt), "")
                if event is not None:
                    line = number + bisect_right(dropped, position) if dropped else number
                    out.append((line, event))
                position += len(first) + 1
            return out
        # Where events begin (the first line does: the block begins where an event surely
        # does, or the file does), each event taken when the next one begins. An oslo
        # traceback line continues the event before it, unless that is a DEBUG event.
        oslo = fmt == "oslofmt"
        drop_debug = oslo and not self.keep_debug
        size = len(body)
        line = first_line
        counted = 0
        start = 0
        level: str | None = None
        fields: dict[str, str] | None = None
        first_end = body.find("\n")
        if first_end == -1:
            first_end = size
        level, fields = self._first_line(body[:first_end], drop_debug)
        positions = [match.start() + 1 for match in pattern.finditer(body)]
        positions.append(size + 1)
        for position in positions:
            stop = body.find("\n", position)
            if stop == -1:
                stop = size
            folds = oslo and level != "DEBUG" and position <= size
            if folds and _OSLO_FOLD.match(body, position, stop):
                continue  # a traceback line: part of the event before it
            after = position - 1  # the line break before the next event
            if after - start > limit:
                return None
            if level != "DEBUG" or not drop_debug:
                line += body.count("\n", counted, start)
                counted = start
                event = self._event(body[start:first_end], fields, body[first_end:after])
                if event is not None:
                    out.append((line + bisect_right(dropped, start) if dropped else line, event))
            if position > size:
                break
            start = position
            first_end = stop
            level, fields = self._first_line(body[position:stop], drop_debug)
        return out

    def _first_line(self, line: str, drop_debug: bool) -> tuple[str | None, dict[str, str] | None]:
        """An event's level and prefix fields (not made for a DEBUG event dropped)."""
        if drop_debug and "DEBUG" in line:
            match = _oslo_match(line)
            if match is None:
                return None, None
            level = match.group("loglevel")
            if level == "DEBUG":
                return level, None
            return level, {k: v for k, v in match.groupdict().items() if v is not None}
        fields = _parse(line, self.fmt)
        return (None if fields is None else fields.get("loglevel")), fields

    def _event(self, first: str, fields: dict[str, str] | None, rest: str) -> Event | None:
        """``split._finish`` for an event whose continuation lines are ``rest`` (with the
        line break before each)."""
        if fields is None:
            return {"message": first + rest, "tags": list(self.failed_tags)}
        if not self.keep_debug and fields.get("loglevel") == "DEBUG":
            return None
        message = fields.pop("logmessage", "")
        event: Event = dict(fields)
        event["message"] = message + rest
        event["tags"] = list(self.tags)
        return event
