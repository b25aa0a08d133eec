"""The embedded store's catalog: builds, matches and signature versions in SQLite.

Plain functions over a connection (``connect``), so the store decides what runs in which
transaction: writers say ``BEGIN IMMEDIATE`` themselves (``transaction``), which takes
SQLite's write lock up front instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from recheck.lib import sqlite
from recheck.logs.build import BUILD_FIELDS, Build
from recheck.store.base import StoredBuild, StoredMatch, StoreError
from recheck.store.embedded.testcatalog import migration_tests

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "connect", "put_build", "transaction"]

BUILD_COLUMNS: tuple[str, ...] = (
    "build_uuid",
    "build_short_uuid",
    "build_name",
    "build_status",
    "build_queue",
    "build_change",
    "build_patchset",
    "build_branch",
    "project",
    "voting",
    "log_url",
    "tenant",
)
"""Build fields with a column of their own (the fields of ``Build`` when this was written)."""

BUSY_TIMEOUT_S = 60.0
"""How long a writer waits for another writer's transaction before giving up."""


# Tables (schema version in ``PRAGMA user_version``, one migration function per version):
#
# - ``builds``: one row per build uuid: the build fields as columns (the ones pages filter
#   on) and as JSON (all of them, so a field added to ``Build`` later survives), its time,
#   when it was ingested, the index **generation** holding its events, the event count,
#   and whether retention has dropped its events yet.
# - ``matches``: (build, bug, filename, line, message excerpt).
# - ``signature_versions``: which version (hash) of each signature was last re-run over
#   the whole history, so ``reclassify`` knows what changed.
# - ``index_garbage``: index generations to delete from the event index: those of
#   ingests that never committed (crash, Ctrl-C) and those replaced by a re-ingest.
# - ``meta``: counters (next generation) and the time of the last retention pass.
def _migration_1(conn: sqlite3.Connection) -> None:
    columns = ",\n".join(f"    {name} TEXT" for name in BUILD_COLUMNS[1:])
    conn.execute(
        f"""CREATE TABLE builds (
    build_uuid TEXT PRIMARY KEY NOT NULL,
{columns},
    fields TEXT NOT NULL,
    time INTEGER NOT NULL,
    ingested_at INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    events INTEGER NOT NULL,
    events_kept INTEGER NOT NULL DEFAULT 1
)"""
    )
    conn.execute("CREATE INDEX builds_time ON builds (time)")
    conn.execute(
        """CREATE TABLE matches (
    build_uuid TEXT NOT NULL REFERENCES builds (build_uuid) ON DELETE CASCADE,
    bug TEXT NOT NULL,
    filename TEXT NOT NULL,
    line INTEGER NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (build_uuid, bug, filename, line)
)"""
    )
    conn.execute("CREATE INDEX matches_bug ON matches (bug)")
    conn.execute(
        """CREATE TABLE signature_versions (
    bug TEXT NOT NULL,
    query_hash TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    reclassified_at INTEGER NOT NULL,
    PRIMARY KEY (bug, query_hash)
)"""
    )
    conn.execute(
        "CREATE TABLE index_garbage (generation INTEGER PRIMARY KEY, since INTEGER NOT NULL)"
    )
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migration_1, migration_tests)
"""Migration ``i`` takes the schema from version ``i`` to ``i + 1``; append, never edit."""
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the catalog at ``path`` and bring its schema up to date.

    Raises StoreError for a file that is not a SQLite database (or is damaged), and for
    a catalog written by a newer recheck.
    """
    try:
        # NORMAL is durable against a crash of the process (the case that matters: a
        # killed ingest); only a power loss may lose the last transactions, never corrupt.
        conn = sqlite.connect(path, timeout=BUSY_TIMEOUT_S, synchronous="NORMAL", foreign_keys=True)
    except sqlite3.Error as exc:
        if exc.sqlite_errorname == "SQLITE_CANTOPEN":
            raise StoreError(
                path, f"cannot open the catalog ({exc}); check the permissions"
            ) from None
        raise _unusable(path, exc) from None
    try:
        _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _unusable(path, exc) from None
    return conn


def _unusable(path: Path, exc: sqlite3.Error) -> StoreError:
    if "not a database" in str(exc) or "malformed" in str(exc):
        return StoreError(
            path,
            f"not a usable recheck catalog ({exc}); move it away (the store can then "
            "be rebuilt by ingesting the builds again) or point RECHECK_HOME elsewhere",
        )
    return StoreError(path, f"cannot use the catalog ({exc}); check that its directory is writable")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            path,
            f"written by a newer recheck (catalog schema {version}, this recheck knows "
            f"up to {SCHEMA_VERSION}); upgrade recheck or use another RECHECK_HOME",
        )
    for number in range(version, SCHEMA_VERSION):
        with transaction(conn):
            # Another process may have migrated since we looked: check under the lock.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) != number:
                continue
            MIGRATIONS[number](conn)
            conn.execute(f"PRAGMA user_version = {number + 1}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: committed when the block ends, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def seconds(moment: datetime) -> int:
    """A UTC datetime as whole seconds since the epoch, the catalog's time unit."""
    return int(moment.timestamp())


