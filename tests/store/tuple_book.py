"""What a failed build's events added to the anomaly book when novel lines were lists of
(number, text, key) tuples: ``IngestRecorder``'s ``block_lines`` and ``merge`` as they
were, kept verbatim (but for their state, passed in) as the oracle of the compact path."""

from __future__ import annotations

from collections import Counter
from itertools import groupby

from recheck.models import Event
from recheck.scan.anomaly.reading import MAX_LINE_BYTES
from recheck.store.anomalies import _file_of, _run_keys
from recheck.store.anomalybook import digest

_EventLines = tuple[str, list[str], int | None, int, list[tuple[int, str, bytes]]]
Learnt = list[tuple[str, list[str], int, list[tuple[int, str, bytes]], Counter[bytes]]]
"""Each file's name, tags, length, novel lines and their keys' counts."""


def _numbered_run(entries: list[_EventLines]) -> list[_EventLines]:
    if len(entries) < 2 or any(first is None for _, _, first, _, _ in entries):
        return entries
    novel = [
        (first + offset, line, key)
        for _, _, first, _, lines in entries
        if first is not None
        for offset, line, key in lines
    ]
    last = max(first + count - 1 for _, _, first, count, _ in entries if first is not None)
    name, tags = entries[0][0], entries[0][1]
    return [(name, tags, 0, last + 1, novel)]


def _block_lines(
    events: list[tuple[str, Event]], known: set[int], sent: dict[str, int], cap: int
) -> list[_EventLines]:
    found: list[_EventLines] = []
    for name, same_file in groupby(events, key=_file_of):
        run = list(same_file)
        texts, keys = _run_keys(run)
        entries: list[_EventLines] = []
        start = 0
        for (event_id, event), text in zip(run, texts, strict=True):
            count = text.count("\n") + 1
            novel: list[tuple[int, str, bytes]] = []
            if sent.get(name, 0) < cap:
                lines = text.split("\n") if count > 1 else [text]
                event_keys = keys[start : start + count]
                novel = [
                    (offset, lines[offset][:MAX_LINE_BYTES], key)
                    for offset, key in enumerate(event_keys)
                    if not known or digest(key) not in known
                ]
                sent[name] = sent.get(name, 0) + len(novel)
            start += count
            first = event_id.rpartition(":")[2]
            tags = event.get("tags")
            entries.append(
                (name, tags if isinstance(tags, list) else [],
                 int(first) if first.isdigit() else None, count, novel)
            )  # fmt: skip
        found.extend(_numbered_run(entries))
    return found


def tuple_learn(
    events: list[tuple[str, Event]], sizes: list[int], known: set[int], cap: int
) -> Learnt:
    """What the book learnt of a failed build's ``events``, in blocks of ``sizes`` (then
    the rest), each split where the one before was (one process's ``sent``)."""
    files: dict[str, tuple[list[str], list[int], list[tuple[int, str, bytes]], Counter[bytes]]]
    files = {}
    sent: dict[str, int] = {}
    start = 0
    for size in [*sizes, len(events)]:
        block = events[start : start + size]
        start += size
        for name, tags, first, count, novel in _block_lines(block, known, sent, cap):
            if name not in files:
                files[name] = (list(tags), [0], [], Counter())
            _, length, kept, repeats = files[name]
            number = first if first is not None else length[0] + 1
            room = cap - len(kept)
            if novel and room > 0:
                taken = novel[:room] if len(novel) > room else novel
                if number:
                    taken = [(number + offset, line, key) for offset, line, key in taken]
                repeats.update(key for _, _, key in taken)
                kept.extend(taken)
            length[0] = max(length[0], number + count - 1)
        if start >= len(events):
            break
    return [(name, tags, n[0], kept, reps) for name, (tags, n, kept, reps) in files.items()]
