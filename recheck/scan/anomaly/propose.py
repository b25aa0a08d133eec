"""Draft signatures for anomalies, and check them with recheck's own engine.

A draft is a quoted phrase of the anomaly's stable words (no number, id, temporary path
or quote: ``recheck.scan.anomaly.normalize.stable_words``) and the file's name as a tags
filter, so it would read as a triager writes one. Each draft is run, as ``recheck
classify`` runs signatures (``recheck.scan``: the same prefilter, splitting and query
engine), over the failed build and, without its file filter, over every baseline; a
proposal is a draft that matches the failed build and whose words match no baseline.
Several drafts per anomaly are tried at once (the leading or longest phrase, then two
phrases, then a long phrase's last words), the first that passes wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from recheck.logs.buildlogs import open_build_file
from recheck.logs.source import READ_ERRORS
from recheck.query import QuerySyntaxError, compile_query
from recheck.query.signatures import Signature
from recheck.scan.anomaly.normalize import stable_words
from recheck.scan.anomaly.rank import Anomaly, message_of
from recheck.scan.anomaly.reading import BuildLogs
from recheck.scan.forkmap import fork_map
from recheck.scan.scanner import BuildScanner

__all__ = ["MAX_PHRASE_WORDS", "Draft", "count_matches", "drafts_for", "proposals"]

MAX_PHRASE_WORDS = 10
"""Words quoted at most: enough to be specific, few enough to survive small rewordings."""
MIN_PHRASE_CHARS = 12
"""A shorter phrase (``Error: x``) would match too much to be worth proposing."""
COUNT_LIMIT = 1000
"""Matches counted per file and draft at most: a draft above it is far too broad anyway."""


@dataclass
class Draft:
    """A drafted query for one anomaly, and what running it found."""

    anomaly: Anomaly
    query: str
    matches_failed: int = 0
    baseline_hits: int = 0
    failure_builds: int | None = None
    success_builds: int | None = None

    @property
    def verified(self) -> bool:
        return self.matches_failed > 0 and self.baseline_hits == 0

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query,
            "matches_failed": self.matches_failed > 0,
            "baseline_hits": self.baseline_hits,
            "history": {
                "failure_builds": self.failure_builds,
                "success_builds": self.success_builds,
            },
        }


def _phrase(words: Sequence[str]) -> str:
    return '"' + " ".join(words[:MAX_PHRASE_WORDS]) + '"'


def drafts_for(anomaly: Anomaly) -> list[str]:
    """Candidate queries for ``anomaly``, most readable first; may be empty."""
    message = message_of(anomaly.text, anomaly.tags)
    runs = [run for run in stable_words(message) if len(" ".join(run)) >= MIN_PHRASE_CHARS]
    if not runs:
        return []
    # The message's first words usually name the error (``AssertionError: State change
    # timeout``): preferred when they make a phrase of three words or more.
    leading = [run for run in runs if len(run) >= 3 and message.lstrip().startswith(run[0])]
    if leading:
        runs.remove(leading[0])
        runs.insert(0, leading[0])
    where = f'{_FILTER}"{PurePosixPath(anomaly.filename).name}"'
    first = f"message:{_phrase(runs[0])}"
    out = [f"{first}{where}"]
    if len(runs) > 1:
        out.append(f"{first} AND message:{_phrase(runs[1])}{where}")
    if len(runs[0]) > MAX_PHRASE_WORDS:
        out.append(f"message:{_phrase(runs[0][-MAX_PHRASE_WORDS:])}{where}")
    return out


_FILTER = " AND tags:"


def _without_filter(query: str) -> str:
    """A draft's phrases without its file filter (drafts end with it)."""
    return query.rsplit(_FILTER, 1)[0]


def _signature(index: int, query: str) -> Signature | None:
    try:
        compiled = compile_query(query)
    except QuerySyntaxError:
        return None
    return Signature(f"draft-{index}", query, Path("<draft>"), compiled)


def count_matches(
    builds: Sequence[BuildLogs], signatures: Sequence[Signature], workers: int = 1
) -> list[list[int]]:
    """For each build, each signature's matching events (at most COUNT_LIMIT a file)."""
    scanners = [
        BuildScanner(signatures, logs.build, logs.files(), limit=COUNT_LIMIT) for logs in builds
    ]
    tasks = [
        (b, position)
        for b, scanner in enumerate(scanners)
        for position in range(len(scanner.files))
    ]

    def scan(task: tuple[int, int]) -> tuple[int, list[int]]:
        build, position = task
        scanner = scanners[build]
        counts = [0] * len(signatures)
        plan = scanner.plan(position)
        if scanner.skips(plan):
            return build, counts
        stream = open_build_file(builds[build].source, plan.path, None)
        if stream is None:
            return build, counts
        with stream:
            try:
                for index, _, _, _ in scanner.scan_file(plan, stream):
                    counts[index] += 1
            except READ_ERRORS:
                pass  # reading the file for anomalies reported it
        return build, counts

    local = all(logs.local for logs in builds)
    totals = [[0] * len(signatures) for _ in builds]
    for build, counts in fork_map(scan, tasks, workers if local else 1):
        for index, count in enumerate(counts):
            totals[build][index] += count
    return totals


def proposals(
    anomalies: Sequence[Anomaly],
    failed: BuildLogs,
    baselines: Sequence[BuildLogs],
    *,
    wanted: int = 5,
    workers: int = 1,
) -> list[Draft]:
    """Verified drafts for the first ``wanted`` anomalies that have one, best first."""
    candidates: list[list[Draft]] = [
        [Draft(anomaly, query) for query in drafts_for(anomaly)] for anomaly in anomalies
    ]
    flat = [draft for drafts in candidates for draft in drafts]
    whole = [_signature(index, draft.query) for index, draft in enumerate(flat)]
    # Baselines are searched for the words alone, whatever file holds them: a baseline's
    # file may have another name (a single log file named good.log), where the tags
    # filter could never match, and a phrase in any passing file is too common anyway.
    words = [_signature(index, _without_filter(draft.query)) for index, draft in enumerate(flat)]
    usable = [
        (draft, sig, core)
        for draft, sig, core in zip(flat, whole, words, strict=True)
        if sig is not None and core is not None
    ]
    if not usable:
        return []
    in_failed = count_matches([failed], [sig for _, sig, _ in usable], workers)[0]
    in_baselines = count_matches(baselines, [core for _, _, core in usable], workers)
    for index, (draft, _, _) in enumerate(usable):
        draft.matches_failed = in_failed[index]
        draft.baseline_hits = sum(build[index] for build in in_baselines)
    chosen: list[Draft] = []
    for drafts in candidates:
        passing = next((draft for draft in drafts if draft.verified), None)
        if passing is not None:
            chosen.append(passing)
        if len(chosen) >= wanted:
            break
    return chosen
