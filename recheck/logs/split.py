"""Split a log file's lines into events, as OpenStack's logstash pipeline did.

The behaviour reimplemented is ``openstack-filters.conf`` (ci-log-processing), which
decided what an Elasticsearch event was for every signature elastic-recheck ran:

- The file's tags choose its format, first match wins: ``console``/``console.html``,
  ``oslofmt``, ``apachecombined``, ``apacheerror``, ``libvirt``, ``syslog``; any other
  file gives one event per line with the line as message.
- ``screen`` files drop lines starting ``+ `` (devstack's xtrace); console files drop
  the ``<pre>`` and ``</pre>`` lines of Jenkins' console.html.
- Console files: a line not starting ``<ISO timestamp> |`` continues the previous
  event. Jenkins' older ``<span class="timestamp"><b>HH:MM:SS.mmm</b> </span>`` prefix
  also starts an event (the reference had none for it; without one, such a console
  would be a single event).
- oslo.log files: a line not starting with a timestamp continues the previous event,
  and so does a line ``<timestamp> <pid> TRACE|ERROR``, the traceback lines of an
  exception. Two deliberate differences: an ERROR line without a pid begins an event
  (the reference meant to require the pid, but its timestamp pattern could give up a
  digit of the fraction of a second to it), and no line folds into a DEBUG event (the
  reference then dropped the error together with the DEBUG line it had folded into).
- The prefix fields (``loglevel``, ``module``, ``pid``, ``syslog_*``, ...) come from
  the event's first line; ``message`` is the text after the prefix followed by the
  continuation lines. When the first line does not have the format's prefix, the event
  keeps its whole text as message and gets the ``_grokparsefailure`` tag, as in logstash.
- Events whose loglevel is exactly ``DEBUG`` are dropped unless ``keep_debug``.

Memory stays bounded: an event keeps at most ``max_event_chars`` of text; the rest is
counted but not stored, and the event gets the ``_truncated`` tag.
"""

from __future__ import annotations

import functools
import mmap
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from recheck.models import Event

__all__ = [
    "MAX_EVENT_CHARS",
    "TRUNCATED_TAG",
    "dropped_line_test",
    "event_start_test",
    "file_format",
    "read_lines",
    "split_lines",
]

MAX_EVENT_CHARS = 1 << 20
"""Text kept per event (1 Mi characters): far above any real log record, far below RAM."""

TRUNCATED_TAG = "_truncated"
PARSE_FAILURE_TAG = "_grokparsefailure"

_READ_CHUNK = 1 << 16

# Grok's building blocks, translated. The timestamp's optional fraction matters: the
# oslo fold pattern relies on regex backtracking exactly as the Oniguruma original did.
_ISO_TS = (
    r"\d\d(?:\d\d)?-(?:0?[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]|[1-9])[T ]"
    r"(?:2[0-3]|[01]?\d):?[0-5]\d(?::?(?:[0-5]?\d|60)(?:[:.,]\d+)?)?"
    r"(?:Z|[+-](?:2[0-3]|[01]?\d)(?::?[0-5]\d))?"
)
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_TIME = r"(?:2[0-3]|[01]?\d):[0-5]\d(?::?(?:[0-5]?\d|60)(?:[:.,]\d+)?)(?!\d)"
_SYSLOG_TS = rf"{_MONTH} +(?:0[1-9]|[12]\d|3[01]|[1-9]) {_TIME}"
_NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
_LOGLEVEL = (
    r"[Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo|INFO|"
    r"[Ww]arn?(?:ing)?|WARN?(?:ING)?|[Ee]rr?(?:or)?|ERR?(?:OR)?|[Cc]rit?(?:ical)?|"
    r"CRIT?(?:ICAL)?|[Ff]atal|FATAL|[Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?"
)
_QS = r'"(?:[^"\\]|\\.)*"'

# Event boundaries are decided on ASCII only (\d is 0-9), so that ``event_start_test``
# can decide them on raw bytes exactly as ``split_lines`` does on decoded text.
_CONSOLE_START = re.compile(rf"{_ISO_TS} \|", re.ASCII)
_JENKINS_START = re.compile(
    r'<span class="timestamp"><b>\d\d:\d\d:\d\d(?:\.\d+)?</b> </span>', re.ASCII
)
_CONSOLE_PREFIX = re.compile(rf"(?:{_ISO_TS} \| |{_JENKINS_START.pattern})(?P<logmessage>.*)")

