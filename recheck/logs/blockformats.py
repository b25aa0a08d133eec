"""One regex pass per block for the common formats: ``split_lines``'s events, faster.

``blocksplit`` cuts a file into blocks; for console, oslo.log and syslog files this
module splits a block with one ``finditer`` whose every match is a line that begins an
event, and whose groups are already the first line's prefix fields, so that a line
costs one regex match and a few Python operations, and a dropped DEBUG event nothing
more. Each event's message is then one slice of the block (the rest of its first line
and its continuation lines).

The patterns are ``split``'s own, made line-local (``\\s`` cannot cross a line break)
and combined; ``\\n`` begins each match, so the text searched is the block with a line
break before it. Where a combined pattern is not provably ``split``'s decision (an
oslo line not in the canonical ``<date> <time>.<fraction> <pid> <LEVEL> `` shape, or
one a syslog-style program could match), the line is decided by ``split``'s own
patterns. ``tests/logs/test_blocksplit.py`` checks the events against ``split_lines``.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Callable
from typing import NamedTuple

from recheck.logs.split import (
    _CONSOLE_PREFIX,
    _CONSOLE_START,
    _JENKINS_START,
    _OSLO_FOLD,
    _OSLO_LEVELS,
    _OSLO_PROGRAM_POSSIBLE,
    _OSLO_REST,
    _OSLO_START,
    _SYSLOG_PREFIX,
    _oslo_match,
)
from recheck.models import Event

__all__ = ["FAST_FORMATS", "Block"]

Split = list[tuple[int, Event]]


class Block(NamedTuple):
    """A block to split, as ``blocksplit.BlockSplitter`` gives it."""

    text: str
    """The block's lines, each after a line break (the lines ``split_lines`` drops cut
    out); the last without one."""
    first_line: int
    """The number of its first line."""
    dropped: list[int]
    """Where lines were cut out: the position of the line break before the line after
    each (to number the lines after it)."""
    tags: list[str]
    failed_tags: list[str]
    """The tags of an event whose first line does not have the format's prefix."""
    keep_debug: bool
    limit: int
    """``max_event_chars``: the block is not split here if an event is longer."""


def _line_local(pattern: str) -> str:
    """``pattern`` (one matched on a line alone) unable to cross a line break, without
    its final ``(?P<logmessage>.*)`` (the message is sliced from where it begins)."""
    assert "[^" not in pattern and "[\\s" not in pattern, pattern  # would cross a line
    return pattern.removesuffix("(?P<logmessage>.*)").replace(r"\s", r"[^\S\n]")


# The canonical oslo line: for it, split's patterns decide as follows (so it is decided
# without them). The timestamp is one _ISO_TS matches whole on its first path (each
# alternative that fits a field of it takes all its digits; no time zone can follow),
# followed by one space; so _OSLO_START matches. _OSLO_PID_PREFIX's level can only be at LEVEL
# (nothing before it but digits and punctuation), so its groups are these, the module
# part deciding alone whether it matches; _OSLO_FOLD matches exactly when LEVEL is TRACE
# or ERROR. Lines where a syslog program could match (_OSLO_PROGRAM_POSSIBLE) use
# _OSLO_PREFIX instead: they are found first and decided by split's patterns.
_CANONICAL_TS = (
    r"\d\d\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) "
    r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d+"
)


@functools.cache
def _patterns() -> dict[str, re.Pattern[str]]:
    """Compiled when first needed (only splitting needs them)."""
    oslo_rest = _line_local(_OSLO_REST)
    console_prefix = _line_local(_CONSOLE_PREFIX.pattern)
    console_start = f"{_CONSOLE_START.pattern}|{_JENKINS_START.pattern}"
    return {
        # One match per line beginning an event: canonical (groups set), or any other
        # (groups None, decided by split's patterns).
        "oslo": re.compile(
            rf"\n(?:(?a:{_CANONICAL_TS} (\d+) ){_OSLO_LEVELS}(?:{oslo_rest})?"
            rf"|(?=(?a:{_OSLO_START.pattern})))"
        ),
        "oslo_program": re.compile(_line_local(_OSLO_PROGRAM_POSSIBLE.pattern)),
        # One match per line beginning an event; it ends where the message begins. A
        # canonical timestamp followed by " | " is the one _CONSOLE_START and
        # _CONSOLE_PREFIX match (its first path); any other line is decided by them.
        "console": re.compile(
            rf"\n(?:(?a:{_CANONICAL_TS}) \| |(?=(?a:{console_start}))(?:{console_prefix})?)"
        ),
        "console_first": re.compile(rf"\n(?:{console_prefix})?"),
        # Every line begins an event.
        "syslog": re.compile(rf"\n(?:{_line_local(_SYSLOG_PREFIX.pattern)})?"),
    }


