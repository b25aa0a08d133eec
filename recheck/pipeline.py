"""The one place the stages are chained: a build's logs -> events -> matched signatures.

Both the command line and (later) the bot call ``classify_build``; it owns no I/O of
its own beyond what the stages do. The source is any ``LogSource``: a local directory
or file (``recheck.logs.localdir``), a logs server or a Zuul build (``recheck.logs.fetch``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from recheck.logs.build import Build
from recheck.logs.buildlogs import (
    EventBlock,
    build_event_blocks,
    build_files,
    open_build_file,
    read_build_info,
)
from recheck.logs.localdir import DirSource, FileSource
from recheck.logs.logfiles import DEFAULT_FILE_RULES, FileRule
from recheck.logs.source import READ_ERRORS, FileProblem, LogSource, read_error_message
from recheck.models import Event, Match, excerpt
from recheck.query.prefilter import hyperscan_available
from recheck.query.signatures import Signature
from recheck.scan.forkmap import fork_map
from recheck.scan.scanner import BuildScanner, FilePlan, ScanStats
from recheck.store.anomalies import BookLines, IngestRecorder, ingest_recorder
from recheck.store.base import Store, applicable, classify_events
from recheck.store.embedded.store import EmbeddedStore
from recheck.store.evidence import line_url

if TYPE_CHECKING:
    from recheck.logs.testresults import SubunitResults

__all__ = [
    "DEFAULT_EXAMPLES",
    "Classification",
    "Ingested",
    "Match",
    "classify_build",
    "ingest_build",
    "signatures_for",
]


DEFAULT_EXAMPLES = 10
"""Matching events ``classify_build`` keeps per bug: the first, by file and line."""


@dataclass
class Classification:
    """What is known about one build: which known bugs its logs show."""

    build: Build
    matches: list[Match] = field(default_factory=list)
    """Per bug, its first matching events by file and line (``examples`` at most)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Signatures not evaluated for this build: bug -> why."""
    problems: list[FileProblem] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)
    counts: dict[str, int] = field(default_factory=dict)
    """Bug -> its matching events: exact, or a lower bound for the bugs in ``capped``.
    A bug missing here has exactly its ``matches``."""
    capped: set[str] = field(default_factory=set)
    """Bugs with more matching events than counted: their signature stopped being
    evaluated in a file once it had more than ``examples`` matches there."""
    tests: SubunitResults | None = None
    """The build's test results, when asked for (``with_tests``) or needed by a
    signature's ``test_ids``; None without a subunit stream."""

    @property
    def bugs(self) -> list[str]:
        """The bugs with at least one matching event, in signature order."""
        return list(dict.fromkeys(match.bug for match in self.matches))

    def link(self, match: Match) -> str | None:
        """A URL to the matching line when the build's log URL is known."""
        return line_url(self.build.log_url, match.filename, match.line)


def read_tests(
    source: LogSource, on_problem: Callable[[FileProblem], None]
) -> SubunitResults | None:
    """The build's test results from its subunit streams; None when it has none."""
    # python-subunit is imported only here: most classifications need no test results.
    from recheck.logs.testresults import build_test_results

    tests = build_test_results(source.paths(), source.open)
    for problem in tests.problems if tests is not None else ():
        path, _, message = problem.partition(": ")
        on_problem(FileProblem(path, message))
    return tests


def signatures_for(
    source: LogSource,
    build: Build,
    signatures: Sequence[Signature],
    on_problem: Callable[[FileProblem], None],
) -> tuple[list[Signature], dict[str, str]]:
    """``applicable`` for a build's logs: reads its test results when a signature needs them."""
    tests = None
    if any(signature.test_ids for signature in signatures):
        tests = read_tests(source, on_problem)
    return applicable(signatures, build, tests)


@dataclass
class Ingested:
    """What ``ingest_build`` stored: how many events, and the matches."""

    uuid: str
    events: int
    matches: list[Match]
    tests: SubunitResults | None = None
    """Its test results (None: no subunit stream), stored with it."""


