"""The HTTP client for logs and Zuul APIs: the fetch policy in one object, ``Fetcher``.

Only http(s) URLs on the hosts ``fetch.allowed_hosts`` lists are fetched, redirects
included; requests have timeouts and are retried with ``recheck.lib.backoff`` (or the
server's ``Retry-After``); bodies are streamed, each within a size and a total time limit
(and a build's files within a size budget); messages never show a URL's secrets.
"""

from __future__ import annotations

import email.utils
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self, cast
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from recheck import __version__
from recheck.config.files import FetchConfig
from recheck.lib.backoff import Backoff
from recheck.lib.errors import RecheckError
from recheck.logs.source import LimitReached, size_text

__all__ = [
    "MAX_INDEX_BYTES",
    "USER_AGENT",
    "DownloadBudget",
    "DownloadLimit",
    "FetchError",
    "Fetcher",
    "host_allowed",
    "redact",
]

USER_AGENT = f"recheck/{__version__} (CI failure-signature classifier)"
CHUNK_BYTES = 1 << 16
MAX_REDIRECTS = 5
MAX_INDEX_BYTES = 64 << 20
"""The largest manifest, listing page or API answer read into memory."""


class FetchError(RecheckError, OSError):
    """One request failed; the message names the (redacted) URL and what to do."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status when the server answered with an error, else None."""


class DownloadLimit(FetchError, LimitReached):
    """A download stopped at a size or time limit; the message names the setting."""


@dataclass
class DownloadBudget:
    """The bytes one build's files may download in all (``fetch.max_build_bytes``)."""

    limit: int
    used: int = 0


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
        # Unbounded: fetch.retries (at most 20) bounds the waits, as it always has.
        self._backoff = Backoff(initial=self.config.backoff, maximum=math.inf)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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

    def open(self, url: str, budget: DownloadBudget | None = None) -> BinaryIO:
        """The body of ``url`` as a stream read in chunks; FetchError if unavailable.

        Reading it raises DownloadLimit past ``fetch.max_file_bytes``, after
        ``fetch.download_deadline`` seconds from now, or once ``budget`` is spent.
        """
        config = self.config
        if budget is not None and budget.used >= budget.limit:
            raise DownloadLimit(f"{redact(url)}: not fetched: {self._budget_spent(budget)}")
        deadline = time.monotonic() + config.download_deadline
        limits = _Limits(deadline, config.max_file_bytes, budget, self)
        stream = _Body(_ResponseReader(self.response(url), redact(url), limits), CHUNK_BYTES)
        stream.max_text_bytes = config.max_file_bytes  # for recheck.logs.source.open_text_stream
        return cast(BinaryIO, stream)

    def _budget_spent(self, budget: DownloadBudget) -> str:
        return (
            f"the build's files reached {size_text(budget.limit)}, the most downloaded for "
            f"one build (fetch.max_build_bytes in {self.config_file}: raise it to fetch them all)"
        )

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
        deadline = time.monotonic() + self.config.download_deadline
        reader = _ResponseReader(response, redact(url), _Limits(deadline, None, None, self))
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
        """Seconds before retry ``attempt`` (0-based): the server's wish, or the backoff's."""
        if retry_after is not None:
            return min(retry_after, self.config.max_retry_after)
        return self._backoff.delay(attempt)


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


class _Body(io.BufferedReader):
    """A buffered response body that tells ``open_text_stream`` its text limit."""

    max_text_bytes: int


@dataclass(frozen=True)
class _Limits:
    """What one download may take: until ``deadline`` (monotonic), ``max_bytes``, ``budget``."""

    deadline: float
    max_bytes: int | None
    budget: DownloadBudget | None
    fetcher: Fetcher

    def check(self, where: str, received: int) -> None:
        """Raise DownloadLimit when a limit is passed, ``received`` bytes into the body."""
        fetcher, config = self.fetcher, self.fetcher.config
        if self.max_bytes is not None and received > self.max_bytes:
            raise DownloadLimit(
                f"{where}: larger than {size_text(self.max_bytes)}, the most downloaded of one "
                f"file (fetch.max_file_bytes in {fetcher.config_file}: raise it to fetch such "
                "files whole)"
            )
        if self.budget is not None and self.budget.used > self.budget.limit:
            raise DownloadLimit(f"{where}: {fetcher._budget_spent(self.budget)}")
        if time.monotonic() > self.deadline:
            raise DownloadLimit(
                f"{where}: still downloading after {config.download_deadline:g} s, the most "
                f"one file may take (fetch.download_deadline in {fetcher.config_file}: raise "
                f"it for slow servers); {received} bytes read"
            )


class _ResponseReader(io.RawIOBase):
    """A response body as a raw stream: chunks are read as the caller asks for them.

    Content-Encoding (gzip from swift) is decoded by httpx; any failure while reading
    (timeout, dropped connection, truncated body, a limit passed) is a FetchError, an
    OSError, so the caller reports it as that file's problem. A server that sends a line
    now and then never trips the read timeout: the deadline stops it.
    """

    def __init__(self, response: httpx.Response, where: str, limits: _Limits) -> None:
        self._response = response
        self._where = where
        self._limits = limits
        self._read_timeout = limits.fetcher.config.read_timeout
        self._chunks: Iterator[bytes] = response.iter_bytes()
        self._pending = memoryview(b"")
        self._received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            self._limits.check(self._where, self._received)
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
            if self._limits.budget is not None:
                self._limits.budget.used += len(chunk)
            if self._limits.max_bytes is not None and self._received > self._limits.max_bytes:
                # Keep the bytes up to the limit: the next read raises.
                chunk = chunk[: len(chunk) - (self._received - self._limits.max_bytes)]
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()
