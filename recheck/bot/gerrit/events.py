"""Raw CI reports -> FailureEvents: which change failed, which jobs, where their logs are.

Inputs are a Gerrit ``comment-added`` stream event from a CI account (its job lines as
every Zuul generation and Jenkins wrote them) or a failed build of Zuul's REST API.
No I/O here; a malformed input raises ``MalformedEvent`` naming what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, cast

from recheck.lib.errors import RecheckError
from recheck.logs.eventfile import replace_surrogates

__all__ = [
    "FAILED_RESULTS",
    "NO_LOG_RESULTS",
    "UNREPORTED_BUILDSETS",
    "FailedJob",
    "FailureEvent",
    "JobLine",
    "MalformedEvent",
    "decode_event",
    "failure_from_gerrit",
    "failure_from_zuul",
    "parse_job_lines",
    "zuul_build_page",
    "zuul_field",
]

FAILED_RESULTS = frozenset(
    {"FAILURE", "TIMED_OUT", "POST_FAILURE", "RETRY_LIMIT", "NODE_FAILURE", "ERROR", "LOST"}
)
"""Job results that mean the job failed (SUCCESS, SKIPPED, ABORTED... do not)."""

NO_LOG_RESULTS = frozenset({"NODE_FAILURE", "ERROR"})
"""Results of jobs that never ran (no node, or Zuul could not start them), so never have
logs to wait for."""

UNREPORTED_BUILDSETS = frozenset({"DEQUEUED"})
"""Zuul buildset results Zuul tells nobody about (a newer patchset replaced the change,
or it was abandoned): the Gerrit source never sees them, so neither does the Zuul one."""

# "- <job> [<url>] : <RESULT>[ <anything>]"; the job name has no spaces, the URL is any
# non-space run; "(non-voting)" may follow the duration.
_JOB_LINE = re.compile(
    r"^- (?P<name>\S+)(?: (?P<url>[a-z][a-z0-9+.-]*://\S+))? : (?P<result>[A-Z][A-Z_]*)\b"
    r"(?P<rest>.*)$"
)
_PIPELINE = re.compile(r"Build failed \((?P<pipeline>[\w.-]+) pipeline\)")
# Zuul v2 / Jenkins log URLs: .../<change[-2:]>/<change>/<patchset>/<pipeline>/<job>/<id>
_V2_LOG_PATH = re.compile(r"/\d{2}/\d+/\d+/(?P<pipeline>[\w.-]+)/[^/]+/[^/]+/?$")


class MalformedEvent(RecheckError, ValueError):
    """An event that cannot be read; the message says what is missing or wrong."""


@dataclass(frozen=True)
class JobLine:
    """One line of a CI comment's job list."""

    name: str
    url: str
    result: str
    voting: bool


@dataclass(frozen=True)
class FailedJob:
    """A failed job of a failure event."""

    name: str
    url: str
    """Its log root, or its Zuul build page (the logs are found from there); "" if none."""
    result: str
    voting: bool = True


