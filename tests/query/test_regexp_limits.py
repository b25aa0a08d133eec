"""Hostile regular expressions cost a bounded amount of work (issue 20, item 2).

Work is counted in Python function calls (``sys.settrace``), not seconds: the bound is the
same on any machine. ``CALL_CAP`` is several times what the work budget (``MAX_WORK``) lets
the worst pattern spend; before the fix, ``/(.*){999}/`` made millions of calls to hash
the same terms again and again before it was rejected.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest

from recheck.query import QuerySyntaxError, compile_query, regexp

CALL_CAP = 3_000_000


class TooMuchWork(Exception):
    pass


@contextmanager
def call_cap(cap: int = CALL_CAP) -> Iterator[None]:
    """Raise TooMuchWork once the code inside has made ``cap`` Python function calls."""
    calls = 0

    def trace(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > cap:
            raise TooMuchWork(f"more than {cap} calls")

    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(None)


def compiled_or_rejected(pattern: str) -> regexp.Regexp | None:
    """The pattern's automaton, or None if it is rejected as a RegexpError, within the cap."""
    with call_cap():
        try:
            return regexp.compile_regexp.__wrapped__(pattern)
        except regexp.RegexpError:
            return None


@pytest.mark.parametrize(
    "pattern",
    [
        "(.*){999}",
        "((.*){30}){30}",
        "(a?){999}",
        "(a*b*){999}",
        "a?" * 240,
        ".*a.{15}",
        "[a-z]*b[a-z]{20}",
        "(a{1000}){1000}",
        "a{1000}" * 30,
        "[a-z]{1,20}" * 20,
    ],
)
def test_hostile_pattern_is_compiled_or_rejected_with_bounded_work(pattern: str) -> None:
    compiled_or_rejected(pattern)


def test_a_repeated_star_is_one_state_as_in_lucene() -> None:
    compiled = compiled_or_rejected("(.*){999}")
    assert compiled is not None and len(compiled.table) == 1
    assert compiled.fullmatch("") and compiled.fullmatch("anything at all")


def test_ranges_of_repetitions_stay_linear() -> None:
    compiled = compiled_or_rejected("(a?){999}")
    assert compiled is not None
    assert compiled.fullmatch("a" * 999) and not compiled.fullmatch("a" * 1000)
    ranged = compiled_or_rejected("[a-z]{1,1000}")
    assert ranged is not None
    assert ranged.fullmatch("x" * 1000) and not ranged.fullmatch("")


def test_huge_expansion_is_refused_before_it_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built = 0
    real_cat = regexp.cat

    def counting_cat(a: regexp.Re, b: regexp.Re) -> regexp.Re:
        nonlocal built
        built += 1
        return real_cat(a, b)

    monkeypatch.setattr(regexp, "cat", counting_cat)
    with pytest.raises(regexp.RegexpError, match="too complex"):
        regexp.compile_regexp.__wrapped__("(a{1000}){1000}")
    assert built <= 2 * regexp.MAX_EXPANDED_SIZE


def test_a_query_of_ten_hostile_regexps_is_cheap() -> None:
    query = " OR ".join(f"/(.*){{{300 + i}}}/" for i in range(10))
    with call_cap():
        compiled = compile_query(query)
    assert compiled.matches({"message": "whatever"})


def test_too_complex_stays_a_query_error() -> None:
    with call_cap(), pytest.raises(QuerySyntaxError, match="too complex"):
        compile_query("message:/(a{1000}){1000}/")
    with call_cap(), pytest.raises(QuerySyntaxError, match="too complex"):
        compile_query("message:/(a*b*){999}/")
