"""Events into the event index's documents, as JSON text, made where the events are split.

Feeding tantivy from Python one call per field of every event (a document object, the
tokens, the stored JSON) was most of an ingest's time, all of it in the one process
that writes the index. Here an event, or a whole block of a file's events, becomes the
JSON text of its documents: a local build's forked splitting workers make them in
parallel (``recheck.logs.forkedsplit``), and the writer adds each with one call
(``IndexWriter.add_json``), parsed and tokenized by tantivy natively.

Since index version 3 a field's indexed text is its **words** (``index_words``): the
runs of letters and digits of the engine's tokens, lowercased. For ASCII text (nearly
all of a log) that is one bytes translation of the value, not a tokenization in Python:
the index only has to find a superset of what the engine matches, and a token is found
as the phrase of its words (``recheck.store.embedded.index``).

A document is written without its opening brace: the writer puts the ingest's
generation and the build's time first (``EventIndex.add_documents``), which the
workers, started before the ingest's transaction, do not know.
"""

from __future__ import annotations

import json
import re
from binascii import b2a_base64
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring, encode_basestring_ascii

from recheck.logs.build import BUILD_FIELDS
from recheck.logs.buildlogs import EventBlock
from recheck.models import EVENT_FIELDS, Event
from recheck.query import analysis

__all__ = [
    "INDEXED_FIELDS",
    "SCHEMA_FIELDS",
    "DocumentMaker",
    "block_rank",
    "index_words",
    "token_words",
]

SCHEMA_FIELDS: tuple[str, ...] = tuple(
    name for name in EVENT_FIELDS if name not in ("@timestamp", "received_at")
)
"""The schema's text fields: version 1 indexed them all, and an index keeps its schema."""
_SHARED_FIELDS = frozenset(("tags", "filename", *BUILD_FIELDS))
"""Fields with one value for a whole file or build: not indexed (see INDEX_VERSION)."""
INDEXED_FIELDS: tuple[str, ...] = tuple(
    name for name in SCHEMA_FIELDS if name not in _SHARED_FIELDS
)
"""Event fields searchable in the index; a query on any other field scans its window
(the engine decides every event of it), which is always right and only slower."""

_KEYS = {name: json.dumps(name) + ":" for name in INDEXED_FIELDS}
"""Each indexed field's JSON member name, with its colon."""
_CACHED_VALUE_CHARS = 64
"""Values this short (levels, modules, pids) repeat on many events of a build."""
_CACHED_VALUES = 100_000
"""Most values (and tag lists) whose JSON is kept at a time."""
_quoted = json.JSONEncoder(ensure_ascii=False).encode
_compact = json.JSONEncoder(separators=(",", ":")).encode
_string: Callable[[str], str] = encode_basestring
"""A string as JSON, as ``_quoted`` writes it."""
_ascii: Callable[[str], str] = encode_basestring_ascii
"""A string as JSON, as ``_compact`` writes it (C, without the encoder's dispatch)."""
_BLOCK_SHIFT = 32
"""A block's events are ranked ``number << 32 | position``: a block has fewer events."""


_ALNUM = b"abcdefghijklmnopqrstuvwxyz0123456789"
_WORDS = bytes(
    byte if byte in _ALNUM else byte + 32 if 65 <= byte <= 90 else 32 for byte in range(256)
)
"""ASCII into words: lowercase letters and digits kept, capitals lowercased, anything
else a space (between words)."""
_LONG_RUN = re.compile(rf"[A-Za-z0-9_:.',;]{{{analysis.MAX_TOKEN_LENGTH + 1}}}")
"""Characters a token can hold, more than fit in one: the analyzer cuts such a run into
tokens with no character between them, which only ``analysis.tokenize`` finds."""


def index_words(text: str) -> str:
    """The words the index keeps of a field value, separated by spaces: those of its
    tokens (``token_words``), in order. Each character a token of ASCII text holds is a
    letter or a digit, or a separator (``_`` ``:`` ``.`` ``'`` ``,`` ``;``) between two,
    and tokens are separated by other characters; so, unless a run of token characters
    is too long for one token, translating the text's bytes gives the same words."""
    if _translatable(text):
        return _ascii_words(text)
    return " ".join(" ".join(token_words(token)) for token in analysis.tokenize(text))


def token_words(token: str) -> list[str]:
    """The index's words for one of the engine's tokens: an ASCII token's runs of
    letters and digits (``10.0.0.1``: ``10 0 0 1``; ``nova_compute``: ``nova compute``);
    any other token whole (it never holds whitespace)."""
    return _ascii_words(token).split() if token.isascii() else [token]


def _translatable(text: str) -> bool:
    """Whether ``_ascii_words`` of ``text`` are its words (``index_words``)."""
    return text.isascii() and (len(text) <= analysis.MAX_TOKEN_LENGTH or not _LONG_RUN.search(text))


