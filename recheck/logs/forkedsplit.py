"""Split a local build's files in forked processes, handing the events back in order.

``recheck events`` and ``recheck ingest`` need every event of a build, file after file,
line after line; splitting is most of their work. Here N forked workers share it by
block (``recheck.logs.blocksplit``): every worker reads every file and cuts it into the
same blocks (cheap: a read and a search for the last line that begins an event), and
worker ``i`` splits blocks ``i``, ``i + N``, ... and sends what ``encode`` makes of each
(events, or their JSON lines) through a pipe of its own. The caller reads the pipes in
turn, so it gets every block in the file's order, and each file's problems after its
events, exactly as one process would give them.

Forking copies only the calling thread: start this before any other thread runs (the
CLI does; the bot never asks for workers).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, Generic, TypeVar, cast

from recheck.lib.errors import RecheckError
from recheck.lib.forked import keep_only
from recheck.logs.blocksplit import BlockSplitter, Piece, pieces
from recheck.logs.source import FileProblem, read_error_message
from recheck.models import Event

__all__ = ["ForkedSplit", "WorkerFailed"]

_T = TypeVar("_T")
_LENGTH = struct.Struct("<Q")

Opener = Callable[[str, list[FileProblem]], BinaryIO | None]
"""Opens a file of the build, or records why it cannot and gives None."""
Encoder = Callable[[str, int, list[tuple[int, Event]]], _T]
"""What a worker sends of a block: given the file's path, the block's number (larger
for each later block of the build) and its events."""


class WorkerFailed(RecheckError, RuntimeError):
    """A forked worker died or failed; the build's events are incomplete."""


class ForkedSplit(Generic[_T]):
    """The blocks of ``files`` split by ``workers`` forked processes, started at once."""

    def __init__(
        self,
        files: Sequence[tuple[str, list[str]]],
        opener: Opener,
        encode: Encoder[_T],
        *,
        workers: int,
        keep_debug: bool,
        max_event_chars: int,
    ) -> None:
        self._files = list(files)
        self._children: list[tuple[int, int]] = []
        for index in range(workers):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: split, send, and leave without running exit handlers
                keep_only(write_end)
                status = 0
                try:
                    with os.fdopen(write_end, "wb", buffering=1 << 20) as out:
                        _work(out, index, workers, self._files, opener, encode,
                              keep_debug, max_event_chars)  # fmt: skip
                except BaseException:
                    status = 1
                finally:
                    os._exit(status)
            os.close(write_end)
            self._children.append((pid, read_end))
        self._streams = [os.fdopen(fd, "rb", buffering=1 << 20) for _, fd in self._children]

    def blocks(self) -> Iterator[tuple[int, _T | None, list[FileProblem]]]:
        """``(file index, what encode made of a block or None, problems)`` in the order
        of the files and their blocks; a file's problems come with its last item."""
        try:
            slot = 0
            while True:
                stream = self._streams[slot % len(self._streams)]
                kind, file_index, payload, problems = _receive(stream)
                if kind == "done":
                    return
                if kind == "failed":
                    raise WorkerFailed(f"a worker splitting the build's files failed: {payload}")
                yield file_index, cast(_T | None, payload), problems
                slot += 1
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers (if still running) and reap them."""
        for stream in self._streams:
            stream.close()
        self._streams = []
        for pid, _ in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        self._children = []


def _receive(stream: BinaryIO) -> tuple[str, int, object, list[FileProblem]]:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise WorkerFailed("a worker splitting the build's files died without finishing")
    (size,) = _LENGTH.unpack(header)
    frame = stream.read(size)
    if len(frame) < size:
        raise WorkerFailed("a worker splitting the build's files died while sending")
    kind, file_index, payload, problems = pickle.loads(frame)
    return kind, file_index, payload, problems


def _send(out: BinaryIO, frame: tuple[str, int, object, list[FileProblem]]) -> None:
    data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)))
    out.write(data)


def _rest(
    splitter: BlockSplitter, piece: Piece, stream: BinaryIO, path: str
) -> tuple[list[tuple[int, Event]], list[FileProblem]]:
    """The events of a ``rest`` piece and the rest of its stream, and the read error."""
    events: list[tuple[int, Event]] = []
    found: list[FileProblem] = []

    def failed(exc: BaseException, lines: int) -> None:
        found.append(FileProblem(path, read_error_message(exc, f"after line {lines}")))

    for block in splitter.rest(piece.data, stream, piece.line, failed):
        events.extend(block)
    return events, found


def _work(
    out: BinaryIO,
    index: int,
    workers: int,
    files: list[tuple[str, list[str]]],
    opener: Opener,
    encode: Encoder[object],
    keep_debug: bool,
    max_event_chars: int,
) -> None:
    """One worker: every file cut into blocks, its own blocks split and sent."""
    slot = 0
    try:
        for file_index, (path, tags) in enumerate(files):
            problems: list[FileProblem] = []
            stream = opener(path, problems)
            if stream is not None:
                splitter = BlockSplitter(tags, keep_debug, max_event_chars)
                with stream:
                    for piece in pieces(stream, tags, max_event_chars):
                        if piece.error is not None:
                            message = read_error_message(piece.error, f"after line {piece.line}")
                            problems.append(FileProblem(path, message))
                            break
                        mine = slot % workers == index
                        slot += 1
                        if piece.rest:
                            # The rest of the file, line by line: one worker reads it.
                            if mine:
                                events, found = _rest(splitter, piece, stream, path)
                                encoded = encode(path, slot - 1, events)
                                _send(out, ("block", file_index, encoded, found))
                            break
                        if mine:
                            events = splitter.split(piece.data, piece.line)
                            encoded = encode(path, slot - 1, events)
                            _send(out, ("block", file_index, encoded, []))
            # The file's end: its problems (every worker saw them; one sends them).
            if slot % workers == index:
                _send(out, ("end", file_index, None, problems))
            slot += 1
        if slot % workers == index:  # the reader stops at the slot after the last
            _send(out, ("done", -1, None, []))
    except BaseException as exc:
        _send(out, ("failed", -1, f"{type(exc).__name__}: {exc}", []))
        raise
