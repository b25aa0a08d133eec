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

import heapq
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from recheck.logs.split import StartTest, event_start_test, file_format, split_lines
from recheck.scan.anomaly.normalize import normalize
from recheck.scan.anomaly.novel import NovelLine
from recheck.scan.anomaly.reading import FileNovelty
from recheck.scan.forkmap import fork_map

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
# Python's regex engine tries an alternation at every position of a line (~40 us for
# a 120-character line with (?i)): each pattern is only run on a line holding a word
# it cannot match without. ``_NEEDS[i]`` are those of ``_LEVELS[i]``, as written
# (case-sensitive) or, for a (?i) pattern, lowercased: these are looked for in the
# lowercased line, which for an ASCII line is exact (other lines run the pattern).
_NEEDS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (
        (
            "CRITICAL", "FATAL", "EMERG", "ALERT", "PANIC", "ernel panic", "Oops", "panic: ",
            "fatal: [", "Segmentation fault", "core dumped",
        ),
        False,
    ),
    (("ERR", "Error", "error"), False),
    (("Error", "Exception", "Failure", "Fault"), False),
    (("FAIL", "ail"), False),
    (("Traceback (most recent call last)",), False),
    (
        (
            "tim", "refused", "denied", "killed", "segfault", "out of memory", "oom", "abort",
            "cannot", "can't", "unable", "not found", "no such", "unreachable", "invalid",
            "fatal", "exit",
        ),
        True,
    ),
    (("WARN", "arning"), False),
)  # fmt: skip
_PLAIN = 0.3
_CANDIDATE_WORDS = (
    "err", "fail", "fatal", "crit", "exception", "traceback", "panic", "warn", "time",
    "refused", "denied", "kill", "segmentation", "core dumped", "memory", "oom", "abort",
    "cannot", "can't", "unable", "not found", "no such", "unreachable", "invalid", "exit",
    "emerg", "alert", "oops", "fault",
)  # fmt: skip
_CANDIDATE = re.compile("(?i)" + "|".join(map(re.escape, _CANDIDATE_WORDS)))
"""A word one of the level patterns needs: a line without any is plain."""
_SCORED_CHARS = 1000
"""Of a long line, its start says what it is."""
_HEADER = "Traceback (most recent call last)"
_HEADER_SCORE = 1.2
_VERDICTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Finished: ",), r"Finished: (?:FAILURE|UNSTABLE|ABORTED)"),
    (("marked build as failure",), r"marked build as failure"),
    (("FAILED (",), r"\bFAILED \((?:failures|errors)="),
    (("ERROR: InvocationError",), r"ERROR: InvocationError"),
    ((": commands failed",), r": commands failed"),
    (("RESULT_",), r"\bRESULT_(?:FAILURE|TIMED_OUT)\b"),
    (("Build ",), r"Build (?:failed|FAILED)\b"),
    (("job ",), r"\bjob (?:failed|FAILED)\b"),
    (
        ("ERROR", "FAIL"),
        r"^\S*\s*\S*\s*\|?\s*(?:[=*-]{3,}\s*)?(?:ERROR|FAILURE|FAILED)\s*(?:[=*-]{3,})?\s*$",
    ),
    (("=== ",), r"={3,} [^=]*\b(?:failed|errors?)\b[^=]* in [\d.]+m?s\b"),  # pytest's last line
    ((": *** ",), r"make(?:\[\d+\])?: \*\*\* .*Error \d+"),
    (("FAILED - RETRYING",), r"FAILED - RETRYING"),
    (("failed=",), r"\bfailed=[1-9]\d*"),  # ansible's recap
    (("unreachable=",), r"\bunreachable=[1-9]\d*"),
)
"""A job's verdict or a summary of it: that something failed, never what. Each
alternative with the words it cannot match without, run only on a line holding one."""
_VERDICT_PARTS = tuple((needs, re.compile(pattern)) for needs, pattern in _VERDICTS)
_WHOLE_LINE_VERDICT = next(p for _, p in _VERDICT_PARTS if p.pattern.startswith("^"))
r"""The alternative matching a whole line: its adjacent ``\s*`` backtrack cubically over a
run of blanks (10 s for 990 spaces before ``ERROR x``), so it reads the line with each
run of blanks as one space. It matches that line exactly when it matches the original:
only its ``\s*`` can take blanks, and each takes a run of any length."""
_BLANKS = re.compile(r"\s+")
_VERDICT_SCORE = 1.0
_FRAME = re.compile(r'\bFile "[^"]*", line \d+')
_HEAD_SCORE = 2.4
"""An oslo.log event's first line at least this bad (ERROR, CRITICAL) represents it."""
TRACEBACK_END_BONUS = 1.0
"""Added to the line ending a traceback (``ValueError: ...``): the error itself."""
_DEBUG = re.compile(r"\b(?:DEBUG|Debug|debug)\b")
_ERROR_OR_CRITICAL = re.compile(r"\b(?:ERROR|CRITICAL)\b")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\bFile \"[^\"]*\", line \d+")


