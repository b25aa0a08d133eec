"""What ``recheck draft`` and the anomaly clusters ask of the history store.

What ingest adds to the anomaly book (``IngestRecorder``, ``recheck.store.anomalybook``).
A stored build as log files again (``write_stored_build``: its events back into lines,
prefixes rebuilt so that lines compare with the same job's raw logs), the passing builds
of a job to compare a failure with (``baseline_builds``), and how many failed and
passing builds a query matches (``history_counts``). Everything goes through the
``Store`` interface, so the embedded store and a cluster both answer.
"""

from __future__ import annotations

import operator
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, groupby
from pathlib import Path, PurePosixPath
from typing import cast

from recheck.logs.build import BUILD_FIELDS, Build
from recheck.logs.source import FileProblem
from recheck.logs.split import file_format
from recheck.models import Event, FileRule
from recheck.query import QuerySyntaxError, compile_query
from recheck.scan.anomaly.normalize import line_keys
from recheck.scan.anomaly.novel import NovelChunk, NovelLines, Spill
from recheck.scan.anomaly.propose import drafts_for
from recheck.scan.anomaly.rank import rank
from recheck.scan.anomaly.reading import (
    MAX_LINE_BYTES,
    MAX_NOVEL_LINES,
    BuildLogs,
    FileNovelty,
    novel_lines,
)
from recheck.store.anomalybook import BOOK_FILE, TOP, AnomalyBook, BookedAnomaly, digest
from recheck.store.base import DEFAULT_BUILD_DAYS, Store, StoredBuild, StoreError

__all__ = [
    "BookLines",
    "IngestRecorder",
    "baseline_builds",
    "history_counts",
    "ingest_recorder",
    "seen_elsewhere",
    "write_stored_build",
]

SEARCH_DAYS = 100 * 365.0
"""A stored build is looked for in all the events the store keeps."""
BASELINE_BUILDS = 3
"""Passing builds a failure is compared with when none are named."""


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _build_events(store: Store, uuid: str) -> Iterable[tuple[str, Event]]:
    try:
        query = compile_query(f"build_uuid:{_quoted(uuid)}")
    except QuerySyntaxError as exc:
        raise StoreError(store.path, f"{uuid!r} is not a build uuid ({exc})") from None
    for event_id, event in store.search(query, days=SEARCH_DAYS):
        if event.get("build_uuid") == uuid:
            yield event_id, event


def _text(event: Event, name: str, default: str = "") -> str:
    value = event.get(name)
    return value if isinstance(value, str) else default


def _lines(event: Event, host: str | None = None) -> str:
    """The event as its file's lines: a prefix of the format's shape (times and ids are
    masked when compared anyway), then the message."""
    tags = event.get("tags")
    return _formatted_lines(file_format(tags if isinstance(tags, list) else []), event, host)


def _formatted_lines(fmt: str | None, event: Event, host: str | None = None) -> str:
    """``_lines`` of an event of a file of format ``fmt`` (``file_format`` of its tags)."""
    message = _text(event, "message")
    if fmt == "console":
        return f"2000-01-01 00:00:00.000000 | {message}"
    if fmt == "oslofmt":
        pid, level = _text(event, "pid", "0"), _text(event, "loglevel", "INFO")
        return f"2000-01-01 00:00:00.000 {pid} {level} {_text(event, 'module', '-')} {message}"
    if fmt == "syslog":
        pid = _text(event, "syslog_pid")
        program = _text(event, "syslog_program", "-") + (f"[{pid}]" if pid else "")
        node = host or _text(event, "syslog_host", "host")
        return f"Jan  1 00:00:00 {node} {program}: {message}"
    return message


_OWN_TAGS = ("_grokparsefailure", "_truncated")


