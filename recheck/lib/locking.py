"""One process at a time: an exclusive ``flock`` on a lock file, as an object.

The bot's queue and the embedded store's writers both take one. The kernel releases an
``flock`` when its process dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import TextIO

from recheck.lib.errors import RecheckError

__all__ = ["FileLock", "LockBusy"]

POLL_S = 0.05
"""How often a waiting ``acquire`` tries the lock again."""


class LockBusy(RecheckError):
    """Another process held the lock for longer than the wait allowed."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path}: held by {holder or 'another process'}")
        self.path = path
        self.holder = holder
        """What the holder wrote in the lock file (``process PID``), or "" if unknown."""


class FileLock:
    """An exclusive ``flock`` on ``path`` (created if missing), from ``acquire`` to ``release``.

    ``acquire`` waits up to ``timeout`` seconds (0: not at all) and then raises
    ``LockBusy``; it raises OSError when the file cannot be opened or locked. The holder
    writes ``process PID`` in the file, for the message of the next one that waits.
    Usable as a context manager.
    """

    def __init__(self, path: Path | str, *, timeout: float = 0.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._handle: TextIO | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._handle is not None

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for its holder to let go."""
        if self._handle is not None:
            return
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        try:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        raise LockBusy(self.path, handle.read().strip()) from None
                    time.sleep(POLL_S)
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()}")
            handle.flush()
        except BaseException:
            handle.close()
            raise
        self._handle = handle

    def release(self) -> None:
        """Let go of the lock (nothing if not held)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            finally:
                handle.close()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
