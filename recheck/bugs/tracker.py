"""Bug data: a bug's URL and, when the tracker can tell, its title, status and projects.

A **BugTracker** turns a signature's bug id (``queries/<bug>.yaml``) into a URL, and may
look the bug up. Lookups never raise and never block for long: a private, missing or
unreachable bug gives None, and callers fall back to the bare id and URL. Launchpad is
the default tracker (``recheck.bugs.launchpad``); other trackers fit behind the same
two methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["DEFAULT_BUG_URL", "BugInfo", "BugTracker", "UrlOnlyTracker"]

DEFAULT_BUG_URL = "https://bugs.launchpad.net/bugs/{bug}"
"""Where a bug id points unless bot.yaml says otherwise (elastic-recheck's default)."""


@dataclass(frozen=True)
class BugInfo:
    """What a tracker knows of a bug."""

    bug: str
    title: str
    status: str = ""
    """E.g. ``Confirmed``, ``Fix Released``; the tracker's own words."""
    projects: tuple[str, ...] = ()
    """Projects the bug affects (Launchpad targets), for routing IRC messages."""


class BugTracker(Protocol):
    """Turns bug ids into URLs and, when it can, into ``BugInfo``."""

    def url(self, bug: str) -> str:
        """The bug's web page."""
        ...

    def lookup(self, bug: str) -> BugInfo | None:
        """The bug's data, or None when unknown, private or the tracker is unreachable."""
        ...


@dataclass(frozen=True)
class UrlOnlyTracker:
    """A tracker that only builds URLs from a template with ``{bug}``; looks nothing up."""

    template: str = DEFAULT_BUG_URL

    def url(self, bug: str) -> str:
        """The template with the bug id filled in."""
        return self.template.format(bug=bug)

    def lookup(self, bug: str) -> BugInfo | None:
        """Nothing is known beyond the URL."""
        return None