def _ascii_words(text: str) -> str:
    """ASCII ``text`` with every byte but a letter or digit a space, letters lowercased."""
    return text.encode("ascii").translate(_WORDS).decode("ascii")


def block_rank(number: int, position: int) -> int:
    """The rank in its build of the event at ``position`` (from 1) of block ``number``:
    ranks only order a build's events, so a worker ranks its blocks' events alone."""
    return number << _BLOCK_SHIFT | position


class DocumentMaker:
    """Makes the index documents of one build's events.

    Each document holds the event's indexed fields as their words (``index_words``)
    separated by spaces, which the index's tokenizer splits on (a word never holds
    whitespace), and ``_event``: ``[rank, id, event]`` as JSON.
    The build's fields, the same on every event, are left out of it (marked by a fourth
    element, ``1``) and put back from the catalog on reading (``EventIndex.events``).
    """

    def __init__(self, uuid: str, shared: Mapping[str, str]) -> None:
        """``shared``: the build's event fields, ``build_uuid`` (``uuid``) among them."""
        self._uuid = uuid
        self._shared = dict(shared)
        self._cache: dict[str, str] = {}
        self._members: dict[str, str] = {}
        self._lists: dict[tuple[str, ...], str] = {}

    def document(self, rank: int, event_id: str, event: Event) -> str:
        """The document of ``event`` as ``Store.ingest`` is given it (a stored event
        lacking ``build_uuid`` is given the build's)."""
        if "build_uuid" not in event:
            event = {**event, "build_uuid": self._uuid}
        if self._shared.items() <= event.items():
            return self._make(rank, event_id, event, self._shared, None)
        return self._make(rank, event_id, event, None, None)

    def block(self, block: EventBlock) -> list[str]:
        """The documents of a block's events, as ``document`` makes those of
        ``block.events()``, without merging the build's fields into each event only to
        leave them out again."""
        shared = self._shared
        filename = block.filename
        number = block.number
        if any(shared.get(name) != value for name, value in block.fields.items()):
            # Build fields that are not the stored build's: the general way.
            return [
                self.document(block_rank(number, position), event_id, event)
                for position, (event_id, event) in enumerate(block.events(), start=1)
            ]
        documents: list[str] = []
        for position, (line, event) in enumerate(block.split, start=1):
            rank = block_rank(number, position)
            if "filename" in event:  # replaced in place by the file's name: in general
                merged = dict(event)
                merged["filename"] = filename
                merged.update(block.fields)
                documents.append(self.document(rank, f"{filename}:{line}", merged))
            else:
                documents.append(self._make(rank, f"{filename}:{line}", event, shared, filename))
        return documents

    def _make(
        self,
        rank: int,
        event_id: str,
        event: Event,
        shared: Mapping[str, str] | None,
        filename: str | None,
    ) -> str:
        """The document of ``event``, its fields in ``shared`` left out of the stored
        event (None: all kept, unmarked), then ``filename`` added to it (None: not)."""
        indexed: list[str] = []
        stored: list[str] = []
        members = self._members
        for name, value in event.items():
            key = _KEYS.get(name)
            if key is not None and value is not None:
                words = self._indexed(value)
                if words:
                    indexed.append(key + words)
            if shared is not None and name in shared:
                continue
            member = members.get(name)
            if member is None:
                member = members[name] = _ascii(name) + ":"
            if type(value) is str:
                stored.append(member + _ascii(value))
            else:  # tags: the same list on every event of a file
                values = tuple(value)
                encoded = self._lists.get(values)
                if encoded is None:
                    if len(self._lists) >= _CACHED_VALUES:
                        self._lists.clear()
                    encoded = self._lists[values] = _compact(value)
                stored.append(member + encoded)
        if filename is not None:
            stored.append('"filename":' + _ascii(filename))
        fields = ",".join(stored)
        flag = ",1" if shared is not None else ""
        data = f"[{int(rank)},{_ascii(event_id)},{{{fields}}}{flag}]".encode()
        indexed.append(f'"_event":"{b2a_base64(data, newline=False).decode()}"}}')
        return ",".join(indexed)

    def _indexed(self, value: str | list[str]) -> str:
        """A field's words as JSON (a list for several values); "" for none."""
        if type(value) is str:
            cached = self._cache.get(value)
            if cached is None:
                cached = _json_words(value) if value else ""
                if len(value) <= _CACHED_VALUE_CHARS:  # levels, modules, pids: repeated
                    if len(self._cache) >= _CACHED_VALUES:
                        self._cache.clear()  # bounded memory, whatever the build
                    self._cache[value] = cached
            return cached
        texts = [index_words(text) for text in value if text]
        if not texts:
            return ""
        return _string(texts[0]) if len(texts) == 1 else _quoted(texts)


def _json_words(text: str) -> str:
    """``index_words(text)`` as a JSON string."""
    if _translatable(text):
        return '"' + _ascii_words(text) + '"'  # letters, digits and spaces: JSON as they are
    return _string(index_words(text))