def moment(value: int) -> datetime:
    """The inverse of ``seconds``."""
    return datetime.fromtimestamp(value, UTC)


# --------------------------------------------------------------------------- meta


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def new_generation(conn: sqlite3.Connection, since: datetime) -> int:
    """A fresh index generation, recorded as garbage until its build row commits.

    Call inside a transaction. Generations are never reused, so an event's generation
    alone tells which ingest wrote it.
    """
    generation = int(get_meta(conn, "next_generation") or "1")
    set_meta(conn, "next_generation", str(generation + 1))
    conn.execute(
        "INSERT INTO index_garbage (generation, since) VALUES (?, ?)",
        (generation, seconds(since)),
    )
    return generation


# --------------------------------------------------------------------------- builds


_ROW_COLUMNS = (*BUILD_COLUMNS, "fields", "time", "ingested_at", "generation", "events")


def _build_row(
    build: Build, time: datetime, ingested_at: datetime, generation: int, events: int
) -> tuple[object, ...]:
    """The values of ``_ROW_COLUMNS`` for one build."""
    values = asdict(build)
    return (
        *(values.get(name) for name in BUILD_COLUMNS),
        json.dumps({k: v for k, v in values.items() if v is not None}, sort_keys=True),
        seconds(time),
        seconds(ingested_at),
        generation,
        events,
    )


def _build(fields: str) -> Build:
    """The Build a row's ``fields`` column holds (keys of older versions ignored)."""
    return Build(**{k: v for k, v in json.loads(fields).items() if k in BUILD_FIELDS})


def _stored_build(
    fields: str, time: int, ingested: int, events: int, kept: int, bugs: str | None
) -> StoredBuild:
    return StoredBuild(
        build=_build(fields),
        time=moment(time),
        ingested_at=moment(ingested),
        events=events,
        events_kept=bool(kept),
        bugs=tuple(sorted(bugs.split("\n"))) if bugs else (),
    )


# The bugs matched in each build, newline-joined (bug ids are file stems: no newline).
_BUILD_SELECT = """SELECT b.fields, b.time, b.ingested_at, b.events, b.events_kept,
    (SELECT group_concat(bug, char(10)) FROM (
        SELECT DISTINCT bug FROM matches WHERE build_uuid = b.build_uuid ORDER BY bug))
FROM builds AS b"""


def build_generation(conn: sqlite3.Connection, uuid: str) -> int | None:
    row = conn.execute("SELECT generation FROM builds WHERE build_uuid = ?", (uuid,)).fetchone()
    return None if row is None else int(row[0])


def put_build(
    conn: sqlite3.Connection,
    build: Build,
    *,
    time: datetime,
    ingested_at: datetime,
    generation: int,
    events: int,
    matches: Iterable[tuple[str, str, int, str]],
) -> int | None:
    """Insert or replace a build row with its matches; returns the replaced generation.

    Call inside a transaction: this is the moment a build becomes visible, so the new
    generation stops being garbage and the old one (if any) becomes garbage.
    """
    assert build.build_uuid is not None
    old = build_generation(conn, build.build_uuid)
    row = _build_row(build, time, ingested_at, generation, events)
    names = ", ".join(_ROW_COLUMNS)
    marks = ", ".join("?" for _ in _ROW_COLUMNS)
    conn.execute("DELETE FROM matches WHERE build_uuid = ?", (build.build_uuid,))
    conn.execute(f"INSERT OR REPLACE INTO builds ({names}) VALUES ({marks})", row)
    conn.executemany(
        "INSERT OR IGNORE INTO matches (build_uuid, bug, filename, line, message)"
        " VALUES (?, ?, ?, ?, ?)",
        ((build.build_uuid, *match) for match in matches),
    )
    conn.execute("DELETE FROM index_garbage WHERE generation = ?", (generation,))
    if old is not None and old != generation:
        conn.execute(
            "INSERT OR IGNORE INTO index_garbage (generation, since) VALUES (?, ?)",
            (old, seconds(ingested_at)),
        )
    return old


