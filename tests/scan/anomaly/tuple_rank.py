"""``rank`` as it was when a file's novel lines were a list of (number, text, key)
tuples, kept verbatim (but for imports) as the oracle of the compact path: its marks,
grouping, scoring and choice of the best events. The per-line helpers (``line_score``,
``_continues``, ``_is_frame``, ...) and the anomalies made of the best events
(``chosen_anomalies``) are the module's own, unchanged by it."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from recheck.logs.split import event_start_test, file_format
from recheck.scan.anomaly.rank import (
    _HEAD_SCORE,
    _LETTERS,
    _PLAIN,
    DEFAULT_TOP,
    GROUP_GAP,
    MAX_GROUP_LINES,
    TRACEBACK_END_BONUS,
    Anomaly,
    HistoryLookup,
    _continues,
    _end_weight,
    _has_traceback,
    _is_exception_line,
    _is_frame,
    chosen_anomalies,
    line_score,
)


@dataclass
class TupleFile:
    """A file's novel lines as the tuples ``FileNovelty.novel`` used to hold."""

    path: str
    filename: str
    tags: list[str]
    lines: int = 0
    novel: list[tuple[int, str, bytes]] = field(default_factory=list)
    repeats: Counter[bytes] = field(default_factory=Counter)


def _groups(novelty: TupleFile, ends: set[int]) -> Iterable[list[tuple[int, str, bytes]]]:
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


def _traceback_ends(novel: Sequence[tuple[int, str, bytes]], frames: set[int]) -> set[int]:
    ends: set[int] = set()
    last_frame = -10
    for number, text, _ in novel:
        if number in frames and _is_frame(text):
            last_frame = number
        elif number == last_frame + 2 or (number == last_frame + 1 and _is_exception_line(text)):
            ends.add(number)
            last_frame = -10
    return ends


def _frames(novel: Sequence[tuple[int, str, bytes]]) -> set[int]:
    return {number for number, text, _ in novel if _is_frame(text)}


def _code_lines(novel: Sequence[tuple[int, str, bytes]], frames: set[int]) -> set[int]:
    return {
        number
        for number, text, _ in novel
        if number - 1 in frames and number not in frames and not _is_exception_line(text)
    }


def _score(
    number: int, text: str, ends: set[int], code: set[int], scores: dict[str, float]
) -> float:
    if number in code:
        return _PLAIN
    score = scores.get(text)
    if score is None:
        score = scores[text] = line_score(text)
    return score + (TRACEBACK_END_BONUS if number in ends else 0.0)


def tuple_rank(
    files: Sequence[TupleFile],
    top: int = DEFAULT_TOP,
    history: HistoryLookup | None = None,
) -> list[Anomaly]:
    """The ``top`` anomalies of the failed build's files, best first, one per key."""
    found: list[tuple[float, TupleFile, int, str, list[tuple[int, str, bytes]]]] = []
    scores: dict[str, float] = {}
    for novelty in files:
        if not novelty.novel:
            continue
        end = _end_weight(novelty.tags)
        oslo = file_format(novelty.tags) == "oslofmt"
        frames = _frames(novelty.novel)
        ends = _traceback_ends(novelty.novel, frames)
        code = _code_lines(novelty.novel, frames)
        for group in _groups(novelty, ends):
            scored = [
                (_score(number, text, ends, code, scores), -number, number, text, key)
                for number, text, key in group
            ]
            best = max(scored)
            if oslo and scored[0][0] >= _HEAD_SCORE and group[0][0] not in code:
                best = scored[0]
            score, _, number, text, key = best
            if any(_has_traceback(item[3]) for item in scored):
                score += 0.5
            position = number / max(novelty.lines, 1)
            score += end * position * position
            score -= 0.4 * math.log10(novelty.repeats.get(key, 1))
            found.append((score, novelty, number, text, group))
    found.sort(key=lambda item: -item[0])
    # The anomalies made of the best events: the same code (unchanged), given these.
    return chosen_anomalies(found[: max(top * 5, 50)], top, history)  # type: ignore[arg-type]
