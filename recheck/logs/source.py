"""Where a build's logs come from: the one interface every log source implements.

A **log source** is a build's log root, wherever it is: a local directory
(``recheck.logs.localdir``), a logs server or a Zuul build (``recheck.logs.fetch``). It lists the
build's files and opens each as a byte stream; everything downstream (choosing files,
decompressing, splitting into events, matching) is the same for every source.

Errors come in two sizes:

- ``SourceError``: the whole source is unusable (no such directory, host not allowed,
  server down after retries). Nothing of the build can be read.
- ``FileProblem``: one file could not be read completely (truncated ``.gz``, binary
  content, a read error, an HTTP error for that file, a size or time limit reached). It
  is reported with the file's path, the events read before it are kept, and the other
  files are read as usual.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol, Self, cast

from recheck.lib.errors import RecheckError
from recheck.logs.build import Build

__all__ = [
    "BINARY_SNIFF_BYTES",
    "COMPRESSION_ERRORS",
    "MAX_FILE_BYTES",
    "READ_ERRORS",
    "FileProblem",
    "LimitReached",
    "LogSource",
    "ProblemHandler",
    "SourceError",
    "open_text_stream",
    "read_error_message",
    "size_text",
]

BINARY_SNIFF_BYTES = 8192
"""A file whose first 8 KiB (decompressed) hold a NUL byte is binary, as grep decides."""

_GZIP_MAGIC = b"\x1f\x8b"

MAX_FILE_BYTES = 2 << 30
"""The most text read of one file once decompressed, unless the stream opened says
otherwise (``fetch.max_file_bytes`` for fetched files): a 3.6 MB ``.gz`` can expand to
GiBs, and a decompression bomb must not take hours and all the memory."""


COMPRESSION_ERRORS: tuple[type[Exception], ...] = (EOFError, gzip.BadGzipFile, zlib.error)
"""What a truncated or corrupt gzip stream raises while it is read."""

READ_ERRORS: tuple[type[Exception], ...] = (EOFError, OSError, ValueError, zlib.error)
"""What reading one file of a build can raise: a problem for that file, not the build."""


class LimitReached(RecheckError, OSError):
    """A file was read up to a limit and no further; the message names the limit and the
    setting that raises it. What was read before it is kept."""


class SourceError(RecheckError):
    """The build's logs cannot be read at all; the message says what and what to do."""


@dataclass(frozen=True)
class FileProblem:
    """A file of the build that could not be read completely, and why."""

    path: str
    """The file's path in the build, as the source lists it (``.gz`` included)."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


ProblemHandler = Callable[[FileProblem], None]


class LogSource(Protocol):
    """A build's log root: its file list, a way to open each file, what it knows of the build.

    A context manager: leaving it (or ``close()``) closes what the source holds open, the
    HTTP connections of a fetched build; a local source holds nothing. Sources subclass
    this protocol explicitly to inherit that.
    """

    @property
    def location(self) -> str:
        """Where the logs are, as the user gave it: for messages."""
        ...

    def paths(self) -> list[str]:
        """Every file of the build: ``/``-separated paths relative to the root, sorted.

        Raises SourceError when the list cannot be had.
        """
        ...

    def open(self, path: str) -> BinaryIO:
        """The file's bytes as stored (possibly gzip-compressed); OSError if unreadable."""
        ...

    def build_info(self) -> Build:
        """The build metadata the source itself holds (inventory, Zuul API); may be empty."""
        ...

    def close(self) -> None:
        """Close what the source keeps open; nothing for a local source."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: lets us sniff a stream without seeking."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = _read1(self._stream, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def open_text_stream(raw: BinaryIO, max_bytes: int | None = None) -> BinaryIO:
    """The file's content, decompressed when it is gzip (by its magic bytes, not its name).

    Logs servers store ``job-output.txt.gz`` but often serve it decompressed, and some
    files are compressed without the suffix, so the bytes decide. Raises
    ``BinaryFileError`` when the content is binary; ``raw`` is closed whenever this raises.
    Reading past ``max_bytes`` of decompressed text (default: the ``max_text_bytes`` the
    raw stream carries, set by the source from its settings, else ``MAX_FILE_BYTES``)
    raises ``LimitReached``, once the bytes before it were read.
    """
    if max_bytes is None:
        max_bytes = getattr(raw, "max_text_bytes", MAX_FILE_BYTES)
    stream = raw
    try:
        head = raw.read(2)
        if raw.seekable():  # a local file: rewind rather than copy every read through _Prefixed
            raw.seek(0)
            if not isinstance(raw, io.BufferedReader):
                stream = cast(BinaryIO, io.BufferedReader(raw, 1 << 16))
        else:
            stream = cast(BinaryIO, io.BufferedReader(_Prefixed(head, raw), 1 << 16))
        if head == _GZIP_MAGIC:
            # GzipFile is a binary stream; typeshed just does not declare it a BinaryIO.
            stream = cast(BinaryIO, io.BufferedReader(_ClosingGzip(stream), 1 << 16))
            # Only decompressed text is limited here: a plain file is as large as it is
            # stored (a fetched one is limited as it downloads), and a plain local file
            # stays a FileIO the scanner can map.
            stream = cast(BinaryIO, io.BufferedReader(_Limited(stream, max_bytes), 1 << 16))
        sniff = cast(io.BufferedReader, stream).peek(BINARY_SNIFF_BYTES)[:BINARY_SNIFF_BYTES]
    except BaseException:
        # A gzip truncated at its start fails here: the file must not stay open.
        stream.close()
        raise
    if is_binary(sniff):
        stream.close()
        raise BinaryFileError(
            "binary content (NUL and control bytes near the start), not a text log; "
            "skipped. Remove it from the file rules if it is never text"
        )
    return stream


class _ClosingGzip(gzip.GzipFile):
    """A gzip reader that closes the stream it reads when it is closed itself (GzipFile
    leaves a ``fileobj`` it was given open)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw)
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


