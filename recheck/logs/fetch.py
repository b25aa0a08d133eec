"""Build logs over HTTP(S): a build's log root on a logs server, or a Zuul build.

Three ways in (``recheck.logs.sources`` picks one from what the user typed):

- a **log URL**, a build's log root (``https://logs.example.org/.../abc1234/``). Its
  file list is Zuul's ``zuul-manifest.json`` when the root has one, else the server's
  directory listings: Apache or nginx autoindex pages, or the ``index.html`` pages
  Zuul's swift upload writes. Listings are followed into subdirectories of the root
  only, never upward and never to another host.
- a **Zuul build URL**, ``https://ZUUL/t/TENANT/build/UUID`` (``https://ZUUL/build/UUID``
  for a white-label Zuul): the build's record from Zuul's REST API gives the log URL
  and the build fields (job, result, pipeline, change...).
- a **Zuul build's JSON** as that API returns it, saved in a local file.

``zuul_builds`` lists builds from Zuul's API (``/api/tenant/TENANT/builds``) for
``recheck ingest --zuul``.

Every URL fetched, redirects included, must be http(s) on a host that
``fetch.allowed_hosts`` lists (bot.yaml). Requests have connect and read timeouts and
are retried with exponential backoff after connection errors, 5xx and 429 answers
(``Retry-After`` obeyed up to ``fetch.max_retry_after``). Files are streamed: ``open``
returns a stream over the response body, read in 64 KiB chunks. Messages never show a
URL's password or query (``redact``). Errors::

    SourceError (recheck.logs.source)   the build's logs cannot be listed at all
    OSError
     └── FetchError                one request failed: URL refused by the policy, HTTP
                                   error status, network error, timeout. Raised by
                                   open() and by reads of an open file, so it becomes
                                   a FileProblem for that file only.
"""

from __future__ import annotations

import email.utils
import io
import json
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

import httpx

from recheck import __version__
from recheck.config.files import FetchConfig
from recheck.logs.build import Build
from recheck.logs.source import SourceError

__all__ = [
    "MANIFEST_NAME",
    "USER_AGENT",
    "FetchError",
    "Fetcher",
    "HttpLogSource",
    "build_from_zuul",
    "host_allowed",
    "listing_links",
    "manifest_paths",
    "redact",
    "url_source",
    "zuul_api_url",
    "zuul_build_file_source",
    "zuul_build_source",
    "zuul_build_time",
    "zuul_builds",
]

USER_AGENT = f"recheck/{__version__} (CI failure-signature classifier)"
MANIFEST_NAME = "zuul-manifest.json"
CHUNK_BYTES = 1 << 16
MAX_REDIRECTS = 5
MAX_INDEX_BYTES = 64 << 20
"""The largest manifest, listing page or API answer read into memory."""
MAX_LISTING_PAGES = 1000
"""Directory listings followed for one build: a bound on a server whose links loop."""
MAX_BUILD_JSON_BYTES = 16 << 20

_DIRECTORY_MIMETYPE = "application/directory"


class FetchError(OSError):
    """One request failed; the message names the (redacted) URL and what to do."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status when the server answered with an error, else None."""


# --- URL policy -------------------------------------------------------------------------