def _console(block: Block) -> Split | None:
    text, first_line, dropped, tags, failed_tags, _, limit = block  # no levels
    patterns = _patterns()
    found = patterns["console_first"].match(text)
    assert found is not None  # everything in it is optional
    out: Split = []
    append = out.append
    count = text.count
    line = first_line
    counted = 1
    begin = 0  # the line break before the pending event
    message = found.end()  # where its message begins: after the prefix, or the line's start
    size = len(text)
    for found in patterns["console"].finditer(text, 1):
        end = found.start()
        if end - begin > limit + 1:
            return None
        line += count("\n", counted, begin + 1)
        counted = begin + 1
        event: Event = {
            "message": text[message:end],
            "tags": tags.copy() if message > begin + 1 else failed_tags.copy(),
        }
        append((line + bisect_right(dropped, begin) if dropped else line, event))
        begin = end
        message = found.end()
    if size - begin > limit + 1:
        return None
    line += count("\n", counted, begin + 1)
    event = {
        "message": text[message:],
        "tags": tags.copy() if message > begin + 1 else failed_tags.copy(),
    }
    append((line + bisect_right(dropped, begin) if dropped else line, event))
    return out


def _syslog(block: Block) -> Split | None:
    text, first_line, dropped, tags, failed_tags, _, limit = block  # no levels
    out: Split = []
    append = out.append
    line = first_line
    matches = _patterns()["syslog"].finditer(text)
    found = next(matches)  # the first line's
    for after in (*matches, None):
        begin = found.start()
        end = len(text) if after is None else after.start()
        if end - begin > limit + 1:
            return None
        host, program, pid = found.group("syslog_host", "syslog_program", "syslog_pid")
        event: Event
        if program is None:  # no prefix: the whole line, marked
            event = {"message": text[begin + 1 : end], "tags": failed_tags.copy()}
        else:
            event = {}
            if host is not None:
                event["syslog_host"] = host
            event["syslog_program"] = program
            if pid is not None:
                event["syslog_pid"] = pid
            event["message"] = text[found.end() : end]
            event["tags"] = tags.copy()
        append((line + bisect_right(dropped, begin) if dropped else line, event))
        line += 1
        if after is not None:
            found = after
    return out


_DEBUG = "DEBUG"
_FOLDS = ("TRACE", "ERROR")


def _oslo(block: Block) -> Split | None:
    text, first_line, dropped, tags, failed_tags, keep_debug, limit = block
    patterns = _patterns()
    size = len(text)
    # Lines where a syslog program could match: decided by split's patterns (rare).
    programs = {
        text.rfind("\n", 0, found.start()) for found in patterns["oslo_program"].finditer(text)
    }
    out: Split = []
    append = out.append
    count = text.count
    line = first_line
    counted = 1
    debug = _DEBUG
    folds = _FOLDS
    # The pending event: the line break before it, its level, and its first line (a
    # canonical match, or where its message begins and its prefix fields, if any).
    begin = 0
    level, pending = _exact(text, 0)
    for found in patterns["oslo"].finditer(text, 1):
        end = found.start()
        new_level = found[2]
        new: _Pending
        if new_level is None or end in programs:  # not canonical: split's patterns decide
            if level != debug:
                stop = text.find("\n", end + 1)
                if _OSLO_FOLD.match(text, end + 1, size if stop == -1 else stop):
                    continue  # a traceback line: part of the pending event
            new_level, new = _exact(text, end)
        else:
            if level != debug and new_level in folds:
                continue  # a traceback line
            if found[3] is None:  # no module: the prefix does not match after all
                new_level = None
                new = (end + 1, None)
            else:
                new = found
        if end - begin > limit + 1:
            return None
        if level != debug or keep_debug:
            line += count("\n", counted, begin + 1)
            counted = begin + 1
            event = _oslo_event(text, pending, end, tags, failed_tags)
            append((line + bisect_right(dropped, begin) if dropped else line, event))
        begin = end
        level = new_level
        pending = new
    if size - begin > limit + 1:
        return None
    if level != debug or keep_debug:
        line += count("\n", counted, begin + 1)
        event = _oslo_event(text, pending, size, tags, failed_tags)
        append((line + bisect_right(dropped, begin) if dropped else line, event))
    return out


_Pending = re.Match[str] | tuple[int, dict[str, str] | None]
"""An event's first line: its canonical match (groups pid, loglevel, module; the message
begins where it ends), or where its message begins and its prefix fields (None: no
prefix)."""


def _exact(text: str, begin: int) -> tuple[str | None, _Pending]:
    """The level and first line of the event whose first line follows the line break at
    ``begin``, as ``split``'s own patterns parse it."""
    stop = text.find("\n", begin + 1)
    first = text[begin + 1 : len(text) if stop == -1 else stop]
    found = _oslo_match(first)
    if found is None:
        return None, (begin + 1, None)
    fields = {name: value for name, value in found.groupdict().items() if value is not None}
    del fields["logmessage"]
    return fields["loglevel"], (begin + 1 + found.start("logmessage"), fields)


def _oslo_event(
    text: str, first: _Pending, end: int, tags: list[str], failed_tags: list[str]
) -> Event:
    """The event whose first line is ``first``, ending at ``end``."""
    if not isinstance(first, tuple):
        return {
            "pid": first[1],
            "loglevel": first[2],
            "module": first[3],
            "message": text[first.end() : end],
            "tags": tags.copy(),
        }
    message, fields = first
    if fields is None:
        return {"message": text[message:end], "tags": failed_tags.copy()}
    event: Event = dict(fields)
    event["message"] = text[message:end]
    event["tags"] = tags.copy()
    return event


FAST_FORMATS: dict[str, Callable[[Block], Split | None]] = {
    "console": _console,
    "oslofmt": _oslo,
    "syslog": _syslog,
}
"""The formats split here, and how: each gives the block's events, or None if one is
longer than ``limit`` (``split_lines`` then decides)."""
