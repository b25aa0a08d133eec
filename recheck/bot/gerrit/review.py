"""Posting the comment on the change: Gerrit REST, or ``gerrit review`` over SSH.

A ``Reviewer`` only hands text over; it does not decide what to say. Besides ``post``
it answers ``count``: how many comments with this exact text the bot already left on
that patchset. The service asks before posting and again after a crash, which is how a
comment sent just before a crash is found instead of being sent twice.

REST: ``POST /a/changes/{project~change}/revisions/{patchset}/review`` with a
ReviewInput (``message``, ``tag``) and HTTP basic auth (the account's HTTP password);
``GET /a/changes/{project~change}/messages`` for ``count`` (messages with our ``tag`` on
that patchset). SSH: ``gerrit review --json CHANGE,PATCHSET`` with the ReviewInput on
stdin, and ``gerrit query --format=JSON --comments change:N`` for ``count``.

Errors are ``PostError``: ``transient`` (network, 5xx, 429: try again later) or not
(401/403/404...: retrying will not help; the message says what to fix).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from cryptography.utils import CryptographyDeprecationWarning

from recheck import __version__
from recheck.bot.gerrit.events import FailureEvent
from recheck.bot.gerrit.stream import ssh_connect
from recheck.config.bot import GerritSettings
from recheck.lib.errors import RecheckError
from recheck.logs.http import redact

with warnings.catch_warnings():
    # asyncssh still touches cryptography's deprecated DSA classes at import time, which
    # printed a CryptographyDeprecationWarning on every `recheck bot` start (issue 17.13).
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

__all__ = ["PostError", "RestReviewer", "Reviewer", "SshReviewer"]

_XSSI_PREFIX = ")]}'"
"""Gerrit starts every JSON answer with this line, against cross-site script inclusion."""


class PostError(RecheckError):
    """A comment could not be posted or checked; ``transient`` says whether to retry."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Reviewer(Protocol):
    """Posts review comments and finds the ones already posted."""

    def count(self, event: FailureEvent, text: str) -> int:
        """How many comments by this bot with exactly ``text`` are on the event's patchset."""
        ...

    def post(self, event: FailureEvent, text: str) -> None:
        """Post ``text`` as a review comment on the event's change and patchset."""
        ...


def _is_ours(message: str, patchset: str, text: str) -> bool:
    """Gerrit prefixes ``Patch Set N:`` (and votes) to the text it was given."""
    return message.startswith(f"Patch Set {patchset}") and message.rstrip().endswith(text.rstrip())


class RestReviewer:
    """Gerrit's REST API with HTTP basic auth."""

    def __init__(self, gerrit: GerritSettings, *, timeout: float = 30.0) -> None:
        self.gerrit = gerrit
        auth = httpx.BasicAuth(gerrit.http_user, gerrit.http_password) if gerrit.http_user else None
        self._client = httpx.Client(
            auth=auth, timeout=timeout, headers={"User-Agent": f"recheck/{__version__}"}
        )

    def close(self) -> None:
        """Close the connections kept for reuse."""
        self._client.close()

    def count(self, event: FailureEvent, text: str) -> int:
        """Messages with our tag and ``text`` on the event's patchset."""
        url = f"{self.gerrit.url}/a/changes/{_change_id(event)}/messages"
        messages = self._json(self._send("GET", url))
        if not isinstance(messages, list):
            raise PostError(f"{redact(url)}: Gerrit did not answer with a list", transient=True)
        return sum(
            1
            for item in messages
            if isinstance(item, dict)
            and item.get("tag") == self.gerrit.tag
            and str(item.get("_revision_number")) == event.patchset
            and _is_ours(str(item.get("message", "")), event.patchset, text)
        )

    def post(self, event: FailureEvent, text: str) -> None:
        """POST the review."""
        url = (
            f"{self.gerrit.url}/a/changes/{_change_id(event)}/revisions/"
            f"{quote(event.patchset, safe='')}/review"
        )
        self._send("POST", url, json={"message": text, "tag": self.gerrit.tag})

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise PostError(
                f"{redact(url)}: {type(exc).__name__}: {exc}; Gerrit is down or unreachable",
                transient=True,
            ) from None
        status = response.status_code
        if status < 300:
            return response
        transient = status >= 500 or status in (408, 429)
        advice = {
            401: "check gerrit.http_user and the HTTP password (http_password_env/_file)",
            403: "the bot's account may not comment on this change",
            404: "no such change or patchset (deleted, or not visible to the bot's account)",
        }.get(status, "Gerrit is failing; will try again" if transient else "not retried")
        raise PostError(f"{redact(url)}: HTTP {status}; {advice}", transient=transient)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        body = response.text
        if body.startswith(_XSSI_PREFIX):
            body = body[len(_XSSI_PREFIX) :]
        try:
            return json.loads(body)
        except ValueError:
            raise PostError(
                f"{redact(str(response.url))}: Gerrit's answer is not JSON", transient=True
            ) from None


def _change_id(event: FailureEvent) -> str:
    if event.project:
        return f"{quote(event.project, safe='')}~{quote(event.change, safe='')}"
    return quote(event.change, safe="")


class SshReviewer:
    """``gerrit review`` and ``gerrit query`` over SSH (one connection per call)."""

    def __init__(self, gerrit: GerritSettings) -> None:
        self.gerrit = gerrit

    def count(self, event: FailureEvent, text: str) -> int:
        """Comments by the bot's account with ``text`` on the event's patchset."""
        command = f"gerrit query --format=JSON --comments change:{int(event.change)}"
        output = self._run(command, None)
        found = 0
        for line in output.splitlines():
            try:
                change = json.loads(line)
            except ValueError:
                continue
            if not isinstance(change, dict) or "comments" not in change:
                continue
            for comment in change.get("comments") or ():
                reviewer = comment.get("reviewer") or {}
                if reviewer.get("username") == self.gerrit.user and _is_ours(
                    str(comment.get("message", "")), event.patchset, text
                ):
                    found += 1
        return found

    def post(self, event: FailureEvent, text: str) -> None:
        """``gerrit review --json`` with the ReviewInput on stdin (no shell quoting)."""
        command = f"gerrit review --json {int(event.change)},{int(event.patchset)}"
        self._run(command, json.dumps({"message": text, "tag": self.gerrit.tag}))

    def _run(self, command: str, stdin: str | None) -> str:
        try:
            return asyncio.run(asyncio.wait_for(self._call(command, stdin), 60))
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise PostError(
                f"{self.gerrit.host}:{self.gerrit.port}: {command.split(' --')[0]}: "
                f"{type(exc).__name__}: {exc}",
                transient=not isinstance(exc, asyncssh.PermissionDenied),
            ) from None

    async def _call(self, command: str, stdin: str | None) -> str:
        async with ssh_connect(self.gerrit) as conn:
            result = await conn.run(command, input=stdin, check=False)
        if result.exit_status != 0:
            error = str(result.stderr or "").strip()[:300]
            raise PostError(
                f"{self.gerrit.host}: '{command}' failed (exit {result.exit_status}): {error}",
                transient=False,
            )
        return str(result.stdout or "")
