"""Zuul builds: their records from Zuul's REST API, and the logs a record points at.

A Zuul build page URL (``https://ZUUL/t/TENANT/build/UUID``), or a build record saved
as JSON, gives the build fields, its end time and the log URL; ``zuul_builds`` lists
builds for ``recheck ingest --zuul``, ``zuul_buildset`` one buildset with its builds (the
bot's Zuul source waits for it to report). What Zuul's API says wins over the build's
``zuul-info/inventory.yaml`` (see ``recheck.logs.buildlogs.read_build_info``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from recheck.logs.build import Build
from recheck.logs.http import Fetcher, FetchError, redact
from recheck.logs.listing import HttpLogSource
from recheck.logs.source import SourceError

__all__ = [
    "NoLogUrlError",
    "ZuulBuildSource",
    "build_from_zuul",
    "url_source",
    "zuul_api_url",
    "zuul_build_file_source",
    "zuul_build_source",
    "zuul_build_time",
    "zuul_builds",
    "zuul_buildset",
]

MAX_BUILD_JSON_BYTES = 16 << 20
"""The largest saved build record read."""

_ZUUL_BUILD_PATH = re.compile(
    r"(?P<prefix>.*?)/(?:t/(?P<tenant>[^/]+)/)?build/(?P<uuid>[0-9a-fA-F]{32})(?:/[a-z]+)?/?"
)


class NoLogUrlError(SourceError):
    """A Zuul build whose record has no ``log_url``: it uploaded no logs. A finished
    build never gets one later, so whoever waits for its logs can stop at once."""


class ZuulBuildSource(HttpLogSource):
    """The logs of a build Zuul's API described: its log root, fields and end time."""

    def __init__(self, url: str, fetcher: Fetcher, build: Build, end_time: datetime | None) -> None:
        super().__init__(url, fetcher, build)
        self.end_time = end_time
        """When the build ended (its start if Zuul has no end), as Zuul recorded it."""


def zuul_api_url(url: str) -> tuple[str, str | None] | None:
    """The Zuul API URL of a Zuul build page URL and the tenant it names; None if not one.

    ``https://ZUUL/t/TENANT/build/UUID`` -> ``https://ZUUL/api/tenant/TENANT/build/UUID``;
    ``https://ZUUL/build/UUID`` (white-label) -> ``https://ZUUL/api/build/UUID``.
    """
    parts = urlsplit(url)
    found = _ZUUL_BUILD_PATH.fullmatch(parts.path)
    if found is None:
        return None
    prefix, tenant, uuid = found["prefix"], found["tenant"], found["uuid"]
    api = f"{prefix}/api/tenant/{tenant}/build/{uuid}" if tenant else f"{prefix}/api/build/{uuid}"
    return urlunsplit((parts.scheme, parts.netloc, api, "", "")), unquote(
        tenant
    ) if tenant else None


def build_from_zuul(data: Mapping[str, Any], tenant: str | None = None) -> Build:
    """The build fields of a build record from Zuul's REST API (before and after Zuul 10).

    Zuul 10 moved ``change``, ``patchset``, ``branch`` and ``project`` into a ``ref``
    mapping; older Zuuls have them at the top level (and ``ref`` is the git ref).
    """
    ref = data.get("ref")
    where: Mapping[str, Any] = ref if isinstance(ref, Mapping) else data
    voting = data.get("voting")
    return Build().updated(
        {
            "build_uuid": _field(data.get("uuid")),
            "build_name": _field(data.get("job_name")),
            "build_status": _field(data.get("result")),
            "build_queue": _field(data.get("pipeline")),
            "build_change": _field(where.get("change")),
            "build_patchset": _field(where.get("patchset")),
            "build_branch": _field(where.get("branch")),
            "project": _field(where.get("project")),
            "voting": None if not isinstance(voting, bool) else ("1" if voting else "0"),
            "log_url": _field(data.get("log_url")),
            "tenant": tenant,
        }
    )


def _field(value: Any) -> str | None:
    # Some recorded API answers spell a missing value as the text "None" (Python's str()
    # of it): it means unknown, never a change or branch called None.
    if value is None or isinstance(value, bool | dict | list) or str(value) in ("", "None"):
        return None
    return str(value)


ZUUL_PAGE_SIZE = 100
"""Builds asked for per request when listing Zuul's builds."""
MAX_ZUUL_PAGES = 100
"""Requests one listing may take: without ``since`` or ``limit`` it would read all history."""


def zuul_builds(
    fetcher: Fetcher,
    zuul_url: str,
    tenant: str,
    *,
    pipeline: str | None = None,
    result: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    page_size: int = ZUUL_PAGE_SIZE,
) -> list[dict[str, Any]]:
    """The build records of ``GET ZUUL/api/tenant/TENANT/builds``, newest first.

    ``pipeline`` and ``result`` filter on Zuul's side. Zuul's API has no time filter and
    lists builds newest first, so pages (``skip``) are read until a build that started
    before ``since`` (left out, with every later one) or until ``limit`` builds.
    Raises SourceError when the list cannot be had (host not allowed, HTTP error, not
    a JSON list) or would take more than ``MAX_ZUUL_PAGES`` requests.
    """
    base = zuul_url.rstrip("/").removesuffix(f"/t/{tenant}")
    found: list[dict[str, Any]] = []
    for _ in range(MAX_ZUUL_PAGES):
        wanted = page_size if limit is None else min(page_size, limit - len(found))
        if wanted <= 0:
            return found
        params = {"pipeline": pipeline, "result": result, "limit": wanted, "skip": len(found)}
        query = urlencode({name: value for name, value in params.items() if value is not None})
        url = f"{base}/api/tenant/{quote(tenant, safe='')}/builds?{query}"
        records = _zuul_records(fetcher, url)
        for record in records:
            started = zuul_build_time(record, "start_time")
            if since is not None and started is not None and started < since:
                return found
            found.append(record)
        if len(records) < wanted:
            return found
    raise SourceError(
        f"{redact(base)}: more than {MAX_ZUUL_PAGES * page_size} builds to list; "
        "narrow the list with a shorter --since or a --limit"
    )


