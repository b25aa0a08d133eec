"""Reading a log file in chunks cut where an event surely begins, so no event spans two.

A local file is scanned mapped into memory (no copy), other streams through one reused
buffer; line numbers are counted only where a match needs one. Memory stays bounded by
the chunk size (``MAX_SPAN_BYTES`` for an overlong event), whatever the file's size.
"""

from __future__ import annotations

import errno
import io
import mmap
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from recheck.logs.blocksplit import last_start
from recheck.logs.split import StartTest, Text, file_format
from recheck.scan.linecount import count_newlines

CHUNK_BYTES = 8 << 20
"""Bytes read and scanned at a time."""


SMALL_FILE_BYTES = 1 << 20
"""A regular file at most this long (and at most ``CHUNK_BYTES``) is read whole, as one
chunk, rather than mapped: mapping and unmapping a file costs more than copying a few
KiB, and a build may hold 20,000 small files."""


MAX_SPAN_BYTES = 32 << 20
"""Longest stretch kept in memory while looking for a line that begins an event; past
it, the event is far longer than an event keeps (``MAX_EVENT_CHARS``) and the rest of
it is skipped. Counted without the lines the splitter drops, and at least what
``max_event_chars`` needs (see ``span_test``)."""


@dataclass
class ScanStats:
    """What a scan did, for benchmarks and ``--verbose``."""

    files: int = 0
    files_skipped: int = 0
    files_split_in_full: int = 0
    bytes_read: int = 0
    chunks: int = 0
    chunks_with_hits: int = 0
    events_evaluated: int = 0
    signatures_stopped: int = 0
    """(signature, file) pairs no longer evaluated in the file: they had their matches."""

    def add(self, other: ScanStats) -> None:
        """Count ``other``'s work in too (a worker's, scanning other files)."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


Chunk = tuple[Text, int, int, int, int]
"""``(data, begin, end, offset, first line)``: a chunk is ``data[begin:end]``; ``data[0]``
is at ``offset`` in the file; the chunk's first line is ``first line`` (0: not counted)."""


def read_chunks(
    stream: BinaryIO,
    starts: StartTest,
    stats: ScanStats,
    *,
    beyond: StartTest,
    count_lines: bool = True,
    buffer: bytearray | None = None,
) -> Iterator[Chunk]:
    """The chunks of ``stream``, read into a buffer: ``buffer[:size]``, found at
    ``offset`` in the stream, each starting where an event surely does. Without
    ``count_lines`` the line number is always 0. ``buffer``: the one to fill (grown to
    ``CHUNK_BYTES`` at least), kept by the caller for the next file: allocating 8 MiB
    costs more than reading a small file.

    One buffer is filled again for every chunk (what follows the cut moved to its
    front), so the chunk is valid only until the next is asked for. Reading into one
    reused buffer instead of a fresh ``bytes`` per read saves allocating, page-faulting
    and copying every chunk two or three times over: a third of the scan's time.
    """
    if buffer is None:
        buffer = bytearray(CHUNK_BYTES)
    filled = 0  # bytes at the buffer's front that hold data: the carry, then what was read
    offset = 0  # where the buffer's first byte is in the stream
    line = 1 if count_lines else 0
    skipping = False  # inside an event longer than MAX_SPAN_BYTES: its rest is dropped
    while True:
        if len(buffer) - filled < CHUNK_BYTES:
            buffer.extend(bytes(filled + CHUNK_BYTES - len(buffer)))  # a long event
        got = _read_into(stream, buffer, filled)
        stats.bytes_read += got
        filled += got
        if skipping:
            begin = _first_start(buffer, filled, starts, complete_only=bool(got))
            if begin is None:
                if not got:
                    return
                # Keep the last line break: the line after it may begin an event.
                keep = max(buffer.rfind(b"\n", 0, filled), 0)
                if count_lines:
                    line += count_newlines(buffer, 0, keep)
                offset += keep
                filled = _shift(buffer, keep, filled)
                continue
            if count_lines:
                line += count_newlines(buffer, 0, begin)
            offset += begin
            filled = _shift(buffer, begin, filled)
            skipping = False
        if not got:
            if filled:
                stats.chunks += 1
                yield buffer, 0, filled, offset, line
            return
        cut = last_start(buffer, filled, starts)
        if cut is None:
            if not beyond(buffer, 0, filled):
                continue
            cut = filled
            skipping = True
        stats.chunks += 1
        yield buffer, 0, cut, offset, line
        # Cut inside a long event: keep its last byte, so that a line beginning right
        # after the cut is still tested as the first line after a line break.
        kept = cut - 1 if skipping else cut
        if count_lines:
            line += count_newlines(buffer, 0, kept)
        offset += kept
        filled = _shift(buffer, kept, filled)