def write_stored_build(store: Store, uuid: str, directory: Path) -> tuple[Build, list[FileRule]]:
    """Write the stored events of build ``uuid`` under ``directory`` as its log files
    (each event at its line); return the build's fields and file rules giving each file
    the tags its events had.

    Raises StoreError when the store holds no events of that build.
    """
    files: dict[str, list[tuple[int, str]]] = {}
    rules: dict[str, FileRule] = {}
    build: Build | None = None
    for event_id, event in _build_events(store, uuid):
        if build is None:
            fields = {k: v for k, v in event.items() if k in BUILD_FIELDS and isinstance(v, str)}
            build = Build().updated(fields)
        name, _, line = event_id.rpartition(":")
        if name not in rules:
            tags = event.get("tags")
            tags = [tag for tag in tags if tag not in _OWN_TAGS] if isinstance(tags, list) else []
            rules[name] = FileRule(name, tuple(tags))
        files.setdefault(name or _text(event, "filename", "log.txt"), []).append(
            (int(line) if line.isdigit() else 0, _lines(event))
        )
    if build is None:
        raise StoreError(
            store.path,
            f"no stored events of build {uuid!r}: ingest it (recheck ingest), or its events "
            "were dropped by retention (store.event_days); or pass its log directory",
        )
    root = directory.resolve()
    for name, lines in files.items():
        path = (root / PurePosixPath(name)).resolve()
        if root not in path.parents:  # a hostile file name must not write elsewhere
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", errors="replace") as out:
            written = 0
            for number, text in sorted(lines):
                if number > written + 1:
                    out.write("\n" * (number - written - 1))
                    written = number - 1
                out.write(text + "\n")
                written += text.count("\n") + 1
    return build, list(rules.values())


def baseline_builds(
    store: Store, job: str, *, exclude: str | None = None, count: int = BASELINE_BUILDS
) -> list[StoredBuild]:
    """The newest ``count`` passing builds of ``job`` whose events are still stored."""
    found = []
    for stored in store.builds(status="SUCCESS"):
        if stored.build.build_name == job and stored.events_kept and stored.uuid != exclude:
            found.append(stored)
            if len(found) >= count:
                break
    return found


def history_counts(store: Store, query: str, days: float = DEFAULT_BUILD_DAYS) -> tuple[int, int]:
    """(failed builds, passing builds) with an event ``query`` matches in the last ``days``."""
    compiled = compile_query(query)
    failures: set[str] = set()
    successes: set[str] = set()
    for _, event in store.search(compiled, days=days):
        uuid = _text(event, "build_uuid")
        status = _text(event, "build_status")
        if status == "SUCCESS":
            successes.add(uuid)
        elif status:
            failures.add(uuid)
    return len(failures), len(successes)


_BATCH = 1000
"""Events learnt from at a time by ``IngestRecorder.events``."""
_EventLines = tuple[str, list[str], int | None, int, NovelChunk | None, Counter[bytes]]
"""An event's file name, tags, first line number (None: not in its id), number of lines,
its novel lines (numbered from 0 in the event) and how often each of their keys occurs;
or the same of a file's consecutive events whose ids all name their first line, as one
event from line 0 to the last (its novel lines numbered as in the file)."""


@dataclass
class BookLines:
    """What a block of a build's events adds to the anomaly book (``IngestRecorder``)."""

    digests: set[int]
    """A passing build's: the digests of its lines' keys."""
    events: list[_EventLines]
    """A failed build's: each event's novel lines (``_EventLines``)."""


def _file_of(item: tuple[str, Event]) -> str:
    return item[0].rpartition(":")[0]


def _run_texts(run: Sequence[tuple[str, Event]]) -> list[str]:
    """The lines of each of ``run``'s events (``_lines`` with the syslog node masked).
    The format is looked up again only where an event's tags differ from the last's."""
    texts: list[str] = []
    last: object = None
    fmt: str | None = None
    for _, event in run:
        tags = event.get("tags")
        if tags is not last and tags != last:
            fmt = file_format(tags if isinstance(tags, list) else [])
            last = tags
        texts.append(_formatted_lines(fmt, event, "H"))
    return texts