def redact(url: str) -> str:
    """``url`` without its user name, password and query values: safe to print."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        query = "..." if parts.query else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparsable URL>"


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` is listed: exactly, or under a ``*.example.org`` entry."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower()
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def _safe_segment(segment: str) -> bool:
    """A path segment that stays inside its directory, however a server reads it.

    Refused: ``.`` and ``..``, ``/`` and NUL, backslash paths that climb or start at a
    root (``..\\x``, ``\\x``, for servers that take ``\\`` as a separator), and
    percent-encoded forms of all of these. A backslash inside a name (systemd's
    ``dev-disk-by\\x2dlabel``) is a plain character and is fetched as ``%5C``.
    """
    for text in (segment, unquote(segment)):
        if text in ("", ".", "..") or "/" in text or "\0" in text or text.startswith("\\"):
            return False
        if any(part in (".", "..") for part in text.split("\\")):
            return False
    return True


# --- HTTP ---------------------------------------------------------------------------------


class Fetcher:
    """GETs URLs under the fetch policy: allowed hosts, timeouts, retries, checked redirects."""

    def __init__(
        self,
        config: FetchConfig | None = None,
        *,
        config_file: str | Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or FetchConfig()
        self.config_file = str(config_file) if config_file else "bot.yaml"
        self._sleep = sleep
        self._client = httpx.Client(
            timeout=httpx.Timeout(
                connect=self.config.connect_timeout,
                read=self.config.read_timeout,
                write=self.config.read_timeout,
                pool=self.config.connect_timeout,
            ),
            follow_redirects=False,  # each hop is checked against the allowed hosts
            headers={"User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        """Close the connections kept open for reuse."""
        self._client.close()

    def check(self, url: str, *, redirected_from: str | None = None) -> None:
        """Raise FetchError unless ``url`` is http(s) on an allowed host."""
        via = f"{redact(redirected_from)}: redirected to " if redirected_from else ""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as exc:
            raise FetchError(f"{via}{redact(url)}: not a valid URL ({exc})") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise FetchError(
                f"{via}{redact(url)}: only http:// and https:// URLs are fetched; "
                "for files on this machine give their path instead"
            )
        if not host:
            raise FetchError(f"{via}{redact(url)}: the URL has no host name")
        if not host_allowed(host, self.config.allowed_hosts):
            domain = host.partition(".")[2]
            is_address = ":" in host or host.replace(".", "").isdigit()
            hint = (
                f" (or '*.{domain}' for all hosts of that domain)"
                if "." in domain and not is_address
                else ""
            )
            raise FetchError(
                f"{via}{redact(url)}: host {host} is not allowed; if its logs may be "
                f"fetched, add it to fetch.allowed_hosts in {self.config_file}{hint}"
            )

    def response(self, url: str) -> httpx.Response:
        """A 2xx response to GET ``url`` whose body is not read yet; the caller closes it."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self.check(current, redirected_from=None if current == url else url)
            response = self._send(current)
            location = response.headers.get("location")
            if response.status_code in (301, 302, 303, 307, 308) and location:
                response.close()
                current = urljoin(current, location)
                continue
            if not 200 <= response.status_code < 300:
                response.close()
                raise FetchError(
                    f"{redact(url)}: HTTP {response.status_code} {response.reason_phrase}"
                    f"{_status_advice(response.status_code, self.config.retries)}",
                    status=response.status_code,
                )
            return response
        raise FetchError(f"{redact(url)}: more than {MAX_REDIRECTS} redirects; check the URL")

    def open(self, url: str) -> BinaryIO:
        """The body of ``url`` as a stream read in chunks; FetchError if unavailable."""
        return self._stream(self.response(url), url)

    def read(self, url: str, limit: int = MAX_INDEX_BYTES) -> tuple[bytes, str]:
        """The whole body of ``url`` (at most ``limit`` bytes) and its content type."""
        response = self.response(url)
        content_type = response.headers.get("content-type", "")
        with self._stream(response, url) as stream:
            body = stream.read(limit + 1)
        if len(body) > limit:
            raise FetchError(f"{redact(url)}: larger than {limit >> 20} MiB; not read")
        return body, content_type

    def _stream(self, response: httpx.Response, url: str) -> BinaryIO:
        reader = _ResponseReader(response, redact(url), self.config.read_timeout)
        return cast(BinaryIO, io.BufferedReader(reader, CHUNK_BYTES))

    def _send(self, url: str) -> httpx.Response:
        """GET ``url``, retrying connection failures, 5xx and 429 as configured."""
        retries = self.config.retries
        for attempt in range(retries + 1):
            try:
                response = self._client.send(self._client.build_request("GET", url), stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                    httpx.ReadError) as exc:  # fmt: skip
                if attempt < retries:
                    self._sleep(self._delay(attempt, None))
                    continue
                raise FetchError(
                    f"{redact(url)}: {_network_problem(exc)} after {_attempts(retries)}; check "
                    f"the URL and the network, or raise fetch.retries in {self.config_file}"
                ) from None
            except httpx.TimeoutException:
                # Not retried: a server that stalled once usually stalls again, and each
                # retry would cost another full read_timeout.
                raise FetchError(
                    f"{redact(url)}: no answer within {self.config.read_timeout:g} s "
                    f"(fetch.read_timeout in {self.config_file}); the server is slow or "
                    "down: try again later or raise the timeout"
                ) from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise FetchError(f"{redact(url)}: {_network_problem(exc)}") from None
            status = response.status_code
            if (status == 429 or status >= 500) and attempt < retries:
                wait = _retry_after(response.headers.get("retry-after"), time.time())
                response.close()
                self._sleep(self._delay(attempt, wait))
                continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry ``attempt`` (0-based): the server's wish, or backoff with jitter."""
        if retry_after is not None:
            return min(retry_after, self.config.max_retry_after)
        return self.config.backoff * 2.0**attempt * random.uniform(0.5, 1.0)


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _attempts(retries: int) -> str:
    return "1 attempt" if retries == 0 else f"{retries + 1} attempts"


def _status_advice(status: int, retries: int) -> str:
    if status in (404, 410):
        return " (not found: the URL is wrong or the logs have expired)"
    if status in (401, 403):
        return " (access denied: recheck fetches public logs only)"
    if status == 429 or status >= 500:
        return f" after {_attempts(retries)}; the server is overloaded or down: try again later"
    return ""