def small_file(stream: BinaryIO, size: int, stats: ScanStats) -> Iterator[Chunk] | None:
    """The one chunk of the regular file ``stream`` of ``size`` bytes, read whole, if it
    is small (``SMALL_FILE_BYTES``); else None, and nothing is read.

    A file that fits in one chunk is one chunk, however its events are cut, as
    ``mapped_chunks`` would make it. One that grew past the limit since its size was
    taken is read from its start as a large one.
    """
    limit = min(SMALL_FILE_BYTES, CHUNK_BYTES)
    if size > limit:
        return None
    data = stream.read(limit + 1)
    if len(data) > limit:
        stream.seek(0)
        return None
    stats.bytes_read += len(data)
    stats.chunks += bool(data)
    return iter([(data, 0, len(data), 0, 1)] if data else [])  # lines counted in it


def map_file(stream: BinaryIO) -> mmap.mmap | None:
    """The regular file ``stream`` mapped into memory, or None if it cannot be.

    Scanning a mapping saves copying every byte out of the page cache (a seventh of a
    scan). Mapped only for local files, which are complete logs: a file that shrinks
    while mapped would kill the process (SIGBUS), so each chunk first checks the size.
    """
    try:
        if os.fstat(stream.fileno()).st_size == 0:
            return None
        return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None


def mapped_chunks(
    data: mmap.mmap,
    fd: int,
    starts: StartTest,
    stats: ScanStats,
    beyond: StartTest,
) -> Iterator[Chunk]:
    """The chunks of a mapped file, cut as ``read_chunks`` cuts them; pages already scanned
    are released, so that memory stays bounded whatever the file's size."""
    size = len(data)
    stats.bytes_read += size
    begin = 0
    while begin < size:
        if os.fstat(fd).st_size < size:
            raise OSError(errno.EIO, "the file shrank while it was being read")
        end = min(begin + CHUNK_BYTES, size)
        cut = last_start(data, end, starts, begin) if end < size else size
        while cut is None and end < size and not beyond(data, begin, end):
            end = min(end + CHUNK_BYTES, size)
            cut = last_start(data, end, starts, begin) if end < size else size
        stats.chunks += 1
        if cut is None:  # an event far longer than an event keeps: its rest is skipped
            yield data, begin, end, 0, 0
            # From the byte before the cut: a line may begin right at it.
            cut = _first_start(data, size, starts, complete_only=False, begin=end - 1) or size
        else:
            yield data, begin, cut, 0, 0
        page = mmap.PAGESIZE
        if hasattr(data, "madvise") and cut // page > begin // page:
            data.madvise(
                mmap.MADV_DONTNEED, begin // page * page, (cut // page - begin // page) * page
            )
        begin = cut


def span_test(tags: Sequence[str], max_event_chars: int) -> StartTest:
    """Whether ``data[begin:end]``, from an event's first line on, holds more of it than
    the event keeps, so that the rest of the event can be skipped.

    The event keeps ``max_event_chars`` characters, and a character is at most 4 bytes
    (a line longer than ``4 * max_event_chars + 4`` bytes is cut there): 8 bytes a
    character cover the text and a last line cut by the span. Lines the splitter drops
    (xtrace, ``<pre>``) keep nothing, so they do not count: an event of a screen log
    may hold megabytes of xtrace and then the line a signature looks for.
    """
    least = max(MAX_SPAN_BYTES, 8 * (max_event_chars + 2))
    removed = removed_lines(tags)

    def beyond(data: Text, begin: int, end: int) -> bool:
        if end - begin < least:
            return False
        if removed is None:
            return True
        dropped = sum(m.end() - m.start() for m in removed.finditer(data, begin, end))
        return end - begin - dropped >= least

    return beyond


def removed_lines(tags: Sequence[str]) -> re.Pattern[bytes] | None:
    """Lines the splitter drops, which must not separate a phrase's words in the text
    (matched in the raw text, before it is lowercased)."""
    patterns = []
    if "screen" in tags:
        patterns.append(rb"\n\+ [^\n]*")
    if file_format(tags) == "console":
        patterns.append(rb"\n</?pre>\r?(?=\n|\Z)")
    return re.compile(b"|".join(patterns)) if patterns else None


