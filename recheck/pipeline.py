"""The one place the stages are chained: a build's logs -> events -> matched signatures.

Both the command line and (later) the bot call ``classify_build``; it owns no I/O of
its own beyond what the stages do. The source is a local build directory for now
(``recheck.localdir``); fetching over HTTP plugs in as another event source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recheck.build import Build
from recheck.localdir import FileProblem, build_events, read_build_info
from recheck.matcher import match_events
from recheck.models import Event, Signature

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
    signatures: Sequence[Signature], build: Build
) -> tuple[list[Signature], dict[str, str]]:
    """The signatures to evaluate for ``build``, and why each other one is skipped."""
    chosen: list[Signature] = []
    skipped: dict[str, str] = {}
    for signature in signatures:
        if not build.is_voting and not signature.allow_nonvoting:
            skipped[signature.bug] = "non-voting build; the signature lacks allow-nonvoting"
        elif signature.test_ids:
            # Not decidable yet: it needs the build's subunit stream; matching on the
            # query alone would report bugs whose tests did not fail.
            skipped[signature.bug] = "has test_ids; reading subunit results is not supported yet"
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
    root: Path,
    signatures: Sequence[Signature],
    options: Build | None = None,
    *,
    keep_debug: bool = False,
) -> Classification:
    """Classify the build whose logs are in directory ``root`` against ``signatures``."""
    build = read_build_info(root, options)
    result = Classification(build)
    chosen, result.skipped = applicable(signatures, build)
    events = build_events(root, build, keep_debug=keep_debug, on_problem=result.problems.append)
    matches = list(classify_events(chosen, events))
    order = {signature.bug: index for index, signature in enumerate(chosen)}
    result.matches = sorted(
        matches, key=lambda match: (order[match.bug], match.filename, match.line)
    )
    return result
