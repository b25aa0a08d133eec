"""Novel lines into ranked anomalies: grouped into events, scored, the best first.

Lines no baseline has that sit together (a traceback, an error and its details) are one
event; its representative is its highest scoring line, the one shown and drafted into a
query. The score adds up, in this order of weight: the line's level (fatal, error, an
exception's name, failed, a traceback, timeouts and refusals, warning), a traceback in
the event, nearness to the end of its file (where a job's console shows its failure),
less for a line repeated many times in the build, and much less for one the stored
history shows in successful builds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from recheck.logs.split import StartTest, event_start_test, file_format, split_lines
from recheck.scan.anomaly.normalize import normalize
from recheck.scan.anomaly.reading import FileNovelty

__all__ = ["DEFAULT_TOP", "Anomaly", "message_of", "rank"]

DEFAULT_TOP = 20
"""Anomalies reported unless told otherwise."""
GROUP_GAP = 2
"""Novel lines at most this many lines apart are one event."""
MAX_GROUP_LINES = 40
"""An event of more novel lines is cut into several (a whole new section of output)."""

_LEVELS: tuple[tuple[re.Pattern[str], float], ...] = (
    (
        re.compile(
            r"\b(?:CRITICAL|FATAL|EMERG|ALERT|PANIC|[Kk]ernel panic|Oops)\b|\bpanic: |"
            r"\bfatal: \[|\bSegmentation fault\b|\bcore dumped\b"
        ),
        3.0,
    ),
    (re.compile(r"\b(?:ERROR|ERR|Error|error|errors)\b"), 2.5),
    (re.compile(r"(?:Error|Exception|Failure|Fault)(?::|$)"), 2.4),
    (re.compile(r"\b(?:FAIL|FAILED|FAILURE|[Ff]ail(?:s|ed|ure|ing)?)\b"), 2.0),
    (re.compile(r"Traceback \(most recent call last\)"), 1.8),
    (
        re.compile(
            r"(?i)\b(?:timed?[ -]?out|refused|denied|killed|segfault|out of memory|oom|"
            r"abort(?:ed|ing)?|cannot|can't|unable|not found|no such|unreachable|"
            r"invalid|fatal|exit(?:ed)?(?: with)?(?: code| status)? [1-9]\d*)\b"
        ),
        1.5,
    ),
    (re.compile(r"\b(?:WARN|WARNING|[Ww]arning)\b"), 1.0),
)
_PLAIN = 0.3
_CANDIDATE = re.compile(
    r"(?i)err|fail|fatal|crit|exception|traceback|panic|warn|time|refused|denied|kill|"
    r"segmentation|core dumped|memory|oom|abort|cannot|can't|unable|not found|no such|"
    r"unreachable|invalid|exit|emerg|alert|oops|fault"
)
"""A word one of the level patterns needs: a line without any is plain."""
_SCORED_CHARS = 1000
"""Of a long line, its start says what it is."""
_HEADER = "Traceback (most recent call last)"
_HEADER_SCORE = 1.2
_VERDICT = re.compile(
    r"Finished: (?:FAILURE|UNSTABLE|ABORTED)|marked build as failure|"
    r"\bFAILED \((?:failures|errors)=|ERROR: InvocationError|: commands failed|"
    r"\bRESULT_(?:FAILURE|TIMED_OUT)\b|Build (?:failed|FAILED)\b|\bjob (?:failed|FAILED)\b|"
    r"^\S*\s*\S*\s*\|?\s*(?:[=*-]{3,}\s*)?(?:ERROR|FAILURE|FAILED)\s*(?:[=*-]{3,})?\s*$|"
    r"={3,} [^=]*\b(?:failed|errors?)\b[^=]* in [\d.]+m?s\b|"  # pytest's last line
    r"make(?:\[\d+\])?: \*\*\* .*Error \d+|FAILED - RETRYING|"
    r"\bfailed=[1-9]\d*|\bunreachable=[1-9]\d*"  # ansible's recap
)
"""A job's verdict or a summary of it: that something failed, never what."""
_VERDICT_SCORE = 1.0
_FRAME = re.compile(r'\bFile "[^"]*", line \d+')
_HEAD_SCORE = 2.4
"""An oslo.log event's first line at least this bad (ERROR, CRITICAL) represents it."""
TRACEBACK_END_BONUS = 1.0
"""Added to the line ending a traceback (``ValueError: ...``): the error itself."""
_DEBUG = re.compile(r"\b(?:DEBUG|Debug|debug)\b")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\bFile \"[^\"]*\", line \d+")
_CODE_LINE = re.compile(r"^\s+(?:File \"|\S)")
_LETTERS = re.compile(rb"[g-zG-Z].*[g-zG-Z]")