@dataclass(frozen=True)
class FailureEvent:
    """One CI report of a failed change, with its failed jobs."""

    key: str
    """What makes the event unique (change, patchset and a digest of the report): the
    idempotency key of its Gerrit comment."""
    change: str
    patchset: str
    project: str
    branch: str
    queue: str
    url: str
    jobs: tuple[FailedJob, ...]
    revision: str = ""
    author: str = ""

    def to_json(self) -> str:
        """The event as JSON, to keep in the bot's queue."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FailureEvent:
        """The event ``to_json`` wrote."""
        data = json.loads(text)
        data["jobs"] = tuple(FailedJob(**job) for job in data["jobs"])
        return cls(**data)


def decode_event(raw: str) -> Any:
    """The JSON value of one raw event (a stream-events line, a queued Zuul record).

    Raises ValueError for text that is not JSON, and MalformedEvent for JSON nested deeper
    than the decoder can follow: its RecursionError would otherwise look like a bug of
    ours, retried, where the line is simply bad and must be skipped once.
    """
    try:
        value = json.loads(raw)
        return _without_surrogates(value) if _MAY_HOLD_SURROGATES.search(raw) else value
    except RecursionError:
        raise MalformedEvent("JSON nested too deeply to decode") from None


# A surrogate in the line (a byte that is not UTF-8, as the stream's reader decodes it) or
# a JSON escape of one.
_MAY_HOLD_SURROGATES = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")


def _without_surrogates(value: Any) -> Any:
    """``value`` with each surrogate of its texts as U+FFFD, as events read from files
    have them (``recheck.logs.eventfile``). Kept, an escaped high surrogate followed by a
    bad byte's made a pair that the queue's JSON wrote as one character: the failure
    read back from the queue was not the one queued."""
    if isinstance(value, str):
        return replace_surrogates(value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {replace_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def parse_job_lines(comment: str) -> list[JobLine]:
    """Every job line of a CI comment, in order (failed or not)."""
    found: list[JobLine] = []
    for line in comment.splitlines():
        match = _JOB_LINE.match(line.strip())
        if match is None:
            continue
        rest = match["rest"]
        found.append(
            JobLine(
                name=match["name"],
                url=match["url"] or "",
                result=match["result"],
                voting="(non-voting)" not in rest,
            )
        )
    return found


def failure_from_gerrit(event: Any, ci_users: tuple[str, ...]) -> FailureEvent | None:
    """The failure a stream event reports, or None when it reports none.

    None for other event types, comments by other accounts and comments without a
    failed voting job (Zuul says "Build succeeded" when only non-voting jobs failed).
    Raises MalformedEvent when a ``comment-added`` event of a CI account lacks what a
    failure needs (change number, patchset...).
    """
    if not isinstance(event, dict):
        raise MalformedEvent(f"not a JSON object but {type(event).__name__}")
    if event.get("type") != "comment-added":
        return None
    author = event.get("author")
    if not isinstance(author, dict) or not _is_ci(author, ci_users):
        return None
    comment = event.get("comment")
    if not isinstance(comment, str):
        raise MalformedEvent("comment-added event without a 'comment' text")
    lines = parse_job_lines(comment)
    failed = [line for line in lines if line.result in FAILED_RESULTS]
    if not any(line.voting for line in failed):
        return None  # "Build succeeded" with only non-voting jobs failed: nothing to fix
    change = _mapping(event, "change")
    patchset = _mapping(event, "patchSet")
    number = _text(change, "number", "change")
    ps = _text(patchset, "number", "patchSet")
    digest = hashlib.sha256(
        json.dumps(
            [event.get("eventCreatedOn"), patchset.get("revision"), comment], sort_keys=True
        ).encode()
    ).hexdigest()[:16]
    pipeline = _pipeline(comment, [line.url for line in failed])
    return FailureEvent(
        key=f"{number},{ps},{digest}",
        change=number,
        patchset=ps,
        project=_text(change, "project", "change"),
        branch=str(change.get("branch") or ""),
        queue=pipeline,
        url=str(change.get("url") or ""),
        jobs=tuple(FailedJob(line.name, line.url, line.result, line.voting) for line in failed),
        revision=str(patchset.get("revision") or ""),
        author=_name(change.get("owner")),
    )


def failure_from_zuul(record: Mapping[str, Any], zuul_url: str, tenant: str) -> FailureEvent | None:
    """The failure a Zuul API record reports: a buildset's, or one build's.

    A buildset record (``/api/tenant/T/buildset/UUID``, with ``builds``), as the Zuul
    poller queues it for one change, gives one event with every failed final build of
    that change, non-voting ones too (``FailedJob.voting`` False), keyed by change,
    patchset and buildset. A single build record is what the poller queued before it
    waited for buildsets. None when no voting job failed (Zuul says "Build succeeded"),
    when there is no change to comment on (periodic and tag builds), or when Zuul
    dequeued the buildset unreported.
    """
    builds = record.get("builds")
    if builds is None:
        return _failure_from_build(record, zuul_url, tenant)
    uuid = record.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise MalformedEvent("Zuul buildset record without a 'uuid'")
    if not isinstance(builds, list) or not all(isinstance(item, Mapping) for item in builds):
        raise MalformedEvent(f"Zuul buildset {uuid}: 'builds' is not a list of build records")
    if zuul_field(record.get("result")) in UNREPORTED_BUILDSETS:
        return None
    # Retried builds (final false) were replaced by a later build of the same job.
    failed = [b for b in builds if b.get("final") is not False and _failed(b)]
    jobs = tuple(_zuul_job(build, zuul_url, tenant) for build in failed)
    if not any(job.voting for job in jobs):
        return None
    where = _zuul_ref(record, failed)
    change, patchset = zuul_field(where.get("change")), zuul_field(where.get("patchset"))
    if not change or not patchset:
        return None
    return FailureEvent(
        key=f"{change},{patchset},{uuid}",
        change=change,
        patchset=patchset,
        project=zuul_field(where.get("project")),
        branch=zuul_field(where.get("branch")),
        queue=zuul_field(record.get("pipeline")),
        url=zuul_field(where.get("ref_url")),
        jobs=jobs,
        revision=zuul_field(where.get("newrev")),
    )


def _failure_from_build(
    record: Mapping[str, Any], zuul_url: str, tenant: str
) -> FailureEvent | None:
    uuid = record.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise MalformedEvent("Zuul build record without a 'uuid'")
    if not _failed(record):
        return None
    ref = record.get("ref")
    where: Mapping[str, Any] = ref if isinstance(ref, Mapping) else record
    change, patchset = where.get("change"), where.get("patchset")
    if change in (None, "", "None") or patchset in (None, "", "None"):
        return None
    job = _zuul_job(record, zuul_url, tenant)
    if not job.voting:
        return None  # a non-voting job's failure does not fail the change
    return FailureEvent(
        key=f"{change},{patchset},{uuid}",
        change=str(change),
        patchset=str(patchset),
        project=str(where.get("project") or ""),
        branch=str(where.get("branch") or ""),
        queue=str(record.get("pipeline") or ""),
        url=str(where.get("ref_url") or record.get("ref_url") or ""),
        jobs=(job,),
        revision=str(where.get("newrev") or ""),
    )


def _zuul_job(build: Mapping[str, Any], zuul_url: str, tenant: str) -> FailedJob:
    """A failed Zuul build as a job; its URL is its build page, where the logs are found
    (or, for a build without a ``log_url``, found missing at once)."""
    uuid, name = build.get("uuid"), build.get("job_name")
    if not isinstance(uuid, str) or not uuid:
        raise MalformedEvent("Zuul build record without a 'uuid'")
    if not isinstance(name, str) or not name:
        raise MalformedEvent(f"Zuul build {uuid} without a 'job_name'")
    page = zuul_build_page(zuul_url, tenant, uuid)
    return FailedJob(name, page, str(build.get("result")), voting=build.get("voting") is not False)


def zuul_build_page(zuul_url: str, tenant: str, uuid: str) -> str:
    """A Zuul build's page, where its logs are found (``recheck.logs.zuul``)."""
    return f"{zuul_url.rstrip('/')}/t/{tenant}/build/{uuid}"


