"""``IngestRecorder.block_lines`` keys a file's consecutive events at once and merges
them as one entry: the novel lines it keeps are exactly those of learning from each
event alone (a block of one), whatever the blocks, CRs, multi-line events, ids without
a line number, formats, baselines and the cap on novel lines; and exactly those the
recorder kept when novel lines were lists of tuples (``tuple_book``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tuple_book import tuple_learn

from recheck.logs.build import Build
from recheck.models import Event
from recheck.scan.anomaly.normalize import line_keys
from recheck.store import anomalies
from recheck.store.anomalies import IngestRecorder
from recheck.store.anomalybook import digest


class _Book:
    path = Path(tempfile.gettempdir()) / "anomalies.sqlite"  # the spill file's folder

    def __init__(self, known: set[int]) -> None:
        self.known = known

    def baseline_digests(self, job: str | None) -> tuple[set[int], int]:
        return self.known, 1 if self.known else 0

    def close(self) -> None:
        pass


_TAGS = [["console.html"], ["screen", "oslofmt"], ["syslog"], ["other"], ["oslofmt", "x"]]
_MESSAGES = [
    "ERROR boom 12",
    "x\r",
    "a\nb\r\nc",
    'File "/tmp/ab/c", line 3',
    "",
    "\n",
    "ok é",
    "y" * 4100 + "\nz",
]

_event = st.tuples(
    st.sampled_from(["a.txt", "b/c.log", "d:e"]),
    st.one_of(st.integers(min_value=0, max_value=50).map(str), st.sampled_from(["", "x"])),
    st.sampled_from(range(len(_TAGS))),
    st.one_of(st.sampled_from(_MESSAGES), st.text(max_size=12)),
)


def _learn(
    events: list[tuple[str, Event]], sizes: list[int], known: set[int], passing: bool
) -> object:
    build = Build(build_name="job", build_status="SUCCESS" if passing else "FAILURE")
    recorder = IngestRecorder(_Book(known), build, lambda _: None)  # type: ignore[arg-type]
    start = 0
    try:
        for size in [*sizes, len(events)]:
            block = events[start : start + size]
            recorder.merge(recorder.block_lines(block))
            start += size
            if start >= len(events):
                break
        if passing:
            return recorder._digests
        return [
            (f.filename, f.tags, f.lines, list(f.novel), f.repeats)
            for f in recorder._files.values()
        ]
    finally:
        recorder.close()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_event, max_size=30),
    st.lists(st.integers(min_value=1, max_value=9), max_size=8),
    st.booleans(),
    st.booleans(),
    st.sampled_from([3, 100_000]),
)
def test_blocks_learn_what_single_events_do(
    raw: list[tuple[str, str, int, str]],
    sizes: list[int],
    with_known: bool,
    passing: bool,
    cap: int,
) -> None:
    # Any order, names, ids and messages: blocks of any size must learn as single events.
    events: list[tuple[str, Event]] = [
        (f"{name}:{line}", {"message": message, "tags": list(_TAGS[tags]), "pid": "7"})
        for name, line, tags, message in raw
    ]
    known = (
        {digest(key) for key in line_keys(b"x\nok \xc3\xa9\nERROR boom ")} if with_known else set()
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(anomalies, "MAX_NOVEL_LINES", cap)  # files past the cap too
        single = _learn(events, [1] * len(events), known, passing)
        assert _learn(events, sizes, known, passing) == single
        if not passing:
            assert single == tuple_learn(events, sizes, known, cap)


def test_a_real_build_learns_the_same_in_blocks(tmp_path: Path) -> None:
    from recheck.logs.buildlogs import build_events
    from recheck.logs.localdir import DirSource

    builds = Path(__file__).resolve().parents[1] / "fixtures" / "builds"
    for build_dir in sorted(builds.iterdir()):
        build = Build(build_name="job", build_status="FAILURE")
        events = list(build_events(DirSource(build_dir), build))
        assert events
        learnt = _learn(events, [500] * len(events), set(), False)
        assert learnt == _learn(events, [1] * len(events), set(), False)
        assert learnt == tuple_learn(events, [500] * len(events), set(), 100_000)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(anomalies, "MAX_NOVEL_LINES", 50)  # files past the cap
            learnt = _learn(events, [30] * len(events), set(), False)
            assert learnt == tuple_learn(events, [30] * len(events), set(), 50)
