"""A failed build's most telling error line, for the uncategorized page: what a triager
reads to sort failures without opening the logs.

The store finds candidates among the build's stored events (its ``classify``, with two
queries of its own: events logged at ERROR or CRITICAL, and lines holding an error word);
``telling`` chooses among them. A job's console (``job-output.txt``, ``console.html``)
ends with what broke it, so its last burst of error lines is where the answer is: the
first error line among those within ``NEAR_END`` lines of its last one, a traceback's
exception rather than its ``Traceback (most recent call last):`` header. A build without
error lines in its console gets the first error line of its other files.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from recheck.models import Match
from recheck.pipeline import Classification
from recheck.query import compile_query
from recheck.query.signatures import Signature
from recheck.store.base import Store, StoredBuild, StoreError
from recheck.web.pages import MatchLine, web_url

__all__ = ["NEAR_END", "Candidate", "error_line", "telling"]

NEAR_END = 200
"""Console lines before the last error line that still count as the job's end."""
_TRACEBACK_SPAN = 60
"""Lines a Python traceback's header may stand before its exception line."""
_SHOWN_CHARS = 400
"""A line is cut here: the page is a list, the link leads to the rest."""

_REMEMBERED = 50_000
"""Builds whose telling line is remembered (the least recently asked are forgotten)."""
_KNOWN: OrderedDict[tuple[str, str, datetime, bool], MatchLine | None] = OrderedDict()
_LOCK = threading.Lock()

_LEVEL = "error-level"
_WORDS = "error-words"


def _signature(bug: str, query: str) -> Signature:
    return Signature(bug, query, Path(f"<{bug}>"), compile_query(query), allow_nonvoting=True)


_QUERIES = (
    _signature(_LEVEL, "loglevel:(ERROR OR CRITICAL)"),
    # Tokens as the analyzer makes them (lower case, punctuation gone); the regular
    # expressions below decide which of these lines are errors.
    _signature(
        _WORDS, "message:(traceback OR fail OR failed OR fatal OR error OR *error OR *exception)"
    ),
)

_CONSOLE = re.compile(r"(?:^|/)(?:job-output\.txt|console\.html)(?:\.gz)?$")
_HEADER = re.compile(r"Traceback \(most recent call last\)")
_ERROR_TEXT = re.compile(
    r"Traceback \(most recent call last\)"
    r"|\bFAILED!"  # ansible: fatal: [host]: FAILED! => {...}
    r"|^\s*(?:FAIL|FAILED|ERROR)\b:?"  # testtools FAIL: test, tox ERROR: InvocationError
    r"|\.\.\. (?:FAIL|FAILED|ERROR)\s*$"  # a test runner's "test_x ... FAIL"
    r"|\[ERROR\]|\bfatal:"  # devstack's [ERROR], ansible's fatal:
    r"|\b[A-Z]\w*(?:Error|Exception|Failure)\b:"  # a Python exception line
    r"|\berror: "  # greenlet.error: ..., as a traceback's last line shows it
)


@dataclass(frozen=True)
class Candidate:
    """An event that may be the telling line: where it is, its text, its log level."""

    filename: str
    line: int
    message: str
    error_level: bool


def telling(candidates: Iterable[Candidate]) -> Candidate | None:
    """The most telling of a build's ``candidates`` (see the module docstring)."""
    errors = sorted(
        {
            (c.filename, c.line): c
            for c in candidates
            if c.error_level or _ERROR_TEXT.search(_first_line(c.message))
        }.values(),
        key=lambda c: (c.filename, c.line),
    )
    console = [c for c in errors if _CONSOLE.search(c.filename)]
    if console:
        last = max(c.line for c in console)
        errors = [c for c in console if c.line >= last - NEAR_END]
    for index, candidate in enumerate(errors):
        after = errors[index + 1 : index + 2]
        header = _HEADER.search(_first_line(candidate.message)) is not None
        if not (
            header
            and after
            and after[0].filename == candidate.filename
            and after[0].line - candidate.line <= _TRACEBACK_SPAN
        ):
            return candidate
    return None


def error_line(store: Store, stored: StoredBuild) -> MatchLine | None:
    """The telling line of ``stored`` among its events in ``store``, linked to the log;
    None when it has none (or its events are no longer kept, or the store fails).

    Remembered per build and ingest (``_KNOWN``): ``recheck serve`` makes a new snapshot
    every minute, and a build's events only change when it is ingested again.
    """
    key = (store.path, stored.uuid, stored.ingested_at, stored.events_kept)
    with _LOCK:
        if key in _KNOWN:
            _KNOWN.move_to_end(key)
            return _KNOWN[key]
    found = _search(store, stored)
    with _LOCK:
        _KNOWN[key] = found
        while len(_KNOWN) > _REMEMBERED:
            _KNOWN.popitem(last=False)
    return found


def _search(store: Store, stored: StoredBuild) -> MatchLine | None:
    try:
        found = store.classify(stored.build, _QUERIES)
    except StoreError:
        return None
    chosen = telling(
        Candidate(m.filename, m.line, m.message, m.bug == _LEVEL) for m in found.matches
    )
    if chosen is None:
        return None
    message = _first_line(chosen.message)[:_SHOWN_CHARS]
    link = Classification(stored.build).link(Match("", chosen.filename, chosen.line, message))
    return MatchLine(chosen.filename, chosen.line, message, web_url(link))


def _first_line(message: str) -> str:
    return message.strip().split("\n", 1)[0].strip()
