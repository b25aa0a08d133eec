"""fork_map: the same results as a loop, work shared with forked children, failures raised."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from recheck.scan import forkmap
from recheck.scan.forkmap import ChildFailed, fork_map


def _children() -> set[int]:
    """This process's children, zombies included (read from /proc: waiting for any child
    could reap another test's)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_children_left() -> Iterator[None]:
    before = _children()
    yield
    assert _children() <= before  # every child forked was waited for


@pytest.mark.parametrize(("tasks", "processes"), [(0, 2), (1, 2), (7, 2), (40, 3), (5, 8)])
def test_results_come_back_in_the_tasks_order(tasks: int, processes: int) -> None:
    assert fork_map(lambda n: n * n, list(range(tasks)), processes) == [n * n for n in range(tasks)]


def test_the_tasks_are_shared_between_this_process_and_the_children() -> None:
    def which(_: int) -> int:
        time.sleep(0.02)  # long enough for every process to take some
        return os.getpid()

    pids = fork_map(which, list(range(20)), 2)
    assert os.getpid() in pids
    assert len(set(pids)) == 2


def test_an_exception_in_a_child_is_raised_here() -> None:
    parent = os.getpid()

    def fails_in_child(n: int) -> int:
        time.sleep(0.01)
        if os.getpid() != parent:
            raise KeyError(f"task {n}")
        return n

    with pytest.raises(KeyError, match="task"):
        fork_map(fails_in_child, list(range(20)), 2)


def test_an_exception_here_stops_the_children() -> None:
    parent = os.getpid()

    def fails_here(n: int) -> int:
        if os.getpid() == parent:
            raise ValueError("parent failed")
        time.sleep(0.05)
        return n

    with pytest.raises(ValueError, match="parent failed"):
        fork_map(fails_here, list(range(20)), 3)


def test_a_child_that_dies_is_an_error_not_a_hang() -> None:
    parent = os.getpid()

    def dies_in_child(n: int) -> int:
        time.sleep(0.01)
        if os.getpid() != parent:
            os._exit(3)
        return n

    with pytest.raises(ChildFailed, match="died"):
        fork_map(dies_in_child, list(range(20)), 2)


def test_an_exception_that_cannot_be_pickled_still_arrives() -> None:
    parent = os.getpid()

    class Local(Exception):  # a local class: pickle cannot find it
        pass

    def fails_oddly(n: int) -> int:
        time.sleep(0.01)
        if os.getpid() != parent:
            raise Local("odd")
        return n

    with pytest.raises(RuntimeError, match="Local: odd"):
        fork_map(fails_oddly, list(range(20)), 2)


def test_more_tasks_than_the_pipe_holds_numbers_of_are_shared_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each number then stands for several consecutive tasks (a build of 20,000 files was
    # scanned by one process, whatever -j said).
    monkeypatch.setattr(forkmap, "MAX_NUMBERS", 7)

    def which(n: int) -> tuple[int, int]:
        time.sleep(0.005)
        return n * n, os.getpid()

    results = fork_map(which, list(range(45)), 2)
    assert [square for square, _ in results] == [n * n for n in range(45)]
    assert len({pid for _, pid in results}) == 2
