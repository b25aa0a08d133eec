"""`recheck events` writes each block's JSON lines at once: the same text as encoding
``{"id": ..., **event}`` of every event that ``EventBlock.events()`` gives, one by one."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from recheck.cli.events import _json_lines
from recheck.logs.buildlogs import EventBlock
from recheck.models import Event

_TEXT = st.lists(
    st.one_of(
        st.sampled_from(['"', "\\", "\x00", "}", "{", ", ", ": ", "%", "\n", "\u2028", "é"]),
        st.characters(),
    ),
    max_size=8,
).map("".join)
_KEYS = st.one_of(
    st.sampled_from(["message", "tags", "pid", "loglevel", "module", "filename", "id"]),
    st.sampled_from(["build_name", "project", "%d", '"'] + ["x"] * 4),
    _TEXT,
)
_VALUES = st.one_of(
    _TEXT,
    st.lists(_TEXT, max_size=4),
    st.just([{"a": "b"}, {"c": "d"}]),  # "}, {" inside a value: not an event boundary
    st.integers(),
    st.none(),
)


def one_by_one(block: EventBlock) -> str:
    encoder = json.JSONEncoder(ensure_ascii=False)
    return "".join(f"{encoder.encode({'id': i, **event})}\n" for i, event in block.events())


def copied(split: list[tuple[int, Event]]) -> list[tuple[int, Event]]:
    return [(number, json.loads(json.dumps(event))) for number, event in split]


@settings(max_examples=300, deadline=None)
@given(
    filename=_TEXT,
    events=st.lists(
        st.tuples(st.integers(1, 10**6), st.dictionaries(_KEYS, _VALUES, max_size=5)), max_size=6
    ),
    fields=st.dictionaries(_KEYS, _TEXT, max_size=3),
)
def test_block_lines_are_the_events_encoded_one_by_one(
    filename: str, events: list[tuple[int, dict[str, object]]], fields: dict[str, str]
) -> None:
    split: list[tuple[int, Event]] = events  # type: ignore[assignment]
    expected = one_by_one(EventBlock(filename, 0, copied(split), fields))
    assert _json_lines(EventBlock(filename, 0, copied(split), fields)) == expected


def test_split_events_with_build_fields() -> None:
    tags = ["screen", "oslofmt"]
    split: list[tuple[int, Event]] = [
        (1, {"pid": "12", "loglevel": "INFO", "module": "m", "message": 'a "b"\n c', "tags": tags}),
        (7, {"message": "x\x00, y", "tags": [*tags, "_grokparsefailure"]}),
    ]
    block = EventBlock("logs/screen-n-cpu.txt", 3, split, {"build_name": "tempest", "voting": "1"})
    lines = _json_lines(block).splitlines()
    assert [json.loads(line)["id"] for line in lines] == [
        "logs/screen-n-cpu.txt:1",
        "logs/screen-n-cpu.txt:7",
    ]
    assert lines[1] == (
        '{"id": "logs/screen-n-cpu.txt:7", "message": "x\\u0000, y", '
        '"tags": ["screen", "oslofmt", "_grokparsefailure"], '
        '"filename": "logs/screen-n-cpu.txt", "build_name": "tempest", "voting": "1"}'
    )


def test_fields_events_overwrite_in_place_keep_their_place() -> None:
    # events() writes the file name and the build's fields into each event: a key the
    # event has already keeps its place (and "id" from them replaces the id's value).
    plain: list[tuple[int, Event]] = [(3, {"message": "m", "tags": ["a"]})]
    owning: list[tuple[int, Event]] = [
        (3, {"filename": "own", "message": "m", "tags": ["a"]}),
        (4, {"message": "n", "tags": ["a"], "project": "p"}),
    ]
    for split in (plain, owning):
        for fields in ({}, {"project": "q"}, {"id": "x"}):
            block = EventBlock("f.txt", 0, copied(split), fields)
            expected = one_by_one(EventBlock("f.txt", 0, copied(split), fields))
            assert _json_lines(block) == expected, (split, fields)
    lines = _json_lines(EventBlock("f.txt", 0, copied(plain), {"id": "x"})).splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["x"]
