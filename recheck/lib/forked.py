"""What a forked worker does first: let go of every file its parent had open.

``recheck events``, ``ingest`` and ``classify`` fork workers (``recheck.logs.forkedsplit``,
``recheck.scan.forkmap``) from a process whose native threads (tantivy's) may hold a
lock on a file at that moment. A descriptor the worker inherits keeps such a lock held
for as long as the worker lives: two ingests of one store deadlocked so, one waiting
for tantivy's meta.json lock, the other's worker for its parent to read its pipe.
"""

from __future__ import annotations

import gc
import os

__all__ = ["keep_only"]


def keep_only(*keep: int) -> None:
    """Close every file descriptor of this (forked) process but the standard streams
    and ``keep``; the worker opens the files it reads itself."""
    # No cyclic garbage collection from now on: an inherited file object collected here
    # would close whatever file of the worker's got its (closed, reused) number.
    gc.disable()
    start = 3
    for fd in sorted(set(keep)):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, max(os.sysconf("SC_OPEN_MAX"), start))