def _network_problem(exc: Exception) -> str:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return f"cannot connect ({str(exc) or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _ResponseReader(io.RawIOBase):
    """A response body as a raw stream: chunks are read as the caller asks for them.

    Content-Encoding (gzip from swift) is decoded by httpx; any failure while reading
    (timeout, dropped connection, truncated body) is a FetchError, an OSError, so the
    caller reports it as that file's problem.
    """

    def __init__(self, response: httpx.Response, where: str, read_timeout: float) -> None:
        self._response = response
        self._where = where
        self._read_timeout = read_timeout
        self._chunks: Iterator[bytes] = response.iter_bytes()
        self._pending = memoryview(b"")
        self._received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return 0
            except httpx.TimeoutException:
                raise FetchError(
                    f"{self._where}: the server sent nothing for {self._read_timeout:g} s "
                    f"after {self._received} bytes (fetch.read_timeout); the file is incomplete"
                ) from None
            except (httpx.HTTPError, httpx.StreamError) as exc:
                raise FetchError(
                    f"{self._where}: connection lost after {self._received} bytes "
                    f"({_network_problem(exc)}); the file is incomplete"
                ) from None
            self._received += len(chunk)
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


# --- a log root ---------------------------------------------------------------------------


class HttpLogSource:
    """A build's log root on a logs server: listed from its manifest or its listings."""

    def __init__(self, url: str, fetcher: Fetcher, build: Build | None = None) -> None:
        self.root = _log_root(url)
        self.fetcher = fetcher
        try:
            fetcher.check(self.root)
        except FetchError as exc:
            raise SourceError(str(exc)) from None
        self._build = build if build is not None else Build(log_url=redact(self.root))
        self._paths: list[str] | None = None

    @property
    def location(self) -> str:
        # Without the final '/', as the other sources: messages add '/<path in the build>'.
        return redact(self.root).removesuffix("/")

    def paths(self) -> list[str]:
        if self._paths is None:
            try:
                found = self._manifest_paths()
                if found is None:
                    found = self._listed_paths()
            except FetchError as exc:
                raise SourceError(str(exc)) from None
            if not found:
                raise SourceError(
                    f"{self.location}: no files found; give the build's log root URL "
                    "(the directory holding job-output.txt or console.html)"
                )
            self._paths = sorted(set(found))
        return list(self._paths)

    def open(self, path: str) -> BinaryIO:
        if path.startswith("/") or not all(_safe_segment(part) for part in path.split("/")):
            raise FetchError(f"{path}: not a path inside the log root; not fetched")
        return self.fetcher.open(self.root + quote(path))

    def build_info(self) -> Build:
        return self._build

    def close(self) -> None:
        """Close the HTTP connections."""
        self.fetcher.close()

    def _manifest_paths(self) -> list[str] | None:
        """The files ``zuul-manifest.json`` lists, or None when the root has none."""
        url = self.root + MANIFEST_NAME
        try:
            body, _ = self.fetcher.read(url)
        except FetchError as exc:
            if exc.status in (401, 403, 404, 410):  # swift answers 401/403 for a missing object
                return None
            raise
        try:
            data = json.loads(body)
        except ValueError:
            raise SourceError(
                f"{redact(url)}: not valid JSON, so not a Zuul manifest; check the log URL"
            ) from None
        return manifest_paths(data, redact(url))

    def _listed_paths(self) -> list[str]:
        """The files the server's directory listings show, walking down from the root."""
        found: list[str] = []
        queue: deque[str] = deque([self.root])
        seen = {self.root}
        pages = 0
        while queue:
            pages += 1
            if pages > MAX_LISTING_PAGES:
                raise SourceError(
                    f"{self.location}: more than {MAX_LISTING_PAGES} directory listings; "
                    f"the server's links loop or the build is unusually large (a "
                    f"{MANIFEST_NAME} at the log root would list its files in one request)"
                )
            page = queue.popleft()
            body, content_type = self.fetcher.read(page)
            if not _looks_like_html(body, content_type):
                if page == self.root:
                    raise SourceError(
                        f"{self.location}: neither a {MANIFEST_NAME} nor a directory listing "
                        f"(the server sent {content_type or 'no content type'}); give the "
                        "build's log root URL, the directory holding its logs"
                    )
                continue
            for url, path, is_dir in listing_links(
                body.decode("utf-8", "replace"), page, self.root
            ):
                if not is_dir:
                    found.append(path)
                elif url not in seen:
                    seen.add(url)
                    queue.append(url)
        return found


