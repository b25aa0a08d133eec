"""The anomaly book: what ingest keeps so that clusters and "new or known" cost a query.

``recheck draft`` compares whole builds; the pages and the bot cannot, for every failure,
so ingest keeps two small things per build, in ``anomalies.sqlite`` beside the embedded
store's catalog (its own file: the catalog's schema and writers are left alone):

- ``fingerprints``: for the newest ``KEPT_PER_JOB`` passing builds of each job, the set
  of their lines' keys (``recheck.scan.anomaly.normalize``) as sorted 64-bit digests,
  compressed; older ones are dropped, so the book stays a few MB per job.
- ``anomalies``: for each failed build, its top ``TOP`` anomalies against the passing
  builds of its job the book held when it was ingested: normalized key, file, line,
  text, score and a drafted query.

Clusters group the uncategorized failures of a window by their top anomaly's key; the
bot asks in how many other changes a key was a top anomaly lately. A cluster store
(Elasticsearch) has no directory for the book: ``AnomalyBook.of`` gives None there.
"""

from __future__ import annotations

import sqlite3
import zlib
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recheck.lib import sqlite
from recheck.store.base import Store, StoredBuild, StoreError, utc

__all__ = [
    "BOOK_FILE",
    "KEPT_PER_JOB",
    "TOP",
    "AnomalyBook",
    "BookedAnomaly",
    "Cluster",
    "clusters_of",
    "digest",
    "uncategorized_clusters",
]

BOOK_FILE = "anomalies.sqlite"
KEPT_PER_JOB = 3
"""Passing builds per job whose line keys are kept: the baselines of its next failures."""
TOP = 5
"""Anomalies kept per failed build."""
_BUSY_TIMEOUT_S = 60.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS fingerprints (
    build_uuid TEXT PRIMARY KEY NOT NULL,
    job TEXT NOT NULL,
    time INTEGER NOT NULL,
    digests BLOB NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS fingerprints_job ON fingerprints (job, time)",
    """CREATE TABLE IF NOT EXISTS anomalies (
    build_uuid TEXT NOT NULL,
    rank INTEGER NOT NULL,
    job TEXT,
    change TEXT,
    time INTEGER NOT NULL,
    baselines INTEGER NOT NULL,
    key TEXT NOT NULL,
    filename TEXT NOT NULL,
    line INTEGER NOT NULL,
    text TEXT NOT NULL,
    score REAL NOT NULL,
    query TEXT,
    PRIMARY KEY (build_uuid, rank)
)""",
    "CREATE INDEX IF NOT EXISTS anomalies_key ON anomalies (key, time)",
    "CREATE INDEX IF NOT EXISTS anomalies_time ON anomalies (time)",
)


def digest(key: bytes) -> int:
    """A stable 64-bit digest of a line key (Python's ``hash`` changes per process)."""
    return (zlib.crc32(key) << 32) | zlib.adler32(key)


@dataclass(frozen=True)
class BookedAnomaly:
    """One of a failed build's top anomalies, as the book keeps it."""

    build_uuid: str
    rank: int
    job: str | None
    change: str | None
    time: datetime
    baselines: int
    """Passing builds of the job it was compared with (0: none yet, only ranked)."""
    key: str
    filename: str
    line: int
    text: str
    score: float
    query: str | None


