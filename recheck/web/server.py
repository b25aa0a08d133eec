"""``recheck serve``: the same pages as ``recheck report``, built live from the store.

Threads serve connections, but one worker thread does every read of the store (the
embedded store keeps a SQLite connection per reading thread), at most every
``cache_seconds``. A store error is a 503 page naming the store; the server goes on.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from recheck.store.base import StoreError
from recheck.web.pages import WINDOWS, as_json
from recheck.web.render import STATIC_DIR, Links, Renderer, page_json
from recheck.web.search import FACETS, MAX_DAYS, MAX_QUERY_CHARS, SearchPage, search_page
from recheck.web.site import UNCATEGORIZED, Page, Snapshot

__all__ = ["REQUEST_TIMEOUT", "SECURITY_HEADERS", "WAITING_CONNECTIONS", "WORKERS", "PageServer"]

REQUEST_TIMEOUT = 10.0
"""Seconds a connection may stay silent while it sends its request or reads the answer:
a client that sends half a request and waits holds a worker this long, not forever."""

WORKERS = 16
"""Connections answered at once, each on one thread of a fixed pool."""

WAITING_CONNECTIONS = 128
"""Accepted connections that may wait for a worker; one more is closed at once, so a flood
of idle connections costs neither threads nor memory without bound."""

SECURITY_HEADERS = {
    # No script runs on these pages; the policy makes sure none injected ever could.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


class PageServer:
    """An HTTP server of the pages of the snapshots ``snapshot`` makes."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        cache_seconds: float = 60.0,
        renderer: Renderer | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        workers: int = WORKERS,
        waiting: int = WAITING_CONNECTIONS,
    ) -> None:
        self._make_snapshot = snapshot
        self._renderer = renderer or Renderer()
        self._cache_seconds = cache_seconds
        self._snapshot: tuple[float, Snapshot] | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recheck-pages")
        self.httpd = _PooledHTTPServer(
            (host, port), self._handler(request_timeout), workers, waiting
        )

    @property
    def url(self) -> str:
        """The server's address, e.g. ``http://127.0.0.1:8080/``."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def serve_forever(self) -> None:
        """Answer requests until ``shutdown`` is called (from another thread)."""
        self.httpd.serve_forever()

    def shutdown(self) -> None:
        """Stop serving and release the port and the worker thread."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self._worker.shutdown(wait=True)

    # ----------------------------------------------------------------- answering

    def answer(self, target: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request of ``target`` (path and query)."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        api = path.startswith("/api/") or path == "/api"
        try:
            return self._page_answer(path, query, api)
        except StoreError as exc:
            message = f"the store cannot be read: {exc}"
            if api:
                return self._json_body(HTTPStatus.SERVICE_UNAVAILABLE, {"error": message})
            html = self._renderer.not_found("Store unavailable", message, _links(path))
            return HTTPStatus.SERVICE_UNAVAILABLE, "text/html; charset=utf-8", html.encode()

    def _page_answer(
        self, path: str, query: dict[str, list[str]], api: bool
    ) -> tuple[int, str, bytes]:
        """The answer for a page or its JSON; raises StoreError when the store fails."""
        if path in ("/api", "/api/"):
            return self._json_body(HTTPStatus.OK, self._index())
        if path in ("/search", "/search.html", "/api/search.json"):
            return self._search(query, api)
        name = path.removeprefix("/api/" if api else "/")
        suffix = ".json" if api else ".html"
        if not api and name == "":
            name = "index.html"
        if not name.endswith(suffix):
            return self._missing(path, api)
        name = name.removesuffix(suffix)
        window = query.get("window", [None])[-1]
        if name == UNCATEGORIZED and window is not None:
            if window not in dict(WINDOWS):
                return self._bad_window(path, window, api)
            name = f"{UNCATEGORIZED}-{window}"
        page = self._worker.submit(self._page, name).result()
        if page is None:
            return self._missing(path, api)
        if api:
            return HTTPStatus.OK, "application/json", page_json(page).encode("utf-8")
        html = self._renderer.html(page, Links(name, live=True))
        return HTTPStatus.OK, "text/html; charset=utf-8", html.encode("utf-8")

    def _search(self, query: dict[str, list[str]], api: bool) -> tuple[int, str, bytes]:
        """The search page (or its JSON) of ``?q=...&days=N`` and facet filters."""
        text = query.get("q", [""])[-1]
        given = query.get("days", [None])[-1]
        days = self._settings_days if given is None else _days(given)
        filters = {name: values[-1] for name, values in query.items() if name in FACETS}
        if days is None or len(text) > MAX_QUERY_CHARS:
            what = (
                f"?days= takes a number of days above 0 and at most {MAX_DAYS}, not {given!r}."
                if days is None
                else f"The query is longer than {MAX_QUERY_CHARS:,} characters."
            )
            if api:
                return self._json_body(HTTPStatus.BAD_REQUEST, {"error": what})
            html = self._renderer.not_found("Bad request", what, _links("/search"))
            return HTTPStatus.BAD_REQUEST, "text/html; charset=utf-8", html.encode("utf-8")
        page = self._worker.submit(self._search_page, text, days, filters).result()
        if api:
            body = json.dumps(as_json(page), ensure_ascii=False, separators=(",", ":"))
            return HTTPStatus.OK, "application/json", body.encode("utf-8")
        html = self._renderer.search_html(page, Links("search", live=True, params=page.params))
        return HTTPStatus.OK, "text/html; charset=utf-8", html.encode("utf-8")

    def _search_page(self, text: str, days: float, filters: dict[str, str]) -> SearchPage:
        """On the worker thread: a search, always fresh, with the current snapshot's header."""
        snapshot = self._current()
        return search_page(snapshot.store, snapshot.header, text, days, filters)

    @property
    def _settings_days(self) -> float:
        return float(self._worker.submit(self._current).result().settings.days)

    def _page(self, name: str) -> Page | None:
        """On the worker thread: the page from a snapshot at most ``cache_seconds`` old."""
        now = time.monotonic()
        if self._snapshot is None or now - self._snapshot[0] > self._cache_seconds:
            self._snapshot = (now, self._make_snapshot())
        return self._snapshot[1].page(name)

    def _index(self) -> dict[str, list[str]]:
        snapshot = self._worker.submit(self._current).result()
        return {"pages": [f"/api/{name}.json" for name in snapshot.names()]}

    def _current(self) -> Snapshot:
        self._page("index")
        assert self._snapshot is not None
        return self._snapshot[1]

    def _static(self, name: str) -> tuple[int, str, bytes]:
        path = STATIC_DIR / name
        kind = _STATIC_TYPES.get(path.suffix)
        # Only plain names of files in the static directory: no '..', no subdirectories.
        if "/" in name or name.startswith(".") or kind is None or not path.is_file():
            return self._missing(f"/static/{name}", api=False)
        return HTTPStatus.OK, kind, path.read_bytes()

    def _missing(self, path: str, api: bool) -> tuple[int, str, bytes]:
        what = f"There is no page at {path}."
        if api:
            return self._json_body(HTTPStatus.NOT_FOUND, {"error": what})
        html = self._renderer.not_found("Not found", what, _links(path))
        return HTTPStatus.NOT_FOUND, "text/html; charset=utf-8", html.encode("utf-8")

    def _bad_window(self, path: str, window: str, api: bool) -> tuple[int, str, bytes]:
        what = f"Unknown window {window!r}: ?window= takes one of {', '.join(dict(WINDOWS))}."
        if api:
            return self._json_body(HTTPStatus.BAD_REQUEST, {"error": what})
        html = self._renderer.not_found("Bad request", what, _links(path))
        return HTTPStatus.BAD_REQUEST, "text/html; charset=utf-8", html.encode("utf-8")

    @staticmethod
    def _json_body(status: int, value: object) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(value, indent=1).encode("utf-8")

    def _handler(self, request_timeout: float) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "recheck"
            timeout = request_timeout  # on the socket: a silent client gets "timed out"

            def do_GET(self) -> None:
                self._reply(send_body=True)

            def do_HEAD(self) -> None:
                self._reply(send_body=False)

            def _reply(self, *, send_body: bool) -> None:
                try:
                    status, kind, body = server.answer(self.path)
                except Exception:  # a bug must cost one request, not the server
                    traceback.print_exc(file=sys.stderr)
                    status, kind = HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8"
                    body = b"recheck serve: internal error; see the server's log\n"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                for header, value in SECURITY_HEADERS.items():
                    self.send_header(header, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # One line per request on stderr, without the client's own text: a path
                # may hold control characters meant for a terminal.
                text = format % args
                print("".join(c if c.isprintable() else "?" for c in text), file=sys.stderr)

        return Handler


class _PooledHTTPServer(HTTPServer):
    """An HTTP server that answers connections on a fixed pool of threads.

    ``ThreadingHTTPServer`` starts a thread per connection, so idle half-sent requests
    piled up threads (3,000 connections, 3,000 threads). Here at most ``workers`` threads
    answer, ``waiting`` more connections queue, and any beyond are closed unanswered.
    """

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        workers: int,
        waiting: int,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recheck-http")
        self._slots = threading.BoundedSemaphore(workers + waiting)
        self._closing = False
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request: socket.socket, client_address: object) -> None:
        try:
            if not self._closing:
                self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def server_close(self) -> None:
        """Stop listening; connections still queued are closed unanswered."""
        self._closing = True
        super().server_close()
        self._pool.shutdown(wait=True)


def _days(text: str) -> float | None:
    """``?days=`` as a number of days, or None when it is not one in (0, MAX_DAYS]."""
    try:
        days = float(text)
    except ValueError:
        return None
    return days if 0 < days <= MAX_DAYS else None


def _links(path: str) -> Links:
    """Links for an error page answering ``path``: relative to where the browser is, so
    that ``/bugs/424242.html`` links back to ``../index.html`` and its stylesheet."""
    return Links(path.lstrip("/").removesuffix(".html"), live=True)