def ingest_build(
    store: Store,
    source: LogSource,
    build: Build,
    signatures: Sequence[Signature],
    *,
    rules: Iterable[FileRule] = DEFAULT_FILE_RULES,
    keep_debug: bool = False,
    on_problem: Callable[[FileProblem], None] | None = None,
    on_count: Callable[[int], None] | None = None,
    when: datetime | None = None,
    workers: int = 1,
) -> Ingested:
    """Store every event of the build and its matches, reading its logs once.

    The matches are what ``classify_build`` reports (same signatures, same order, all of
    them): for local logs the scanner finds them (one more pass over the files, with
    hyperscan: a second or so a GiB, against a minute of matching every event); other
    logs are read once, matched block by block as the store indexes them. The build's
    test results (its subunit streams) are stored with it, passing or failing.
    ``workers``: forked processes splitting a local build's files (``build_events``);
    for the embedded store they also make the index's documents; and processes ranking
    a failed build's anomalies for the anomaly book.
    """
    problem = on_problem or (lambda _: None)
    embedded = store if isinstance(store, EmbeddedStore) else None
    maker = embedded.document_maker(build) if embedded is not None else None
    # The anomaly book (clusters, "new or known") learns from the events, its work per
    # line done where they are split; the matching too, when the scanner does not find
    # the matches. Else the events never leave the workers: only their documents do.
    recorder = ingest_recorder(store, build, problem, workers)
    try:
        scan = isinstance(source, DirSource | FileSource) and hyperscan_available()
        need_events = maker is None or not scan

        def encode(block: EventBlock) -> _Encoded:
            documents = maker.block(block) if maker is not None else []
            book = None
            if recorder is not None:
                name = block.filename
                book = recorder.block_lines([(f"{name}:{n}", e) for n, e in block.split])
            return documents, block.events() if need_events else None, book

        blocks = build_event_blocks(
            source, build, encode, rules=rules, keep_debug=keep_debug, on_problem=problem,
            workers=workers,
        )  # fmt: skip
        tests = read_tests(source, problem)
        chosen, _ = applicable(signatures, build, tests)
        scanned = _scanned_matches(source, build, chosen, rules, keep_debug) if scan else None
        tee = _MatchingTee(blocks, chosen, on_count or (lambda _: None), scanned, recorder)
        if embedded is not None:
            uuid = embedded.ingest_documents(
                build, tee.documents(), tee.matches(), when=when, tests=tests
            )
        else:
            uuid = store.ingest(build, tee.events(), tee.matches(), when=when, tests=tests)
        if recorder is not None:
            recorder.finish(uuid, when)
    finally:
        if recorder is not None:
            recorder.close()
    return Ingested(uuid, tee.count, tee.found, tests)


_Encoded = tuple[list[str], list[tuple[str, Event]] | None, BookLines | None]
"""What ingest makes of a block where it is split: its index documents (none for a
store without them), its events when this process needs them, and what it adds to the
anomaly book when there is one."""


class _MatchingTee:
    """A build's blocks passed on to the store while the events are matched (unless
    the scanner found the matches) and recorded in the anomaly book, so its logs are
    read once; the matches are ready when the events are done."""

    def __init__(
        self,
        blocks: Iterable[_Encoded],
        signatures: Sequence[Signature],
        on_count: Callable[[int], None],
        scanned: list[Match] | None,
        recorder: IngestRecorder | None,
    ) -> None:
        """``scanned``: the matches, already found (by the scanner); None: match here."""
        self._blocks = blocks
        self._signatures = signatures
        self._on_count = on_count
        self._recorder = recorder
        self._done = False
        self._match = scanned is None
        self.count = 0
        self.found: list[Match] = scanned or []

    def documents(self) -> Iterator[str]:
        """The blocks' documents, each block's events seen to first."""
        for documents, events, book in self._blocks:
            self._seen(events, book, len(documents))
            del book  # in the recorder now: not kept while the next block is read
            yield from documents
        self._done = True

    def events(self) -> Iterator[tuple[str, Event]]:
        """The blocks' events (for a store without documents)."""
        for _, events, book in self._blocks:
            events = events or []
            self._seen(events, book, len(events))
            del book  # in the recorder now: not kept while the next block is read
            yield from events
        self._done = True

    def _seen(
        self, events: list[tuple[str, Event]] | None, book: BookLines | None, count: int
    ) -> None:
        if self._recorder is not None and book is not None:
            self._recorder.merge(book)
        if events is not None and self._match:
            self.found.extend(classify_events(self._signatures, events))
        self.count += count
        self._on_count(self.count)

    def matches(self) -> Iterator[Match]:
        """The matches, in ``recheck classify``'s order; only once every event was read."""
        if not self._done:
            raise RuntimeError("the store asked for matches before reading every event")
        order = {signature.bug: index for index, signature in enumerate(self._signatures)}
        self.found.sort(key=lambda m: (order[m.bug], m.filename, m.line))
        yield from self.found


def _scanned_matches(
    source: LogSource,
    build: Build,
    chosen: Sequence[Signature],
    rules: Iterable[FileRule],
    keep_debug: bool,
) -> list[Match]:
    """Every match of ``chosen`` in the build, found by the scanner (its file problems
    are left out: reading the events reports them)."""
    scanner = BuildScanner(chosen, build, build_files(source, rules), keep_debug=keep_debug)
    found: list[Match] = []
    for plan in scanner.plans:
        if not scanner.skips(plan):
            found.extend(_scan_one(scanner, source, chosen, plan, None)[0])
    order = {signature.bug: index for index, signature in enumerate(chosen)}
    found.sort(key=lambda match: (order[match.bug], match.filename, match.line))
    return found


