"""Another run of the same job, made from a real log: what a passing build of it looks like.

``other_run`` rewrites what differs between two runs of a job (timestamps, request and
instance UUIDs, hex ids, pids, durations, IP addresses, temporary paths, node names) with
fresh values, keeping every line's words; the tests then drop the lines a human would
mark as the failure's cause from it, and the real log, with them, is the failed build.
"""

from __future__ import annotations

import random
import re

_VOLATILE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|/tmp/tmp[\w]+"
    r"|\b[0-9a-f]{7,40}\b"
    r"|\d+"
)


def other_run(text: str, seed: int = 1) -> str:
    """``text`` as another run of the same job would write it."""
    rng = random.Random(seed)

    def fresh(match: re.Match[str]) -> str:
        value = match.group(0)
        if value.startswith("/tmp/tmp"):
            return "/tmp/tmp" + "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz_0123456789") for _ in range(8)
            )
        if value.isdigit():
            # Numbers change, and sometimes their width (a pid of 4 digits, then 5).
            width = max(1, len(value) + rng.choice((0, 0, 0, 1, -1)))
            return "".join(rng.choice("0123456789") for _ in range(width))
        return "".join(rng.choice("0123456789abcdef") if c != "-" else c for c in value)

    return _VOLATILE.sub(fresh, text)


def without(text: str, numbers: set[int]) -> str:
    """``text`` without the lines whose (1-based) numbers are given."""
    lines = text.splitlines(keepends=True)
    return "".join(line for number, line in enumerate(lines, 1) if number not in numbers)
