"""What the bot counts, and ``/healthz`` and ``/metrics`` (Prometheus text) on a local port.

Counters only go up (Prometheus computes rates); gauges say how things are now. The
server is the standard library's, in a thread, serving those two pages and nothing else.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["COUNTERS", "Metrics", "MetricsServer"]

COUNTERS: dict[str, str] = {
    "events_received": "Raw events read from Gerrit's stream or Zuul's API",
    "events_skipped": "Events that were not failures of configured projects, or unreadable",
    "failures": "Failure events accepted for classification",
    "builds_classified": "Failed jobs whose logs were classified",
    "logs_missing": "Failed jobs whose logs never appeared in time",
    "comments_posted": "Gerrit review comments posted",
    "builds_stored": "Classified builds stored in the history store, behind their comments",
    "success_builds_sampled": "Passing jobs scanned for signature hits (bot.success_sample)",
    "errors": "Errors (unreadable events, classification errors, failed posts, reconnects)",
}


class Metrics:
    """Thread-safe counters and the gauges a callback reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self.started = time.time()
        self.connected = False
        """Whether the event source (Gerrit stream, Zuul API) answered last time."""
        self.queue_counts: Callable[[], dict[str, int]] = dict
        self.history_backlog: Callable[[], int] = lambda: 0
        """Events whose builds are still to be stored in the history store."""

    def add(self, name: str, amount: int = 1) -> None:
        """Count ``amount`` more of counter ``name``."""
        with self._lock:
            self._counts[name] += amount

    def get(self, name: str) -> int:
        """The current value of counter ``name``."""
        with self._lock:
            return self._counts[name]

    def prometheus(self) -> str:
        """Everything in Prometheus' text exposition format."""
        lines: list[str] = []
        with self._lock:
            counts = dict(self._counts)
        for name, help_text in COUNTERS.items():
            metric = f"recheck_bot_{name}_total"
            lines += [f"# HELP {metric} {help_text}.", f"# TYPE {metric} counter"]
            lines.append(f"{metric} {counts[name]}")
        lines += [
            "# HELP recheck_bot_queue_events Events in the bot's queue, by state.",
            "# TYPE recheck_bot_queue_events gauge",
        ]
        for state, count in sorted(self.queue_counts().items()):
            lines.append(f'recheck_bot_queue_events{{state="{state}"}} {count}')
        lines += [
            "# HELP recheck_bot_history_backlog Events whose builds are still to be stored.",
            "# TYPE recheck_bot_history_backlog gauge",
            f"recheck_bot_history_backlog {self.history_backlog()}",
            "# HELP recheck_bot_source_connected 1 when the event source is connected.",
            "# TYPE recheck_bot_source_connected gauge",
            f"recheck_bot_source_connected {int(self.connected)}",
            "# HELP recheck_bot_start_time_seconds When the bot started (Unix time).",
            "# TYPE recheck_bot_start_time_seconds gauge",
            f"recheck_bot_start_time_seconds {self.started:.3f}",
        ]
        return "\n".join(lines) + "\n"

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` answers."""
        return {"status": "ok", "source_connected": self.connected, "queue": self.queue_counts()}


class MetricsServer:
    """Serves ``/healthz`` and ``/metrics`` on ``host:port`` in a daemon thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.server = ThreadingHTTPServer((host or "127.0.0.1", port), _handler(metrics))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        """Start serving."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


def _handler(metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # the bot's own log says what matters; requests are not news

        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = metrics.prometheus().encode()
                kind = "text/plain; version=0.0.4; charset=utf-8"
            elif self.path == "/healthz":
                body = json.dumps(metrics.health()).encode()
                kind = "application/json"
            else:
                self.send_error(404, "only /healthz and /metrics here")
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