def _has_traceback(text: str) -> bool:
    return (_HEADER in text or 'File "' in text) and _TRACEBACK.search(text) is not None


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
    debug = ("ebug" in head or "DEBUG" in head) and _DEBUG.search(head)
    if debug and not _ERROR_OR_CRITICAL.search(head):
        return 0.1
    text = text[:_SCORED_CHARS]
    ascii_ = text.isascii()
    lowered = text.lower() if ascii_ else text
    if ascii_:
        candidate = any(map(lowered.__contains__, _CANDIDATE_WORDS))
    else:
        candidate = _CANDIDATE.search(text) is not None
    if not candidate:
        return _PLAIN  # most lines: one scan instead of one per pattern
    if _HEADER in text:
        return _HEADER_SCORE  # what went wrong is at the traceback's end
    for needs, pattern in _VERDICT_PARTS:
        if pattern is _WHOLE_LINE_VERDICT and any(map(text.__contains__, needs)):
            if pattern.search(_BLANKS.sub(" ", text)):
                return _VERDICT_SCORE
        elif any(map(text.__contains__, needs)) and pattern.search(text):
            return _VERDICT_SCORE  # says that the job failed, not why
    for (pattern, weight), (words, lower) in zip(_LEVELS, _NEEDS, strict=True):
        if lower and not ascii_:
            needed = True
        else:
            needed = any(map((lowered if lower else text).__contains__, words))
        if needed and pattern.search(text):
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


def _groups(novelty: FileNovelty, ends: set[int]) -> Iterable[list[NovelLine]]:
    """Runs of novel lines that are one event: a line continues the one before it
    (at most GROUP_GAP lines before) when the format says it does not begin an event
    (an oslo traceback line), or when its text after the prefix is indented (a
    traceback's frames in a console or a program's output)."""
    starts = event_start_test(novelty.tags)
    console = file_format(novelty.tags) == "console"

    @lru_cache(maxsize=_REMEMBERED)
    def continues(text: str) -> bool:
        return _continues(text, starts, console)

    lettered = lru_cache(maxsize=_REMEMBERED)(_LETTERS.search)
    group: list[NovelLine] = []
    for item in novelty.novel:
        if not lettered(item[2]):
            continue
        number, text, _ = item
        if group and (
            number - group[-1][0] > GROUP_GAP
            or len(group) >= MAX_GROUP_LINES
            or group[-1][0] in ends  # one traceback ended: what follows is another error
            or not continues(text)
        ):
            yield group
            group = []
        group.append(item)
    if group:
        yield group


_REMEMBERED = 1 << 14
"""Texts (or keys) whose answers ranking remembers, the least recently used forgotten: a
build's lines repeat (the 519k novel lines of the benchmark build have 24k texts), and
its memory stays bounded when they do not."""
_CONSOLE_PREFIX = re.compile(r"^\S+ \S+ \| ")


def _continues(text: str, starts: StartTest, console: bool) -> bool:
    raw = text.encode("utf-8", errors="replace")
    if not starts(raw, 0, len(raw)):
        return True
    rest = _CONSOLE_PREFIX.sub("", text, count=1) if console else text
    return rest[:1].isspace()


def _is_frame(text: str) -> bool:
    # The literal first: most lines have none, and a search costs a scan per position.
    return 'File "' in text and _FRAME.search(text) is not None


def _is_exception_line(text: str) -> bool:
    return any(map(text.__contains__, _EXCEPTION_ENDS)) and bool(_EXCEPTION_LINE.search(text))


def _traceback_marks(novel: Iterable[NovelLine]) -> tuple[set[int], set[int]]:
    """Numbers of the lines ending a traceback (the first line after its frames that is
    not one, the frames a ``File "...", line N`` line and the code line under it) and of
    its source lines (under a frame, not an exception): in one reading of the lines when
    their numbers increase (as a file's do), the source lines in a second one else."""
    frames: set[int] = set()
    ends: set[int] = set()
    code: set[int] = set()
    last_frame = -10
    previous: int | None = None
    increasing = True
    for number, text, _ in novel:
        frame = _is_frame(text)
        if frame:
            frames.add(number)
            last_frame = number
        elif number == last_frame + 2 or (number == last_frame + 1 and _is_exception_line(text)):
            ends.add(number)
            last_frame = -10
        # With increasing numbers every frame before this line is known, and only this
        # line has its number.
        if not frame and number - 1 in frames and not _is_exception_line(text):
            code.add(number)
        increasing = increasing and (previous is None or number > previous)
        previous = number
    if not increasing:
        code = _code_lines(novel, frames)
    return ends, code


