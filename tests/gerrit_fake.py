"""A fake Gerrit speaking the real protocols, and the logs server its events link to.

``FakeGerrit`` runs, on free localhost ports, an SSH server (asyncssh, public-key auth
against a generated client key, a generated host key the client must verify) that
answers ``gerrit stream-events`` by streaming whatever the test ``emit``s (recorded real
events), ``gerrit review --json C,P`` and ``gerrit query --format=JSON --comments``;
and an HTTP server with basic auth implementing Gerrit REST's
``POST /a/changes/{id}/revisions/{rev}/review`` and ``GET /a/changes/{id}/messages``
(answers start with Gerrit's ``)]}'`` line). Every review posted either way is kept
in ``reviews``. It misbehaves on request: 503s, a review stored but answered with 500
(the answer lost), dropped streams.

``LogSite`` serves real build directories of tests/fixtures/builds under the paths the
recorded events' log URLs have (``/logs/<path>``, with a Zuul manifest), and Zuul API
build records (``/api/tenant/T/build/UUID``, and ``/api/tenant/T/builds`` filtered by
``result`` and ``pipeline``, paged by ``skip`` and ``limit``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # As in recheck.bot.gerrit: asyncssh touches cryptography's deprecated DSA classes
    # at import time, and the tests turn warnings into errors.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

BUILDS = Path(__file__).parent / "fixtures" / "builds"
XSSI = ")]}'\n"


@dataclass(frozen=True)
class Review:
    """One review comment Gerrit accepted."""

    change: str
    patchset: str
    message: str
    tag: str
    via: str
    """``rest`` or ``ssh``."""
    at: float = 0.0
    """``time.monotonic()`` when Gerrit stored it."""


class FakeGerrit:
    """SSH (stream-events, review, query) and REST (review, messages) on localhost."""

    def __init__(self, directory: Path, user: str = "recheck", password: str = "s3cret-pw") -> None:
        self.directory = directory
        self.user = user
        self.password = password
        self.reviews: list[Review] = []
        self.lock = threading.Lock()
        self.fail_posts = 0
        """REST posts still to refuse with 503."""
        self.lose_answers = 0
        """REST posts still to store but answer with 500, as if the answer was lost."""
        self.rest_requests: list[str] = []
        self._streams: set[asyncio.Queue[str | None]] = set()
        self.connections = 0
        self._open: set[asyncssh.SSHServerConnection] = set()
        """SSH connections not closed yet: closed on exit, so no socket is left open."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.key_file = directory / "client_key"
        self.known_hosts = directory / "known_hosts"
        self.http = _QuietServer(("127.0.0.1", 0), _rest_handler(self))
        self.http_port = self.http.server_address[1]
        self.url = f"http://127.0.0.1:{self.http_port}"
        self._http_thread = threading.Thread(
            target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.ssh_port = 0
        self._ssh_server: asyncssh.SSHAcceptor | None = None

    def __enter__(self) -> FakeGerrit:
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key.write_private_key(str(self.key_file))
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode("ascii"))
        self._thread.start()
        self._ssh_server = self._call(
            asyncssh.create_server(
                lambda: _SshServer(self),
                "127.0.0.1",
                0,
                server_host_keys=[host_key],
                authorized_client_keys=authorized,
                process_factory=self._process,
            )
        )
        self.ssh_port = self._ssh_server.sockets[0].getsockname()[1]
        public = host_key.export_public_key().decode("ascii").strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ssh_port} {public}\n")
        self._http_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.drop_streams()
        if self._ssh_server is not None:
            self._ssh_server.close()
            self._call(self._ssh_server.wait_closed())
        self._call(self._close_connections())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()  # its self-pipe sockets; an unclosed loop is a ResourceWarning

    async def _close_connections(self) -> None:
        for conn in list(self._open):
            conn.close()
            await conn.wait_closed()

    def _call(self, awaitable: Any) -> Any:
        async def wrapped() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(10)

    # --- what tests do ---------------------------------------------------------------

    @property
    def streams(self) -> int:
        """Clients listening to stream-events now."""
        return len(self._streams)

    def wait_for_stream(self, count: int = 1, timeout: float = 30) -> None:
        """Wait until ``count`` clients listen (a bot connected)."""
        deadline = time.monotonic() + timeout
        while self.streams < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no client listened to stream-events in {timeout} s")
            time.sleep(0.02)

    def emit(self, line: str) -> None:
        """Send one raw line to every stream-events client, as Gerrit would."""
        for queue in list(self._streams):
            self._loop.call_soon_threadsafe(queue.put_nowait, line)

    def drop_streams(self) -> None:
        """End every stream-events session (the client sees the stream close)."""
        for queue in list(self._streams):
            self._loop.call_soon_threadsafe(queue.put_nowait, None)

    def comments_on(self, change: str) -> list[Review]:
        """The reviews posted on ``change``."""
        with self.lock:
            return [review for review in self.reviews if review.change == change]

    # --- SSH ---------------------------------------------------------------------------

    async def _process(self, process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command or ""
        words = shlex.split(command)
        try:
            if words[:2] == ["gerrit", "stream-events"]:
                await self._stream(process)
            elif words[:3] == ["gerrit", "review", "--json"] and len(words) == 4:
                change, _, patchset = words[3].partition(",")
                data = json.loads(await process.stdin.read())
                self._store(change, patchset, data, "ssh")
                process.exit(0)
            elif words[:2] == ["gerrit", "query"] and words[-1].startswith("change:"):
                change = words[-1].removeprefix("change:")
                process.stdout.write(json.dumps(self._query(change)) + "\n")
                process.stdout.write(json.dumps({"type": "stats", "rowCount": 1}) + "\n")
                process.exit(0)
            else:
                process.stderr.write(f"fatal: gerrit: {command}: not found\n")
                process.exit(1)
        except (OSError, asyncssh.Error):
            process.close()

    async def _stream(self, process: asyncssh.SSHServerProcess[str]) -> None:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._streams.add(queue)
        closed = asyncio.ensure_future(process.wait_closed())
        try:
            while True:
                line_task = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {line_task, closed}, return_when=asyncio.FIRST_COMPLETED
                )
                if closed in done:
                    line_task.cancel()
                    return
                line = line_task.result()
                if line is None:
                    break
                process.stdout.write(line + "\n")
                await process.stdout.drain()
        finally:
            self._streams.discard(queue)
        process.exit(0)

    def _query(self, change: str) -> dict[str, Any]:
        comments = [
            {
                "timestamp": 1700000000 + index,
                "reviewer": {"username": self.user, "name": "recheck"},
                "message": f"Patch Set {review.patchset}:\n\n{review.message}",
            }
            for index, review in enumerate(self.comments_on(change))
        ]
        return {"project": "p", "number": int(change), "comments": comments}

    def _store(self, change: str, patchset: str, data: dict[str, Any], via: str) -> None:
        with self.lock:
            self.reviews.append(
                Review(
                    change,
                    patchset,
                    str(data.get("message", "")),
                    str(data.get("tag")),
                    via,
                    time.monotonic(),
                )
            )