def get_build(conn: sqlite3.Connection, uuid: str) -> StoredBuild | None:
    """The stored build ``uuid``, events kept or not; None when it is not stored."""
    row = conn.execute(_BUILD_SELECT + " WHERE b.build_uuid = ?", (uuid,)).fetchone()
    return None if row is None else _stored_build(*row)


def has_build(conn: sqlite3.Connection, uuid: str) -> bool:
    return conn.execute("SELECT 1 FROM builds WHERE build_uuid = ?", (uuid,)).fetchone() is not None


def visible_generations(
    conn: sqlite3.Connection, since: datetime, queue: str | None = None
) -> dict[int, tuple[int, dict[str, str]]]:
    """Generation -> (build time, the build's event fields), for builds of ``since`` or
    later whose events are kept.

    Only these generations are visible to readers: events of any other generation
    belong to an ingest that has not committed (or was replaced).
    """
    sql = "SELECT generation, time, fields FROM builds WHERE time >= ? AND events_kept = 1"
    params: list[object] = [seconds(since)]
    if queue is not None:
        sql += " AND build_queue = ?"
        params.append(queue)
    return {int(g): (int(t), _build(f).event_fields()) for g, t, f in conn.execute(sql, params)}


def builds_with_events(
    conn: sqlite3.Connection, since: datetime | None
) -> list[tuple[int, StoredBuild]]:
    """(generation, build) of the builds whose events are still indexed, oldest first."""
    sql = _BUILD_SELECT.replace("SELECT b.fields", "SELECT b.generation, b.fields", 1)
    sql += " WHERE b.events_kept = 1"
    params: list[object] = []
    if since is not None:
        sql += " AND b.time >= ?"
        params.append(seconds(since))
    sql += " ORDER BY b.time, b.build_uuid"
    return [(int(row[0]), _stored_build(*row[1:])) for row in conn.execute(sql, params)]


def build_with_events(conn: sqlite3.Connection, uuid: str) -> tuple[int, StoredBuild] | None:
    """(generation, build) of the stored build ``uuid`` if its events are still kept."""
    sql = _BUILD_SELECT.replace("SELECT b.fields", "SELECT b.generation, b.fields", 1)
    sql += " WHERE b.build_uuid = ? AND b.events_kept = 1"
    row = conn.execute(sql, (uuid,)).fetchone()
    return None if row is None else (int(row[0]), _stored_build(*row[1:]))


def list_builds(
    conn: sqlite3.Connection,
    since: datetime | None,
    until: datetime | None,
    *,
    status: str | None,
    queue: str | None,
    uncategorized: bool,
    limit: int | None,
) -> list[StoredBuild]:
    clauses: list[str] = []
    params: list[object] = []
    for column, op, value in (
        ("b.time", ">=", None if since is None else seconds(since)),
        ("b.time", "<", None if until is None else seconds(until)),
        ("b.build_status", "=", status),
        ("b.build_queue", "=", queue),
    ):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    if uncategorized:
        clauses.append("NOT EXISTS (SELECT 1 FROM matches WHERE build_uuid = b.build_uuid)")
    sql = _BUILD_SELECT
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY b.time DESC, b.build_uuid"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_stored_build(*row) for row in conn.execute(sql, params)]


def newest_time(conn: sqlite3.Connection) -> datetime | None:
    row = conn.execute("SELECT max(time) FROM builds WHERE events_kept = 1").fetchone()
    return None if row is None or row[0] is None else moment(int(row[0]))


# --------------------------------------------------------------------------- matches


def matches_for(conn: sqlite3.Connection, bug: str, since: datetime) -> list[StoredMatch]:
    return _matches(conn, "m.bug = ? AND b.time >= ?", (bug, seconds(since)))


