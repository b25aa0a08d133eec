"""Opening a SQLite file the one way recheck uses it: WAL journal, autocommit, any thread.

The bot's queue and the embedded store's catalog both open theirs here; each says how
durable a commit must be and how long to wait for another writer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

__all__ = ["connect"]


def connect(
    path: Path | str,
    *,
    timeout: float,
    synchronous: Literal["NORMAL", "FULL"],
    foreign_keys: bool = False,
) -> sqlite3.Connection:
    """A connection to ``path`` (created if missing; ``":memory:"`` too) in WAL mode.

    Autocommit (``isolation_level=None``): callers say ``BEGIN`` themselves when a step
    spans statements. ``timeout``: seconds a statement waits for another writer's lock.
    ``synchronous``: FULL makes each commit survive a power cut, NORMAL a crash of the
    process. Raises sqlite3.Error as SQLite does (the file cannot be opened, is not a
    database, or its directory is read-only); no connection is left open then.
    """
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn
