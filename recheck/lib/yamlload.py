"""Reading the project's own YAML files (signatures, bot.yaml) fast, with clear errors.

libyaml's loader, when PyYAML has it, reads 1,000 signature files ~5x faster than the
pure-Python one. Its messages differ, so a file it rejects is read again by the
pure-Python loader, whose messages (line, column, problem) are the ones users see and
the tests pin. Both are PyYAML's safe loaders: no tag makes an arbitrary object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import yaml

__all__ = ["FAST_LOADER", "parse_with_fast_loader"]

FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_Parsed = TypeVar("_Parsed")


def parse_with_fast_loader(
    parse: Callable[[type[yaml.SafeLoader]], _Parsed],
    rejected: tuple[type[Exception], ...],
) -> _Parsed:
    """``parse(loader)`` with libyaml's loader, and with the pure-Python loader if that
    one raises one of ``rejected`` (or if there is no libyaml)."""
    if FAST_LOADER is not yaml.SafeLoader:
        try:
            return parse(FAST_LOADER)
        except rejected:
            pass
    return parse(yaml.SafeLoader)