class _SshServer(asyncssh.SSHServer):
    def __init__(self, fake: FakeGerrit) -> None:
        self.fake = fake

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.fake.connections += 1
        self._conn = conn
        self.fake._open.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fake._open.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # public-key auth against authorized_client_keys is required


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _rest_handler(fake: FakeGerrit) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{fake.user}:{fake.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _parts(self) -> list[str] | None:
            fake.rest_requests.append(f"{self.command} {self.path}")
            if self.headers.get("Authorization") != expected:
                self._send(401, "Unauthorized")
                return None
            return [unquote(part) for part in urlsplit(self.path).path.strip("/").split("/")]

        def do_GET(self) -> None:
            parts = self._parts()
            if parts is None:
                return
            if len(parts) == 4 and parts[:2] == ["a", "changes"] and parts[3] == "messages":
                change = parts[2].rpartition("~")[2]
                messages = [
                    {
                        "id": f"m{index}",
                        "author": {"_account_id": 1000, "username": fake.user},
                        "date": "2024-01-01 00:00:00.000000000",
                        "message": f"Patch Set {review.patchset}:\n\n{review.message}",
                        "_revision_number": int(review.patchset),
                        "tag": review.tag,
                    }
                    for index, review in enumerate(fake.comments_on(change))
                ]
                self._send(200, XSSI + json.dumps(messages))
            else:
                self._send(404, "Not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parts = self._parts()
            if parts is None:
                return
            review = (
                len(parts) == 6
                and parts[:2] == ["a", "changes"]
                and parts[3] == "revisions"
                and parts[5] == "review"
            )
            if not review:
                self._send(404, "Not found")
                return
            with fake.lock:
                refuse = fake.fail_posts > 0
                fake.fail_posts -= int(refuse)
                lose = not refuse and fake.lose_answers > 0
                fake.lose_answers -= int(lose)
            if refuse:
                self._send(503, "Service Unavailable")
                return
            fake._store(parts[2].rpartition("~")[2], parts[4], json.loads(body), "rest")
            if lose:
                self._send(500, "Internal Server Error")
            else:
                self._send(200, XSSI + json.dumps({"labels": {}}))

        def _send(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class LogSite:
    """Real build directories served under recorded log URL paths, plus Zuul API records."""

    def __init__(self) -> None:
        self.routes: dict[str, Path] = {}
        """URL path under /logs/ (no slashes around) -> build directory."""
        self.builds: dict[str, dict[str, Any]] = {}
        """Zuul build uuid -> API record."""
        self.requests = 0
        self.server = _QuietServer(("127.0.0.1", 0), _log_handler(self))
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LogSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, path: str, build: str) -> str:
        """Serve tests/fixtures/builds/<build> at /logs/<path>/; returns that URL."""
        self.routes[path.strip("/")] = BUILDS / build
        return f"{self.url}/logs/{path.strip('/')}/"


def _manifest(directory: Path) -> dict[str, Any]:
    def walk(folder: Path) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for item in sorted(folder.iterdir()):
            if item.is_dir():
                entries.append(
                    {"name": item.name, "mimetype": "application/directory",
                     "children": walk(item)}
                )  # fmt: skip
            else:
                entries.append({"name": item.name, "mimetype": "text/plain"})
        return entries

    return {"tree": walk(directory), "index_links": False}


def _log_handler(site: LogSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            site.requests += 1
            path = unquote(urlsplit(self.path).path)
            if path.startswith("/api/tenant/") and path.endswith("/builds"):
                wanted = dict(parse_qsl(urlsplit(self.path).query))
                listed = [
                    record
                    for record in reversed(site.builds.values())  # newest first, as Zuul
                    if all(str(record.get(k)) == wanted[k] for k in ("result", "pipeline")
                           if k in wanted)
                ]  # fmt: skip
                skip = int(wanted.get("skip", 0))
                page = listed[skip : skip + int(wanted.get("limit", 50))]
                self._send(200, json.dumps(page).encode(), "application/json")
                return
            if path.startswith("/api/tenant/"):
                uuid = path.rstrip("/").rpartition("/")[2]
                record = site.builds.get(uuid)
                if record is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(200, json.dumps(record).encode(), "application/json")
                return
            rest = path.removeprefix("/logs/")
            found = [(p, d) for p, d in site.routes.items() if rest.startswith(p + "/")]
            if not found:
                self._send(404, b"Not Found", "text/plain")
                return
            prefix, directory = found[0]
            inner = rest[len(prefix) + 1 :]
            if inner == "zuul-manifest.json":
                self._send(200, json.dumps(_manifest(directory)).encode(), "application/json")
                return
            target = directory / inner
            if ".." in inner.split("/") or not target.is_file():
                self._send(404, b"Not Found", "text/plain")
                return
            self._send(200, target.read_bytes(), "application/octet-stream")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
