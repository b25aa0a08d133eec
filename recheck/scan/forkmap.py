"""Run a function over tasks in this process and in forked copies of it, sharing them out.

``classify -j N`` scans a build's files in N processes. A ``multiprocessing.Pool`` costs
~30 ms to import and start and leaves the calling process idle; here the caller works
too, beside N-1 forked children, and the tasks are handed out through a pipe holding
their numbers: whichever process is free reads the next one (a read of 4 bytes from a
pipe is never split), so all finish at about the same time. Each child sends back its
results, pickled, through a pipe of its own. A pipe holds ``MAX_NUMBERS`` numbers: with
more tasks than that, a number stands for as many consecutive tasks as it takes.

Forking copies only the calling thread, with whatever locks other threads hold: call
this only from a process without other threads (the CLI; never the bot).
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from recheck.lib.errors import RecheckError
from recheck.lib.forked import keep_only

__all__ = ["MAX_NUMBERS", "fork_map"]

MAX_NUMBERS = 16_000
"""Task numbers written to the pipe at most: what it holds (64 KiB), written at once."""

_Task = TypeVar("_Task")
_Result = TypeVar("_Result")
_NUMBER = struct.Struct("<I")


class ChildFailed(RecheckError, RuntimeError):
    """A forked child died without sending its results."""


def fork_map(
    function: Callable[[_Task], _Result],
    tasks: Sequence[_Task],
    processes: int,
    keep: Sequence[int] = (),
) -> list[_Result]:
    """``[function(task) for task in tasks]``, computed by ``processes`` processes.

    An exception raised in a child is raised here, as it would be without children.
    The children close their inherited files (``keep_only``) but ``keep``'s descriptors:
    files of this process's own that they read (never a file another thread locks).
    """
    processes = min(processes, len(tasks))
    if processes <= 1:
        return [function(task) for task in tasks]
    per = -(-len(tasks) // MAX_NUMBERS)  # tasks a number stands for
    queue_read, queue_write = os.pipe()
    os.write(queue_write, b"".join(_NUMBER.pack(i) for i in range(-(-len(tasks) // per))))
    os.close(queue_write)  # the numbers read, readers see the end
    children: list[tuple[int, int]] = []
    try:
        for _ in range(processes - 1):
            result_read, result_write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: work, send, and leave without running exit handlers
                keep_only(queue_read, result_write, *keep)
                _serve(function, tasks, per, queue_read, result_write)
            os.close(result_write)
            children.append((pid, result_read))
        results = dict(_work(function, tasks, per, queue_read))
        while children:
            pid, result_read = children.pop(0)
            results.update(cast(list[tuple[int, _Result]], _collect(pid, result_read)))
    finally:
        os.close(queue_read)
        for pid, result_read in children:  # this process failed: stop the others
            os.kill(pid, signal.SIGTERM)
            os.close(result_read)
            os.waitpid(pid, 0)
    return [results[index] for index in range(len(tasks))]


def _work(
    function: Callable[[_Task], _Result], tasks: Sequence[_Task], per: int, queue: int
) -> list[tuple[int, _Result]]:
    """The tasks of the numbers read from ``queue`` (each stands for ``per`` tasks)."""
    done = []
    while len(number := os.read(queue, _NUMBER.size)) == _NUMBER.size:
        first = _NUMBER.unpack(number)[0] * per
        for index in range(first, min(first + per, len(tasks))):
            done.append((index, function(tasks[index])))
    return done


def _serve(
    function: Callable[[_Task], _Result],
    tasks: Sequence[_Task],
    per: int,
    queue: int,
    out: int,
) -> None:
    try:
        payload = pickle.dumps((True, _work(function, tasks, per, queue)))
    except BaseException as exc:  # sent to the parent, which raises it
        try:
            payload = pickle.dumps((False, exc))
        except Exception:
            payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
    try:
        with os.fdopen(out, "wb") as stream:
            stream.write(payload)
    finally:
        os._exit(0)


def _collect(pid: int, result_read: int) -> list[tuple[int, object]]:
    try:
        with os.fdopen(result_read, "rb") as stream:
            payload = stream.read()
    finally:
        _, status = os.waitpid(pid, 0)
    if not payload:
        raise ChildFailed(f"a forked worker died (wait status {status}) without its results")
    ok, value = pickle.loads(payload)
    if not ok:
        raise value
    return list(value)
