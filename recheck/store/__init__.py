"""History of builds, events and matches: the ``Store`` interface and ``open_store``.

``open_store`` opens the embedded store (``embedded``) or the cluster store bot.yaml
names (``elastic``). The backends load on first use, so importing ``base`` (as the
pipeline does) costs no SQLite, tantivy or client library.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recheck.store.base import (
    DEFAULT_BUILD_DAYS,
    DEFAULT_EVENT_DAYS,
    GcCounts,
    ReclassifyCounts,
    Retention,
    Store,
    StoredBuild,
    StoredClassification,
    StoredMatch,
    StoreError,
    signature_hash,
)
from recheck.store.elastic.cluster import wants_cluster

if TYPE_CHECKING:
    from recheck.config.files import Config
    from recheck.store.embedded.store import EmbeddedStore, generated_uuid

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
    "StoredClassification",
    "StoredMatch",
    "default_store_path",
    "generated_uuid",
    "open_store",
    "signature_hash",
]

HOME_VARIABLE = "RECHECK_HOME"
"""Environment variable naming the store directory."""


_LAZY = {
    "EmbeddedStore": "recheck.store.embedded.store",
    "generated_uuid": "recheck.store.embedded.store",
}
"""Public names of the backends, imported when first asked for."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_store_path() -> Path:
    """``$RECHECK_HOME`` when set and not empty, else ``./.recheck``."""
    home = os.environ.get(HOME_VARIABLE)
    return Path(home) if home else Path(".recheck")


def open_store(
    path: Path | None = None,
    *,
    retention: Retention | None = None,
    auto_gc: bool = False,
    config: Config | None = None,
    create: bool = True,
) -> Store:
    """Open the embedded store at ``path`` (default: ``default_store_path()``).

    Creates it when missing, unless ``create`` is False (commands that only read or
    tidy: a mistyped path must be an error, not a new empty store). ``auto_gc`` runs
    retention after ingests (at most hourly). When ``config``'s ``store`` section names
    a cluster backend, opens that cluster instead (``recheck.store.elastic.store``); a
    ``path`` as well (``--store``, or bot.yaml's ``store.path``) is a conflict, reported
    rather than silently choosing one. Raises
    StoreError naming the path or URL and what to do when the store cannot be used.
    """
    section = None if config is None else config.sections.get("store")
    if config is not None and wants_cluster(section):
        where = str(config.path or "bot.yaml")
        if path is not None:
            assert isinstance(section, Mapping)  # wants_cluster checked it
            named = "store.path in bot.yaml" if path == config.store.path else f"--store {path}"
            raise StoreError(
                where,
                f"store: backend {section.get('backend')} keeps the history in the cluster "
                f"(store.url), but {named} names a directory for the embedded store; "
                "drop one of them (for the embedded store, remove backend or write "
                "'backend: embedded')",
            )
        from recheck.store.elastic.store import open_cluster_store

        return open_cluster_store(section, where=where, retention=retention, auto_gc=auto_gc)
    from recheck.store.embedded.store import EmbeddedStore

    directory = default_store_path() if path is None else path
    if not create and not EmbeddedStore.exists(directory):
        raise StoreError(
            directory,
            "no store here: ingest builds first (recheck ingest), or name the store with "
            f"--store, bot.yaml's store.path or ${HOME_VARIABLE}",
        )
    return EmbeddedStore(directory, retention=retention, auto_gc=auto_gc)