@dataclass
class Anomaly:
    """One event of the failed build that no baseline has."""

    filename: str
    line: int
    """Line number of the representative line (1-based)."""
    text: str
    """The representative line, as written."""
    score: float
    tags: list[str]
    key: str
    """The representative line's message, normalized: what clusters group by."""
    context: list[tuple[int, str]] = field(default_factory=list)
    """The event's novel lines (at most MAX_GROUP_LINES)."""

    def to_json(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "line": self.line,
            "text": self.text,
            "score": round(self.score, 3),
        }


def line_score(text: str) -> float:
    """How much a line by itself looks like a failure (0.1 to 3)."""
    head = text[:80]
    if _DEBUG.search(head) and not re.search(r"\b(?:ERROR|CRITICAL)\b", head):
        return 0.1
    text = text[:_SCORED_CHARS]
    if not _CANDIDATE.search(text):
        return _PLAIN  # most lines: one scan instead of one per pattern
    if _HEADER in text:
        return _HEADER_SCORE  # what went wrong is at the traceback's end
    if _VERDICT.search(text):
        return _VERDICT_SCORE  # says that the job failed, not why
    for pattern, weight in _LEVELS:
        if pattern.search(text):
            # An indented line inside a traceback names code, not what went wrong.
            return weight * 0.5 if text.startswith('  File "') else weight
    return _PLAIN


def message_of(text: str, tags: Sequence[str]) -> str:
    """The message a log line's event would have: its text after the format's prefix."""
    for _, event in split_lines([text], tags, keep_debug=True):
        message = event.get("message")
        if isinstance(message, str) and message.strip():
            return message
    return text


def _groups(novelty: FileNovelty, ends: set[int]) -> Iterable[list[tuple[int, str, bytes]]]:
    """Runs of novel lines that are one event: a line continues the one before it
    (at most GROUP_GAP lines before) when the format says it does not begin an event
    (an oslo traceback line), or when its text after the prefix is indented (a
    traceback's frames in a console or a program's output)."""
    starts = event_start_test(novelty.tags)
    console = file_format(novelty.tags) == "console"
    group: list[tuple[int, str, bytes]] = []
    for item in novelty.novel:
        if not _LETTERS.search(item[2]):
            continue
        number, text, _ = item
        if group and (
            number - group[-1][0] > GROUP_GAP
            or len(group) >= MAX_GROUP_LINES
            or group[-1][0] in ends  # one traceback ended: what follows is another error
            or not _continues(text, starts, console)
        ):
            yield group
            group = []
        group.append(item)
    if group:
        yield group


_CONSOLE_PREFIX = re.compile(r"^\S+ \S+ \| ")


def _continues(text: str, starts: StartTest, console: bool) -> bool:
    raw = text.encode("utf-8", errors="replace")
    if not starts(raw, 0, len(raw)):
        return True
    rest = _CONSOLE_PREFIX.sub("", text, count=1) if console else text
    return rest[:1].isspace()


def _traceback_ends(novel: Sequence[tuple[int, str, bytes]]) -> set[int]:
    """Numbers of the lines that end a traceback: the first line after its frames (a
    ``File "...", line N`` line and the code line under it) that is not a frame."""
    ends: set[int] = set()
    last_frame = -10
    for number, text, _ in novel:
        if _FRAME.search(text):
            last_frame = number
        elif number == last_frame + 2 or (
            number == last_frame + 1 and _EXCEPTION_LINE.search(text)
        ):
            ends.add(number)
            last_frame = -10
    return ends


