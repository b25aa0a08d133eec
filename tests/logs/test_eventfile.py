"""Events files (JSON lines) as ``recheck match`` reads them, hostile lines included
(issue 20, item 5): an error names the line, and nothing unprintable gets through."""

from __future__ import annotations

import json

import pytest

from recheck.logs.eventfile import EventFileError, iter_events


def _read(*lines: str | bytes) -> list[tuple[str, dict[str, object]]]:
    return [(i, dict(e)) for i, e in iter_events(list(lines), "events.jsonl")]


def test_fields_are_text_as_elasticsearch_indexes_them() -> None:
    line = '{"id": 7, "message": "a", "n": 1.50, "ok": true, "none": null, "tags": ["x", 2]}'
    assert _read(line) == [("7", {"message": "a", "n": "1.50", "ok": "true", "tags": ["x", "2"]})]


@pytest.mark.parametrize("raw", [False, True])
def test_a_lone_surrogate_escape_is_read_as_a_replacement_character(raw: bool) -> None:
    line = r'{"id": "e\udfff", "message": "a \udfff b", "tags": ["\ud800"], "f\udc00": "x"}'
    [(event_id, event)] = _read(line.encode() if raw else line)
    assert event_id == "e\ufffd"
    assert event == {"message": "a \ufffd b", "tags": ["\ufffd"], "f\ufffd": "x"}
    json.dumps(event, ensure_ascii=False).encode("utf-8")  # printable, as match prints it


def test_an_escaped_surrogate_pair_is_one_character() -> None:
    [(_, event)] = _read(r'{"id": "e", "message": "\ud83d\ude00"}')
    assert event == {"message": "\U0001f600"}


def test_text_lines_with_raw_surrogates_are_cleaned_too() -> None:
    # A text stream decoded with surrogateescape holds lone surrogates without escapes.
    [(_, event)] = _read('{"id": "e", "message": "a \udcff b"}')
    assert event == {"message": "a \ufffd b"}


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deep_nesting_is_an_error_naming_the_line(opener: str, closer: str, depth: int) -> None:
    deep = '{"id": "d", "message": ' + opener * depth + "1" + closer * depth + "}"
    with pytest.raises(EventFileError) as caught:
        _read('{"id": "e1", "message": "ok"}', "", deep)
    assert caught.value.line == 3
    assert "nested too deeply" in str(caught.value) or "must be text" in str(caught.value)


def test_invalid_utf8_names_line_and_byte() -> None:
    with pytest.raises(EventFileError, match=r"events.jsonl:2: not valid UTF-8 at byte 5"):
        _read(b'{"id": "a"}', b'{"id\xff": "b"}')
