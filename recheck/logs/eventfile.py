"""Read events from JSON lines: one object per line with an ``"id"`` and its fields.

Field values are text or lists of text, as Elasticsearch indexes them: numbers and
booleans are read as the text they were written as (``1`` -> ``"1"``), ``null`` means
the field is absent. Anything else (a nested object, a list of lists) cannot be searched
the way a signature expects, so it is an error naming the line rather than a silent guess.
A lone surrogate escape (``"\\udfff"``) is read as U+FFFD, as Lucene indexes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from recheck.lib.errors import RecheckError
from recheck.models import Event

__all__ = ["EventFileError", "iter_events", "replace_surrogates"]


class EventFileError(RecheckError, ValueError):
    """A line of an events file that cannot be used; ``line`` is 1-based."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line
        self.message = message


def iter_events(lines: Iterable[bytes | str], source: str) -> Iterator[tuple[str, Event]]:
    """Parse JSON lines into (event id, event) pairs, lazily; blank lines are skipped.

    ``lines`` may be raw bytes (as read from a file opened in binary mode, so that a bad
    byte is reported with its line number) or text. ``source`` names the input in error
    messages (a path, or ``<stdin>``).
    """
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EventFileError(
                    source,
                    number,
                    f"not valid UTF-8 at byte {exc.start + 1}; write events as UTF-8",
                ) from None
        else:
            line = raw
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark is not part of the JSON
        if not line.strip():
            continue
        try:
            # Keep numbers as the exact text written: 1.50 stays "1.50", as Elasticsearch
            # would index it in a text field, instead of becoming the float 1.5.
            obj = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
        except json.JSONDecodeError as exc:
            raise EventFileError(
                source,
                number,
                f"invalid JSON at column {exc.colno}: {exc.msg}; "
                'each line must be one JSON object like {"id": "e1", "message": "..."}',
            ) from None
        except RecursionError:
            # No event nests (values are text or lists of text): the line is simply bad.
            raise EventFileError(
                source, number, "JSON nested too deeply; values must be text or lists of text"
            ) from None
        event_id, event = _event(obj, source, number)
        if "\\u" in line or (not isinstance(raw, bytes) and _SURROGATE.search(line)):
            event_id, event = replace_surrogates(event_id), _without_surrogates(event)
        yield event_id, event


_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> str:
    """Each lone surrogate as U+FFFD, as Lucene's UTF-8 encoding of a Java string does:
    one cannot be written as UTF-8 (scanned, printed, stored)."""
    return _SURROGATE.sub("\ufffd", text)


def _without_surrogates(event: Event) -> Event:
    return {
        replace_surrogates(name): (
            replace_surrogates(value)
            if isinstance(value, str)
            else [replace_surrogates(v) for v in value]
        )
        for name, value in event.items()
    }


def _event(obj: Any, source: str, number: int) -> tuple[str, Event]:
    if not isinstance(obj, dict):
        raise EventFileError(source, number, f"expected a JSON object, found {_json_kind(obj)}")
    event_id = obj.pop("id", None)
    if event_id is None:
        raise EventFileError(source, number, 'the event has no "id"; add "id": "<unique id>"')
    if not isinstance(event_id, str):
        raise EventFileError(
            source, number, f'"id" must be a string or a number, found {_json_kind(event_id)}'
        )
    event: Event = {}
    for name, value in obj.items():
        text = _text(value)
        if text is not None:
            event[name] = text
        elif value is None:
            continue  # Elasticsearch indexes nothing for null: the field is missing.
        elif isinstance(value, list) and all(v is None or _text(v) is not None for v in value):
            texts = [t for t in (_text(v) for v in value) if t is not None]
            if texts:  # like null, an empty list indexes nothing: the field is missing
                event[name] = texts
        else:
            raise EventFileError(
                source,
                number,
                f"field {name!r} must be text or a list of texts, found {_json_kind(value)}; "
                "flatten nested values into separate fields",
            )
    return event_id, event


def _text(value: Any) -> str | None:
    """The searchable text of a scalar JSON value (numbers already arrive as text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list holding lists or objects"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return repr(value)
