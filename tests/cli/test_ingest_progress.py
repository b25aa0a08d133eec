"""`recheck ingest`'s progress bar on a terminal starts no thread: -j forks its workers
only from a process without threads (recheck.logs.forkedsplit), so a bar refreshed by a
thread of its own silently turned a terminal's ingest into a one-process one."""

from __future__ import annotations

import io
import sys
import threading

import pytest

from recheck.cli.ingest import _IngestProgress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_on_a_terminal_runs_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    before = threading.active_count()
    with _IngestProgress(2) as progress:
        progress.start("build-1")
        progress.events(12_345)
        assert threading.active_count() == before
        progress.advance()
    assert "12,345 events" in terminal.getvalue()
