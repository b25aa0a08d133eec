"""A failed build's novel lines, held as a few buffers instead of a tuple per line.

A build without a passing baseline has every line novel: up to MAX_NOVEL_LINES lines a
file, which as (number, text, key) tuples took ~400 bytes a line (784 MiB to ingest a
GiB build). A ``NovelChunk`` holds consecutive lines of a file as three compressed
buffers (the numbers as an array, the texts and the keys joined by newlines, which none
contains), so that it is cheap to pickle from a worker and to keep; ``NovelLines`` is a
file's chunks, optionally kept in a ``Spill`` file rather than in memory (ingest keeps
a GiB build's lines there), and gives the lines back as tuples, one chunk at a time.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

__all__ = ["NovelChunk", "NovelLine", "NovelLines", "Spill"]

NovelLine = tuple[int, str, bytes]
"""A novel line: (its number in its file, its text, its key)."""

_ENCODING = ("utf-8", "surrogatepass")
"""Texts are stored so that any ``str`` comes back the same, lone surrogates too."""
_LEVEL = 1
"""zlib's fastest: log lines still shrink ~6x (a block's ~7 MB of novel lines pickled,
unpickled and written as ~1 MB, instead of buffers the parent's heap keeps growing for)."""


@dataclass(frozen=True)
class NovelChunk:
    """Consecutive novel lines of one file, as compressed buffers."""

    size: int
    numbers: bytes
    """The lines' numbers: an ``array("q")``'s bytes, compressed."""
    texts: bytes
    """The texts, encoded (``_ENCODING``), joined by ``\\n`` and compressed."""
    keys: bytes
    """The keys joined by ``\\n``, compressed."""

    @classmethod
    def of(cls, numbers: Sequence[int], texts: Sequence[str], keys: Sequence[bytes]) -> NovelChunk:
        """The chunk of these lines (the ``i``-th line: ``numbers[i], texts[i], keys[i]``).

        Raises ValueError when the sequences differ in length or a text or key holds a
        newline: the lines would come back wrong.
        """
        if not len(numbers) == len(texts) == len(keys):
            raise ValueError(
                f"novel lines need as many numbers as texts and keys: {len(numbers)} "
                f"numbers, {len(texts)} texts, {len(keys)} keys"
            )
        return cls.joined(numbers, "\n".join(texts), b"\n".join(keys))

    @classmethod
    def joined(cls, numbers: Sequence[int], texts: str, keys: bytes) -> NovelChunk:
        """The chunk of lines numbered ``numbers`` whose texts are the lines of ``texts``
        and keys those of ``keys`` (as many as numbers: ValueError else)."""
        size, lines, keyed = len(numbers), texts.count("\n") + 1, keys.count(b"\n") + 1
        if (not lines == keyed == size) if size else (texts or keys):
            raise ValueError(
                f"novel lines need as many texts and keys as numbers: {size} numbers, "
                f"{lines} texts, {keyed} keys"
            )
        return cls(
            size,
            zlib.compress(array("q", numbers).tobytes(), _LEVEL),
            zlib.compress(texts.encode(*_ENCODING), _LEVEL),
            zlib.compress(keys, _LEVEL),
        )

    def lines(self, base: int = 0, limit: int | None = None) -> list[NovelLine]:
        """The first ``limit`` (None: all) lines, ``base`` added to their numbers."""
        count = self.size if limit is None else min(limit, self.size)
        if not count:
            return []
        numbers = array("q")
        numbers.frombytes(zlib.decompress(self.numbers))
        texts = zlib.decompress(self.texts).decode(*_ENCODING).split("\n", count)
        keys = zlib.decompress(self.keys).split(b"\n", count)
        if base:
            shifted = [base + number for number in numbers[:count]]
            return list(zip(shifted, texts[:count], keys[:count], strict=True))
        return list(zip(numbers[:count], texts[:count], keys[:count], strict=True))


class Spill:
    """An unnamed temporary file the chunks of a build's files are written to: the
    lines stay on disk (or in the page cache) until ranked, not in the process."""

    def __init__(self, directory: Path | None = None) -> None:
        # Open as long as the spill is (``close``), not for a block.
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self._end = 0

    def put(self, chunk: NovelChunk) -> tuple[int, int, int, int]:
        """Write ``chunk``; returns where it is (for ``get``)."""
        start = self._end
        for part in (chunk.numbers, chunk.texts, chunk.keys):
            view = memoryview(part)
            while view:  # a write may take less than all of it
                written = os.pwrite(self._file.fileno(), view, self._end)
                view = view[written:]
                self._end += written
        return start, len(chunk.numbers), len(chunk.texts), len(chunk.keys)

    def get(self, size: int, where: tuple[int, int, int, int]) -> NovelChunk:
        """The chunk of ``size`` lines ``put`` wrote at ``where``."""
        start, numbers, texts, keys = where
        data = os.pread(self._file.fileno(), numbers + texts + keys, start)
        if len(data) != numbers + texts + keys:
            raise OSError(f"the spill file {self._file.name} lost novel lines at {start}")
        return NovelChunk(
            size, data[:numbers], data[numbers : numbers + texts], data[numbers + texts :]
        )

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


@dataclass
class _Part:
    chunk: NovelChunk | None
    """In memory; else in the spill file at ``where``."""
    where: tuple[int, int, int, int] | None
    size: int
    base: int
    limit: int


class NovelLines:
    """A file's novel lines, in order: chunks of them, each with a number added to its
    lines' numbers and how many of its lines are kept; in a ``Spill`` when given one."""

    def __init__(self, spill: Spill | None = None) -> None:
        self._spill = spill
        self._parts: list[_Part] = []
        self._count = 0

    def add(self, chunk: NovelChunk, base: int = 0, limit: int | None = None) -> None:
        """Append ``chunk``'s first ``limit`` lines (None: all), ``base`` added to their
        numbers."""
        taken = chunk.size if limit is None else max(0, min(limit, chunk.size))
        if not taken:
            return
        if self._spill is None:
            self._parts.append(_Part(chunk, None, chunk.size, base, taken))
        else:
            self._parts.append(_Part(None, self._spill.put(chunk), chunk.size, base, taken))
        self._count += taken

    def extend(self, lines: Sequence[NovelLine]) -> None:
        """Append these lines."""
        if lines:
            numbers, texts, keys = zip(*lines, strict=True)
            self.add(NovelChunk.of(numbers, texts, keys))

    def chunks(self) -> Iterator[list[NovelLine]]:
        """The lines, in order, a chunk's at a time."""
        for part in self._parts:
            chunk = part.chunk
            if chunk is None:
                assert self._spill is not None and part.where is not None
                chunk = self._spill.get(part.size, part.where)
            yield chunk.lines(part.base, part.limit)

    def __iter__(self) -> Iterator[NovelLine]:
        return chain.from_iterable(self.chunks())

    def __len__(self) -> int:
        return self._count

    def descriptors(self) -> list[int]:
        """The open files the lines are read from (a forked reader must keep them)."""
        return [] if self._spill is None else [self._spill.fileno()]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NovelLines):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NovelLines({list(self)!r})"

    def __getstate__(self) -> object:
        if self._spill is not None:
            raise TypeError("novel lines kept in a spill file cannot leave their process")
        return self.__dict__
