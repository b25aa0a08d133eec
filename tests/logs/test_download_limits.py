"""Hostile downloads and bombs stop at their limits (issue 20, items 4 and 6).

A server on 127.0.0.1 (its own small one here: each route is one misbehaviour) serves a
build's files: a body larger than ``fetch.max_file_bytes``, a line every 0.2 s forever
(never silent long enough for the read timeout: only the deadline stops it), files
together larger than ``fetch.max_build_bytes``, and a small ``.gz`` that expands far
beyond the per-file limit. Each stops with a FileProblem naming the file, the limit and
its setting; the events read before it are kept; the other files are read as usual.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recheck.config.files import FetchConfig, parse_config
from recheck.logs.build import Build
from recheck.logs.buildlogs import build_events
from recheck.logs.http import DownloadLimit, Fetcher
from recheck.logs.listing import HttpLogSource
from recheck.logs.logfiles import FileRule
from recheck.logs.source import LimitReached, open_text_stream

MiB = 1 << 20
LINE = b"2024-01-02 03:04:05.000000 | ERROR the same line again and again\n"
BOMB = gzip.compress(LINE * (64 * MiB // len(LINE)), compresslevel=9)
"""64 MiB of text in well under 1 MiB: a small decompression bomb."""
TRICKLE_LINES = 300
"""A trickling file's lines at most, 0.2 s apart: the server gives up on its own."""

