"""The exception tree drawn in recheck.lib.errors holds: each named error is a RecheckError."""

from __future__ import annotations

import importlib
import re

import pytest

from recheck.lib import errors
from recheck.lib.errors import RecheckError

# "Name   what (module)" lines of the drawing; a name in parentheses is listed elsewhere too.
_DRAWN = re.findall(r"[├└]── \(?(\w+)(?:, (\w+))?\)?\s+.*?\(([\w.]+)", errors.__doc__ or "")


@pytest.mark.parametrize("names,module", [((a, b), m) for a, b, m in _DRAWN])
def test_every_error_in_the_drawing_is_a_recheck_error(names: tuple[str, str], module: str) -> None:
    candidates = [module, *(f"{module}.{leaf}" for leaf in ("cluster", "errors"))]
    found = []
    for name in filter(None, names):
        for candidate in candidates:
            try:
                mod = importlib.import_module(f"recheck.{candidate}")
            except ModuleNotFoundError:
                continue
            if hasattr(mod, name):
                found.append(getattr(mod, name))
                break
    assert found, f"{names} not found in recheck.{module}"
    assert all(issubclass(cls, RecheckError) for cls in found)


def test_the_drawing_names_the_errors_of_each_stage() -> None:
    assert len(_DRAWN) >= 16