_OSLO_START = re.compile(rf"(?:{_ISO_TS}|{_SYSLOG_TS}) ", re.ASCII)
# Spaces required around the pid, where grok's %{SPACE} allowed none: a timestamp cannot
# then lend the last digit of its fraction as a pid to a line that has none.
_OSLO_FOLD = re.compile(rf"(?:{_ISO_TS}|{_SYSLOG_TS})\s+{_NUMBER}\s+(?:TRACE|ERROR)", re.ASCII)
_OSLO_LEVELS = r"(?P<loglevel>AUDIT|CRITICAL|DEBUG|INFO|TRACE|WARNING|ERROR) "
_OSLO_REST = r"\[?\b(?P<module>\S+)\b\]?\s*(?P<logmessage>.*)"
_OSLO_PREFIX = re.compile(
    rf"(?:{_ISO_TS}|{_SYSLOG_TS})\s*"
    rf"(?:(?P<syslog_program>.*?)(?:\[(?P<syslog_pid>[1-9]\d*)\])?:|(?P<pid>{_NUMBER}))?\s*"
    rf"{_OSLO_LEVELS}{_OSLO_REST}"
)
# The syslog_program branch of _OSLO_PREFIX can only match where a colon is followed by
# a level; on other lines (nearly all) the same pattern without it gives the same match,
# without trying that lazy branch at every character of the line.
_OSLO_PROGRAM_POSSIBLE = re.compile(r":\s*(?:AUDIT|CRITICAL|DEBUG|INFO|TRACE|WARNING|ERROR) ")
_OSLO_PID_PREFIX = re.compile(
    rf"(?:{_ISO_TS}|{_SYSLOG_TS})\s*(?:(?P<pid>{_NUMBER}))?\s*{_OSLO_LEVELS}{_OSLO_REST}"
)
# The same on raw bytes, for lines where bytes patterns decide as the str ones do: ASCII
# without \x1c-\x1f (which str patterns, not bytes ones, take for whitespace). Without
# the message: only the level is wanted (``dropped_line_test``).
_STR_ONLY_BYTES = re.compile(rb"[\x1c-\x1f\x80-\xff]")


@functools.cache
def _oslo_level_patterns() -> tuple[re.Pattern[bytes], re.Pattern[bytes], re.Pattern[bytes]]:
    """(program possible, prefix, pid prefix) as bytes patterns, without the message;
    compiled when first needed (~8 ms, of use only when scanning oslo files)."""
    return (
        re.compile(_OSLO_PROGRAM_POSSIBLE.pattern.encode()),
        re.compile(_OSLO_PREFIX.pattern.removesuffix(r"(?P<logmessage>.*)").encode()),
        re.compile(_OSLO_PID_PREFIX.pattern.removesuffix(r"(?P<logmessage>.*)").encode()),
    )


_SYSLOG_PREFIX = re.compile(
    rf"{_SYSLOG_TS}\s*(?P<syslog_host>[0-9A-Za-z][0-9A-Za-z.:-]*)?\s*"
    r"(?P<syslog_program>.*?)(?:\[(?P<syslog_pid>[1-9]\d*)\])?:? (?P<logmessage>.*)"
)
_APACHE_COMBINED = re.compile(
    r'\S+ \S+ \S+ \[[^\]]+\] "(?:(?P<verb>\w+) (?P<request>\S+)(?: HTTP/[\d.]+)?|.*?)" '
    rf"(?P<response>\d+) (?:\d+|-) {_QS} {_QS}"
)
_APACHE_ERROR = re.compile(
    r"\[\w+ \w+ +\d{1,2} [\d:.]+ \d{4}\s*(?:[A-Z]{3,5})?\]\s*"
    rf"\[(?P<loglevel>{_LOGLEVEL})\]\s*(?P<logmessage>.*)"
)
_LIBVIRT = re.compile(
    rf"{_ISO_TS}:\s*(?P<pid>{_NUMBER}):\s*(?P<loglevel>{_LOGLEVEL})\s*:\s*(?P<logmessage>.*)"
)

_FORMATS = ("console", "oslofmt", "apachecombined", "apacheerror", "libvirt", "syslog")
_LEVELLED_FORMATS = ("oslofmt", "apacheerror", "libvirt")
"""The formats whose prefix gives a loglevel (and so may drop DEBUG events)."""


def file_format(tags: Sequence[str]) -> str | None:
    """The format a file with these tags is split as, or None for one event per line."""
    if "console.html" in tags:
        return "console"
    return next((name for name in _FORMATS if name in tags), None)


Text = bytes | bytearray | mmap.mmap
"""Raw text the line tests read: a buffer, or a file mapped into memory."""

StartTest = Callable[[Text, int, int], bool]
"""``test(data, start, end)``: does the line ``data[start:end]`` surely begin an event?"""


def event_start_test(tags: Sequence[str]) -> StartTest:
    """A test telling, from a raw line alone, that ``split_lines`` begins an event there.

    "Surely" means whatever came before: an oslo ``<timestamp> <pid> ERROR`` line is not
    one (it may fold into the previous event), nor is a dropped ``+ `` line or a console
    line without a timestamp. Reading can resume at such a line with no state, which is
    what lets ``recheck.scan.scanner`` split only the few events around a hit.
    """
    fmt = file_format(tags)
    if fmt == "console":
        # One pattern, not two calls: this test runs for every hit of a scan.
        console = re.compile(f"{_CONSOLE_START.pattern}|{_JENKINS_START.pattern}".encode())

        def console_test(data: Text, start: int, end: int) -> bool:
            return console.match(data, start, end) is not None

        return console_test
    if fmt == "oslofmt":
        # One pattern, not two calls: this test runs for every hit of a scan.
        begins = re.compile(f"(?!{_OSLO_FOLD.pattern}){_OSLO_START.pattern}".encode())

        def oslo_test(data: Text, start: int, end: int) -> bool:
            return begins.match(data, start, end) is not None

        return oslo_test
    if "screen" in tags:

        def screen_test(data: Text, start: int, end: int) -> bool:
            return data[start : start + 2] != b"+ "

        return screen_test
    return _every_line


def _every_line(data: Text, start: int, end: int) -> bool:
    return True


def dropped_line_test(
    tags: Sequence[str], *, keep_debug: bool = False, max_event_chars: int = MAX_EVENT_CHARS
) -> StartTest | None:
    """A test telling, from a raw line alone, that ``split_lines`` keeps nothing of it.

    That is a dropped line (a screen file's ``+ `` lines) or, unless ``keep_debug``, the
    first line of a DEBUG event (a line that surely begins an event, whose prefix says
    DEBUG). In a devstack log most lines are DEBUG: ``recheck.scan.scanner`` passes over the
    hits on them without looking for their events. None when nothing is dropped.
    """
    fmt = file_format(tags)
    xtrace = "screen" in tags
    debug = not keep_debug and fmt in _LEVELLED_FORMATS
    if not debug and not xtrace:
        return None
    starts = event_start_test(tags)
    # read_lines keeps at most this many bytes of a line: the prefix is read from them.
    limit = 4 * max_event_chars + 4

    def dropped(data: Text, start: int, end: int) -> bool:
        if xtrace and data[start : start + 2] == b"+ ":
            return True
        # A loglevel of DEBUG needs those letters in the line: most lines lack them.
        if not debug or data.find(b"DEBUG", start, end) == -1 or not starts(data, start, end):
            return False
        stop = min(end, start + limit)
        if stop > start and data[stop - 1 : stop] == b"\r":
            stop -= 1
        if fmt == "oslofmt" and _STR_ONLY_BYTES.search(data, start, stop) is None:
            # In place, no copy: an ASCII line's characters are its bytes.
            return _oslo_level(data, start, min(stop, start + max_event_chars)) == b"DEBUG"
        line = bytes(data[start:stop]).decode("utf-8", errors="replace")[:max_event_chars]
        fields = _parse(line, fmt)
        return fields is not None and fields.get("loglevel") == "DEBUG"

    return dropped


def read_lines(stream: BinaryIO, max_line_chars: int = MAX_EVENT_CHARS) -> Iterator[str]:
    """Decode a binary stream into lines without their line ending, in bounded memory.

    Invalid UTF-8 becomes U+FFFD. A line longer than ``4 * max_line_chars`` bytes is cut
    there and the rest skipped, so a 100 MB line never sits in memory; what is kept still
    decodes to more than ``max_line_chars`` characters, so ``split_lines`` sees it is too
    long and marks the event truncated.
    """
    limit = 4 * max_line_chars + 4
    while True:
        chunk = stream.readline(min(limit, _READ_CHUNK))
        if not chunk:
            return
        if not chunk.endswith(b"\n"):
            parts = [chunk]
            size = len(chunk)
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(_READ_CHUNK)
                if size < limit:
                    parts.append(chunk[: limit - size])
                    size += len(parts[-1])
            chunk = b"".join(parts)
        yield chunk.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")


@dataclass
class _Pending:
    """An event being assembled: its first line, parsed, and the lines that continue it."""

    line: int
    first: str
    fields: dict[str, str] | None
    rest: list[str] = field(default_factory=list)
    size: int = 0
    truncated: bool = False

    def add(self, text: str, limit: int) -> None:
        room = limit - self.size
        if room <= 0:
            self.truncated = True
            return
        if len(text) + 1 > room:
            text = text[: max(room - 1, 0)]
            self.truncated = True
        self.rest.append(text)
        self.size += len(text) + 1