def _code_lines(novel: Iterable[NovelLine], frames: set[int]) -> set[int]:
    """Numbers of a traceback's source lines (under a frame): code, whatever it says."""
    return {
        number
        for number, text, _ in novel
        if number - 1 in frames and number not in frames and not _is_exception_line(text)
    }


def _score(
    number: int, text: str, ends: set[int], code: set[int], score_of: Callable[[str], float]
) -> float:
    """The line's score; ``score_of``: ``line_score``, remembering texts."""
    if number in code:
        return _PLAIN
    return score_of(text) + (TRACEBACK_END_BONUS if number in ends else 0.0)


_EXCEPTION_LINE = re.compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception|Failure|Fault|Exit)\b:")
_EXCEPTION_ENDS = ("Error:", "Exception:", "Failure:", "Fault:", "Exit:")
"""What a line ``_EXCEPTION_LINE`` matches holds (``\b`` before ``:`` always holds)."""


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
    workers: int = 1,
) -> list[Anomaly]:
    """The ``top`` anomalies of the failed build's files, best first, one per key.

    ``workers`` above 1: the files are scored by that many processes, this one and
    forked ones (``recheck.scan.forkmap``: only from a process without other threads).
    """
    # (score, its file, line, text, group) of the best events, the first of equal scores
    # first: an Anomaly, with its context, is made only for those that may be shown (a
    # build without baselines has ~100k events, and its lines are read a file at a time).
    wanted = max(top * 5, 50)
    if workers > 1 and len(files) > 1 and threading.active_count() == 1:
        # Each file's best events, then the best of them in the files' order: the same
        # events, and of equal scores the same first.
        biggest = sorted(range(len(files)), key=lambda index: -len(files[index].novel))

        def best_of(index: int) -> list[tuple[float, int, str, list[NovelLine]]]:
            found = heapq.nsmallest(wanted, _scored_events([files[index]]), key=_worst_first)
            return [(score, number, text, group) for score, _, number, text, group in found]

        spills = sorted({fd for novelty in files for fd in novelty.novel.descriptors()})
        bests = dict(zip(biggest, fork_map(best_of, biggest, workers, spills), strict=True))
        events: Iterable[ScoredEvent] = (
            (score, files[index], number, text, group)
            for index in range(len(files))
            for score, number, text, group in bests[index]
        )
    else:
        events = _scored_events(files)
    return chosen_anomalies(heapq.nsmallest(wanted, events, key=_worst_first), top, history)


def _worst_first(event: ScoredEvent) -> float:
    return -event[0]


ScoredEvent = tuple[float, FileNovelty, int, str, list[NovelLine]]
"""An event of a file: its score, its file, its best line's number and text, its lines."""


def chosen_anomalies(
    found: Sequence[ScoredEvent], top: int, history: HistoryLookup | None
) -> list[Anomaly]:
    """The ``top`` anomalies of ``found`` (the best events, best first)."""
    # Keys only for those that may be shown: a line's message costs a split.
    candidates = [
        Anomaly(
            novelty.filename, number, text, score, novelty.tags, "",
            [(line, line_text) for line, line_text, _ in group],
        )
        for score, novelty, number, text, group in found
    ]  # fmt: skip
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


def _scored_events(files: Sequence[FileNovelty]) -> Iterator[ScoredEvent]:
    """(score, file, line, text, novel lines) of each event of the files, in order."""
    score_of = lru_cache(maxsize=_REMEMBERED)(line_score)
    traceback = lru_cache(maxsize=_REMEMBERED)(_has_traceback)
    for novelty in files:
        if not novelty.novel:
            continue
        end = _end_weight(novelty.tags)
        oslo = file_format(novelty.tags) == "oslofmt"
        ends, code = _traceback_marks(novelty.novel)
        for group in _groups(novelty, ends):
            if len(group) == 1:  # most events: their line is their best
                number, text, key = group[0]
                score = _score(number, text, ends, code, score_of)
                if traceback(text):
                    score += 0.5
            else:
                scored = [
                    (_score(number, text, ends, code, score_of), -number, number, text, key)
                    for number, text, key in group
                ]
                best = max(scored)
                if oslo and scored[0][0] >= _HEAD_SCORE and group[0][0] not in code:
                    # An oslo.log event is shown at its first line, the ERROR that says
                    # what failed, rather than at the exception ending its traceback.
                    best = scored[0]
                score, _, number, text, key = best
                if any(traceback(item[3]) for item in scored):
                    score += 0.5
            position = number / max(novelty.lines, 1)
            score += end * position * position
            score -= 0.4 * math.log10(novelty.repeats.get(key, 1))
            yield score, novelty, number, text, group
