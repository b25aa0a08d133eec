"""IRC notifications: the bot hands each FailureReport over, channels hear what it means.

``notify`` only queues the report, so the bot never waits on IRC: a composer thread
looks the bugs up and routes the messages (``routing``), and the connection thread
(``connection``) sends them at the flood-control rate. In a dry run ``IrcPrinter``
prints the same messages instead, and connects to nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TextIO

from recheck.bot.irc.connection import IrcConnection
from recheck.bot.irc.routing import lines_for
from recheck.bot.outcome import DryRunOutput, FailureReport, Notifier
from recheck.config.files import Config
from recheck.config.irc import IrcSettings, irc_settings
from recheck.models import BugTracker

__all__ = ["IrcNotifier", "IrcPrinter", "notifiers_from_config"]

log = logging.getLogger(__name__)


class IrcNotifier:
    """Announces failure reports on IRC without ever making the bot wait."""

    def __init__(self, settings: IrcSettings, tracker: BugTracker) -> None:
        self.settings = settings
        self.tracker = tracker
        self.connection = IrcConnection(settings)
        self._reports: queue.SimpleQueue[FailureReport | None] = queue.SimpleQueue()
        self._composer = threading.Thread(
            target=self._compose_forever, name="recheck-irc-compose", daemon=True
        )
        self._unfinished = 0
        self._done = threading.Condition()

    def start(self) -> None:
        """Start the composer and connection threads."""
        self._composer.start()
        self.connection.start()

    def notify(self, report: FailureReport) -> None:
        """Queue the report; returns at once."""
        with self._done:
            self._unfinished += 1
        self._reports.put(report)

    def wait_composed(self, timeout: float | None = None) -> bool:
        """Wait until every notified report has been turned into queued lines."""
        with self._done:
            return self._done.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Announce what was notified (for at most ``timeout`` seconds: the server may be
        down), then stop both threads (the connection says QUIT); what is left is lost."""
        deadline = time.monotonic() + timeout
        self._reports.put(None)
        if self._composer.is_alive():
            self._composer.join(timeout)
        self.connection.stop(flush=max(0.0, deadline - time.monotonic()))

    def _compose_forever(self) -> None:
        while True:
            report = self._reports.get()
            if report is None:
                return
            try:
                lines = lines_for(
                    report, self.settings.channels, self.tracker, self.settings.queues
                )
                for line in lines:
                    self.connection.send(line.channel, line.text)
            except Exception:  # a bad report or tracker must not end IRC notices
                log.exception("IRC: could not announce report %s", report.event_id)
            with self._done:
                self._unfinished -= 1
                self._done.notify_all()


class IrcPrinter:
    """A dry run's IRC: each message a report means, printed as ``{"channel", "message"}``
    (one JSON line, the whole message: IRC would split a long one into several lines)."""

    def __init__(self, settings: IrcSettings, tracker: BugTracker, out: TextIO) -> None:
        self.settings = settings
        self.tracker = tracker
        self.out = DryRunOutput(out)

    def notify(self, report: FailureReport) -> None:
        """Print the report's messages now (nothing to wait for)."""
        settings = self.settings
        for line in lines_for(report, settings.channels, self.tracker, settings.queues):
            self.out.say(channel=line.channel, message=line.text)


def notifiers_from_config(
    config: Config, tracker: BugTracker, *, dry_run: TextIO | None = None
) -> list[Notifier]:
    """The IRC notifiers bot.yaml asks for (started), or [] without ``irc.server``;
    with ``dry_run``, an ``IrcPrinter`` writing there instead of an ``IrcNotifier``.

    Raises ConfigError when the ``irc`` or ``channels`` section is unusable.
    """
    settings = irc_settings(config)
    if settings is None:
        return []
    if not settings.channels:
        log.warning(
            "%s: irc.server is set but no channels are configured; IRC notices are off",
            config.path or "bot.yaml",
        )
        return []
    if dry_run is not None:
        return [IrcPrinter(settings, tracker, dry_run)]
    notifier = IrcNotifier(settings, tracker)
    notifier.start()
    return [notifier]
