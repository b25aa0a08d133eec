"""The value types bot.yaml's schema is written with: each checks one kind of setting.

Each is an ``Annotated`` type whose validator takes the value as YAML parsed it (no
coercion: ``"5"`` is not a number) and refuses it with a ``PydanticCustomError`` of type
``recheck``. The error's message holds ``{name}``, which ``recheck.config.document``
replaces with the setting's dotted name (``fetch.read_timeout``) and prefixes with the
file, line and column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

__all__ = [
    "Bool",
    "Days",
    "Host",
    "Line",
    "NonNegativeSeconds",
    "PositiveNumber",
    "PositiveSeconds",
    "Regex",
    "Text",
    "TextOrEmpty",
    "UserPath",
    "Word",
    "choice",
    "fail",
    "kind",
    "whole",
    "words",
]

# A host name (letters, digits, '-', '.', '_' as some internal hosts use), an IPv4
# address, or an IPv6 address without brackets; optionally '*.' before a domain.
_HOST = re.compile(
    r"(\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|[0-9A-Fa-f:]+:[0-9A-Fa-f:.]*"
)
_WORD = re.compile(r"[^\s\x00-\x1f\x7f]{1,100}")


def fail(message: str, *, key: str | None = None, at_key: bool = False) -> NoReturn:
    """Refuse a value: ``message`` holds ``{name}``; ``key`` points the error at that key
    of the mapping being checked (its value, or the key itself when ``at_key``)."""
    context: dict[str, Any] = {"message": message}
    if key is not None:
        context["key"] = key
        context["at_key"] = at_key
    raise PydanticCustomError("recheck", "{message}", context)


def kind(value: object) -> str:
    """Describe a parsed value the way the user wrote it: 'a list', 'the text "x"'..."""
    kinds: dict[type, str] = {dict: "a mapping", list: "a list", type(None): "nothing (null)"}
    if type(value) in kinds:
        return kinds[type(value)]
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{type(value).__name__} {value!r}"


def _number(value: object) -> float | None:
    """The finite number YAML read, else None (true and false are not numbers)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _positive_seconds(value: object) -> float:
    number = _number(value)
    if number is None or number <= 0:
        fail(f"{{name}} must be a number of seconds above 0, found {kind(value)}")
    return number


def _seconds(value: object) -> float:
    number = _number(value)
    if number is None or number < 0:
        fail(f"{{name}} must be a number of seconds, 0 or more, found {kind(value)}")
    return number


def _positive_number(value: object) -> float:
    number = _number(value)
    if number is None or number <= 0:
        fail(f"{{name}} must be a number above 0, found {kind(value)}")
    return number


def _days(value: object) -> float:
    number = _number(value)
    if number is None or number <= 0:
        fail(f"{{name}} must be a number of days above 0, found {kind(value)}")
    return number


def whole(low: int, high: int) -> Callable[[object], int]:
    """A whole number from ``low`` to ``high``."""

    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            fail(f"{{name}} must be a whole number from {low} to {high}, found {kind(value)}")
        return value

    return check


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        fail(f"{{name}} must be true or false, found {kind(value)}")
    return value


def _text(value: object) -> str:
    """Text, trimmed; a number is taken as written (a port, a version)."""
    if _number(value) is not None:
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        fail(f"{{name}} must be text, found {kind(value)}")
    return value.strip()


def _text_or_empty(value: object) -> str:
    """Text as written (a comment's paragraph): may be empty, is not trimmed."""
    if not isinstance(value, str):
        fail(f"{{name}} must be text, found {kind(value)}")
    return value


def _line(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\0"):
        fail(f"{{name}} must be one line of text, found {kind(value)}")
    return value.strip()


def _word(value: object) -> str:
    if not isinstance(value, str) or not _WORD.fullmatch(value):
        fail(f"{{name}} must be one word without spaces, found {kind(value)}")
    return value


def _path(value: object) -> Path:
    """A path as written, ``~`` expanded; made relative to bot.yaml's directory later."""
    if not isinstance(value, str) or not value.strip():
        fail(f"{{name}} must be a file path, found {kind(value)}")
    return Path(value.strip()).expanduser()


def _regex(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        fail(f"{{name}} must be a regular expression, found {kind(value)}")
    try:
        re.compile(value.strip())
    except re.error as exc:
        fail(f"{{name}} is not a valid regular expression: {exc}; fix it")
    return value.strip()


def _host(value: object) -> str:
    if not isinstance(value, str) or not _HOST.fullmatch(value.strip()):
        fail(
            "each {name} must be a host name such as logs.example.org, or *.example.org "
            f"for all its subdomains (no scheme, port or path), found {kind(value)}"
        )
    return value.strip().lower()


def choice(*choices: str) -> Callable[[object], str]:
    """One of ``choices``, in any case."""

    def check(value: object) -> str:
        text = _text(value).lower()
        if text not in choices:
            fail(f"{{name}} must be one of {', '.join(choices)}, found {text!r}")
        return text

    return check


def words(*, empty: bool, word: bool = False) -> Callable[[object], tuple[str, ...]]:
    """A list of names (one name alone is a list of one); ``word``: without spaces."""

    def check(value: object) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not (empty or items):
            fail(f"{{name}} must be a list of names such as [nova, all], found {kind(value)}")
        names: list[str] = []
        for item in items:
            if not isinstance(item, str) or not item.strip():
                fail(f"{{name}} must be a list of names such as [nova, all], found {kind(value)}")
            names.append(_word(item) if word else item.strip())
        return tuple(names)

    return check


Bool = Annotated[bool, BeforeValidator(_bool)]
PositiveSeconds = Annotated[float, BeforeValidator(_positive_seconds)]
NonNegativeSeconds = Annotated[float, BeforeValidator(_seconds)]
Days = Annotated[float, BeforeValidator(_days)]
PositiveNumber = Annotated[float, BeforeValidator(_positive_number)]
Text = Annotated[str, BeforeValidator(_text)]
TextOrEmpty = Annotated[str, BeforeValidator(_text_or_empty)]
Line = Annotated[str, BeforeValidator(_line)]
Word = Annotated[str, BeforeValidator(_word)]
UserPath = Annotated[Path, BeforeValidator(_path)]
Regex = Annotated[str, BeforeValidator(_regex)]
Host = Annotated[str, BeforeValidator(_host)]