def _failed(build: Mapping[str, Any]) -> bool:
    return zuul_field(build.get("result")) in FAILED_RESULTS


def _zuul_ref(buildset: Mapping[str, Any], failed: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Where a buildset's change is said: Zuul 10 gives each build its ``ref`` (and the
    buildset its ``refs``); older Zuuls put the change fields on the buildset itself."""
    for build in failed:
        ref = build.get("ref")
        if isinstance(ref, Mapping):
            return ref
    refs = buildset.get("refs")
    if isinstance(refs, list) and refs and isinstance(refs[0], Mapping):
        return cast("Mapping[str, Any]", refs[0])
    return buildset


def zuul_field(value: Any) -> str:
    """A Zuul record's value as text; "" when missing (Zuul's API spells some missing
    values as the text "None") or not a plain value."""
    if value is None or isinstance(value, bool | dict | list) or str(value) == "None":
        return ""
    return str(value)


def _is_ci(author: dict[str, Any], ci_users: tuple[str, ...]) -> bool:
    names = {str(author.get(key) or "").lower() for key in ("username", "name")}
    return bool(names & set(ci_users))


def _pipeline(comment: str, urls: list[str]) -> str:
    found = _PIPELINE.search(comment)
    if found:
        return found["pipeline"]
    for url in urls:  # Zuul v2 put the pipeline in the log path
        path = _V2_LOG_PATH.search(url)
        if path:
            return path["pipeline"]
    return ""


def _mapping(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    if not isinstance(value, dict):
        raise MalformedEvent(f"comment-added event without a '{key}' object")
    return value


def _text(section: dict[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise MalformedEvent(f"comment-added event without {where}.{key}")
    return str(value)


def _name(person: Any) -> str:
    if not isinstance(person, dict):
        return ""
    return str(person.get("name") or person.get("username") or "")