def split_lines(
    lines: Iterable[str],
    tags: Sequence[str],
    *,
    keep_debug: bool = False,
    max_event_chars: int = MAX_EVENT_CHARS,
) -> Iterator[tuple[int, Event]]:
    """Turn a file's lines into ``(first line number, event)`` pairs, lazily.

    Each event has ``message`` and ``tags`` (a copy of ``tags``, plus
    ``_grokparsefailure`` or ``_truncated`` when they apply) and the fields its format's
    prefix gives; the caller adds ``filename`` and the build fields.
    """
    fmt = file_format(tags)
    drop_xtrace = "screen" in tags
    pending: _Pending | None = None
    for number, line in enumerate(lines, start=1):
        if drop_xtrace and line.startswith("+ "):
            continue
        if fmt == "console":
            if line in ("<pre>", "</pre>"):
                continue
            starts = bool(_CONSOLE_START.match(line) or _JENKINS_START.match(line))
        elif fmt == "oslofmt":
            starts = _OSLO_START.match(line) is not None
            if starts and pending is not None and _OSLO_FOLD.match(line):
                level = pending.fields.get("loglevel") if pending.fields else None
                starts = level == "DEBUG"
        else:
            starts = True
        if not starts and pending is not None:
            pending.add(line, max_event_chars)
            continue
        if pending is not None:
            event = _finish(pending, tags, keep_debug)
            if event is not None:
                yield pending.line, event
        pending = _start(number, line, fmt, max_event_chars)
    if pending is not None:
        event = _finish(pending, tags, keep_debug)
        if event is not None:
            yield pending.line, event


def _oslo_level(data: Text, start: int, end: int) -> bytes | None:
    """The loglevel ``_parse`` gives the oslo line ``data[start:end]``, an ASCII line
    (see above). Matched in place: a line begins after a line break, so ``\\b`` at
    ``start`` sees what it would at the start of the line alone."""
    program_possible, pattern, pid_pattern = _oslo_level_patterns()
    if program_possible.search(data, start, end) is None:
        pattern = pid_pattern
    match = pattern.match(data, start, end)
    return None if match is None else match.group("loglevel")


def _start(number: int, line: str, fmt: str | None, limit: int) -> _Pending:
    truncated = len(line) > limit
    if truncated:
        line = line[:limit]
    pending = _Pending(number, line, _parse(line, fmt), size=len(line), truncated=truncated)
    return pending


def _parse(line: str, fmt: str | None) -> dict[str, str] | None:
    """The prefix fields of an event's first line (with ``logmessage``), None if no match."""
    if fmt is None:
        return {"logmessage": line}
    pattern = {
        "console": _CONSOLE_PREFIX,
        "oslofmt": _OSLO_PREFIX,
        "apacheerror": _APACHE_ERROR,
        "libvirt": _LIBVIRT,
        "syslog": _SYSLOG_PREFIX,
    }.get(fmt)
    if pattern is None:  # apachecombined: message is "verb request response"
        match = _APACHE_COMBINED.match(line)
        if match is None:
            return None
        fields = {name: value for name, value in match.groupdict().items() if value}
        fields["logmessage"] = " ".join(
            fields[name] for name in ("verb", "request", "response") if name in fields
        )
        return fields
    match = _oslo_match(line) if pattern is _OSLO_PREFIX else pattern.match(line)
    if match is None:
        return None
    return {name: value for name, value in match.groupdict().items() if value is not None}


def _oslo_match(line: str) -> re.Match[str] | None:
    """The oslo prefix of ``line`` (``_parse``'s match for oslofmt)."""
    if _OSLO_PROGRAM_POSSIBLE.search(line) is None:
        return _OSLO_PID_PREFIX.match(line)
    return _OSLO_PREFIX.match(line)


def _finish(pending: _Pending, tags: Sequence[str], keep_debug: bool) -> Event | None:
    fields = pending.fields
    if fields is not None and fields.get("loglevel") == "DEBUG" and not keep_debug:
        return None
    event_tags = list(tags)
    if fields is None:
        message = pending.first
        event_tags.append(PARSE_FAILURE_TAG)
        event: Event = {}
    else:
        message = fields.pop("logmessage", "")
        event = dict(fields)
    if pending.rest:
        message = "\n".join([message, *pending.rest])
    if pending.truncated:
        event_tags.append(TRUNCATED_TAG)
    event["message"] = message
    event["tags"] = event_tags
    return event
