"""The one file lock (recheck.lib.locking): exclusive across processes, waits, says who holds it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recheck.lib.locking import FileLock, LockBusy

ROOT = Path(__file__).resolve().parents[2]

_HOLDER = """
import sys, time
from recheck.lib.locking import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(path: Path, seconds: float) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def test_a_lock_held_elsewhere_is_busy_and_names_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    child = _holder(path, 30.0)
    try:
        started = time.monotonic()
        with pytest.raises(LockBusy) as caught:
            FileLock(path, timeout=0.2).acquire()
        assert time.monotonic() - started >= 0.2
        assert caught.value.holder == f"process {child.pid}"
        with pytest.raises(LockBusy):
            FileLock(path).acquire()  # timeout 0: no wait at all
    finally:
        child.kill()
        child.communicate()
    with FileLock(path) as lock:  # the kernel let go when the holder died
        assert lock.held
        assert path.read_text() == f"process {os.getpid()}"
    assert not lock.held


def test_acquire_waits_for_the_holder_to_let_go(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    child = _holder(path, 0.3)
    try:
        with FileLock(path, timeout=30.0) as lock:
            assert lock.held
    finally:
        child.communicate()
    assert child.returncode == 0


def test_one_process_cannot_take_its_own_lock_twice(tmp_path: Path) -> None:
    # flock is per open file: a second FileLock on the same path in this process waits
    # like any other holder would (the queue relies on it to refuse a second bot).
    first = FileLock(tmp_path / "q.lock")
    first.acquire()
    first.acquire()  # already held by this object: nothing to do
    with pytest.raises(LockBusy):
        FileLock(tmp_path / "q.lock").acquire()
    first.release()
    first.release()
    with FileLock(tmp_path / "q.lock") as second:
        assert second.held


def test_an_unopenable_lock_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        FileLock(tmp_path / "missing" / "x.lock").acquire()
