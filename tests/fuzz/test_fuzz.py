"""The fuzzing suite, short: a few hundred hostile inputs a target, chosen by hypothesis.

Each target (query strings, regexps, signature YAML, events JSON, stream-events lines,
log bytes) gets seeds for the generators of ``fuzz_targets`` (fast, and aimed past the
first check) and raw text or bytes from hypothesis itself (which shrinks a failure to a
small input). An input fails if recheck raises anything but the errors it reports on
purpose, or breaks a promise (``fuzz_targets.check_*``); hypothesis' deadline bounds the
time of each. ``benchmarks/fuzz.py`` runs the same checks on a million inputs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import fuzz_targets as ft
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Deadlines are generous: CI machines are shared, and a hostile regexp may spend its
# whole work budget (about a second). What they catch is the minutes of an unbounded path.
FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=10),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SEEDS = st.integers(0, 2**32 - 1)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    path = ft.scratch_dir()
    (path / "build").mkdir()
    yield path
    for sub in sorted(path.rglob("*"), reverse=True):
        sub.rmdir() if sub.is_dir() else sub.unlink()
    path.rmdir()


@FUZZ
@given(seed=SEEDS)
def test_generated_queries(seed: int) -> None:
    ft.check_query(ft.gen_query(random.Random(seed)), seed)


@FUZZ
@given(parts=st.lists(st.sampled_from(ft.QUERY_FRAGMENTS) | st.characters(), max_size=30))
def test_any_query_text(parts: list[str]) -> None:
    ft.check_query("".join(parts))


@settings(FUZZ, max_examples=150)
@given(seed=SEEDS)
def test_generated_regexps(seed: int) -> None:
    ft.check_regexp(ft.gen_regexp(random.Random(seed)), seed)


@FUZZ
@given(seed=SEEDS)
def test_generated_signature_files(seed: int, scratch: Path) -> None:
    ft.check_signature(ft.gen_signature(random.Random(seed)), scratch)


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: f"query: {t}".encode()))
def test_any_signature_bytes(raw: bytes, scratch: Path) -> None:
    ft.check_signature(raw, scratch)


@FUZZ
@given(seed=SEEDS)
def test_generated_event_files(seed: int) -> None:
    ft.check_events(ft.gen_events(random.Random(seed)))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_event_bytes(raw: bytes) -> None:
    ft.check_events(raw)


@FUZZ
@given(seed=SEEDS)
def test_generated_stream_events(seed: int) -> None:
    ft.check_stream_event(ft.gen_stream_event(random.Random(seed)))


@FUZZ
@given(line=st.text(max_size=200))
def test_any_stream_event_text(line: str) -> None:
    ft.check_stream_event(line)


@settings(FUZZ, max_examples=100)
@given(seed=SEEDS)
def test_generated_log_files(seed: int, scratch: Path) -> None:
    name, data = ft.gen_log(random.Random(seed))
    ft.check_log(name, data, scratch / "build")


@settings(FUZZ, max_examples=100)
@given(data=st.binary(max_size=400), name=st.sampled_from([r.pattern for r in ft.LOG_RULES]))
def test_any_log_bytes(data: bytes, name: str, scratch: Path) -> None:
    ft.check_log(name, data, scratch / "build")
