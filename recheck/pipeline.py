"""The one place the stages are chained: a build's logs -> events -> matched signatures.

Both the command line and (later) the bot call ``classify_build``; it owns no I/O of
its own beyond what the stages do. The source is any ``LogSource``: a local directory
or file (``recheck.localdir``), a logs server or a Zuul build (``recheck.fetch``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from recheck.build import Build
from recheck.buildlogs import build_files, open_build_file, read_build_info
from recheck.logfiles import DEFAULT_FILE_RULES, FileRule
from recheck.matcher import match_events
from recheck.models import Event, Signature
from recheck.scan import BuildScanner, ScanStats
from recheck.source import FileProblem, LogSource, read_error_message
from recheck.testresults import SubunitResults, build_test_results, skip_reason

__all__ = ["Classification", "Match", "classify_build", "classify_events"]

EXCERPT_CHARS = 300
"""How much of a matching event's message a report shows."""

_BATCH = 5000
"""Events matched at a time: bounds memory while keeping each event's text for the report."""


@dataclass(frozen=True)
class Match:
    """One event a signature matched: where it is and what it says."""

    bug: str
    filename: str
    line: int
    message: str
    """The start of the event's message (``EXCERPT_CHARS`` at most)."""


@dataclass
class Classification:
    """What is known about one build: which known bugs its logs show."""

    build: Build
    matches: list[Match] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Signatures not evaluated for this build: bug -> why."""
    problems: list[FileProblem] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)

    @property
    def bugs(self) -> list[str]:
        """The bugs with at least one matching event, in signature order."""
        return list(dict.fromkeys(match.bug for match in self.matches))

    def link(self, match: Match) -> str | None:
        """A URL to the matching line when the build's log URL is known."""
        if not self.build.log_url:
            return None
        return f"{self.build.log_url.rstrip('/')}/{match.filename}#{match.line}"


def applicable(
    signatures: Sequence[Signature], build: Build, tests: SubunitResults | None = None
) -> tuple[list[Signature], dict[str, str]]:
    """The signatures to evaluate for ``build``, and why each other one is skipped.

    ``tests`` are the build's test results (None: it has no subunit stream); a
    signature with ``test_ids`` is evaluated only when one of those tests failed.
    """
    chosen: list[Signature] = []
    skipped: dict[str, str] = {}
    for signature in signatures:
        if not build.is_voting and not signature.allow_nonvoting:
            skipped[signature.bug] = "non-voting build; the signature lacks allow-nonvoting"
        elif (reason := skip_reason(signature.test_ids, tests)) is not None:
            skipped[signature.bug] = reason
        else:
            chosen.append(signature)
    return chosen, skipped


def classify_events(
    signatures: Sequence[Signature], events: Iterable[tuple[str, Event]]
) -> Iterator[Match]:
    """The matches of ``signatures`` among events with ids ``<filename>:<line>``."""
    batch: list[tuple[str, Event]] = []
    for item in events:
        batch.append(item)
        if len(batch) >= _BATCH:
            yield from _match_batch(signatures, batch)
            batch = []
    if batch:
        yield from _match_batch(signatures, batch)


def _match_batch(signatures: Sequence[Signature], batch: list[tuple[str, Event]]) -> list[Match]:
    by_id = dict(batch)
    found: list[Match] = []
    for bug, ids in match_events(signatures, batch).items():
        for event_id in ids:
            event = by_id[event_id]
            filename, _, line = event_id.rpartition(":")
            message = event.get("message", "")
            text = message if isinstance(message, str) else "\n".join(message)
            found.append(Match(bug, filename, int(line), text[:EXCERPT_CHARS]))
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
) -> Classification:
    """Classify the build whose logs ``source`` holds against ``signatures``.

    Each file is read once (``recheck.scan``); ``on_file`` is told each file's path
    before it is read, for progress reports. Raises SourceError when the source cannot
    be listed and BuildInfoError for a broken inventory.
    """
    build = read_build_info(source, options)
    result = Classification(build)
    tests = None
    if any(signature.test_ids for signature in signatures):
        tests = build_test_results(source.paths(), source.open)
        for problem in tests.problems if tests is not None else ():
            path, _, message = problem.partition(": ")
            result.problems.append(FileProblem(path, message))
    chosen, result.skipped = applicable(signatures, build, tests)
    files = build_files(source, rules)
    scanner = BuildScanner(chosen, build, files, keep_debug=keep_debug, use_hyperscan=use_hyperscan)
    result.stats = scanner.stats
    found: list[Match] = []
    for plan in scanner.plans:
        if on_file is not None:
            on_file(plan.path)
        if not plan.queries:
            scanner.stats.files += 1
            scanner.stats.files_skipped += 1
            continue
        stream = open_build_file(source, plan.path, result.problems.append)
        if stream is None:
            continue
        with stream:
            try:
                for index, filename, line, event in scanner.scan_file(plan, stream):
                    found.append(Match(chosen[index].bug, filename, line, _excerpt(event)))
            except (EOFError, OSError, ValueError, zlib.error) as exc:
                result.problems.append(
                    FileProblem(plan.path, read_error_message(exc, "while scanning it"))
                )
    order = {signature.bug: index for index, signature in enumerate(chosen)}
    result.matches = sorted(found, key=lambda match: (order[match.bug], match.filename, match.line))
    return result


def _excerpt(event: Event) -> str:
    message = event.get("message", "")
    text = message if isinstance(message, str) else "\n".join(message)
    return text[:EXCERPT_CHARS]
