"""Replaying a change of the signatures over the stored history: what ``recheck diff`` reports.

Both versions of each added, removed or changed signature search the stored events of
the window (``Store.search``: the engine decides, exactly as ``recheck match``), and the
builds each version hits are compared: the builds a signature gains and loses, the failed
builds that no old signature explained and a new one does (newly categorized), and the
passing builds newly hit (false alarms the change would add). Signatures that did not
change keep the bugs the store recorded for each build.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from recheck.query.signatures import Signature
from recheck.store.base import Store, StoredBuild, applicable, days_before, signature_hash, utc
from recheck.store.precision import PASSING

__all__ = ["Replay", "SignatureChange", "replay"]


@dataclass(frozen=True)
class SignatureChange:
    """One signature that differs between the two sets, and what that changes."""

    bug: str
    change: str
    """``added``, ``removed`` or ``changed`` (its query or matching flags)."""
    gained: tuple[StoredBuild, ...] = ()
    """Builds the new version hits and the old one did not, newest first."""
    lost: tuple[StoredBuild, ...] = ()
    """Builds the old version hit and the new one does not, newest first."""

    @property
    def passing_gained(self) -> tuple[StoredBuild, ...]:
        """The passing builds among ``gained``: false alarms the change adds."""
        return tuple(b for b in self.gained if b.build.build_status == PASSING)


@dataclass(frozen=True)
class Replay:
    """What replaying the change over the window found."""

    since: datetime
    builds: int
    """Builds of the window whose events the store still holds (the ones replayed)."""
    changes: list[SignatureChange] = field(default_factory=list)
    newly_categorized: list[StoredBuild] = field(default_factory=list)
    """Builds that did not pass (as ``recheck stats`` counts them) no old signature hit
    that a new one hits."""
    newly_uncategorized: list[StoredBuild] = field(default_factory=list)
    """Builds that did not pass an old signature hit that no new one hits."""

    @property
    def passing_newly_hit(self) -> list[StoredBuild]:
        """Passing builds a changed signature hits now and did not before."""
        seen: dict[str, StoredBuild] = {}
        for change in self.changes:
            for build in change.passing_gained:
                seen.setdefault(build.uuid, build)
        return sorted(seen.values(), key=_newest_first)

    def to_json(self) -> dict[str, Any]:
        """The replay as JSON: every build as ``build_json`` gives it."""
        return {
            "since": self.since.isoformat(),
            "builds_replayed": self.builds,
            "signatures": [
                {
                    "bug": c.bug,
                    "change": c.change,
                    "gained": [build_json(b) for b in c.gained],
                    "lost": [build_json(b) for b in c.lost],
                    "passing_gained": [build_json(b) for b in c.passing_gained],
                }
                for c in self.changes
            ],
            "failures_newly_categorized": [build_json(b) for b in self.newly_categorized],
            "failures_newly_uncategorized": [build_json(b) for b in self.newly_uncategorized],
            "passing_builds_newly_hit": [build_json(b) for b in self.passing_newly_hit],
        }


def build_json(stored: StoredBuild) -> dict[str, Any]:
    """``{"build_uuid", "build_name", "build_status", "project", "time", "log_url"}``."""
    build = stored.build
    return {
        "build_uuid": stored.uuid,
        "build_name": build.build_name,
        "build_status": build.build_status,
        "project": build.project,
        "time": stored.time.isoformat(),
        "log_url": build.log_url,
    }


def replay(
    store: Store,
    old: Sequence[Signature],
    new: Sequence[Signature],
    *,
    days: float,
    now: datetime | None = None,
    on_search: Callable[[str], None] | None = None,
) -> Replay:
    """Replay the change from ``old`` to ``new`` over the stored builds of the last
    ``days`` whose events are kept. ``on_search`` is told each signature version before
    it searches (progress). Raises StoreError."""
    since = days_before(utc(now), days)
    builds = {b.uuid: b for b in store.builds(since=since) if b.events_kept}
    before = {s.bug: s for s in old}
    after = {s.bug: s for s in new}
    changed = sorted(
        bug
        for bug in before.keys() | after.keys()
        if bug not in before
        or bug not in after
        or signature_hash(before[bug]) != signature_hash(after[bug])
    )
    hits_before: dict[str, set[str]] = {}
    hits_after: dict[str, set[str]] = {}
    changes = []
    for bug in changed:
        for version, hits in ((before.get(bug), hits_before), (after.get(bug), hits_after)):
            if version is not None:
                if on_search is not None:
                    on_search(bug)
                hits[bug] = _hit_builds(store, version, builds, days, now)
        was, now_hit = hits_before.get(bug, set()), hits_after.get(bug, set())
        kind = "added" if bug not in before else "removed" if bug not in after else "changed"
        changes.append(
            SignatureChange(
                bug,
                kind,
                gained=_ordered(builds, now_hit - was),
                lost=_ordered(builds, was - now_hit),
            )
        )

    def categorized(uuid: str, hits: Mapping[str, set[str]]) -> bool:
        kept = any(bug not in changed for bug in builds[uuid].bugs)  # unchanged signatures
        return kept or any(uuid in found for found in hits.values())

    failed = [u for u, b in builds.items() if b.build.build_status != PASSING]  # as stats
    return Replay(
        since=since,
        builds=len(builds),
        changes=changes,
        newly_categorized=list(
            _ordered(
                builds,
                {
                    u
                    for u in failed
                    if categorized(u, hits_after) and not categorized(u, hits_before)
                },
            )
        ),
        newly_uncategorized=list(
            _ordered(
                builds,
                {
                    u
                    for u in failed
                    if categorized(u, hits_before) and not categorized(u, hits_after)
                },
            )
        ),
    )


def _hit_builds(
    store: Store,
    signature: Signature,
    builds: Mapping[str, StoredBuild],
    days: float,
    now: datetime | None,
) -> set[str]:
    """The builds of ``builds`` with an event ``signature`` matches, where it applies
    (non-voting builds only for ``allow-nonvoting``; ``test_ids`` are not checked: the
    store keeps no test results for this)."""
    rule = replace(signature, test_ids=())  # the query and the voting rule decide
    found: set[str] = set()
    for _, event in store.search(signature, days=days, now=now):
        uuid = event.get("build_uuid")
        known = isinstance(uuid, str) and uuid in builds and uuid not in found
        if known and applicable([rule], builds[str(uuid)].build)[0]:
            found.add(str(uuid))
    return found


def _ordered(builds: Mapping[str, StoredBuild], uuids: set[str]) -> tuple[StoredBuild, ...]:
    return tuple(sorted((builds[u] for u in uuids), key=_newest_first))


def _newest_first(stored: StoredBuild) -> tuple[float, str]:
    return (-stored.time.timestamp(), stored.uuid)
