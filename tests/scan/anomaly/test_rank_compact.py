"""``rank`` over compact novel lines (``NovelLines``: chunks, in memory or in a spill
file, read a file at a time, the best events kept as they come) finds exactly the
anomalies the tuple-based rank did (``tuple_rank``): the same keys, lines, texts, scores,
contexts, tags and order. On real builds (every line novel, and some lines known; files
scored in one process or several) and on generated lines (tracebacks, oslo errors,
repeats, lines without letters, numbers out of order or repeated), with the history's
penalty too, in chunks of any size."""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tuple_rank import TupleFile, tuple_rank

from recheck.logs.build import Build
from recheck.logs.localdir import DirSource
from recheck.logs.logfiles import DEFAULT_FILE_RULES
from recheck.scan.anomaly.novel import NovelChunk, NovelLine, NovelLines, Spill
from recheck.scan.anomaly.rank import Anomaly, rank
from recheck.scan.anomaly.reading import BuildLogs, FileNovelty, novel_lines

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REAL = [*sorted((FIXTURES / "builds").iterdir()), FIXTURES / "logs"]
"""Builds, and the real logs' excerpts read as one (each file's format told by its name)."""


def _compact(
    file: TupleFile, sizes: Sequence[int], spill: Spill | None, filler: bool = True
) -> FileNovelty:
    """``file`` with its lines in chunks of ``sizes`` (cycled), each numbered from a
    base, with lines past what is kept when ``filler``."""
    novel = NovelLines(spill)
    start = 0
    for index in range(len(file.novel)):
        size = sizes[index % len(sizes)]
        part = file.novel[start : start + size]
        if not part:
            break
        base = part[0][0]
        extra = [(0, "past the limit", b"past the limit")] if filler else []
        rows = [(number - base, text, key) for number, text, key in part] + extra
        numbers, texts, keys = zip(*rows, strict=True)
        novel.add(NovelChunk.of(numbers, texts, keys), base, len(part))
        start += size
    assert list(novel) == file.novel
    return FileNovelty(file.path, file.filename, file.tags, file.lines, novel, file.repeats)


def _history(anomalies: Sequence[Anomaly]) -> dict[str, tuple[int, int]]:
    """Every other candidate's key is seen in passing builds."""
    return {anomaly.key: (1, index % 2) for index, anomaly in enumerate(anomalies)}


def _assert_same(files: list[TupleFile], sizes: Sequence[int], spill: Spill | None) -> None:
    compact = [_compact(file, sizes, spill) for file in files]
    for top in (1, 3, 20):
        for history in (None, _history):
            expected = tuple_rank(files, top, history)
            assert rank(compact, top, history) == expected


def _tuples(novelty: FileNovelty) -> TupleFile:
    return TupleFile(
        novelty.path, novelty.filename, novelty.tags, novelty.lines, list(novelty.novel),
        novelty.repeats,
    )  # fmt: skip


@pytest.mark.parametrize("path", REAL, ids=lambda path: path.name)
def test_real_builds_rank_as_tuples_did(tmp_path: Path, path: Path) -> None:
    logs = BuildLogs(DirSource(path), tuple(DEFAULT_FILE_RULES), Build(), path.name)
    every = [_tuples(novelty) for novelty in novel_lines(logs, set())]
    assert sum(len(file.novel) for file in every) > 90
    # A baseline knowing a third of the keys: runs of novel lines with gaps between them.
    some = [
        TupleFile(
            file.path,
            file.filename,
            file.tags,
            file.lines,
            [line for line in file.novel if zlib.crc32(line[2]) % 3],
        )
        for file in every
    ]
    for file in some:
        file.repeats = Counter(key for _, _, key in file.novel)
    spill = Spill(tmp_path)
    try:
        for files in (every, some):
            _assert_same(files, [1_000_000], None)
            _assert_same(files, [1, 7, 500], spill)
            # Files scored in forked processes too (from the spill they share).
            compact = [_compact(file, [1, 7, 500], spill) for file in files]
            assert threading.active_count() == 1  # else rank would not fork
            for top in (1, 20):
                assert rank(compact, top, workers=3) == tuple_rank(files, top)
    finally:
        spill.close()


