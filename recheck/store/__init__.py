"""History of builds, events and matches: the ``Store`` interface and where it lives.

``open_store()`` opens the embedded store (SQLite catalog + tantivy event index, no
server) in ``$RECHECK_HOME`` or ``./.recheck/``. Nothing outside this package speaks
SQL or tantivy; callers use the ``Store`` methods and the records in ``base``.
"""

from __future__ import annotations

import os
from pathlib import Path

from recheck.store.base import (
    DEFAULT_BUILD_DAYS,
    DEFAULT_EVENT_DAYS,
    GcCounts,
    ReclassifyCounts,
    Retention,
    Store,
    StoredBuild,
    StoredMatch,
    StoreError,
    signature_hash,
)
from recheck.store.embedded import EmbeddedStore, generated_uuid

__all__ = [
    "DEFAULT_BUILD_DAYS",
    "DEFAULT_EVENT_DAYS",
    "HOME_VARIABLE",
    "EmbeddedStore",
    "GcCounts",
    "ReclassifyCounts",
    "Retention",
    "Store",
    "StoreError",
    "StoredBuild",
    "StoredMatch",
    "default_store_path",
    "generated_uuid",
    "open_store",
    "signature_hash",
]

HOME_VARIABLE = "RECHECK_HOME"
"""Environment variable naming the store directory."""


def default_store_path() -> Path:
    """``$RECHECK_HOME`` when set and not empty, else ``./.recheck``."""
    home = os.environ.get(HOME_VARIABLE)
    return Path(home) if home else Path(".recheck")


def open_store(
    path: Path | None = None,
    *,
    retention: Retention | None = None,
    auto_gc: bool = False,
) -> Store:
    """Open the embedded store at ``path`` (default: ``default_store_path()``).

    Creates it when missing. ``auto_gc`` runs retention after ingests (at most hourly).
    Raises StoreError naming the path and what to do when it cannot be used.
    """
    return EmbeddedStore(
        default_store_path() if path is None else path, retention=retention, auto_gc=auto_gc
    )