def matches_between(
    conn: sqlite3.Connection, since: datetime | None, until: datetime | None
) -> list[StoredMatch]:
    """Every bug's matches in builds with ``since <= time < until``, oldest build first."""
    low = -(2**62) if since is None else seconds(since)
    high = 2**62 if until is None else seconds(until)
    return _matches(conn, "b.time >= ? AND b.time < ?", (low, high))


def _matches(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> list[StoredMatch]:
    sql = _BUILD_SELECT.replace(
        "SELECT b.fields", "SELECT m.bug, m.filename, m.line, m.message, b.fields", 1
    ).replace("FROM builds AS b", "FROM matches AS m JOIN builds AS b USING (build_uuid)")
    sql += f" WHERE {where} ORDER BY b.time, b.build_uuid, m.bug, m.filename, m.line"
    builds: dict[str, StoredBuild] = {}
    found: list[StoredMatch] = []
    for bug, filename, line, message, *build_row in conn.execute(sql, params):
        stored = _stored_build(*build_row)
        stored = builds.setdefault(stored.uuid, stored)  # one object per build
        found.append(StoredMatch(bug, filename, int(line), message, stored))
    return found


def replace_matches(
    conn: sqlite3.Connection,
    uuid: str,
    generation: int,
    bugs: Sequence[str],
    matches: Iterable[tuple[str, str, int, str]],
) -> bool:
    """Replace the matches of ``bugs`` in one build, if it still has ``generation``.

    Returns False (and changes nothing) when the build was re-ingested or removed since
    its events were read: the new ingest's matches are newer than ours.
    """
    if build_generation(conn, uuid) != generation:
        return False
    conn.executemany(
        "DELETE FROM matches WHERE build_uuid = ? AND bug = ?", ((uuid, bug) for bug in bugs)
    )
    conn.executemany(
        "INSERT OR IGNORE INTO matches (build_uuid, bug, filename, line, message)"
        " VALUES (?, ?, ?, ?, ?)",
        ((uuid, *match) for match in matches),
    )
    return True


# --------------------------------------------------------------------------- signatures


def recorded_hashes(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    """(bug, hash) of every signature version that was re-run over the history."""
    return {
        (str(b), str(h)) for b, h in conn.execute("SELECT bug, query_hash FROM signature_versions")
    }


def record_versions(
    conn: sqlite3.Connection, versions: Iterable[tuple[str, str]], when: datetime
) -> None:
    stamp = seconds(when)
    for bug, digest in versions:
        conn.execute(
            "INSERT INTO signature_versions (bug, query_hash, first_seen, reclassified_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (bug, query_hash)"
            " DO UPDATE SET reclassified_at = excluded.reclassified_at",
            (bug, digest, stamp, stamp),
        )


# --------------------------------------------------------------------------- retention


def garbage(conn: sqlite3.Connection, before: datetime) -> list[int]:
    """Generations marked garbage before ``before``: safe to delete from the index."""
    rows = conn.execute(
        "SELECT generation FROM index_garbage WHERE since <= ? ORDER BY generation",
        (seconds(before),),
    )
    return [int(row[0]) for row in rows]


def forget_garbage(conn: sqlite3.Connection, generations: Sequence[int]) -> None:
    conn.executemany("DELETE FROM index_garbage WHERE generation = ?", ((g,) for g in generations))


def drop_events_before(conn: sqlite3.Connection, cutoff: datetime) -> None:
    """Mark the builds older than ``cutoff`` as having no events any more."""
    conn.execute(
        "UPDATE builds SET events_kept = 0 WHERE time < ? AND events_kept = 1", (seconds(cutoff),)
    )


def drop_builds_before(
    conn: sqlite3.Connection, cutoff: datetime, now: datetime
) -> tuple[int, int]:
    """Delete builds older than ``cutoff`` with their matches; returns (builds, matches).

    Their index generations become garbage, in case retention keeps events longer
    than builds.
    """
    stamp = seconds(cutoff)
    matches = conn.execute(
        "DELETE FROM matches WHERE build_uuid IN (SELECT build_uuid FROM builds WHERE time < ?)",
        (stamp,),
    ).rowcount
    conn.execute(
        "INSERT OR IGNORE INTO index_garbage (generation, since)"
        " SELECT generation, ? FROM builds WHERE time < ? AND events_kept = 1",
        (seconds(now), stamp),
    )
    builds = conn.execute("DELETE FROM builds WHERE time < ?", (stamp,)).rowcount
    return builds, matches
