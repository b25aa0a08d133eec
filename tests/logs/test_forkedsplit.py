"""Forked workers give a build's events, and its file problems, exactly as one process."""

from __future__ import annotations

import fcntl
import gzip
import os
import shutil
from pathlib import Path

import pytest

from recheck.logs import blocksplit
from recheck.logs.build import Build
from recheck.logs.buildlogs import EventBlock, build_event_blocks, build_events
from recheck.logs.forkedsplit import WorkerFailed
from recheck.logs.localdir import DirSource
from recheck.logs.source import FileProblem

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    """A build with real logs, a truncated gzip and an empty file."""
    shutil.copytree(FIXTURES / "builds" / "devstack-zuulv3", tmp_path / "build")
    root = tmp_path / "build"
    logs = root / "controller" / "logs"
    shutil.copy(FIXTURES / "logs" / "nova-compute.excerpt.log", logs / "screen-n-api.txt")
    shutil.copy(FIXTURES / "logs" / "syslog.excerpt.txt", logs / "syslog.txt")
    lines = [f"2021-06-23 05:14:{n % 60:02d}.561762 | line {n}\n" for n in range(20000)]
    whole = gzip.compress("".join(lines).encode())
    (logs / "screen-q-svc.txt.gz").write_bytes(whole[: len(whole) // 2])
    (logs / "screen-c-vol.txt").write_bytes(b"")
    return root


def events_and_problems(
    root: Path, workers: int
) -> tuple[list[tuple[str, object]], list[FileProblem]]:
    problems: list[FileProblem] = []
    build = Build(build_status="FAILURE", build_name="job")
    events = list(build_events(DirSource(root), build, on_problem=problems.append, workers=workers))
    return events, problems


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_give_the_events_and_problems_of_one_process(
    build_dir: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocksplit, "BLOCK_BYTES", 2000)  # many blocks a file
    monkeypatch.setattr(blocksplit, "_READ_BYTES", 512)
    expected = events_and_problems(build_dir, 1)
    assert len(expected[0]) > 1000 and [p.path for p in expected[1]] == [
        "controller/logs/screen-q-svc.txt.gz"
    ]
    assert events_and_problems(build_dir, workers) == expected


def test_what_the_workers_make_of_each_block_comes_in_order(build_dir: Path) -> None:
    def ids(block: EventBlock) -> list[str]:
        return [event_id for event_id, _ in block.events()]

    blocks = build_event_blocks(DirSource(build_dir), Build(), ids, workers=2)
    expected = [event_id for event_id, _ in build_events(DirSource(build_dir), Build())]
    assert [event_id for block in blocks for event_id in block] == expected


def test_a_failing_worker_is_an_error_not_missing_events(build_dir: Path) -> None:
    def broken(block: EventBlock) -> int:
        raise ValueError("boom")

    with pytest.raises(WorkerFailed, match="ValueError: boom"):
        list(build_event_blocks(DirSource(build_dir), Build(), broken, workers=2))


@pytest.mark.parametrize("workers", [1, 2])
def test_block_numbers_increase_through_the_build(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    # Small blocks, so that files have several and workers take turns within a file.
    monkeypatch.setattr(blocksplit, "BLOCK_BYTES", 1 << 16)

    def numbered(block: EventBlock) -> tuple[int, str, int]:
        return block.number, block.filename, len(block.split)

    blocks = list(build_event_blocks(DirSource(build_dir), Build(), numbered, workers=workers))
    numbers = [number for number, _, _ in blocks]
    assert len(blocks) > 5 and numbers == sorted(set(numbers))
    assert sum(size for _, _, size in blocks) == len(
        list(build_events(DirSource(build_dir), Build()))
    )


def test_a_worker_keeps_no_file_of_its_caller_open(
    build_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lock its caller held when it forked (tantivy's meta.json lock, taken by one of
    # the store's threads) must not stay held by the workers: two ingests deadlocked so.
    monkeypatch.setattr(blocksplit, "BLOCK_BYTES", 1 << 16)
    lock = tmp_path / "lock"
    held = os.open(lock, os.O_CREAT | os.O_WRONLY)
    fcntl.flock(held, fcntl.LOCK_EX)

    def big(block: EventBlock) -> bytes:
        return b"x" * (4 << 20)  # more than a pipe holds: a worker waits for the reader

    blocks = iter(build_event_blocks(DirSource(build_dir), Build(), big, workers=2))
    os.close(held)  # the caller lets go of it
    # A block from each worker: both are running, and waiting to send their next.
    first = [next(blocks), next(blocks)]
    other = os.open(lock, os.O_WRONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if one holds it
    finally:
        os.close(other)
    rest = list(blocks)
    assert len(rest) > 2 and all(len(payload) == 4 << 20 for payload in first + rest)