class AnomalyBook:
    """The book of one embedded store (``of``), or at ``path``."""

    def __init__(self, path: Path) -> None:
        try:
            self._conn = sqlite.connect(path, timeout=_BUSY_TIMEOUT_S, synchronous="NORMAL")
            for statement in _SCHEMA:
                self._conn.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(path, f"cannot use the anomaly book ({exc})") from None
        self.path = path

    @classmethod
    def of(cls, store: Store) -> AnomalyBook | None:
        """The book beside ``store``'s catalog; None for a store without a directory."""
        where = getattr(store, "path", None)
        if not isinstance(where, str) or "://" in where:
            return None
        directory = Path(where)
        if not (directory / "catalog.sqlite").exists():
            return None
        return cls(directory / BOOK_FILE)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AnomalyBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ passing builds

    def baseline_digests(self, job: str | None) -> tuple[set[int], int]:
        """The line key digests of the job's kept passing builds, and how many builds."""
        if job is None:
            return set(), 0
        rows = self._conn.execute(
            "SELECT digests FROM fingerprints WHERE job = ? ORDER BY time DESC LIMIT ?",
            (job, KEPT_PER_JOB),
        ).fetchall()
        union: set[int] = set()
        for (blob,) in rows:
            union.update(array("Q", zlib.decompress(blob)))
        return union, len(rows)

    def record_passing(
        self, uuid: str, job: str | None, when: datetime, digests: Iterable[int]
    ) -> None:
        """Keep a passing build's digests; drop its job's older ones past KEPT_PER_JOB."""
        if job is None:
            return
        blob = zlib.compress(array("Q", sorted(digests)).tobytes(), 1)
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?, ?)",
                (uuid, job, int(utc(when).timestamp()), blob),
            )
            self._conn.execute(
                "DELETE FROM fingerprints WHERE job = ? AND build_uuid NOT IN "
                "(SELECT build_uuid FROM fingerprints WHERE job = ? ORDER BY time DESC LIMIT ?)",
                (job, job, KEPT_PER_JOB),
            )

    # ------------------------------------------------------------------ failed builds

    def record_failure(self, anomalies: Sequence[BookedAnomaly]) -> None:
        """Replace what the book holds of these anomalies' build."""
        if not anomalies:
            return
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "DELETE FROM anomalies WHERE build_uuid = ?", (anomalies[0].build_uuid,)
            )
            self._conn.executemany(
                "INSERT INTO anomalies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        a.build_uuid, a.rank, a.job, a.change, int(utc(a.time).timestamp()),
                        a.baselines, a.key, a.filename, a.line, a.text, a.score, a.query,
                    )
                    for a in anomalies
                ],
            )  # fmt: skip

    def top_anomalies(self, uuids: Iterable[str]) -> dict[str, BookedAnomaly]:
        """Each build's top anomaly, for those of ``uuids`` the book has."""
        found: dict[str, BookedAnomaly] = {}
        wanted = list(uuids)
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in self._conn.execute(
                f"SELECT * FROM anomalies WHERE rank = 0 AND build_uuid IN ({marks})", batch
            ):
                found[row[0]] = _booked(row)
        return found

    def anomalies_of(self, uuid: str) -> list[BookedAnomaly]:
        """The build's kept anomalies, best first."""
        rows = self._conn.execute(
            "SELECT * FROM anomalies WHERE build_uuid = ? ORDER BY rank", (uuid,)
        )
        return [_booked(row) for row in rows]

    def changes_with(self, key: str, since: datetime, exclude_change: str | None) -> set[str]:
        """The changes whose failed builds since ``since`` had ``key`` among their top
        anomalies, ``exclude_change`` left out."""
        rows = self._conn.execute(
            "SELECT DISTINCT change FROM anomalies WHERE key = ? AND time >= ? "
            "AND change IS NOT NULL",
            (key, int(utc(since).timestamp())),
        )
        return {change for (change,) in rows if change != exclude_change}

    def forget_before(self, cutoff: datetime) -> None:
        """Drop failed builds' anomalies older than ``cutoff`` (the store's build retention)."""
        with self._conn:
            self._conn.execute(
                "DELETE FROM anomalies WHERE time < ?", (int(utc(cutoff).timestamp()),)
            )


def _booked(row: tuple[object, ...]) -> BookedAnomaly:
    uuid, rank, job, change, time, baselines, key, filename, line, text, score, query = row

    def optional(value: object) -> str | None:
        return None if value is None else str(value)

    return BookedAnomaly(
        str(uuid), int(str(rank)), optional(job), optional(change),
        datetime.fromtimestamp(int(str(time)), tz=UTC), int(str(baselines)), str(key),
        str(filename), int(str(line)), str(text), float(str(score)), optional(query),
    )  # fmt: skip


@dataclass
class Cluster:
    """Uncategorized failures whose top anomaly has the same key."""

    key: str
    builds: list[str]
    """Build uuids, newest first."""
    jobs: list[str]
    changes: int
    first_seen: datetime
    last_seen: datetime
    proposal: str | None
    """The drafted query of the newest build's top anomaly."""
    text: str
    """That anomaly's line, as written."""
    filename: str

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "builds": self.builds,
            "jobs": self.jobs,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "proposal": self.proposal,
        }


def clusters_of(builds: Iterable[StoredBuild], tops: Mapping[str, BookedAnomaly]) -> list[Cluster]:
    """``builds`` (failures no signature explains) grouped by their top anomaly's key,
    biggest first (then the most recently seen); builds without one are left out."""
    groups: dict[str, list[tuple[StoredBuild, BookedAnomaly]]] = {}
    for stored in builds:
        top = tops.get(stored.uuid)
        if top is not None:
            groups.setdefault(top.key, []).append((stored, top))
    found = []
    for key, members in groups.items():
        members.sort(key=lambda item: item[0].time, reverse=True)
        newest = members[0][1]
        found.append(
            Cluster(
                key,
                [stored.uuid for stored, _ in members],
                sorted({stored.build.build_name or "unknown" for stored, _ in members}),
                len({stored.build.build_change for stored, _ in members} - {None}),
                members[-1][0].time,
                members[0][0].time,
                next((top.query for _, top in members if top.query), None),
                newest.text,
                newest.filename,
            )
        )
    found.sort(key=lambda cluster: (-len(cluster.builds), -cluster.last_seen.timestamp()))
    return found


def uncategorized_clusters(
    store: Store, since: datetime, until: datetime | None = None
) -> tuple[list[Cluster], int]:
    """The clusters of the store's uncategorized failures from ``since``, and how many
    of those failures the book has no anomaly of (ingested before it kept them).

    Raises StoreError for a store without an anomaly book (a cluster store).
    """
    book = AnomalyBook.of(store)
    if book is None:
        raise StoreError(
            store.path,
            "this store keeps no anomaly book (only the embedded store does): clusters "
            "need failures ingested into an embedded store",
        )
    with book:
        failed = store.builds(since, until, status="FAILURE", uncategorized=True)
        tops = book.top_anomalies(stored.uuid for stored in failed)
    return clusters_of(failed, tops), sum(1 for stored in failed if stored.uuid not in tops)
