"""Exponential backoff with jitter, in one object: every retry and reconnect asks a ``Backoff``.

Waits start at ``initial`` seconds and grow by ``factor`` up to ``maximum``, each scaled
by a random factor in [1 - jitter, 1] so that many clients do not all come back at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """How long to wait before attempt ``n``; ``reset`` after a success."""

    initial: float = 1.0
    maximum: float = 300.0
    factor: float = 2.0
    jitter: float = 0.5
    attempts: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0 for the first retry)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * self._random.random())

    def next(self) -> float:
        """The wait before the next attempt; counts the attempt."""
        wait = self.delay(self.attempts)
        self.attempts += 1
        return wait

    def reset(self) -> None:
        """Start again from ``initial`` (the connection works again)."""
        self.attempts = 0
