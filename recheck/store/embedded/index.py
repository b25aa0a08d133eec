"""The embedded store's event index: every stored event in tantivy, to find candidates.

The index never decides a match: it narrows millions of events down to the few a query
could match, and the query engine (``Query.matches``) decides each of those. That only
needs the index's answer to be a superset of the engine's, which holds because each field
is indexed as the engine's own tokens (``recheck.query.analysis``), one per word.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import tantivy

from recheck.models import Event
from recheck.query.nodes import Bool, MatchNone, Node, Phrase, Term, TokenTest
from recheck.store.base import StoreError
from recheck.store.embedded.documents import INDEXED_FIELDS, SCHEMA_FIELDS, token_words

__all__ = [
    "INDEXED_FIELDS",
    "INDEX_VERSION",
    "SCHEMA",
    "WORDS_VERSION",
    "EventIndex",
    "IndexedEvent",
    "candidate_query",
]

INDEX_VERSION = 3
"""Layout of the index documents; bump it (and rebuild or migrate) when the schema changes.

Version 3 indexes a field's words (``documents.index_words``: the runs of letters and
digits of its tokens) instead of its tokens: for ASCII text one bytes translation
instead of a tokenization in Python, which was the largest part of an ingest. A token
is found as the phrase of its words (``10.0.0.1``: ``10 0 0 1``). A store that holds
documents of an older version finds its tokens both ways (``candidate_query``'s
``legacy``) until those are gone; a recheck knowing only version 2 refuses a version 3
store, whose new events it would not find by such tokens.

