"""The one way SQLite files are opened (recheck.lib.sqlite): WAL, autocommit, any thread."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from recheck.lib import sqlite


def test_connections_are_wal_autocommit_and_shared_by_threads(tmp_path: Path) -> None:
    conn = sqlite.connect(tmp_path / "x.sqlite", timeout=1.5, synchronous="FULL")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1500
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 0
    assert conn.isolation_level is None
    conn.execute("CREATE TABLE t (x)")
    worker = threading.Thread(target=conn.execute, args=("INSERT INTO t VALUES (1)",))
    worker.start()
    worker.join()
    conn.close()
    again = sqlite.connect(
        tmp_path / "x.sqlite", timeout=1, synchronous="NORMAL", foreign_keys=True
    )
    assert again.execute("SELECT x FROM t").fetchall() == [(1,)]  # committed without COMMIT
    assert again.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert again.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    again.close()


def test_a_file_that_is_not_a_database_raises(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"not sqlite at all " * 100)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        sqlite.connect(path, timeout=1, synchronous="NORMAL")
    with pytest.raises(sqlite3.OperationalError) as caught:
        sqlite.connect(tmp_path / "missing" / "x.sqlite", timeout=1, synchronous="NORMAL")
    assert caught.value.sqlite_errorname == "SQLITE_CANTOPEN"
