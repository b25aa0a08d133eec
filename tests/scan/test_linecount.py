"""Line breaks are counted the same with numpy and without it, at any offsets."""

from __future__ import annotations

import random

import pytest

from recheck.scan import linecount
from recheck.scan.linecount import LONG_BYTES, count_newlines


@pytest.mark.parametrize("with_numpy", [True, False])
def test_long_and_short_stretches_count_as_bytes_count_does(
    monkeypatch: pytest.MonkeyPatch, with_numpy: bool
) -> None:
    if with_numpy:
        monkeypatch.setattr(linecount, "NUMPY_AFTER_BYTES", 0)
    else:
        monkeypatch.setattr(linecount, "_looked_for_numpy", True)
        monkeypatch.setattr(linecount, "_numpy", None)
    rng = random.Random(7)
    letters = bytes(b"ab\n\r"[byte % 4] for byte in range(256))
    data = bytearray(rng.randbytes(LONG_BYTES * 2 + 12345).translate(letters))
    for start, end in [(0, len(data)), (3, len(data) - 5), (LONG_BYTES - 1, len(data)),
                       (10, 20), (0, LONG_BYTES), (len(data), len(data))]:  # fmt: skip
        assert count_newlines(data, start, end) == data.count(b"\n", start, end)
        assert count_newlines(bytes(data), start, end) == data.count(b"\n", start, end)
    data.extend(b"\n")  # no view of the buffer is left behind: it can still grow
