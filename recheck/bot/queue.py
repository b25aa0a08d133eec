"""The bot's durable queue: every raw event, and how far its handling got (SQLite, WAL).

Each step commits its result in the event's row, so a bot killed at any moment resumes
where it was: the comment's steps (``state``) and, behind them, the storing of the
event's builds in the history store (``history``). The file belongs to one bot at a
time and is separate from the history store, so the two never wait on each other's locks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from recheck.bot.outcome import FailureReport, JobOutcome
from recheck.lib import sqlite
from recheck.lib.errors import RecheckError
from recheck.lib.locking import FileLock, LockBusy

__all__ = ["BotQueue", "QueueError", "QueueRow", "report_from_json", "report_to_json"]

ACTIVE = ("received", "pending", "reported", "posting")
"""States of rows that still need work."""

_WORKABLE = (
    f"row.state IN ({','.join('?' * len(ACTIVE))}) AND NOT EXISTS (SELECT 1 FROM inbox AS other "
    "WHERE other.state = 'posting' AND other.change = row.change AND other.id != row.id "
    "AND (row.state != 'posting' OR other.id < row.id))"
)
"""Rows needing work that may be worked on: not while another row of the same change
is in ``posting`` (the oldest such row goes first); the ``ACTIVE`` states are its
parameters."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    source TEXT NOT NULL,
    raw TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'received',
    key TEXT UNIQUE,
    change TEXT,
    event TEXT,
    report TEXT,
    comment TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    deadline REAL,
    baseline INTEGER,
    note TEXT,
    updated REAL
);
CREATE INDEX IF NOT EXISTS inbox_work ON inbox (state, next_attempt);
CREATE INDEX IF NOT EXISTS inbox_change ON inbox (change, state);
"""

_HISTORY_COLUMNS = {
    "history": "TEXT",
    "history_attempts": "INTEGER NOT NULL DEFAULT 0",
    "history_next": "REAL NOT NULL DEFAULT 0",
    "history_note": "TEXT",
}
"""The history step's columns, added to a queue file written before they existed:
``history`` is NULL (nothing to store), ``pending``, ``stored`` or ``failed``."""

_HISTORY_DUE = (
    "history = 'pending' AND history_next <= ? AND "
    "(state NOT IN ('reported', 'posting') OR next_attempt > ?)"
)
"""Rows whose builds may be stored now: their comment is settled (or waits for a retry
after Gerrit refused it), so storing never runs ahead of a comment about to be sent."""


class QueueError(RecheckError):
    """The queue file cannot be used; the message names it and what to do."""


@dataclass(frozen=True)
class QueueRow:
    """One queued event and the results of the steps done so far."""

    id: int
    received: float
    next_attempt: float
    source: str
    raw: str
    state: str
    key: str | None
    change: str | None
    event: str | None
    report: str | None
    comment: str | None
    attempts: int
    deadline: float | None
    baseline: int | None
    history: str | None = None
    """None (nothing to store), ``pending``, ``stored`` or ``failed``."""
    history_attempts: int = 0


class BotQueue:
    """The queue in one SQLite file (``":memory:"`` for a run that keeps nothing).

    An event is written here, raw, before anything reads it; each later step records
    its result in the same row, one committed transaction per step::

        received --parse--> pending --logs, classify--> reported --post--> done
            \\--> skipped (not a failure of ours, or malformed: why is in ``note``)
             \\--> duplicate (same key as an earlier event)       posting --> done
                                                      (anything) --> failed (gave up: ``note``)

    Behind the comment, its own column: ``reported`` sets ``history`` to ``pending``
    when the event's builds are to be stored; once the comment is settled they are
    stored, then ``history`` is ``stored`` (or ``failed``, ``history_note`` says why).
    Storing twice after a crash is harmless: the store replaces a build by its uuid.

    ``posting`` is written, with the number of identical comments already on the change
    (``baseline``), just before a comment is sent: after a crash, a row found in
    ``posting`` is posted again only if the change does not hold more such comments
    than the baseline, so a comment is never posted twice; meanwhile the change's other
    rows wait, so that an identical comment of theirs is never taken for this one. One
    bot at a time: an ``flock`` on ``<state>.lock``, released by the kernel when it dies.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._file_lock: FileLock | None = None
        if self.path != ":memory:":
            self._file_lock = _exclusive(Path(self.path))
        try:
            # FULL: a step recorded is on disk before the next begins (a comment marked
            # 'posting' must survive a power cut, not only a crash).
            self._conn = sqlite.connect(self.path, timeout=5.0, synchronous="FULL")
            self._conn.row_factory = sqlite3.Row
            self._conn.executescript(_SCHEMA)
            known = {row[1] for row in self._conn.execute("PRAGMA table_info(inbox)")}
            for name, kind in _HISTORY_COLUMNS.items():
                if name not in known:
                    self._conn.execute(f"ALTER TABLE inbox ADD COLUMN {name} {kind}")
            self._conn.execute(
                "CREATE INDEX IF NOT EXISTS inbox_history ON inbox (history, history_next)"
            )
        except sqlite3.Error as exc:
            self.close()
            raise QueueError(
                f"{self.path}: cannot use the bot's queue ({exc}); check the path "
                "(bot.state in bot.yaml or --state) or move the broken file away"
            ) from None

    def close(self) -> None:
        """Close the file and release the lock."""
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None

    # --- writing steps -------------------------------------------------------------

    def add(self, source: str, raw: str, now: float | None = None) -> int:
        """Store a raw event as received; returns its row id."""
        now = time.time() if now is None else now
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO inbox (received, source, raw, updated) VALUES (?, ?, ?, ?)",
                (now, source, raw, now),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def add_history(self, source: str, raw: str, note: str, now: float | None = None) -> int:
        """Store work for the history worker alone (a sampled passing job): a row with
        no comment to make, its ``history`` pending; returns its row id."""
        now = time.time() if now is None else now
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO inbox (received, source, raw, state, note, history, updated) "
                "VALUES (?, ?, ?, 'done', ?, 'pending', ?)",
                (now, source, raw, note, now),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def skip(self, row: int, why: str) -> None:
        """The event is not one to handle (or cannot be read): done with it."""
        self._update(row, state="skipped", note=why)

    def parsed(self, row: int, key: str, change: str, event: str, deadline: float) -> bool:
        """Record the failure event read from the row; False when its key was seen
        before (the row is then marked duplicate)."""
        try:
            self._update(
                row, state="pending", key=key, change=change, event=event, deadline=deadline
            )
        except sqlite3.IntegrityError:
            self._update(row, state="duplicate", note=f"same event as an earlier one ({key})")
            return False
        return True

    def later(self, row: int, when: float, note: str | None = None) -> None:
        """Look at the row again at ``when`` (logs not there yet, Gerrit down...)."""
        with self._lock:
            self._conn.execute(
                "UPDATE inbox SET attempts = attempts + 1, next_attempt = ?, note = ?, "
                "updated = ? WHERE id = ?",
                (when, note, time.time(), row),
            )

    def reported(
        self, row: int, report: str, comment: str | None, *, history: bool = False
    ) -> None:
        """Record the finished report and the comment to post (None: nothing to post);
        with ``history``, in the same commit, that its builds are to be stored."""
        self._update(row, state="reported", report=report, comment=comment, attempts=0,
                     next_attempt=0, history="pending" if history else None)  # fmt: skip

    def posting(self, row: int, baseline: int) -> None:
        """About to send the comment; ``baseline`` identical comments are on the change."""
        self._update(row, state="posting", baseline=baseline)

    def done(self, row: int, note: str) -> None:
        """Finished: the comment was posted (or was not to be posted: ``note`` says)."""
        self._update(row, state="done", note=note)

    def fail(self, row: int, why: str) -> None:
        """Gave up on the row; ``why`` is for people."""
        self._update(row, state="failed", note=why)

    def history_later(self, row: int, when: float, note: str) -> None:
        """Store the row's builds at ``when`` (logs or the store failed: ``note``)."""
        with self._lock:
            self._conn.execute(
                "UPDATE inbox SET history_attempts = history_attempts + 1, history_next = ?, "
                "history_note = ?, updated = ? WHERE id = ?",
                (when, note, time.time(), row),
            )

    def history_done(self, row: int, note: str, *, failed: bool = False) -> None:
        """The row's builds are stored (or, ``failed``, given up: ``note`` says why)."""
        self._update(row, history="failed" if failed else "stored", history_note=note)

    # --- reading ---------------------------------------------------------------------

    def due(self, now: float, limit: int = 64) -> list[QueueRow]:
        """Rows needing work now, the longest-waiting first.

        A change with a row in ``posting`` has no other row due until that one is
        settled: its baseline counts identical comments on the change, and another
        event's comment with the same text, posted meanwhile, would pass for it.
        """
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM inbox AS row WHERE {_WORKABLE} AND next_attempt <= ? "
                "ORDER BY next_attempt, id LIMIT ?",
                (*ACTIVE, now, limit),
            ).fetchall()
        return [_row(row) for row in rows]

    def history_due(self, now: float) -> QueueRow | None:
        """The oldest row whose builds may be stored now, or None."""
        with self._lock:
            found = self._conn.execute(
                f"SELECT * FROM inbox WHERE {_HISTORY_DUE} ORDER BY history_next, id LIMIT 1",
                (now, now),
            ).fetchone()
        return None if found is None else _row(found)

    def history_backlog(self) -> int:
        """Rows whose builds are still to be stored."""
        with self._lock:
            found = self._conn.execute("SELECT COUNT(*) FROM inbox WHERE history = 'pending'")
            return int(found.fetchone()[0])

    def get(self, row: int) -> QueueRow:
        """One row as it is now."""
        with self._lock:
            return _row(self._conn.execute("SELECT * FROM inbox WHERE id = ?", (row,)).fetchone())

    def wake_time(self) -> float | None:
        """When the earliest row needing work becomes due; None when nothing waits."""
        with self._lock:
            found = self._conn.execute(
                f"SELECT MIN(next_attempt) FROM inbox AS row WHERE {_WORKABLE}", ACTIVE
            ).fetchone()[0]
        return None if found is None else float(found)

    def counts(self) -> dict[str, int]:
        """Rows per state."""
        with self._lock:
            rows = self._conn.execute("SELECT state, COUNT(*) FROM inbox GROUP BY state")
            return {state: count for state, count in rows}

    def rows(self) -> list[QueueRow]:
        """Every row, oldest first (for tests and inspection)."""
        with self._lock:
            return [_row(row) for row in self._conn.execute("SELECT * FROM inbox ORDER BY id")]

    def prune(self, before: float) -> int:
        """Forget finished rows last touched before ``before``; returns how many."""
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM inbox WHERE state IN ('done', 'skipped', 'duplicate', 'failed') "
                "AND updated < ? AND history IS NOT 'pending'",
                (before,),
            )
            return cursor.rowcount

    def _update(self, row: int, **values: Any) -> None:
        values["updated"] = time.time()
        columns = ", ".join(f"{name} = ?" for name in values)
        with self._lock:
            self._conn.execute(f"UPDATE inbox SET {columns} WHERE id = ?", (*values.values(), row))


