"""Structured logs: one JSON object per line on stderr, for people and log shippers.

Callers pass facts, never secrets (URLs go through ``recheck.logs.http.redact``); text
from events is written as JSON strings, so control characters cannot forge log lines.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["JsonFormatter", "log", "setup_logging"]

LOGGER = logging.getLogger("recheck.bot")


class JsonFormatter(logging.Formatter):
    """Formats records made by ``log`` as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send the bot's logs to ``stream`` (default stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level)
    LOGGER.propagate = False


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` (a short fixed name such as ``comment_posted``) with its facts."""
    LOGGER.log(level, event, extra={"fields": fields})