Version 2 stopped indexing the fields every event of a file or build shares (``tags``,
``filename``, the build's fields): half of every document's terms, for conditions that
never narrow a search much. A version 1 index is read as it is (its extra terms are
never asked for); a recheck knowing only version 1 refuses a version 2 store, whose
new events it would not find by those fields."""

WORDS_VERSION = 3
"""The first version whose documents hold words (see ``INDEX_VERSION``)."""

_TOKENIZER = "recheck_tokens"
# The analysis already happened in Python; tantivy only splits on the spaces we put
# between words (or, in documents of versions 1 and 2, tokens: neither ever holds
# whitespace). Its whitespace tokenizer gives the same terms as the regex "[^ ]+" of
# index versions 1 and 2 did, at about three times the speed (tests/store/test_documents.py).
_ANALYZER = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()

WRITER_HEAP_BYTES = 64_000_000
"""Memory the index writer buffers before it flushes a segment."""
WRITER_THREADS = 1
"""Indexing threads: one. Two let ``add_json`` wait less for its indexing thread, but
on a 1 GiB build gained nothing measurable and took the ingest's peak RSS from 254 to
459 MiB (more, smaller segments merged); an ingest also leaves the other core to readers."""
PAGE = 20_000
"""Most documents fetched from one search; larger result sets are split by generation."""

IndexedEvent = tuple[int, int, str, Event]
"""(generation, rank in its build, event id, event) as stored."""


def _schema() -> tantivy.Schema:
    # Each document holds:
    #
    # - the searchable fields (``INDEXED_FIELDS``; the schema has the fields version 1
    #   indexed too), as the engine's tokens, with positions;
    # - ``_gen``: the **generation** of the ingest that wrote it. Generations are never
    #   reused, and the catalog names the one generation of each build that readers may
    #   see: events of an unfinished or replaced ingest are invisible until deleted;
    # - ``_time``: the build's time in seconds, for retention and time windows;
    # - ``_event``: the event as JSON (with its id and its rank in the build), so it comes
    #   back with the fields and values it was ingested with. The build's fields, the same
    #   on every event of a build, are left out when the event's all equal the build's
    #   (marked by a fourth element) and put back, last, from the catalog on reading: they
    #   were half of every stored event.
    builder = tantivy.SchemaBuilder()
    for name in SCHEMA_FIELDS:
        builder.add_text_field(name, tokenizer_name=_TOKENIZER, index_option="position")
    builder.add_unsigned_field("_gen", indexed=True, fast=True)
    builder.add_integer_field("_time", indexed=True, fast=True)
    builder.add_bytes_field("_event", stored=True)
    return builder.build()


SCHEMA = _schema()
"""The schema of every event index (fixed by ``INDEX_VERSION``)."""


class EventIndex:
    """The tantivy index in one directory: add events, delete generations, find candidates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.schema = SCHEMA
        try:
            path.mkdir(parents=True, exist_ok=True)
            if tantivy.Index.exists(str(path)) and not tantivy.Index.is_compatible(str(path)):
                raise StoreError(
                    path,
                    "the event index was written by a newer tantivy than this recheck "
                    "uses; upgrade recheck, or delete this directory and ingest the "
                    "builds again",
                )
            self._index = tantivy.Index(self.schema, path=str(path), reuse=True)
        except StoreError:
            raise
        except (OSError, ValueError) as exc:
            raise StoreError(
                path,
                f"cannot open the event index ({exc}); if it is damaged, delete this "
                "directory and ingest the builds again",
            ) from None
        self._index.register_tokenizer(_TOKENIZER, _ANALYZER)
        # Readers reload explicitly before each search (see ``searcher``): no watcher
        # thread polling meta.json in every process that opens the store.
        self._index.config_reader(reload_policy="Manual")

    # ------------------------------------------------------------------ writing

    @contextmanager
    def writer(self) -> Iterator[tantivy.IndexWriter]:
        """The index writer for one write operation; rolled back if the block raises.

        The caller holds the store's write lock. On a normal exit the writer waits
        for its background merges, so segments keep being merged even though each
        write operation has a writer of its own.
        """
        try:
            writer = self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=WRITER_THREADS)
        except ValueError as exc:
            raise StoreError(
                self.path,
                f"cannot write to the event index ({exc}); is another recheck "
                "writing to the same store outside its lock?",
            ) from None
        try:
            yield writer
        except BaseException:
            writer.rollback()
            raise
        writer.wait_merging_threads()

    @staticmethod
    def add_documents(
        writer: tantivy.IndexWriter, generation: int, time: int, documents: Iterable[str]
    ) -> int:
        """Add documents made by ``DocumentMaker`` as events of generation ``generation``
        at ``time`` (not visible until committed); returns how many."""
        head = f'{{"_gen":{int(generation)},"_time":{int(time)},'
        add = writer.add_json
        count = 0
        for count, document in enumerate(documents, start=1):  # noqa: B007
            add(head + document)
        return count

    def delete_generations(self, writer: tantivy.IndexWriter, generations: Sequence[int]) -> None:
        """Delete every event of these generations (at the writer's next commit)."""
        if generations:
            writer.delete_documents_by_query(
                tantivy.Query.term_set_query(self.schema, "_gen", list(generations))
            )

    def count_before(self, time: int) -> int:
        """How many events (visible or not) have a time before ``time``."""
        return self._count(self._before(time))

    def delete_before(self, writer: tantivy.IndexWriter, time: int) -> None:
        """Delete every event with a time before ``time`` (at the writer's next commit)."""
        writer.delete_documents_by_query(self._before(time))

    def _before(self, time: int) -> tantivy.Query:
        return tantivy.Query.range_query(
            self.schema, "_time", tantivy.FieldType.Integer, None, time, include_upper=False
        )

    # ------------------------------------------------------------------ reading

    def searcher(self) -> tantivy.Searcher:
        """A searcher on the last commit: a consistent snapshot for one whole search."""
        self._index.reload()
        return self._index.searcher()

    def _count(self, query: tantivy.Query) -> int:
        return _hit_count(self.searcher(), query)

    def num_docs(self) -> int:
        """Documents in the last commit, visible or not (for benchmarks and tests)."""
        return int(self.searcher().num_docs)

    def events(
        self,
        generations: Mapping[int, Mapping[str, str]],
        candidates: tantivy.Query | None,
        searcher: tantivy.Searcher | None = None,
    ) -> Iterator[IndexedEvent]:
        """Events of ``generations`` (each with its build's fields, left out of the
        stored event by ``DocumentMaker``, put back) that
        ``candidates`` (None: all) selects.

        Ordered by the order of ``generations``, then by rank in the build. Large result
        sets are fetched a page at a time (split by generation) to bound memory.
        """
        if not generations:
            return
        searcher = searcher or self.searcher()
        for page in self._pages(searcher, list(generations), candidates):
            yield from self._page_events(searcher, generations, *page)

    def _pages(
        self,
        searcher: tantivy.Searcher,
        generations: list[int],
        candidates: tantivy.Query | None,
    ) -> Iterator[tuple[list[int], tantivy.Query, int]]:
        """``(generations, query, hits)`` of each page: consecutive generations whose
        candidates number at most PAGE (or one generation, however many it has)."""
        query = tantivy.Query.term_set_query(self.schema, "_gen", generations)
        if candidates is not None:
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.Must, candidates)]
            )
        count = _hit_count(searcher, query)
        if count == 0:
            return
        if count > PAGE and len(generations) > 1:
            middle = len(generations) // 2
            yield from self._pages(searcher, generations[:middle], candidates)
            yield from self._pages(searcher, generations[middle:], candidates)
            return
        yield generations, query, count

    def _page_events(
        self,
        searcher: tantivy.Searcher,
        shared: Mapping[int, Mapping[str, str]],
        generations: list[int],
        query: tantivy.Query,
        count: int,
    ) -> list[IndexedEvent]:
        """One page's events, in the order of ``generations``, then by rank."""
        found: list[IndexedEvent] = []
        addresses = [address for _, address in searcher.search(query, limit=count).hits]
        gens = searcher.fast_field_values("_gen", addresses)
        for gen, address in zip(gens, addresses, strict=True):
            generation = int(cast(int, gen))
            data = cast(bytes, searcher.doc(address).get_first("_event"))
            stored = json.loads(data.decode("utf-8"))  # str: json skips sniffing the encoding
            event = stored[2]
            if len(stored) > 3:  # the build's fields were left out: put them back
                event.update(shared[generation])
            found.append((generation, stored[0], stored[1], event))
        order = {generation: index for index, generation in enumerate(generations)}
        found.sort(key=lambda item: (order[item[0]], item[1]))
        return found