_TEXTS = [
    "Traceback (most recent call last):",
    '  File "/opt/stack/nova/nova/compute/manager.py", line 2117, in _do_build',
    "    self.driver.spawn(context, instance)",
    'File "x.py", line 3',
    "ValueError: the disk is full",
    "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply",
    "2021-06-01 10:00:00.123 77 ERROR nova.compute.manager [req-1] Instance failed to spawn",
    "2021-06-01 10:00:00.124 77 ERROR nova.compute.manager Traceback (most recent call last):",
    "2021-06-01 10:00:00.125 77 INFO nova.compute.manager Took 3.2 seconds",
    "2021-06-01 10:00:01.000 77 DEBUG oslo_concurrency.lockutils Lock acquired",
    "2021-06-01 10:00:00.000000 | TASK [run tests]",
    '2021-06-01 10:00:00.000000 |   File "/usr/lib/python3/x.py", line 9, in f',
    "2021-06-01 10:00:00.000000 | FAILED (failures=2)",
    "2021-06-01 10:00:00.000000 | ok",
    "WARNING: deprecated option",
    "Jan  1 00:00:00 H kernel: Out of memory: Killed process 1234",
    "12345 67890",
    "",
    "    ",
    "plain words only",
]
_KEYS = [b"ab", b"x y", b"Traceback", b"ERROR xyz", b"  ", b"ghij", b"rror: disk is ull"]
_TAGS = [["screen", "oslofmt"], ["console", "console.html"], ["syslog"], ["other"], ["screen"]]

_line = st.tuples(
    st.integers(min_value=1, max_value=4),
    st.sampled_from(range(len(_TEXTS))),
    st.sampled_from(range(len(_KEYS))),
)


@st.composite
def _files(draw: st.DrawFn) -> list[TupleFile]:
    files = []
    # Files as long as each other, with the same lines at the same numbers, tie: the
    # first file's event is the one kept.
    length = draw(st.integers(min_value=0, max_value=200))
    for index in range(draw(st.integers(min_value=1, max_value=3))):
        rows = draw(st.lists(_line, max_size=60))
        ordered = draw(st.booleans())
        number = 0
        novel: list[NovelLine] = []
        for step, text, key in rows:
            number = number + step if ordered else draw(st.integers(min_value=0, max_value=40))
            novel.append((number, _TEXTS[text], _KEYS[key]))
        tags = _TAGS[draw(st.sampled_from(range(len(_TAGS))))]
        lines = max([length, *(n for n, _, _ in novel)])
        files.append(
            TupleFile(
                f"f{index}.txt",
                f"f{index}.txt",
                list(tags),
                lines,
                novel,
                Counter(key for _, _, key in novel) + Counter({b"ab": draw(st.integers(0, 9))}),
            )
        )
    return files


@settings(max_examples=300, deadline=None)
@given(_files(), st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=5))
def test_generated_lines_rank_as_tuples_did(files: list[TupleFile], sizes: list[int]) -> None:
    _assert_same(files, sizes, None)


def test_the_spill_gives_back_what_it_was_given(tmp_path: Path) -> None:
    spill = Spill(tmp_path)
    try:
        lines = NovelLines(spill)
        odd = "\ud800 é \r x"  # a lone surrogate, a CR: texts come back as they were
        lines.add(NovelChunk.of([0, 2], ["a", odd], [b"k", b"\xff\r"]), 10)
        lines.add(NovelChunk.of([5, 6, 7], ["b", "c", "d"], [b"", b"c", b"d"]), 0, 2)
        lines.add(NovelChunk.of([1], ["none"], [b"n"]), 0, 0)
        assert list(lines) == [(10, "a", b"k"), (12, odd, b"\xff\r"), (5, "b", b""), (6, "c", b"c")]
        assert len(lines) == 4
    finally:
        spill.close()


def test_a_chunk_refuses_lines_it_would_give_back_wrong() -> None:
    with pytest.raises(ValueError, match="as many"):
        NovelChunk.of([1, 2], ["a\nb", "c"], [b"a", b"c"])
    with pytest.raises(ValueError, match="as many"):
        NovelChunk.of([1], ["a"], [b"a", b"b"])