class _Limited(io.RawIOBase):
    """``stream`` up to ``limit`` bytes; reading further raises LimitReached."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._left = limit
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._left <= 0:
            if not self._stream.read(1):
                return 0  # exactly at the limit: the whole file was read
            raise LimitReached(
                f"its text is larger than {size_text(self._limit)}, the most read of one "
                "file (fetch.max_file_bytes in bot.yaml: raise it to read such files whole; "
                "a small .gz this large is likely a decompression bomb)"
            )
        data = _read1(self._stream, min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def _read1(stream: BinaryIO, size: int) -> bytes:
    """What ``stream`` has now, up to ``size`` bytes: ``read`` of a buffered stream waits
    for all ``size``, so lines a slow server sent would wait, and be lost if it fails."""
    read1: Callable[[int], bytes] | None = getattr(stream, "read1", None)
    return read1(size) if read1 is not None else stream.read(size)


def size_text(size: float) -> str:
    """``size`` bytes for people: ``2 GiB``, ``1.5 MiB``, ``300 bytes``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.3g} {unit}"
    return f"{size:.0f} bytes"


class BinaryFileError(RecheckError, ValueError):
    """The file is not text: splitting it into lines would make garbage events."""


def read_error_message(exc: BaseException, where: str) -> str:
    """What to tell about a file that stopped being readable ``where`` ("after line 7")."""
    if isinstance(exc, LimitReached):
        return f"stopped reading {where}: {exc}; kept the events before it"
    if isinstance(exc, COMPRESSION_ERRORS):
        return (
            f"compressed data is truncated or corrupt {where} ({exc}); "
            "kept the events before it, the rest of the file is missing"
        )
    if isinstance(exc, OSError):
        return f"read error {where}: {exc.strerror or exc}"
    return f"read error {where}: {exc}"


# Control bytes text logs do carry: tab, line breaks, backspace and terminal escapes.
_TEXT_CONTROLS = b"\t\n\v\f\r\b\x1b"
_OTHER_CONTROLS = bytes(sorted(set(range(32)) - set(_TEXT_CONTROLS))) + b"\x7f"
BINARY_CONTROL_SHARE = 0.05
"""Share of other control bytes in a file's first ``BINARY_SNIFF_BYTES`` that makes it
binary when it holds a NUL: one stray NUL must not hide the failure further down a log."""


def is_binary(head: bytes) -> bool:
    """Whether ``head``, a file's first bytes, is binary content rather than a text log."""
    if b"\x00" not in head:
        return False
    controls = len(head) - len(head.translate(None, _OTHER_CONTROLS))
    return controls > BINARY_CONTROL_SHARE * len(head)