def _row(row: sqlite3.Row) -> QueueRow:
    return QueueRow(**{name: row[name] for name in QueueRow.__dataclass_fields__})


def _exclusive(path: Path) -> FileLock:
    """Hold ``<path>.lock`` so that two bots never work on one queue."""
    lock = FileLock(path.with_name(path.name + ".lock"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except LockBusy:
        raise QueueError(
            f"{path}: another recheck bot is using this queue; stop it first, or give "
            "this one its own --state"
        ) from None
    except OSError as exc:
        raise QueueError(
            f"{lock.path}: cannot create the bot's lock file ({exc.strerror or exc}); "
            "check the directory (bot.state in bot.yaml or --state)"
        ) from None
    return lock


def report_to_json(report: FailureReport) -> str:
    """A report as JSON, to keep in the queue."""
    return json.dumps(asdict(report), sort_keys=True)


_TUPLES = ("bugs", "failed_tests", "flaky_tests")
"""JobOutcome's tuple fields (JSON gives lists); a report queued before a field existed
lacks it and gets its default."""


def report_from_json(text: str) -> FailureReport:
    """The report ``report_to_json`` wrote."""
    data = json.loads(text)
    data["jobs"] = tuple(
        JobOutcome(**{**job, **{k: tuple(job[k]) for k in _TUPLES if k in job}})
        for job in data["jobs"]
    )
    return FailureReport(**data)
