"""A real IRC server for tests (Debian's ngircd), a raw-socket IRC client, and a TCP gate.

``Ngircd`` writes its own config into a temporary directory, listens on a free localhost
port, runs in the foreground (``-n``) as a child of the test and is killed at the end;
a system-wide ngircd service, if the package started one, is never touched.
``IrcClient`` speaks the protocol by hand, so tests see exactly the bytes the server
relays. ``TcpGate`` forwards a port to the server and can be closed, so a test decides
when the bot may reconnect.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

WAIT = 15.0
"""Seconds to wait for something that should happen at once (a generous upper bound
for a slow CI machine, never a measured threshold)."""


def ngircd_binary() -> str:
    """The ngircd program; skips the test without it, but fails in CI (CI=true)."""
    found = shutil.which("ngircd") or (
        "/usr/sbin/ngircd" if os.access("/usr/sbin/ngircd", os.X_OK) else None
    )
    if found is None:
        message = "ngircd is not installed (apt-get install ngircd; .ci/run installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1") -> None:
    """Wait until something accepts connections on ``port``."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Ngircd:
    """One ngircd process on a free localhost port (plain, and TLS when given a cert)."""

    def __init__(
        self, directory: Path, *, tls_cert: Path | None = None, tls_key: Path | None = None
    ):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls_cert else None
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def config_text(self) -> str:
        """The server's whole configuration: nothing from /etc/ngircd is read."""
        includes = self.directory / "conf.d"
        includes.mkdir(exist_ok=True)
        text = f"""\
[Global]
Name = irc.recheck.test
Info = recheck test server
AdminInfo1 = recheck tests
AdminInfo2 = localhost
AdminEMail = nobody@localhost
Listen = 127.0.0.1
Ports = {self.port}
MotdPhrase = "recheck test server"
PidFile = {self.directory / "ngircd.pid"}
[Limits]
MaxConnectionsIP = 0
MaxNickLength = 30
MaxJoins = 0
# No server-side command penalties: the bot's own flood control is what is tested, and
# ngircd's one-command-a-second pacing would only slow the tests down.
MaxPenaltyTime = 0
PingTimeout = 120
PongTimeout = 20
[Options]
PAM = no
Ident = no
DNS = no
IncludeDir = {includes}
"""
        if self.tls_cert and self.tls_key:
            text += f"""\
[SSL]
CertFile = {self.tls_cert}
KeyFile = {self.tls_key}
Ports = {self.tls_port}
"""
        return text

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        config = self.directory / "ngircd.conf"
        config.write_text(self.config_text())
        log = (self.directory / f"ngircd-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [ngircd_binary(), "-n", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.starts += 1
        try:
            wait_for_port(self.port)
            if self.tls_port:
                wait_for_port(self.tls_port)
        except OSError:
            self.stop()
            raise RuntimeError(f"ngircd did not start; see {self.directory}") from None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        # The server dropped every client: close their sockets too, so that a test which
        # did not quit its clients leaves no socket behind (a ResourceWarning, an error).
        while _clients:
            _clients.pop().quit()


@dataclass(frozen=True)
class Message:
    """A PRIVMSG or NOTICE the client received."""

    nick: str
    command: str
    target: str
    text: str
    raw: bytes
    """The whole line as the server sent it, CR LF included."""


class IrcClient:
    """A minimal IRC client on a raw socket: registers, joins, records what it hears."""

    def __init__(self, port: int, nick: str, host: str = "127.0.0.1") -> None:
        self.nick = nick
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        _clients.append(self)
        self.lines: list[bytes] = []
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :recheck test client")
        self.wait_line(lambda parts: parts[1] == "001")

    def send(self, line: str) -> None:
        """Send one raw line."""
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def join(self, *channels: str) -> None:
        """Join channels and wait until the server has confirmed each (end of NAMES)."""
        for channel in channels:
            self.send(f"JOIN {channel}")
            self.wait_line(lambda parts, c=channel: parts[1] == "366" and parts[3] == c)

    def quit(self) -> None:
        """Leave the server and close the socket."""
        with contextlib.suppress(OSError):
            self.send("QUIT :bye")
        self._closed = True
        self.sock.close()
        with contextlib.suppress(ValueError):
            _clients.remove(self)

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buffer += data
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                if line.startswith(b"PING"):
                    self.sock.sendall(b"PONG" + line[4:] + b"\r\n")
                with self._cond:
                    self.lines.append(line + b"\r\n")
                    self._cond.notify_all()

    def wait_line(self, predicate: Callable[[list[str]], bool]) -> list[str]:
        """Wait for a line whose parts (prefix, command, params...) satisfy ``predicate``."""

        def found() -> list[str] | None:
            for raw in self.lines:
                parts = _parts(raw)
                if len(parts) > 1 and predicate(parts):
                    return parts
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None or self._closed, WAIT):
                raise AssertionError(f"{self.nick}: not received in {WAIT} s; got {self.lines}")
            result = found()
            if result is None:
                raise AssertionError(f"{self.nick}: connection closed; got {self.lines}")
            return result

    def messages(self, target: str | None = None) -> list[Message]:
        """Every PRIVMSG and NOTICE received (to ``target`` only, if given), in order."""
        with self._cond:
            lines = list(self.lines)
        found: list[Message] = []
        for raw in lines:
            parts = _parts(raw)
            is_message = len(parts) >= 4 and parts[1] in ("PRIVMSG", "NOTICE") and parts[0]
            if is_message and (target is None or parts[2] == target):
                nick = parts[0].split("!", 1)[0]
                found.append(Message(nick, parts[1], parts[2], parts[3], raw))
        return found

    def wait_messages(self, target: str, count: int) -> list[Message]:
        """Wait until ``target`` has had at least ``count`` messages; returns them all."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.messages(target)) >= count, WAIT)
        got = self.messages(target)
        if not ok:
            raise AssertionError(f"{target}: expected {count} messages, got {got}")
        return got


_clients: list[IrcClient] = []
"""Clients not quit yet; ``Ngircd.stop`` closes them."""


def _parts(raw: bytes) -> list[str]:
    """An IRC line as [prefix, command, params...], the trailing parameter last."""
    line = raw.rstrip(b"\r\n").decode("utf-8")  # strict: a cut UTF-8 character fails here
    prefix = ""
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    trailing = None
    if " :" in line:
        line, trailing = line.split(" :", 1)
    parts = [prefix, *line.split()]
    if trailing is not None:
        parts.append(trailing)
    return parts


class TcpGate:
    """Forwards ``port`` to ``target`` while open; closed, connections are refused."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        """Start accepting and forwarding connections."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Refuse new connections and cut the ones in progress."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)  # shutdown() wakes the thread blocked in accept()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=WAIT)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    while True:
        try:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
        except OSError:
            break
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def ircd(tmp_path: Path) -> Iterator[Ngircd]:
    """A started ngircd for one test, stopped at the end."""
    server = Ngircd(tmp_path / "ngircd")
    server.start()
    yield server
    server.stop()