def _run_keys(run: Sequence[tuple[str, Event]]) -> tuple[list[str], list[bytes]]:
    """``_run_texts`` and the keys of all their lines, in order. ``line_keys`` keys lines
    independently, so one call over the run's text gives each event's keys (a C pass, not
    a dozen calls an event); but a CR, kept at an event's end and dropped before a line
    break, keys each alone."""
    texts = _run_texts(run)
    chunk = "\n".join(texts).encode("utf-8", errors="replace")
    if b"\r" not in chunk:
        return texts, line_keys(chunk)
    keys = [key for text in texts for key in line_keys(text.encode("utf-8", errors="replace"))]
    return texts, keys


def _cut_lines(text: str) -> str:
    """An event's text with each of its lines cut to MAX_LINE_BYTES characters."""
    if len(text) <= MAX_LINE_BYTES:
        return text
    return "\n".join(line[:MAX_LINE_BYTES] for line in text.split("\n"))


def _all_novel(
    firsts: list[int], counts: list[int], texts: list[str], keys: list[bytes]
) -> tuple[NovelChunk, Counter[bytes]]:
    """Every line of consecutive events (first line numbers ``firsts``, ``counts``
    lines, ``texts``, their lines' ``keys``) as novel lines: the texts joined at once."""
    if len(keys) == len(firsts):  # one line each
        numbers = firsts
    else:
        numbers = list(chain.from_iterable(map(range, firsts, map(operator.add, firsts, counts))))
    if max(map(len, texts)) > MAX_LINE_BYTES:
        texts = [_cut_lines(text) for text in texts]
    return NovelChunk.joined(numbers, "\n".join(texts), b"\n".join(keys)), Counter(keys)


class _NovelOf:
    """The novel lines of events, gathered into one chunk (``take`` each event's)."""

    def __init__(self, known: set[int]) -> None:
        self._known = known
        self.numbers: list[int] = []
        self._texts: list[str] = []
        """Each a line's text, or several lines' (all of an event's)."""
        self.keys: list[bytes] = []

    def take(self, text: str, keys: list[bytes], first: int) -> int:
        """Add the novel lines of an event of text ``text`` and its lines' ``keys``,
        numbered from ``first``; returns how many."""
        count = len(keys)
        if not self._known:  # no baseline: all novel, the event's text kept whole
            self.numbers.extend(range(first, first + count))
            self._texts.append(_cut_lines(text))
            self.keys.extend(keys)
            return count
        lines = text.split("\n") if count > 1 else [text]
        taken = 0
        for offset, key in enumerate(keys):
            if digest(key) not in self._known:
                self.numbers.append(first + offset)
                self._texts.append(lines[offset][:MAX_LINE_BYTES])
                self.keys.append(key)
                taken += 1
        return taken

    def chunk(self) -> tuple[NovelChunk | None, Counter[bytes]]:
        """The lines taken, and how often each key occurs in them."""
        if not self.numbers:
            return None, Counter()
        chunk = NovelChunk.joined(self.numbers, "\n".join(self._texts), b"\n".join(self.keys))
        return chunk, Counter(self.keys)