def classify_build(
    source: LogSource,
    signatures: Sequence[Signature],
    options: Build | None = None,
    *,
    rules: Iterable[FileRule] = DEFAULT_FILE_RULES,
    keep_debug: bool = False,
    use_hyperscan: bool = True,
    on_file: Callable[[str], None] | None = None,
    workers: int = 1,
    examples: int | None = DEFAULT_EXAMPLES,
    with_tests: bool = False,
) -> Classification:
    """Classify the build whose logs ``source`` holds against ``signatures``.

    Keeps each bug's first ``examples`` matching events (None: all). A signature is
    evaluated in a file only until it has one more match than that, so that the cost
    does not grow with how much it matches: counts past it are lower bounds (``capped``).

    Each file is read once (``recheck.scan.scanner``); ``on_file`` is told each file's path
    before it is read, for progress reports. With ``workers`` above 1, the files of a
    local build are planned and scanned by that many processes at once, this one and
    forked ones (``recheck.scan.forkmap``: only from a process without other threads);
    ``on_file`` is then told every file as it is handed out, even one that turns out to
    need no reading. ``with_tests`` reads the build's test results (``tests``) even when
    no signature needs them (the bot names the failed tests). Raises
    SourceError when the source cannot be listed and BuildInfoError for a broken
    inventory.
    """
    build = read_build_info(source, options)
    result = Classification(build)
    if with_tests or any(signature.test_ids for signature in signatures):
        result.tests = read_tests(source, result.problems.append)
    chosen, result.skipped = applicable(signatures, build, result.tests)
    files = build_files(source, rules)
    limit = None if examples is None else examples + 1
    scanner = BuildScanner(
        chosen, build, files, keep_debug=keep_debug, use_hyperscan=use_hyperscan, limit=limit
    )
    result.stats = scanner.stats
    found: list[Match] = []
    if workers > 1 and len(files) > 1 and isinstance(source, DirSource):
        outcomes: Iterable[_FileOutcome] = _scan_in_parallel(
            scanner, source, chosen, workers, on_file
        )
    else:
        plans = [plan for plan in scanner.plans if not scanner.skips(plan)]
        outcomes = (_scan_one(scanner, source, chosen, plan, on_file) for plan in plans)
    for matches, problems, stats, capped in outcomes:
        found.extend(matches)
        result.problems.extend(problems)
        result.capped.update(capped)
        if stats is not scanner.stats:
            scanner.stats.add(stats)
    order = {signature.bug: index for index, signature in enumerate(chosen)}
    found.sort(key=lambda match: (order[match.bug], match.filename, match.line))
    # Each file gave its first matches, so the first of all files are among them.
    for match in found:
        result.counts[match.bug] = result.counts.get(match.bug, 0) + 1
        if examples is None or result.counts[match.bug] <= examples:
            result.matches.append(match)
    return result


_FileOutcome = tuple[list["Match"], list[FileProblem], ScanStats, set[str]]
"""What scanning one file gave: its matches, its problems, the scanner's counts, and the
bugs whose signature stopped at the scanner's limit."""


def _scan_one(
    scanner: BuildScanner,
    source: LogSource,
    chosen: Sequence[Signature],
    plan: FilePlan,
    on_file: Callable[[str], None] | None,
) -> _FileOutcome:
    if on_file is not None:
        on_file(plan.path)
    found: list[Match] = []
    problems: list[FileProblem] = []
    counts: Counter[int] = Counter()
    stream = open_build_file(source, plan.path, problems.append)
    if stream is not None:
        with stream:
            try:
                for index, filename, line, event in scanner.scan_file(plan, stream):
                    found.append(Match(chosen[index].bug, filename, line, excerpt(event)))
                    counts[index] += 1
            except READ_ERRORS as exc:
                problems.append(
                    FileProblem(plan.path, read_error_message(exc, "while scanning it"))
                )
    limit = scanner.limit
    capped = {chosen[i].bug for i, n in counts.items() if limit is not None and n >= limit}
    return found, problems, scanner.stats, capped


def _scan_in_parallel(
    scanner: BuildScanner,
    source: DirSource,
    chosen: Sequence[Signature],
    workers: int,
    on_file: Callable[[str], None] | None,
) -> list[_FileOutcome]:
    # Each process plans the files it is given (a plan holds compiled queries, which the
    # fork gave the children already), so that planning too is shared out. Biggest files
    # first: no process is left with a big one at the end.
    order = sorted(range(len(scanner.files)), key=lambda i: -source.size(scanner.files[i][0]))
    if on_file is not None:
        for position in order:
            on_file(scanner.files[position][0])

    def scan(position: int) -> _FileOutcome:
        kept = scanner.stats
        scanner.stats = ScanStats()  # this file's counts only: classify_build adds them up
        try:
            plan = scanner.plan(position)
            if scanner.skips(plan):
                return [], [], scanner.stats, set()
            return _scan_one(scanner, source, chosen, plan, None)
        finally:
            scanner.stats = kept

    outcomes = fork_map(scan, order, workers)
    done = dict(zip(order, outcomes, strict=True))
    return [done[position] for position in sorted(done)]  # as a serial scan gives them
