"""A failed build against passing ones: its anomalies, ranked, and proposed signatures.

The one entry point ``recheck draft`` (and anything else) calls: baselines' line keys
first, then the failed build's novel lines, ranked into events, then drafts verified by
running them. Sources are ``BuildLogs``: local directories or files, fetched logs, or a
stored build written out as files (``recheck.store.anomalies.stored_build_lines``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from recheck.logs.source import FileProblem
from recheck.scan.anomaly.propose import Draft, proposals
from recheck.scan.anomaly.rank import DEFAULT_TOP, Anomaly, HistoryLookup, rank
from recheck.scan.anomaly.reading import BuildLogs, baseline_keys, novel_lines

__all__ = ["DEFAULT_PROPOSALS", "DraftReport", "draft"]

DEFAULT_PROPOSALS = 5
"""Proposed signatures at most, for the best anomalies that give a verified one."""
_TRIED = 12
"""Anomalies whose drafts are tried to find those proposals."""


@dataclass
class DraftReport:
    """What ``draft`` found."""

    anomalies: list[Anomaly]
    proposals: list[Draft] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    lines: int = 0
    """Lines of the failed build read."""

    def to_json(self) -> dict[str, object]:
        return {
            "anomalies": [anomaly.to_json() for anomaly in self.anomalies],
            "proposals": [proposal.to_json() for proposal in self.proposals],
        }


def draft(
    failed: BuildLogs,
    baselines: Sequence[BuildLogs],
    *,
    top: int = DEFAULT_TOP,
    wanted: int = DEFAULT_PROPOSALS,
    workers: int = 1,
    history: HistoryLookup | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DraftReport:
    """The anomalies of ``failed`` that no baseline has, and proposals for the best.

    Raises NoLogFilesError when a build has no file to read (SourceError when a
    source cannot be listed).
    """
    step = on_step or (lambda _: None)
    problems: list[FileProblem] = []
    step(f"reading {len(baselines)} baseline build(s)")
    known = baseline_keys(baselines, workers, problems.append)
    step(f"reading the failed build ({len(known):,} distinct baseline lines)")
    files = novel_lines(failed, known, workers)
    for novelty in files:
        problems.extend(novelty.problems)
    report = DraftReport(rank(files, top, history), problems=problems)
    report.lines = sum(novelty.lines for novelty in files)
    if wanted > 0 and report.anomalies:
        step("verifying drafted queries against every build")
        report.proposals = proposals(
            report.anomalies[:_TRIED], failed, baselines, wanted=wanted, workers=workers
        )
    return report
