"""How current a store's history is, for the pages' header ("indexing behind by N hours").

``freshness`` asks for the newest event's time and, of a cluster, its health; it never
raises, so a cluster that is down gives a ``Freshness`` whose ``problem`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from recheck.store.base import Store, StoreError, utc

__all__ = ["BEHIND_AFTER", "Freshness", "HasHealth", "freshness"]

BEHIND_AFTER = timedelta(hours=1)
"""Newest event older than this: the header says indexing is behind."""


@runtime_checkable
class HasHealth(Protocol):
    """A store that can say how its server is (the cluster store)."""

    def health(self) -> Any:
        """An object with a ``status`` attribute: ``green``, ``yellow`` or ``red``."""
        ...


@dataclass(frozen=True)
class Freshness:
    """What the pages' header says about the store's history."""

    checked_at: datetime
    newest_event: datetime | None
    """The newest event's time; None when the store is empty or could not say."""
    health: str | None = None
    """The cluster's status (green/yellow/red); None for a store without a server."""
    problem: str | None = None
    """Why the store could not be asked (the cluster is down...); None when it answered."""

    @property
    def behind(self) -> timedelta | None:
        """How old the newest event is; None when there is none."""
        if self.newest_event is None:
            return None
        return max(timedelta(0), self.checked_at - self.newest_event)

    @property
    def behind_hours(self) -> int | None:
        """Whole hours behind when more than ``BEHIND_AFTER``; None when current or empty."""
        behind = self.behind
        if behind is None or behind <= BEHIND_AFTER:
            return None
        return int(behind.total_seconds() // 3600)

    def summary(self) -> str | None:
        """The header's warning (``indexing behind by 5 hours``...); None when all is well."""
        parts = []
        if self.problem is not None:
            parts.append(f"history unavailable: {self.problem}")
        if self.health not in (None, "green"):
            parts.append(f"cluster health {self.health}")
        hours = self.behind_hours
        if hours is not None:
            parts.append(f"indexing behind by {hours} hour{'' if hours == 1 else 's'}")
        return "; ".join(parts) or None


def freshness(store: Store, now: datetime | None = None) -> Freshness:
    """How current ``store`` is at ``now`` (default: now). Never raises StoreError."""
    moment = utc(now)
    try:
        newest = store.newest_event_time()
        health = str(store.health().status) if isinstance(store, HasHealth) else None
    except StoreError as exc:
        return Freshness(moment, None, problem=exc.message)
    return Freshness(moment, newest, health)
