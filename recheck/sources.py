"""From what the user typed to a log source: a path, a log URL, or a Zuul build URL."""

from __future__ import annotations

from pathlib import Path

from recheck.localdir import local_source
from recheck.source import LogSource, SourceError

__all__ = ["open_source"]


def open_source(text: str) -> LogSource:
    """The log source ``text`` names; raises SourceError saying why it is unusable."""
    if "://" in text:
        raise SourceError(f"{text}: fetching logs over HTTP is not supported yet")
    return local_source(Path(text))