class FileLines:
    """Line numbers of byte offsets in a regular file, counted only when asked for.

    Counting every line break of every chunk costs a fifth of a scan, yet line numbers
    are needed only where a signature matched: usually in few files, near their end.
    So for a plain file on disk the scan keeps byte offsets, and this counts the line
    breaks before an offset by reading the file again (``pread``, from the page cache,
    leaving the scan's position alone), once, from where it last stopped.
    """

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._offset = 0
        self._line = 1
        self.size = size
        """The file's size when it was opened."""

    @staticmethod
    def of(stream: BinaryIO) -> FileLines | None:
        """A counter for ``stream`` if it is a plain regular file, else None."""
        if not isinstance(stream, io.BufferedReader) or not isinstance(stream.raw, io.FileIO):
            return None  # decompressed or fetched: count while reading instead
        try:
            fd = stream.fileno()
            status = os.fstat(fd)
        except OSError:
            return None
        return FileLines(fd, status.st_size) if stat.S_ISREG(status.st_mode) else None

    def at(self, offset: int) -> int:
        """The number of the line holding byte ``offset`` (offsets asked never go back)."""
        while self._offset < offset:
            piece = os.pread(self._fd, min(offset - self._offset, CHUNK_BYTES), self._offset)
            if not piece:
                break  # the file shrank under us: the best number there is
            self._line += count_newlines(piece, 0, len(piece))
            self._offset += len(piece)
        return self._line


class ChunkLines:
    """Line numbers of positions in one chunk, asked in increasing order."""

    def __init__(
        self,
        chunk: Text,
        begin: int,
        offset: int,
        first_line: int,
        file_lines: FileLines | None,
    ) -> None:
        self._chunk = chunk
        self._offset = offset
        self._file_lines = file_lines
        self._line = first_line
        self._counted = begin

    def at(self, position: int) -> int:
        """The number of the line holding ``chunk[position]``."""
        if self._file_lines is not None:
            return self._file_lines.at(self._offset + position)
        assert not isinstance(self._chunk, mmap.mmap), "a mapped file counts with FileLines"
        self._line += count_newlines(self._chunk, self._counted, position)
        self._counted = position
        return self._line


class CountingReader:
    """A stream's ``readline`` that counts the bytes read into ``stats``."""

    def __init__(self, stream: BinaryIO, stats: ScanStats) -> None:
        self._stream = stream
        self._stats = stats

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self._stats.bytes_read += len(data)
        return data


def event_regions(
    data: Text, size: int, offsets: list[int], starts: StartTest
) -> list[tuple[int, int]]:
    """The spans ``[start, end)`` of whole events of ``data[:size]`` around ``offsets``
    (sorted, disjoint)."""
    regions: list[tuple[int, int]] = []
    for offset in offsets:
        if regions and offset < regions[-1][1]:
            continue
        start = data.rfind(b"\n", 0, offset) + 1
        while start > 0 and not starts(data, start, line_end(data, start, size)):
            start = data.rfind(b"\n", 0, start - 1) + 1
        end = line_end(data, offset, size)
        while end < size and not starts(data, end + 1, line_end(data, end + 1, size)):
            end = line_end(data, end + 1, size)
        end = min(end + 1, size)
        if regions and start < regions[-1][1]:
            start = regions.pop()[0]  # events never overlap: same event, widen
        regions.append((start, end))
    return regions


def line_end(data: Text, start: int, size: int) -> int:
    end = data.find(b"\n", start, size)
    return size if end == -1 else end


def _read_into(stream: BinaryIO, buffer: bytearray, filled: int) -> int:
    """Read up to CHUNK_BYTES into ``buffer`` after its first ``filled`` bytes."""
    with memoryview(buffer) as whole, whole[filled : filled + CHUNK_BYTES] as free:
        readinto = getattr(stream, "readinto", None)
        if readinto is not None:
            return int(readinto(free))
        data = stream.read(CHUNK_BYTES)
        free[: len(data)] = data
        return len(data)


def _shift(buffer: bytearray, begin: int, filled: int) -> int:
    """Move ``buffer[begin:filled]`` to the buffer's front; returns its length."""
    buffer[: filled - begin] = buffer[begin:filled]
    return filled - begin


def _first_start(
    data: Text, size: int, starts: StartTest, complete_only: bool, begin: int = 0
) -> int | None:
    """The first line start after the beginning of ``data[begin:size]`` that begins an
    event."""
    start = data.find(b"\n", begin, size) + 1
    while start:
        end = data.find(b"\n", start, size)
        if end == -1:
            if complete_only or start >= size:
                return None
            end = size
        if starts(data, start, end):
            return start
        start = end + 1 if end < size else 0
    return None