FILES: dict[str, bytes] = {
    "a-big.txt": LINE * (3 * MiB // len(LINE)),
    "b-bomb.txt.gz": BOMB,
    "c-small.txt": LINE * 10,
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stop: threading.Event

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        if name == "zuul-manifest.json":
            names = ["d-trickle.txt"] if "/trickle/" in self.path else list(FILES)
            self._send(json.dumps({"tree": [{"name": n} for n in names]}).encode())
        elif name == "d-trickle.txt":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(TRICKLE_LINES):
                if self.stop.wait(0.2):
                    break
                try:
                    self.wfile.write(LINE)
                    self.wfile.flush()
                except OSError:
                    break  # the client gave up: the point of the test
            self.close_connection = True
        elif name in FILES:
            self._send(FILES[name])
        else:
            self.send_error(404)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up at a limit is what these tests do


@pytest.fixture
def server() -> Iterator[str]:
    stop = threading.Event()
    handler = type("Handler", (_Handler,), {"stop": stop})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


RULES = (FileRule("*.txt", ("console",)),)


def _read_build(url: str, **limits: float) -> tuple[dict[str, int], list[str]]:
    """Events per file and the problems of reading the build at ``url`` under ``limits``."""
    config = FetchConfig(allowed_hosts=("127.0.0.1",), read_timeout=5.0, **limits)  # type: ignore[arg-type]
    problems: list[str] = []
    counts: dict[str, int] = {}
    with HttpLogSource(url, Fetcher(config, config_file="bot.yaml")) as source:
        for _, event in build_events(
            source, Build(), rules=RULES, on_problem=lambda p: problems.append(str(p))
        ):
            filename = str(event["filename"])
            counts[filename] = counts.get(filename, 0) + 1
    return counts, problems


def test_a_file_larger_than_the_limit_stops_there_and_keeps_what_came_before(server: str) -> None:
    counts, problems = _read_build(f"{server}/build/", max_file_bytes=MiB)
    [big] = [p for p in problems if p.startswith("a-big.txt")]
    assert "larger than 1 MiB" in big and "fetch.max_file_bytes in bot.yaml" in big
    assert 0 < counts["a-big.txt"] <= MiB // len(LINE)  # the first MiB was classified
    assert counts["c-small.txt"] == 10  # the build went on


def test_a_decompression_bomb_stops_at_the_limit_of_its_text(server: str) -> None:
    assert len(BOMB) < MiB // 2
    started = time.monotonic()
    counts, problems = _read_build(f"{server}/build/", max_file_bytes=2 * MiB)
    assert time.monotonic() - started < 60
    [bomb] = [p for p in problems if p.startswith("b-bomb.txt.gz")]
    assert "its text is larger than 2 MiB" in bomb and "fetch.max_file_bytes" in bomb
    assert "decompression bomb" in bomb and "kept the events before it" in bomb
    assert 0 < counts["b-bomb.txt"] <= 2 * MiB // len(LINE)


def test_a_local_bomb_stops_at_the_default_or_given_limit(tmp_path: Path) -> None:
    path = tmp_path / "job-output.txt.gz"
    path.write_bytes(BOMB)
    with open_text_stream(path.open("rb"), max_bytes=MiB) as stream:
        assert len(stream.read(MiB)) == MiB  # everything up to the limit is readable
        with pytest.raises(LimitReached, match="larger than 1 MiB"):
            stream.read(1)
    with open_text_stream(path.open("rb"), max_bytes=64 * MiB) as stream:
        assert len(stream.read()) == len(LINE) * (64 * MiB // len(LINE))  # within: read whole


def test_a_server_sending_a_line_every_so_often_is_stopped_by_the_deadline(server: str) -> None:
    started = time.monotonic()
    counts, problems = _read_build(f"{server}/trickle/", download_deadline=1.5)
    elapsed = time.monotonic() - started
    assert elapsed < 15, elapsed  # read_timeout (5 s) alone would never stop it
    [trickle] = [p for p in problems if p.startswith("d-trickle.txt")]
    assert "still downloading after 1.5 s" in trickle
    assert "fetch.download_deadline in bot.yaml" in trickle
    assert 0 < counts["d-trickle.txt"] < TRICKLE_LINES  # the lines received are classified


def test_a_build_stops_downloading_at_its_budget(server: str) -> None:
    counts, problems = _read_build(f"{server}/build/", max_build_bytes=2 * MiB)
    # a-big.txt (3 MiB) spends the budget; the later files are not fetched.
    assert any(p.startswith("a-big.txt") and "reached 2 MiB" in p for p in problems), problems
    later = [p for p in problems if p.startswith(("b-bomb.txt.gz", "c-small.txt"))]
    assert len(later) == 2 and all("not fetched" in p for p in later), problems
    assert all("fetch.max_build_bytes in bot.yaml" in p for p in problems), problems
    assert "c-small.txt" not in counts and counts["a-big.txt"] > 0


def test_the_limits_are_download_limit_errors_a_caller_can_tell_apart(server: str) -> None:
    config = FetchConfig(allowed_hosts=("127.0.0.1",), max_file_bytes=MiB)
    with Fetcher(config) as fetcher, fetcher.open(f"{server}/build/a-big.txt") as stream:
        assert len(stream.read(MiB)) == MiB
        with pytest.raises(DownloadLimit) as caught:
            stream.read(1)
    assert isinstance(caught.value, LimitReached | OSError)


def test_the_limits_are_settings_of_the_fetch_section() -> None:
    config = parse_config(
        "fetch:\n  max_file_bytes: 1073741824\n  max_build_bytes: 4294967296\n"
        "  download_deadline: 120\n",
        Path("bot.yaml"),
    )
    assert (config.fetch.max_file_bytes, config.fetch.max_build_bytes) == (1 << 30, 4 << 30)
    assert config.fetch.download_deadline == 120
    assert FetchConfig().max_file_bytes == 2 << 30 and FetchConfig().download_deadline == 600


def test_the_text_limit_follows_the_fetched_stream(server: str) -> None:
    config = FetchConfig(allowed_hosts=("127.0.0.1",), max_file_bytes=MiB)
    with Fetcher(config) as fetcher:
        raw = fetcher.open(f"{server}/build/b-bomb.txt.gz")
        with open_text_stream(raw) as stream:
            text = io.BytesIO()
            with pytest.raises(LimitReached):
                while chunk := stream.read(1 << 16):
                    text.write(chunk)
    assert len(text.getvalue()) == MiB