_INDEXED = frozenset(INDEXED_FIELDS)


@functools.lru_cache(maxsize=4096)
def candidate_query(root: Node, legacy: bool = False) -> tantivy.Query | None:
    """A tantivy query that every event ``root`` matches also matches; None if none.

    None means "no constraint": the caller scans every event of its window.

    Required terms and phrases map to tantivy phrase (or term) queries of their words;
    wildcard, prefix and regexp terms to a regex over the term dictionary built from the
    literal every matching token contains; anything else (fuzzy, ranges, ``_exists_``,
    negations, unindexed fields) adds no constraint, which is always correct and only
    slower. ``legacy``: the events searched include documents of index version 1 or 2,
    whose terms are tokens, not words: each condition also finds those.
    Cached by query: a wildcard's regex over the term dictionary takes milliseconds to
    build, and the same signatures are translated again for every build classified.
    """
    return _Translator(SCHEMA, legacy).translate(root)


def _hit_count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many documents ``query`` matches (tantivy wants a limit of at least 1)."""
    # SearchResult.count exists but is missing from tantivy's type stubs.
    result: Any = searcher.search(query, limit=1, count=True)
    return int(result.count or 0)


class _Translator:
    """Turn the engine's query tree into a necessary condition the index can evaluate."""

    def __init__(self, schema: tantivy.Schema, legacy: bool) -> None:
        self.schema = schema
        self.legacy = legacy

    def translate(self, node: Node) -> tantivy.Query | None:
        if isinstance(node, MatchNone):
            return tantivy.Query.empty_query()
        if isinstance(node, Term):
            return self._term(node.field, node.term)
        if isinstance(node, Phrase):
            return self._phrase(node)
        if isinstance(node, TokenTest):
            return self._token_test(node)
        if isinstance(node, Bool):
            return self._bool(node)
        # MatchAll, _exists_, and any node kind added later: no constraint.
        return None

    def _term(self, field: str, term: str) -> tantivy.Query | None:
        if field not in _INDEXED:
            return None
        return self._tokens(field, [term])

    def _phrase(self, node: Phrase) -> tantivy.Query | None:
        if node.field not in _INDEXED:
            return None
        if node.slop == 0:
            # Positions in the index are the words' within a value, and a phrase never
            # spans two values in either, so tantivy's exact phrase is a superset.
            return self._tokens(node.field, list(node.terms))
        # Lucene's sloppy phrase (moves, reordering) is not tantivy's: require the words.
        terms = [self._term(node.field, term) for term in dict.fromkeys(node.terms)]
        return _all([term for term in terms if term is not None])

    def _tokens(self, field: str, tokens: list[str]) -> tantivy.Query | None:
        """Events holding ``tokens`` in a row: their words in a row, or, in documents of
        an older version (``legacy``), the tokens themselves."""
        words = [word for token in tokens for word in token_words(token)]
        query = self._sequence(field, words)
        if self.legacy and words != tokens:
            return _any([query, self._sequence(field, tokens)])
        return query

    def _sequence(self, field: str, terms: list[str]) -> tantivy.Query | None:
        if not terms:
            return None
        if len(terms) == 1:
            return tantivy.Query.term_query(self.schema, field, terms[0])
        phrase: list[str | tuple[int, str]] = list(terms)
        return tantivy.Query.phrase_query(self.schema, field, phrase)

    def _token_test(self, node: TokenTest) -> tantivy.Query | None:
        if node.field not in _INDEXED or not node.literal:
            return None
        whole = self._holding(node.field, node.literal, prefix=node.kind == "prefix")
        words = token_words(node.literal)
        if words == [node.literal]:  # a word, or a token kept whole: one term holds it
            return whole
        if not words:
            return None
        # The literal spans several words of a matching token: its longest word is
        # inside one of them.
        query = self._holding(node.field, max(words, key=len), prefix=False)
        return _any([query, whole]) if self.legacy else query

    def _holding(self, field: str, literal: str, *, prefix: bool) -> tantivy.Query:
        """Events with a term that begins with (``prefix``) or holds ``literal``."""
        text = _regex_literal(literal)
        pattern = f"{text}.*" if prefix else f".*{text}.*"
        return tantivy.Query.regex_query(self.schema, field, pattern)

    def _bool(self, node: Bool) -> tantivy.Query | None:
        if node.must:
            # SHOULD clauses do not constrain when there is a MUST (Lucene's rule), and
            # MUST_NOT clauses never narrow a superset.
            required = [q for q in (self.translate(child) for child in node.must) if q is not None]
            return _all(required) if required else None
        if not node.should:
            return tantivy.Query.empty_query()  # only prohibitions: matches nothing
        alternatives: list[tantivy.Query] = []
        for child in node.should:
            query = self.translate(child)
            if query is None:
                return None  # one unconstrained alternative: the OR is unconstrained
            alternatives.append(query)
        if len(alternatives) == 1:
            return alternatives[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in alternatives])


def _all(queries: list[tantivy.Query]) -> tantivy.Query | None:
    if not queries:
        return None
    if len(queries) == 1:
        return queries[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in queries])


def _any(queries: list[tantivy.Query | None]) -> tantivy.Query | None:
    """Either query; None (no constraint) if either is None."""
    if any(query is None for query in queries):
        return None
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries if q])


def _regex_literal(text: str) -> str:
    """``text`` as a tantivy (Rust) regex matching exactly it: letters and digits as they
    are, every other character as a ``\\x{...}`` escape, which needs no case analysis."""
    return "".join(ch if ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in text)
