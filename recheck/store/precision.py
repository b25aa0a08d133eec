"""How good each signature is, from the stored history: what ``recheck stats`` reports.

A signature is measured by the builds it hit: failed ones (what it is for) and passing
ones (the bot scans a sample of them, ``bot.success_sample``, and ``recheck ingest
--build-status SUCCESS`` records them too), where every hit is a false alarm. Flags say
what needs a triager: ``too_broad`` (hits on passing builds), ``stale`` (no hit in the
window, or its bug is fixed) and ``overlapping`` (another signature matches the same
events, so one of them is redundant or both are too broad). Pure functions over the
store's matches (``Store.matches_between``) and what the bug tracker knows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recheck.models import BugInfo
from recheck.query.signatures import Signature
from recheck.store.base import StoredMatch

__all__ = ["FIXED_STATUSES", "FLAGS", "PASSING", "SignatureStats", "signature_stats"]

PASSING = "SUCCESS"
"""The build status of a passing build; every other status (or none) counts as failed."""
FIXED_STATUSES = frozenset({"Fix Committed", "Fix Released"})
"""Bug tracker statuses (Launchpad's words) that mean the bug is fixed."""
FLAGS = ("too_broad", "stale", "overlapping")
"""The flags ``SignatureStats.flags`` may hold, in the order they are reported."""


@dataclass(frozen=True)
class SignatureStats:
    """One signature's record over a window of stored builds."""

    bug: str
    failure_builds: int
    """Builds with a hit that did not pass (failed, timed out... or of unknown status)."""
    success_builds: int
    """Passing builds with a hit: each one a false alarm."""
    last_hit: datetime | None
    """The time of the newest stored build it hit, inside the window or before it."""
    jobs: dict[str, int] = field(default_factory=dict)
    """Job name -> builds hit in the window, most first."""
    flags: dict[str, str] = field(default_factory=dict)
    """Flag (``FLAGS``) -> why, in words."""

    @property
    def precision(self) -> float | None:
        """Share of the builds hit that failed; None when it hit none."""
        total = self.failure_builds + self.success_builds
        return None if total == 0 else round(self.failure_builds / total, 4)

    def to_json(self) -> dict[str, Any]:
        """``{"bug", "failure_builds", "success_builds", "precision", "last_hit", "jobs",
        "flags"}``; ``last_hit`` is ISO 8601 UTC or null."""
        return {
            "bug": self.bug,
            "failure_builds": self.failure_builds,
            "success_builds": self.success_builds,
            "precision": self.precision,
            "last_hit": None if self.last_hit is None else self.last_hit.isoformat(),
            "jobs": dict(self.jobs),
            "flags": dict(self.flags),
        }


def signature_stats(
    signatures: Sequence[Signature],
    matches: Iterable[StoredMatch],
    since: datetime,
    *,
    days: float,
    bugs: Mapping[str, BugInfo | None] | None = None,
) -> list[SignatureStats]:
    """Each signature's stats over the builds of ``since`` or later, in signature order.

    ``matches`` are the stored matches (all bugs; those before ``since`` only give
    ``last_hit``); ``days`` is the window's length, for the stale flag's words; ``bugs``
    is what the tracker knows of each bug (a fixed bug is stale).
    """
    wanted = {signature.bug for signature in signatures}
    last: dict[str, datetime] = {}
    builds: dict[str, dict[str, tuple[bool, str]]] = defaultdict(dict)  # bug -> uuid -> ...
    events: dict[tuple[str, str, int], set[str]] = defaultdict(set)  # event -> bugs
    for match in matches:
        if match.bug not in wanted:
            continue
        stored = match.build
        if match.bug not in last or stored.time > last[match.bug]:
            last[match.bug] = stored.time
        if stored.time < since:
            continue
        passed = stored.build.build_status == PASSING
        builds[match.bug][stored.uuid] = (passed, stored.build.build_name or "(unknown job)")
        events[(stored.uuid, match.filename, match.line)].add(match.bug)
    shared: dict[str, Counter[str]] = defaultdict(Counter)  # bug -> other bug -> events
    for together in events.values():
        for bug in together:
            shared[bug].update(other for other in together if other != bug)

    found = []
    for signature in signatures:
        hit = builds.get(signature.bug, {})
        passing = sum(passed for passed, _ in hit.values())
        jobs = Counter(job for _, job in hit.values())
        flags: dict[str, str] = {}
        if passing:
            flags["too_broad"] = f"hits {_builds(passing)} that passed"
        fixed = _fixed(signature, (bugs or {}).get(signature.bug))
        if fixed:
            flags["stale"] = fixed
        elif not hit:
            flags["stale"] = f"no hit in {days:g} days"
        if shared[signature.bug]:
            others = sorted(shared[signature.bug].items(), key=lambda item: (-item[1], item[0]))
            flags["overlapping"] = "matches the same events as " + ", ".join(
                f"{other} ({count} event{'s' if count != 1 else ''})" for other, count in others
            )
        found.append(
            SignatureStats(
                bug=signature.bug,
                failure_builds=len(hit) - passing,
                success_builds=passing,
                last_hit=last.get(signature.bug),
                jobs=dict(sorted(jobs.items(), key=lambda item: (-item[1], item[0]))),
                flags=flags,
            )
        )
    return found


def _fixed(signature: Signature, info: BugInfo | None) -> str | None:
    """Why the signature's bug counts as fixed, or None."""
    if info is not None and info.status in FIXED_STATUSES:
        return f"bug {signature.bug} is {info.status}"
    if signature.resolved_at is not None:
        return f"bug {signature.bug} was resolved at {signature.resolved_at}"
    return None


def _builds(count: int) -> str:
    return f"{count} build" if count == 1 else f"{count} builds"
