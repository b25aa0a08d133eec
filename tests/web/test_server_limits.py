"""``recheck serve`` under a flood of idle half-sent requests (issue 20, item 9): threads
stay bounded, a silent connection is closed after the request timeout, and the server
still answers afterwards. Real sockets on 127.0.0.1; every wait is bounded."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from recheck.web.server import PageServer
from recheck.web.site import Snapshot

WORKERS, WAITING, TIMEOUT = 4, 8, 1.0
CONNECTIONS = 60
HALF_SENT = b"GET /static/style.css HTTP/1.1\r\nHost: x\r\n"  # no blank line: never ends


def _no_snapshot() -> Snapshot:
    raise AssertionError("static files need no snapshot")


@pytest.fixture
def server() -> Iterator[PageServer]:
    pages = PageServer(
        _no_snapshot, port=0, request_timeout=TIMEOUT, workers=WORKERS, waiting=WAITING
    )
    thread = threading.Thread(target=pages.serve_forever, daemon=True)
    thread.start()
    try:
        yield pages
    finally:
        pages.shutdown()
        thread.join(timeout=30)


def _connect(server: PageServer) -> socket.socket:
    host, port = server.httpd.server_address[:2]
    return socket.create_connection((str(host), int(port)), timeout=10)


def _closed_by_server(client: socket.socket, deadline: float) -> bool:
    """Whether the server closes ``client`` (EOF or reset) before ``deadline``."""
    while time.monotonic() < deadline:
        client.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = client.recv(4096)
        except TimeoutError:
            return False
        except OSError:
            return True  # reset
        if data == b"":
            return True
    return False


def _get(server: PageServer) -> bytes:
    with _connect(server) as client:
        client.sendall(b"GET /static/style.css HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def test_idle_half_sent_requests_neither_pile_up_threads_nor_stay_open(
    server: PageServer,
) -> None:
    before = threading.active_count()
    clients = []
    try:
        for _ in range(CONNECTIONS):
            client = _connect(server)
            client.sendall(HALF_SENT)
            clients.append(client)
        time.sleep(0.3)
        assert threading.active_count() <= before + WORKERS
        # Every one is closed: the waiting ones after their turn's timeout, the rest at once.
        deadline = time.monotonic() + 20 * TIMEOUT * (1 + (CONNECTIONS // WORKERS))
        for client in clients:
            assert _closed_by_server(client, deadline)
        assert threading.active_count() <= before + WORKERS
    finally:
        for client in clients:
            client.close()
    assert _get(server) == b"HTTP/1.0 200 OK"


def test_a_silent_connection_is_closed_after_the_timeout(server: PageServer) -> None:
    with _connect(server) as client:
        client.sendall(HALF_SENT)
        started = time.monotonic()
        assert _closed_by_server(client, started + 20 * TIMEOUT)
        assert time.monotonic() - started >= TIMEOUT * 0.9
    assert _get(server) == b"HTTP/1.0 200 OK"