def _zuul_records(fetcher: Fetcher, url: str) -> list[dict[str, Any]]:
    try:
        body, _ = fetcher.read(url)
    except FetchError as exc:
        raise SourceError(str(exc)) from None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise SourceError(
            f"{redact(url)}: Zuul's API did not answer with a list of builds; check the "
            "Zuul URL (https://ZUUL, without /t/TENANT) and the tenant"
        )
    return data


def zuul_buildset(fetcher: Fetcher, zuul_url: str, tenant: str, uuid: str) -> dict[str, Any] | None:
    """The record of ``GET ZUUL/api/tenant/TENANT/buildset/UUID``, its builds included.

    Its ``result`` is None until Zuul has reported the buildset; ``builds`` is missing
    when it has none yet. None when Zuul answers 404 (no such buildset, or a Zuul older
    than that endpoint). Raises SourceError when it cannot be had otherwise (host not
    allowed, other HTTP errors, not a JSON object whose ``builds`` is a list of objects).
    """
    base = zuul_url.rstrip("/").removesuffix(f"/t/{tenant}")
    url = f"{base}/api/tenant/{quote(tenant, safe='')}/buildset/{quote(uuid, safe='')}"
    try:
        body, _ = fetcher.read(url)
    except FetchError as exc:
        if exc.status == 404:
            return None
        raise SourceError(str(exc)) from None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    builds = data.get("builds", []) if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or not isinstance(builds, list)
        or not all(isinstance(item, dict) for item in builds)
    ):
        raise SourceError(
            f"{redact(url)}: Zuul's API did not answer with a buildset (a JSON object with "
            "a list of builds); check the Zuul URL and the tenant"
        )
    return data


def zuul_build_time(record: Mapping[str, Any], key: str = "end_time") -> datetime | None:
    """A time of a Zuul build record (``start_time``, ``end_time``) as aware UTC; None if unset.

    Zuul writes UTC without a zone (``2021-02-08T14:40:49``); newer ones may add one.
    """
    value = record.get(key)
    if not isinstance(value, str) or value in ("", "None"):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def url_source(url: str, fetcher: Fetcher) -> HttpLogSource:
    """The logs at ``url``: a Zuul build page's build, or else a log root.

    Raises SourceError when the fetch policy refuses the URL (scheme, host).
    """
    try:
        fetcher.check(url)
    except FetchError as exc:
        raise SourceError(str(exc)) from None
    return zuul_build_source(url, fetcher) or HttpLogSource(url, fetcher)


def zuul_build_source(url: str, fetcher: Fetcher) -> ZuulBuildSource | None:
    """The logs of the Zuul build at ``url`` (a build page URL); None if not such a URL."""
    api = zuul_api_url(url)
    if api is None:
        return None
    api_url, tenant = api
    try:
        body, _ = fetcher.read(api_url)
    except FetchError as exc:
        if exc.status != 404:
            raise SourceError(str(exc)) from None
        raise SourceError(
            f"{redact(url)}: Zuul knows no such build ({redact(api_url)} answered HTTP 404); "
            "check the tenant and the build UUID"
        ) from None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SourceError(
            f"{redact(api_url)}: Zuul's API did not answer with a build record (JSON object); "
            "check that the URL is a Zuul build page"
        )
    return _build_logs(build_from_zuul(data, tenant), redact(api_url), fetcher, data)


def zuul_build_file_source(path: Path, fetcher: Fetcher) -> ZuulBuildSource | None:
    """The logs of the build whose Zuul API record ``path`` holds; None if it holds none.

    Accepts one build (``/api/tenant/T/build/UUID``) or a list of one build
    (``/api/tenant/T/builds?uuid=UUID``).
    """
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_BUILD_JSON_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    records = data if isinstance(data, list) else [data]
    builds = [item for item in records if _is_zuul_build(item)]
    if not builds or len(builds) != len(records):
        return None
    if len(builds) > 1:
        raise SourceError(
            f"{path}: holds {len(builds)} Zuul builds; save one build's record "
            "(/api/tenant/TENANT/build/UUID) or pass its log URL"
        )
    return _build_logs(build_from_zuul(builds[0]), str(path), fetcher, builds[0])


def _is_zuul_build(item: object) -> bool:
    return isinstance(item, dict) and {"uuid", "job_name", "log_url"} <= item.keys()


def _build_logs(
    build: Build, where: str, fetcher: Fetcher, record: Mapping[str, Any]
) -> ZuulBuildSource:
    if not build.log_url:
        raise NoLogUrlError(
            f"{where}: the build has no log_url (still running, or it uploaded no logs); "
            "nothing to classify"
        )
    end = zuul_build_time(record, "end_time") or zuul_build_time(record, "start_time")
    return ZuulBuildSource(build.log_url, fetcher, build, end)
