"""Split a whole log file into events a block at a time: ``split_lines``'s events, faster.

``split_lines`` decides every line on its own (read, decode, test, append). Here the
file is read in blocks of a few MiB cut where an event surely begins
(``event_start_test``), so that each block splits alone; a block is decoded at once
and split by one regex pass (``blockformats``: console, oslo.log and syslog files) or a
line at a time (files of one event per line), each event's text one slice of the block
(its continuation lines with their line breaks, as ``split_lines`` joins them).

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

from recheck.logs.blockformats import FAST_FORMATS, Block
from recheck.logs.source import READ_ERRORS
from recheck.logs.split import (
    MAX_EVENT_CHARS,
    PARSE_FAILURE_TAG,
    StartTest,
    Text,
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
            if text:  # each line after a line break; the last line's break ends it
                lined = "\n" + (text[:-1] if text.endswith("\n") else text)
                lined, dropped = self._without_dropped(lined)
                found = self._fast(lined, first_line, dropped)
            else:
                found = []
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

    def _without_dropped(self, lined: str) -> tuple[str, list[int]]:
        """``lined`` (lines each after a line break) without the lines ``split_lines``
        drops, and where each was (the position of the line break before the line after
        it), to number the lines after it. Empty if every line is dropped."""
        pattern = self.dropped
        if pattern is None or pattern.search(lined) is None:  # after a line break: fast
            return lined, []
        pieces: list[str] = []
        dropped: list[int] = []
        kept = 0
        removed = 0
        for match in pattern.finditer(lined):  # the line break before a line, and the line
            pieces.append(lined[kept : match.start()])
            dropped.append(match.start() - removed)
            removed += match.end() - match.start()
            kept = match.end()
        pieces.append(lined[kept:])
        return "".join(pieces), dropped

    def _fast(
        self, lined: str, first_line: int, dropped: list[int]
    ) -> list[tuple[int, Event]] | None:
        """The events of ``lined`` (its lines each after a line break), whose lines were
        preceded by dropped ones at the positions ``dropped``; None if one is longer
        than an event keeps."""
        if not lined:
            return []
        fmt = self.fmt
        limit = self.limit
        if fmt in FAST_FORMATS:
            block = Block(
                lined, first_line, dropped, self.tags, self.failed_tags, self.keep_debug, limit
            )
            return FAST_FORMATS[fmt](block)
        # Every other format: every line begins an event.
        out: list[tuple[int, Event]] = []
        position = 0
        for number, first in enumerate(lined[1:].split("\n"), first_line):
            if len(first) > limit:
                return None
            event = self._event(first, _parse(first, fmt))
            if event is not None:
                line = number + bisect_right(dropped, position) if dropped else number
                out.append((line, event))
            position += len(first) + 1
        return out

    def _event(self, first: str, fields: dict[str, str] | None) -> Event | None:
        """``split._finish`` for an event of one line."""
        if fields is None:
            return {"message": first, "tags": list(self.failed_tags)}
        if not self.keep_debug and fields.get("loglevel") == "DEBUG":
            return None
        message = fields.pop("logmessage", "")
        event: Event = dict(fields)
        event["message"] = message
        event["tags"] = list(self.tags)
        return event