def _code_lines(novel: Sequence[tuple[int, str, bytes]]) -> set[int]:
    """Numbers of a traceback's source lines (under a frame): code, whatever it says."""
    frames = {number for number, text, _ in novel if _FRAME.search(text)}
    return {
        number
        for number, text, _ in novel
        if number - 1 in frames and number not in frames and not _EXCEPTION_LINE.search(text)
    }


def _score(number: int, text: str, ends: set[int], code: set[int]) -> float:
    if number in code:
        return _PLAIN
    return line_score(text) + (TRACEBACK_END_BONUS if number in ends else 0.0)


_EXCEPTION_LINE = re.compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception|Failure|Fault|Exit)\b:")


def _end_weight(tags: Sequence[str]) -> float:
    """How much nearness to the file's end counts: most in a job's console or a file of
    no known format (a program's output), least in a service's log."""
    fmt = file_format(tags)
    return 1.2 if fmt in (None, "console") else 0.2


HistoryLookup = Callable[[Sequence["Anomaly"]], dict[str, tuple[int, int]]]
"""anomalies -> {their key: (failure builds, success builds)} the stored history shows
them in (those it knows of)."""
HISTORY_CANDIDATES = 30
"""The best anomalies looked up in the history (a search each)."""
SEEN_PASSING_PENALTY = 1.5
"""Taken from an anomaly the history shows in passing builds: noise, not the failure."""


def rank(
    files: Sequence[FileNovelty],
    top: int = DEFAULT_TOP,
    history: HistoryLookup | None = None,
) -> list[Anomaly]:
    """The ``top`` anomalies of the failed build's files, best first, one per key."""
    found: list[Anomaly] = []
    for novelty in files:
        if not novelty.novel:
            continue
        end = _end_weight(novelty.tags)
        oslo = file_format(novelty.tags) == "oslofmt"
        ends = _traceback_ends(novelty.novel)
        code = _code_lines(novelty.novel)
        for group in _groups(novelty, ends):
            scored = [
                (_score(number, text, ends, code), -number, number, text, key)
                for number, text, key in group
            ]
            best = max(scored)
            if oslo and scored[0][0] >= _HEAD_SCORE and group[0][0] not in code:
                # An oslo.log event is shown at its first line, the ERROR that says what
                # failed, rather than at the exception ending its traceback.
                best = scored[0]
            score, _, number, text, key = best
            if any(_TRACEBACK.search(item[3]) for item in scored):
                score += 0.5
            position = number / max(novelty.lines, 1)
            score += end * position * position
            score -= 0.4 * math.log10(novelty.repeats.get(key, 1))
            context = [(item[2], item[3]) for item in scored]
            found.append(Anomaly(novelty.filename, number, text, score, novelty.tags, "", context))
    found.sort(key=lambda anomaly: -anomaly.score)
    # Keys only for those that may be shown: a line's message costs a split.
    candidates = found[: max(top * 5, 50)]
    for anomaly in candidates:
        anomaly.key = normalize(message_of(anomaly.text, anomaly.tags))[:500]
    if history is not None and candidates:
        seen = history(candidates[:HISTORY_CANDIDATES])
        for anomaly in candidates:
            _, successes = seen.get(anomaly.key, (0, 0))
            if successes:
                anomaly.score -= SEEN_PASSING_PENALTY
        candidates.sort(key=lambda anomaly: -anomaly.score)
    # One anomaly per key, at the best score, shown where it first occurs in its file:
    # a repeated error's first occurrence is the one that explains the others.
    kept: dict[str, Anomaly] = {}
    for anomaly in candidates:
        first = kept.get(anomaly.key)
        if first is None:
            if len(kept) < top:
                kept[anomaly.key] = anomaly
        elif anomaly.filename == first.filename and anomaly.line < first.line:
            first.line, first.text, first.context = anomaly.line, anomaly.text, anomaly.context
    return list(kept.values())