class IngestRecorder:
    """Keeps in the anomaly book what an ingested build adds to it, from the events the
    store is given (``events`` passes them on): a passing build's line keys, a failed
    build's top anomalies against the passing builds of its job the book holds."""

    def __init__(
        self,
        book: AnomalyBook,
        build: Build,
        on_problem: Callable[[FileProblem], None],
        workers: int = 1,
    ) -> None:
        """``workers``: processes ranking a failed build's files (``rank``)."""
        self._book = book
        self._workers = workers
        self._build = build
        self._on_problem = on_problem
        self._passing = build.build_status == "SUCCESS"
        self._digests: set[int] = set()
        self._files: dict[str, FileNovelty] = {}
        self._spill: Spill | None = None
        """Where the files' novel lines are kept (made when the first come)."""
        self._sent: dict[str, int] = {}
        """Novel lines ``block_lines`` found per file (in this process)."""
        self._known, self._baselines = (
            (set(), 0) if self._passing else book.baseline_digests(build.build_name)
        )

    def events(self, events: Iterable[tuple[str, Event]]) -> Iterator[tuple[str, Event]]:
        """``events`` passed on, learnt from on the way."""
        batch: list[tuple[str, Event]] = []
        for item in events:
            batch.append(item)
            if len(batch) >= _BATCH:
                self.add(batch)
                batch = []
            yield item
        self.add(batch)

    def add(self, events: list[tuple[str, Event]]) -> None:
        """Learn from ``events`` (a block of them, in the build's order)."""
        self.merge(self.block_lines(events))

    def block_lines(self, events: list[tuple[str, Event]]) -> BookLines:
        """What ``events`` (consecutive, in the build's order) add to the book: all the
        work per line, and nothing that depends on the events before them, so that it
        can be done where they are split (a forked worker); ``merge`` adds it up."""
        if self._passing:
            digests: set[int] = set()
            for _, same_file in groupby(events, key=_file_of):
                digests.update(map(digest, set(_run_keys(list(same_file))[1])))
            return BookLines(digests, [])
        sent = self._sent
        found: list[_EventLines] = []
        for name, same_file in groupby(events, key=_file_of):
            run = list(same_file)
            # The first line each event's id names, if it does.
            ids = [event_id.rpartition(":")[2] for event_id, _ in run]
            firsts = [int(line) if line.isdigit() else None for line in ids]
            tags = run[0][1].get("tags")
            run_tags = tags if isinstance(tags, list) else []
            numbered = None not in firsts
            numbers = cast(list[int], firsts)  # when numbered
            before = sent.get(name, 0)
            if numbered and before >= MAX_NOVEL_LINES:
                # Past the cap (most of a big file without baselines): only its length.
                counts = [text.count("\n") + 1 for text in _run_texts(run)]
                last = max(map(operator.add, numbers, counts))
                found.append((name, run_tags, 0, last, None, Counter()))
                continue
            texts, keys = _run_keys(run)
            if numbered and not self._known:
                counts = [text.count("\n") + 1 for text in texts]
                if before + len(keys) - counts[-1] < MAX_NOVEL_LINES:
                    # No baseline, and the file under the cap until the last event: every
                    # line of every event is novel and kept (as ``take`` would, at once).
                    last = max(map(operator.add, numbers, counts))
                    novel = _all_novel(numbers, counts, texts, keys)
                    found.append((name, run_tags, 0, last, *novel))
                    sent[name] = before + len(keys)
                    continue
            gathered = _NovelOf(self._known)
            last = start = 0
            for (_, event), text, first in zip(run, texts, firsts, strict=True):
                count = text.count("\n") + 1
                # Past MAX_NOVEL_LINES of a file found here, so many came before in it
                # too: ``merge`` would drop these.
                if sent.get(name, 0) < MAX_NOVEL_LINES:
                    # Numbered in the file, or (each event alone) in the event.
                    base = first if numbered and first is not None else 0
                    taken = gathered.take(text, keys[start : start + count], base)
                    sent[name] = sent.get(name, 0) + taken
                start += count
                if numbered and first is not None:
                    last = max(last, first + count)
                else:  # an event without its line: each event alone, as ``merge`` numbers it
                    tags = event.get("tags")
                    found.append(
                        (name, tags if isinstance(tags, list) else [], first, count,
                         *gathered.chunk())
                    )  # fmt: skip
                    gathered = _NovelOf(self._known)
            if numbered:
                found.append((name, run_tags, 0, last, *gathered.chunk()))
        return BookLines(set(), found)

    def merge(self, lines: BookLines) -> None:
        """Add what ``block_lines`` found, in the build's order."""
        if self._passing:
            self._digests.update(lines.digests)
            return
        for name, tags, first, count, chunk, counts in lines.events:
            novelty = self._files.get(name)
            if novelty is None:
                if self._spill is None:
                    self._spill = Spill(self._book.path.parent)
                novelty = FileNovelty(name, name, list(tags), novel=NovelLines(self._spill))
                self._files[name] = novelty
            number = first if first is not None else novelty.lines + 1
            room = MAX_NOVEL_LINES - len(novelty.novel)
            if chunk is not None and room > 0:
                if chunk.size > room:
                    counts = Counter(key for _, _, key in chunk.lines(limit=room))
                novelty.repeats.update(counts)
                novelty.novel.add(chunk, number, room)
            novelty.lines = max(novelty.lines, number + count - 1)

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
        self._book.close()

    def finish(self, uuid: str, when: datetime | None) -> None:
        """Record the build (stored as ``uuid`` at ``when``) in the book; a failure is
        reported as a problem of the book's file, never raised (the build is stored)."""
        try:
            self._finish(uuid, when)
        except (sqlite3.Error, OSError) as exc:
            self._on_problem(FileProblem(BOOK_FILE, f"the anomaly book was not updated: {exc}"))

    def _finish(self, uuid: str, when: datetime | None) -> None:
        moment = when or datetime.now(UTC)
        job = self._build.build_name
        if self._passing:
            self._book.record_passing(uuid, job, moment, self._digests)
            return
        self._book.forget_before(datetime.now(UTC) - timedelta(days=DEFAULT_BUILD_DAYS))
        anomalies = rank(list(self._files.values()), TOP, workers=self._workers)
        self._book.record_failure(
            [
                BookedAnomaly(
                    uuid, index, job, self._build.build_change, moment, self._baselines,
                    anomaly.key, anomaly.filename, anomaly.line, anomaly.text,
                    round(anomaly.score, 3), next(iter(drafts_for(anomaly)), None),
                )
                for index, anomaly in enumerate(anomalies)
            ]
        )  # fmt: skip


