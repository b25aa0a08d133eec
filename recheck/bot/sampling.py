"""Passing builds sampled for signature hits: how ``recheck stats`` learns a signature's
false alarms.

A CI report lists every job, passed or failed (a Gerrit comment by a CI account; a Zuul
buildset with a failure, as the Zuul poller queues it: its passing builds are sampled
there, since the poller lists only failures). A share of the passing voting jobs
(``bot.success_sample``, chosen by a digest of the job's URL, so a report seen twice
picks the same jobs) is queued as a row of its own (source ``SAMPLE_SOURCE``) for the
history worker, behind the comments; it scans the job's logs with the fast scanner
(``pipeline.classify_build``) and records the build with the signatures that matched,
without its events (a passing build's events are of no use to the pages, and would
double what the store holds).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from recheck.bot.gerrit.events import parse_job_lines, zuul_build_page, zuul_field
from recheck.bot.log import log
from recheck.config.files import Config
from recheck.logs.build import Build
from recheck.logs.buildlogs import build_end_time, build_events, read_build_info
from recheck.logs.http import host_allowed
from recheck.logs.logfiles import FileRule, rules_in_force
from recheck.logs.source import FileProblem, LogSource, SourceError
from recheck.logs.sources import open_source
from recheck.pipeline import classify_build
from recheck.query.signatures import Signature
from recheck.store.anomalies import ingest_recorder
from recheck.store.base import Store
from recheck.store.precision import PASSING

__all__ = [
    "SAMPLE_SOURCE",
    "SampledJob",
    "fetchable",
    "record_sample",
    "sampled_jobs",
    "sampled_zuul_jobs",
]

SAMPLE_SOURCE = "sample"
"""The queue's ``source`` of a row holding a sampled passing job."""


@dataclass(frozen=True)
class SampledJob:
    """A passing job to scan, with what its report said of its change."""

    name: str
    url: str
    change: str
    patchset: str
    project: str = ""
    branch: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SampledJob:
        return cls(**json.loads(text))

    def build(self) -> Build:
        """The build fields the report gives (the logs add the rest)."""
        return Build().updated(
            {
                "build_name": self.name,
                "build_status": PASSING,
                "build_change": self.change or None,
                "build_patchset": self.patchset or None,
                "build_branch": self.branch or None,
                "project": self.project or None,
                "voting": "1",
            }
        )


def sampled_jobs(
    event: Any,
    ci_users: Sequence[str],
    share: float,
    accept: Callable[[str], bool] = lambda url: True,
) -> list[SampledJob]:
    """The passing voting jobs of a Gerrit ``comment-added`` report by a CI account that
    fall in the sample (``share`` of them, 0 to 1) and whose log URL ``accept`` takes;
    none for any other event."""
    if share <= 0 or not isinstance(event, dict) or event.get("type") != "comment-added":
        return []
    author = event.get("author")
    names = (
        {str(author.get(k) or "").lower() for k in ("username", "name")}
        if isinstance(author, dict)
        else set()
    )
    if not names & set(ci_users):
        return []
    comment, change, patchset = event.get("comment"), event.get("change"), event.get("patchSet")
    if not (isinstance(comment, str) and isinstance(change, dict) and isinstance(patchset, dict)):
        return []
    return [
        SampledJob(
            name=line.name,
            url=line.url,
            change=str(change.get("number") or ""),
            patchset=str(patchset.get("number") or ""),
            project=str(change.get("project") or ""),
            branch=str(change.get("branch") or ""),
        )
        for line in parse_job_lines(comment)
        if line.result == PASSING
        and line.voting
        and line.url
        and _chosen(line.url, share)
        and accept(line.url)
    ]


def sampled_zuul_jobs(
    record: Any,
    zuul_url: str,
    tenant: str,
    share: float,
    accept: Callable[[str], bool] = lambda url: True,
) -> list[SampledJob]:
    """The passing voting final builds of a Zuul buildset record (the Zuul poller's) that
    fall in the sample and whose build page ``accept`` takes; none for a single build
    record (the poller lists only failed builds) or anything malformed (the failure
    parser reports that)."""
    builds = record.get("builds") if isinstance(record, dict) else None
    if share <= 0 or not isinstance(builds, list):
        return []
    chosen = []
    for build in builds:
        if not isinstance(build, dict) or build.get("final") is False:
            continue
        uuid, name = build.get("uuid"), build.get("job_name")
        if zuul_field(build.get("result")) != PASSING or build.get("voting") is False:
            continue
        if not (isinstance(uuid, str) and uuid and isinstance(name, str) and name):
            continue
        ref = build.get("ref")
        where: dict[str, Any] = ref if isinstance(ref, dict) else record
        url = zuul_build_page(zuul_url, tenant, uuid)
        if _chosen(url, share) and accept(url):
            chosen.append(
                SampledJob(
                    name=name,
                    url=url,
                    change=zuul_field(where.get("change")),
                    patchset=zuul_field(where.get("patchset")),
                    project=zuul_field(where.get("project")),
                    branch=zuul_field(where.get("branch")),
                )
            )
    return chosen


def fetchable(url: str, config: Config) -> bool:
    """Whether the bot may read logs at ``url``: under a ``fetch.local_roots`` prefix, or
    http(s) on a host of ``fetch.allowed_hosts`` (others are not sampled at all: a docs
    draft server's passing job is no build to scan)."""
    for prefix, _ in config.fetch.local_roots:
        stem = prefix.rstrip("/")
        if url == stem or url.startswith(stem + "/"):
            return True
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if host is None or parts.scheme.lower() not in ("http", "https"):
        return False
    return host_allowed(host, config.fetch.allowed_hosts)


def _chosen(url: str, share: float) -> bool:
    """Whether the job at ``url`` is in the sample: the same answer every time."""
    digest = hashlib.sha256(url.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def record_sample(
    job: SampledJob, config: Config, store: Store, signatures: Sequence[Signature]
) -> list[str]:
    """Scan the passing job's logs and store the build with its matches, no events;
    returns the bugs whose signatures matched (false alarms, all of them). Raises
    SourceError (the logs are not there yet, or refused), NoLogFilesError,
    BuildInfoError, StoreError or OSError."""
    with open_source(job.url, config) as source:
        rules = rules_in_force(config.files)
        build = read_build_info(source, job.build())
        result = classify_build(
            source, signatures, build, rules=rules, keep_debug=config.keep_debug
        )
        when = build_end_time(source, rules, read_logs=False)
        uuid = store.ingest(build, (), result.matches, when=when)
        _book_passing(source, build, store, uuid, when, rules, config.keep_debug)
    return result.bugs


def _book_passing(
    source: LogSource,
    build: Build,
    store: Store,
    uuid: str,
    when: datetime | None,
    rules: Sequence[FileRule],
    keep_debug: bool,
) -> None:
    """Keep the sampled build's line keys in the anomaly book (when the store has one):
    the passing builds of its job a failure's anomalies are found against, for clusters
    and the comment's "new or known". A file or book problem is logged, never raised:
    the sample is recorded all the same."""

    def problem(found: FileProblem) -> None:
        log("sample_book_problem", logging.WARNING, uuid=uuid, file=found.path,
            problem=found.message)  # fmt: skip

    recorder = ingest_recorder(store, build, problem)
    if recorder is None:
        return
    try:
        events = build_events(source, build, rules=rules, keep_debug=keep_debug, on_problem=problem)
        for _ in recorder.events(events):
            pass
        recorder.finish(uuid, when)
    except SourceError as exc:
        log("sample_book_problem", logging.WARNING, uuid=uuid, problem=str(exc))
    finally:
        recorder.close()
