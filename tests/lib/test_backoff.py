"""The one backoff policy (recheck.lib.backoff): growth, bound, jitter, reset."""

from __future__ import annotations

import math

from recheck.lib.backoff import Backoff


def test_backoff_grows_to_its_bound() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 1.0
    jittery = Backoff(initial=4.0, maximum=4.0, jitter=0.5)
    assert all(2.0 <= jittery.delay(n) <= 4.0 for n in range(50))


def test_an_unbounded_backoff_doubles_within_its_jitter() -> None:
    # The fetcher's retries: fetch.backoff seconds, then twice as long each time.
    backoff = Backoff(initial=1.5, maximum=math.inf)
    for attempt in range(20):
        ceiling = 1.5 * 2.0**attempt
        assert all(ceiling / 2 <= backoff.delay(attempt) <= ceiling for _ in range(20))
    assert Backoff(initial=0.0, maximum=math.inf).delay(5) == 0.0