def ingest_recorder(
    store: Store, build: Build, on_problem: Callable[[FileProblem], None], workers: int = 1
) -> IngestRecorder | None:
    """A recorder for ``build`` when ``store`` keeps an anomaly book and the build's
    status says whether it passed; else None. A book that cannot be used is reported to
    ``on_problem`` (the build is stored all the same); the caller closes the recorder.
    ``workers``: processes ranking a failed build's files, from a process without
    other threads."""
    if build.build_status is None:
        return None
    try:
        book = AnomalyBook.of(store)
        return None if book is None else IngestRecorder(book, build, on_problem, workers)
    except StoreError as exc:
        on_problem(FileProblem(BOOK_FILE, str(exc)))
        return None


NEW_OR_KNOWN_DAYS = 7.0
"""How far back ``seen_elsewhere`` looks for other changes with the same top anomaly."""


def seen_elsewhere(
    store: Store, logs: BuildLogs, days: float = NEW_OR_KNOWN_DAYS
) -> tuple[str, int] | None:
    """The failed build's top anomaly (against the passing builds of its job the anomaly
    book keeps) and in how many other changes' failures of the last ``days`` it was a
    top anomaly too; None without a book, without a passing build of the job in it (the
    top line would be the build's worst line, not what sets it apart) or an anomaly."""
    book = AnomalyBook.of(store)
    if book is None:
        return None
    with book:
        known, baselines = book.baseline_digests(logs.build.build_name)
        if not baselines:
            return None
        top = rank(novel_lines(logs, known, keyed=digest), 1)
        if not top:
            return None
        since = datetime.now(UTC) - timedelta(days=days)
        return top[0].key, len(book.changes_with(top[0].key, since, logs.build.build_change))
