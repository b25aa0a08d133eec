"""IRC-safe text: strip what could inject commands or formatting, split to fit 512-byte lines.

Everything said on IRC may carry hostile text (log lines, bug titles, job names), so
``sanitize`` blanks every control character; ``split_message`` cuts at whitespace where
it can, never inside a UTF-8 character, leaving room for the server's prefix.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "IRC_LINE_BYTES",
    "PREFIX_RESERVE",
    "payload_budget",
    "sanitize",
    "shorten",
    "split_message",
]

IRC_LINE_BYTES = 512
"""RFC 1459/2812: a line, CR LF included, is at most 512 bytes."""

PREFIX_RESERVE = 100
"""Bytes kept free for the ``:nick!user@host `` prefix a server adds when it relays our
line to the channel (a 63-byte host name plus a long nick and user still fit); a relayed
line over 512 bytes would be cut by the server, losing its end."""

_SPACES = re.compile(r"\s+")


def _unsafe(char: str) -> bool:
    # Cc: C0 and C1 controls (CR, LF, NUL, \x01 CTCP, \x02 bold, \x03 colour, \x0f...);
    # Zl/Zp: U+2028/U+2029, line breaks to some clients; Cf: bidi overrides and other
    # invisible format characters that could disguise a message; Cs: lone surrogates
    # (undecodable bytes kept by surrogateescape), which cannot be sent as UTF-8.
    return unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cf", "Cs")


def sanitize(text: str) -> str:
    """``text`` on one line: control and format characters become spaces, runs of spaces one."""
    cleaned = "".join(" " if _unsafe(char) else char for char in text)
    return _SPACES.sub(" ", cleaned).strip()


def shorten(text: str, max_bytes: int) -> str:
    """``text``, or as much of it as fits in ``max_bytes`` UTF-8 bytes with an ellipsis."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    ellipsis = "…"
    kept = text[: _fitting_prefix_length(text, max_bytes - len(ellipsis.encode("utf-8")))]
    return kept.rstrip() + ellipsis


def payload_budget(command_prefix: str, nick: str = "") -> int:
    """How many bytes of text fit after ``command_prefix`` (``PRIVMSG #chan :``) on one line."""
    used = len(command_prefix.encode("utf-8")) + len(b"\r\n") + PREFIX_RESERVE
    used += max(0, len(nick.encode("utf-8")) - 30)  # nicks past 30 bytes eat more
    return max(1, IRC_LINE_BYTES - used)


def split_message(text: str, budget: int) -> list[str]:
    """``text`` (already sanitized) in pieces of at most ``budget`` UTF-8 bytes each.

    A piece ends at the last space that fits when there is one in its second half (the
    space itself is dropped), else at the last whole character that fits.
    """
    if budget < 4:
        raise ValueError(f"budget must leave room for one UTF-8 character, got {budget}")
    pieces: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > budget:
        cut = _fitting_prefix_length(rest, budget)
        space = rest.rfind(" ", 0, cut + 1)
        if space > cut // 2:
            pieces.append(rest[:space])
            rest = rest[space + 1 :]
        else:
            pieces.append(rest[:cut])
            rest = rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _fitting_prefix_length(text: str, budget: int) -> int:
    """The number of characters of ``text`` whose UTF-8 encoding fits in ``budget`` bytes."""
    encoded = text.encode("utf-8")[:budget]
    # Cutting the bytes may split the last character: drop its partial bytes.
    return len(encoded.decode("utf-8", errors="ignore"))