def _log_root(url: str) -> str:
    """The log root URL: no query or fragment, no ``index.html``, ending with ``/``."""
    parts = urlsplit(url.strip())
    path = (
        parts.path.removesuffix("index.html") if parts.path.endswith("/index.html") else parts.path
    )
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def manifest_paths(data: Any, where: str) -> list[str]:
    """The file paths a Zuul manifest lists (``{"tree": [{"name", "mimetype", "children"}]}``).

    A name that could leave the log root (``..``, ``/``, a climbing ``\\`` path, or an
    escaped form of them) refuses the whole manifest: Zuul writes plain directory entry
    names, so such a manifest was not written by Zuul.
    """
    tree = data.get("tree") if isinstance(data, dict) else None
    if not isinstance(tree, list):
        raise SourceError(f'{where}: not a Zuul manifest (no "tree" list); check the log URL')
    found: list[str] = []
    stack: list[tuple[str, list[Any]]] = [("", tree)]
    while stack:
        prefix, entries = stack.pop()
        for entry in entries:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not _safe_segment(name):
                raise SourceError(
                    f"{where}: entry {prefix}{name!r} is not a plain file name inside the log "
                    "root ('..', '/', a climbing '\\' path or an escaped form of them); "
                    "refusing this manifest: Zuul never writes one like it, so check where "
                    "the URL points"
                )
            children = entry.get("children")
            if entry.get("mimetype") == _DIRECTORY_MIMETYPE or isinstance(children, list):
                stack.append((f"{prefix}{name}/", children if isinstance(children, list) else []))
            else:
                found.append(prefix + name)
    return found


def _looks_like_html(body: bytes, content_type: str) -> bool:
    return "html" in content_type.lower() or body.lstrip()[:1] == b"<"


class _LinkParser(HTMLParser):
    """Collects ``(href, text)`` of every ``<a href>`` of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._finish()
            self._href = dict(attrs).get("href")
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._finish()

    def _finish(self) -> None:
        if self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
        self._href = None

    def close(self) -> None:
        super().close()
        self._finish()


def listing_links(page_html: str, page_url: str, root: str) -> list[tuple[str, str, bool]]:
    """``(url, path in the build, is a directory)`` for each link of a listing into the root.

    Understands Apache and nginx autoindex pages (``logs/`` links to a directory) and
    the listings Zuul's swift upload writes (``logs/index.html`` shown as ``logs/``).
    Links that leave the root (the parent directory, icons, other hosts), links with a
    query (Apache's sort links) and names that could escape once decoded are skipped.
    """
    parser = _LinkParser()
    parser.feed(page_html)
    parser.close()
    base = urlsplit(root)
    found: list[tuple[str, str, bool]] = []
    for href, text in parser.links:
        if not href or href.startswith(("?", "#")):
            continue
        try:
            target = urlsplit(urljoin(page_url, href))
            same_place = (target.scheme, target.hostname, target.port) == (
                base.scheme,
                base.hostname,
                base.port,
            )
        except ValueError:
            continue
        if target.query or not same_place or not target.path.startswith(base.path):
            continue
        relative = target.path[len(base.path) :]
        is_dir = relative.endswith("/")
        if text.endswith("/") and (relative == "index.html" or relative.endswith("/index.html")):
            is_dir, relative = True, relative.removesuffix("index.html")
        segments = relative.removesuffix("/").split("/")
        if not relative or not all(_safe_segment(segment) for segment in segments):
            continue
        url = urlunsplit((target.scheme, target.netloc, target.path, "", ""))
        found.append((url, "/".join(unquote(segment) for segment in segments), is_dir))
    return found


# --- Zuul builds --------------------------------------------------------------------------

_ZUUL_BUILD_PATH = re.compile(
    r"(?P<prefix>.*?)/(?:t/(?P<tenant>[^/]+)/)?build/(?P<uuid>[0-9a-fA-F]{32})(?:/[a-z]+)?/?"
)


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


def zuul_build_source(url: str, fetcher: Fetcher) -> HttpLogSource | None:
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
    return _build_logs(build_from_zuul(data, tenant), redact(api_url), fetcher)


def zuul_build_file_source(path: Path, fetcher: Fetcher) -> HttpLogSource | None:
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
    return _build_logs(build_from_zuul(builds[0]), str(path), fetcher)


def _is_zuul_build(item: object) -> bool:
    return isinstance(item, dict) and {"uuid", "job_name", "log_url"} <= item.keys()


def _build_logs(build: Build, where: str, fetcher: Fetcher) -> HttpLogSource:
    if not build.log_url:
        raise SourceError(
            f"{where}: the build has no log_url (still running, or it uploaded no logs); "
            "nothing to classify"
        )
    return HttpLogSource(build.log_url, fetcher, build)
