"""Two ingests of one build at once: the second waits for the first, then skips the build.

Issue 20, item 9: two ``recheck ingest`` of the same build both fetched and stored it.
Both ask ``has_build`` before either has stored it; the second ``ingest`` waits for the
first's write lock, sees the build stored since, and raises ``AlreadyStored`` without
reading (fetching) its events. Two real ``recheck ingest`` processes store it once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recheck.logs.build import Build
from recheck.models import Event
from recheck.store import EmbeddedStore
from recheck.store.embedded.store import AlreadyStored

ROOT = Path(__file__).resolve().parents[2]
EVENTS: list[tuple[str, Event]] = [("job-output.txt:1", {"message": "ERROR something broke"})]
WAIT_S = 0.3
"""How long a waiter is shown to still be waiting: any time shows it, no race decides."""


def test_an_ingest_after_another_process_stored_the_build_skips_it(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path) as first, EmbeddedStore(tmp_path) as second:
        assert first.has_build("b1") is False
        assert second.has_build("b1") is False  # both start before either has stored it
        first.ingest(Build(build_uuid="b1"), EVENTS, [])
        read: list[int] = []

        def events() -> Iterator[tuple[str, Event]]:
            read.append(1)  # reading them would fetch the logs again
            yield from EVENTS

        with pytest.raises(AlreadyStored, match=r"already stored.*--force ingests it again"):
            second.ingest(Build(build_uuid="b1"), events(), [])
        assert read == []
        assert len(list(second.builds())) == 1


def test_the_second_waits_for_the_first_to_finish_writing(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path) as first, EmbeddedStore(tmp_path) as second:
        assert first.has_build("b1") is False
        writing, release, asked = threading.Event(), threading.Event(), threading.Event()

        def slow_events() -> Iterator[tuple[str, Event]]:
            writing.set()  # first holds the write lock from here
            release.wait(30)
            yield from EVENTS

        thread = threading.Thread(
            target=lambda: first.ingest(Build(build_uuid="b1"), slow_events(), []), daemon=True
        )
        thread.start()
        assert writing.wait(30)
        outcome: list[BaseException] = []

        def second_ingest() -> None:
            # Asked and ingested on one thread, as `recheck ingest` does.
            assert second.has_build("b1") is False  # first has not stored it yet
            asked.set()
            try:
                second.ingest(Build(build_uuid="b1"), EVENTS, [])
            except AlreadyStored as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=second_ingest, daemon=True)
        waiter.start()
        assert asked.wait(30)
        waiter.join(WAIT_S)
        assert waiter.is_alive() and outcome == []  # waits while first writes
        release.set()
        thread.join(30)
        waiter.join(30)
        assert len(outcome) == 1


def test_force_without_asking_replaces_the_build(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path) as first, EmbeddedStore(tmp_path) as second:
        first.ingest(Build(build_uuid="b1"), EVENTS, [])
        second.ingest(Build(build_uuid="b1", build_status="FAILURE"), EVENTS, [])  # --force
        [stored] = list(first.builds())
        assert stored.build.build_status == "FAILURE"


def test_two_ingest_commands_of_one_build_store_it_once(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    # Dated today: retention (run after an ingest) would drop an old build at once.
    today = datetime.now(UTC).strftime("%Y-%m-%d 00:00")
    lines = [f"{today}:{n % 60:02d}.000000 | line {n}" for n in range(20000)]
    (build / "job-output.txt").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "RECHECK_HOME": str(tmp_path / "store")}
    command = [
        sys.executable, "-m", "recheck", "ingest", str(build),
        "--build-uuid", "same-build", "--queries", str(ROOT / "queries"),
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    summaries = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    # The second is reported by its "already stored" error; cli/ingest.py counts an
    # AlreadyStored as failed until it maps it to "skipped".
    assert summaries[-1] == "1 build: 1 ingested, 0 skipped, 0 failed", outputs
    assert summaries[0] != summaries[-1], outputs
    assert any("already stored" in out + err for out, err in outputs), outputs
    with EmbeddedStore(tmp_path / "store") as store:
        [stored] = list(store.builds())
        assert stored.build.build_uuid == "same-build"
