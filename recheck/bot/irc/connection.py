"""One IRC connection in its own thread: connect, log in, join, send the queue, reconnect.

The bot never waits for IRC: ``IrcConnection.send`` queues lines and returns; the
connection thread alone owns the socket (jaraco's ``irc`` reactor).
"""

from __future__ import annotations

import collections
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import irc.client
import jaraco.stream.buffer

from recheck.bot.irc.text import payload_budget, sanitize, split_message
from recheck.config.irc import IrcSettings
from recheck.lib.backoff import Backoff

__all__ = ["IrcConnection", "RateLimiter"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class RateLimiter:
    """A token bucket: ``burst`` lines at once, then ``rate`` lines per second."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_take(self) -> bool:
        """Take one token if there is one; False means wait ``wait_time()`` first."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until the next token."""
        self._refill()
        return max(0.0, (1 - self._tokens) / self.rate)


class _LenientBuffer(jaraco.stream.buffer.DecodingLineBuffer):  # type: ignore[misc]
    # A server (or a user it relays) may send bytes that are not UTF-8; the default
    # strict buffer would raise out of the reactor.
    errors = "replace"


class _ServerConnection(irc.client.ServerConnection):  # type: ignore[misc]
    buffer_class = _LenientBuffer


class _Reactor(irc.client.Reactor):  # type: ignore[misc]
    connection_class = _ServerConnection


class _RedactSecrets(logging.Filter):
    """jaraco's client logs every line it sends at DEBUG: keep passwords out of the logs."""

    _SECRET_COMMANDS = ("TO SERVER: PASS", "TO SERVER: AUTHENTICATE", "TO SERVER: PRIVMSG NickServ")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(self._SECRET_COMMANDS):
            record.msg, record.args = message.split(":", 1)[0] + ": <redacted>", ()
        return True


_redactor = _RedactSecrets()
if _redactor not in logging.getLogger("irc.client").filters:
    logging.getLogger("irc.client").addFilter(_redactor)


class IrcConnection:
    """The bot's IRC connection; ``start`` it, ``send`` to it from any thread, ``stop`` it.

    Its thread connects (TLS when configured, verified against the system's or a given
    CA) and logs in with SASL PLAIN when the server offers it, else ``NickServ IDENTIFY``;
    takes another nick when its own is in use and tries to take it back every
    ``nick_reclaim`` seconds; sends the outbox in order, no faster than the
    ``RateLimiter`` allows, keeping lines while disconnected (up to ``max_queue``, then
    dropping the oldest); PINGs a quiet server and takes a silent one as gone; reconnects
    after a ``Backoff`` delay that starts over once a connection is welcomed.
    """

    def __init__(self, settings: IrcSettings, *, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._outbox: collections.deque[tuple[str, str]] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._flush_until = 0.0
        """After ``stop``: until when (``time.monotonic``) queued lines may still be sent."""
        self._thread = threading.Thread(target=self._run, name="recheck-irc", daemon=True)
        self._backoff = Backoff(initial=settings.reconnect_min, maximum=settings.reconnect_max)
        self._limiter = RateLimiter(settings.rate, settings.burst, clock)
        self._reactor = _Reactor()
        self._conn: Any = self._reactor.server()
        self._registered = False
        self._sasl_succeeded = False
        self._next_attempt = 0.0
        self._last_heard = 0.0
        self._last_ping = 0.0
        self._next_reclaim = 0.0
        self.connections = 0
        """Times a connection was welcomed (for tests and status lines)."""
        self.dropped = 0
        """Lines dropped because the outbox was full."""
        for event, handler in (
            ("welcome", self._on_welcome),
            ("nicknameinuse", self._on_nick_taken),
            ("unavailresource", self._on_nick_taken),
            ("saslsuccess", self._on_sasl_success),
            ("login_failed", self._on_login_failed),
            ("disconnect", self._on_disconnect),
            ("all_raw_messages", self._on_anything),
            ("cannotsendtochan", self._on_cannot_send),
        ):
            self._reactor.add_global_handler(event, handler)

    # --- the bot's side ---------------------------------------------------------------

    def start(self) -> None:
        """Start the connection thread (it connects at once)."""
        self._thread.start()

    def send(self, channel: str, text: str) -> None:
        """Queue ``text`` for ``channel``: sanitized, split to fit IRC lines. Never blocks."""
        command = f"PRIVMSG {channel} :"
        pieces = split_message(sanitize(text), payload_budget(command, self.settings.nick))
        with self._lock:
            for piece in pieces:
                if piece:
                    self._outbox.append((channel, piece))
            while len(self._outbox) > self.settings.max_queue:
                self._outbox.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning(
                        "IRC: %d message lines dropped so far: more than irc.max_queue=%d "
                        "waiting (is %s:%d reachable?)",
                        self.dropped,
                        self.settings.max_queue,
                        self.settings.server,
                        self.settings.port,
                    )

    def pending(self) -> int:
        """Lines waiting to be sent."""
        with self._lock:
            return len(self._outbox)

    @property
    def registered(self) -> bool:
        """Whether the server has welcomed the connection (and channels were joined)."""
        return self._registered

    def stop(self, timeout: float = 5.0, flush: float = 0.0) -> None:
        """Send the lines still queued for at most ``flush`` seconds (connecting if need
        be: a ``--once`` run ends soon after its last report), then say QUIT and end the
        thread; waits at most ``flush + timeout`` seconds."""
        self._flush_until = time.monotonic() + flush
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(flush + timeout)

    def _finished(self) -> bool:
        if not self._stopping.is_set():
            return False
        return self.pending() == 0 or time.monotonic() >= self._flush_until

    # --- the connection thread --------------------------------------------------------

    def _run(self) -> None:
        while not self._finished():
            try:
                self._step()
            except Exception:  # one bad event must not end the bot's IRC for good
                log.exception("IRC: unexpected error; reconnecting")
                self._drop_connection("internal error")
        try:
            if self._conn.is_connected():
                self._conn.disconnect("recheck stopping")
        except Exception:
            log.debug("IRC: error while disconnecting", exc_info=True)

    def _step(self) -> None:
        now = self._clock()
        wait = 0.2
        if not self._conn.is_connected():
            if now >= self._next_attempt:
                self._connect()
            else:
                wait = min(wait, self._next_attempt - now)
        else:
            self._keep_alive(now)
            if self._registered:
                self._reclaim_nick(now)
                wait = min(wait, self._flush())
        self._reactor.process_once(timeout=max(0.01, wait))

    def _connect(self) -> None:
        settings = self.settings
        self._registered = False
        self._sasl_succeeded = False
        use_sasl = settings.sasl and settings.password is not None
        try:
            self._conn.connect(
                settings.server,
                settings.port,
                settings.nick,
                password=settings.password if use_sasl else None,
                username=settings.username,
                ircname=settings.realname,
                connect_factory=self._open_socket,
                sasl_login=settings.account if use_sasl else None,
            )
        except (irc.client.ServerConnectionError, OSError) as exc:
            delay = self._backoff.next()
            self._next_attempt = self._clock() + delay
            log.warning(
                "IRC: cannot connect to %s:%d: %s; trying again in %.1f s",
                settings.server,
                settings.port,
                exc,
                delay,
            )
            return
        now = self._clock()
        self._last_heard = self._last_ping = now

    def _open_socket(self, address: tuple[str, int]) -> socket.socket:
        # Our own factory: jaraco's connects without a timeout, and an unreachable
        # host would then hold this thread for minutes.
        settings = self.settings
        sock = socket.create_connection(address, timeout=30)
        if settings.tls:
            context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None
            )
            if not settings.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            try:
                sock = context.wrap_socket(sock, server_hostname=settings.server)
            except (ssl.SSLError, OSError):
                sock.close()
                raise
        # Reads happen after select() says there is data; a send that cannot finish
        # in this time means the server is gone, and jaraco then disconnects.
        sock.settimeout(max(30.0, settings.keepalive))
        return sock

    def _keep_alive(self, now: float) -> None:
        silent = now - self._last_heard
        if silent > 3 * self.settings.keepalive:
            log.warning("IRC: %s silent for %.0f s; reconnecting", self.settings.server, silent)
            self._drop_connection("ping timeout")
        elif now - self._last_ping > self.settings.keepalive and silent > self.settings.keepalive:
            self._last_ping = now
            self._conn.ping(self.settings.server)

    def _reclaim_nick(self, now: float) -> None:
        if self._conn.get_nickname() != self.settings.nick and now >= self._next_reclaim:
            self._next_reclaim = now + self.settings.nick_reclaim
            self._conn.nick(self.settings.nick)

    def _flush(self) -> float:
        """Send what the rate limit allows; returns how long until more may go."""
        while True:
            with self._lock:
                if not self._outbox:
                    return 0.2
                if not self._limiter.try_take():
                    return self._limiter.wait_time()
                channel, text = self._outbox[0]
            try:
                self._conn.privmsg(channel, text)
            except (irc.client.InvalidCharacters, irc.client.MessageTooLong) as exc:
                log.error("IRC: dropped a line for %s that IRC cannot carry: %s", channel, exc)
            if not self._conn.is_connected():
                return 0.2  # the send failed and the line stays first in the outbox
            with self._lock:
                if self._outbox and self._outbox[0] == (channel, text):
                    self._outbox.popleft()

    def _drop_connection(self, reason: str) -> None:
        try:
            if self._conn.is_connected():
                self._conn.disconnect(reason)  # fires _on_disconnect
                return
        except Exception:
            log.debug("IRC: error while disconnecting", exc_info=True)
        self._on_disconnect(self._conn, None)

    # --- events (called by the reactor in this thread) --------------------------------

    def _on_anything(self, connection: Any, event: Any) -> None:
        self._last_heard = self._clock()

    def _on_welcome(self, connection: Any, event: Any) -> None:
        settings = self.settings
        self._backoff.reset()
        self.connections += 1
        log.info(
            "IRC: connected to %s:%d as %s",
            settings.server,
            settings.port,
            connection.get_nickname(),
        )
        if settings.password is not None and not self._sasl_succeeded:
            # The server did not take SASL (or it was not asked for): NickServ then.
            connection.privmsg("NickServ", f"IDENTIFY {settings.account} {settings.password}")
        for rule in settings.channels:
            connection.join(rule.name)
        self._next_reclaim = self._clock() + settings.nick_reclaim
        self._registered = True

    def _on_nick_taken(self, connection: Any, event: Any) -> None:
        if self._registered:
            return  # a reclaim attempt failed: keep the nick we have, try again later
        tried = event.arguments[0] if event.arguments else connection.get_nickname()
        alternate = _alternate_nick(self.settings.nick, tried)
        log.info("IRC: nick %s is taken; using %s for now", tried, alternate)
        connection.nick(alternate)

    def _on_sasl_success(self, connection: Any, event: Any) -> None:
        self._sasl_succeeded = True

    def _on_login_failed(self, connection: Any, event: Any) -> None:
        reason = sanitize(" ".join(str(arg) for arg in event.arguments))
        log.info("IRC: SASL login not done (%s); will identify to NickServ instead", reason)

    def _on_cannot_send(self, connection: Any, event: Any) -> None:
        log.warning("IRC: cannot send to %s: %s", event.arguments[:1], event.arguments[1:])

    def _on_disconnect(self, connection: Any, event: Any) -> None:
        if self._finished():
            return
        self._registered = False
        delay = self._backoff.next()
        self._next_attempt = self._clock() + delay
        log.warning(
            "IRC: disconnected from %s:%d; reconnecting in %.1f s",
            self.settings.server,
            self.settings.port,
            delay,
        )


def _alternate_nick(nick: str, tried: str) -> str:
    """``nick_``, then ``nick2``, ``nick3``...: the next nick to try after ``tried``."""
    if tried == nick:
        return f"{nick}_"[:30]
    suffix = tried[len(nick) :] if tried.startswith(nick) else ""
    number = int(suffix) + 1 if suffix.isdigit() else 2
    return f"{nick[: 30 - len(str(number))]}{number}"
