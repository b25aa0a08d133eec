"""What makes two log lines "the same line": volatile parts masked, in two strengths.

``line_keys`` is the bulk form, run over every byte of every build compared: it deletes
digits and hex letters (numbers, timestamps, pids, IPs, UUIDs and hex ids all vanish,
whatever their length) and masks temporary paths; in syslog files also the node's name
and the double space before a one-digit day. It works on whole chunks with ``bytes.translate``
and ``bytes.replace`` (C loops, ~200 MiB/s a core), because a regex per token runs at
~7 MiB/s and a GiB build would take minutes. It is coarser than needed (``failed`` and
``fooled`` both lose their hex letters), which only ever hides an anomaly, never
invents one.

``normalize`` is the readable form of one line, for keys people see and that are
stored (clusters): ``<uuid>``, ``<hex>``, ``<ip>``, ``<num>``, ``<tmp>`` placeholders.
"""

from __future__ import annotations

import re

__all__ = ["VOLATILE_WORD", "line_keys", "normalize", "stable_words", "syslog_host"]

_DELETE = b"0123456789abcdefABCDEF"
_SYSLOG_HOST = re.compile(rb"(?m)^((?:[A-Z][a-z]{2} [ \d]\d |\d{4}-\d\d-\d\dT)[\d:.+-]+) (\S+) ")
_TMP_PATH = re.compile(rb"/tmp/[^\s/:'\"]+")


def syslog_host(chunk: bytes) -> bytes | None:
    """The node a syslog file's first line names (`` <host> `` with its spaces)."""
    found = _SYSLOG_HOST.search(chunk, 0, 4096)
    return None if found is None else b" " + found.group(2) + b" "


def line_keys(chunk: bytes, *, host: bytes | None = None) -> list[bytes]:
    """The bulk keys of ``chunk``'s lines (whole lines, ``\\n``-separated), in order;
    ``host``: a syslog file's node (``syslog_host``), masked wherever it appears."""
    if host is not None:
        # Syslog names the node on every line and pads one-digit days (``Dec  7``); one
        # node writes a syslog file, so its name is replaced as a literal, at memchr speed.
        chunk = chunk.replace(host, b" H ").replace(b"  ", b" ")
    chunk = chunk.translate(None, _DELETE)
    if b"/tmp/" in chunk:  # after the translation: less to search, and no hex in it
        chunk = _TMP_PATH.sub(b"/tmp/T", chunk)
    if b"\r" in chunk:
        chunk = chunk.replace(b"\r\n", b"\n")
    return chunk.split(b"\n")


_FINE = re.compile(
    r"(?P<uuid>\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
    r"[0-9a-fA-F]{12}\b)"
    r"|(?P<tmp>/tmp/[^\s/:'\"]+)"
    r"|(?P<ip>\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b)"
    r"|(?P<hex>\b(?:0x)?[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b"
    r"|\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\d[0-9a-fA-F]*\b)"
    r"|(?P<num>\d+)"
)
_SPACES = re.compile(r"\s+")


def _placeholder(match: re.Match[str]) -> str:
    return f"<{match.lastgroup}>"


def normalize(text: str) -> str:
    """``text`` with its volatile parts as placeholders and runs of blanks as one space."""
    return _SPACES.sub(" ", _FINE.sub(_placeholder, text)).strip()


VOLATILE_WORD = re.compile(r"\d|[0-9a-fA-F]{8,}|/tmp/|^-|[\"\\\x00-\x1f\x7f-\x9f\ufffd]")
"""A word a signature must not quote: digits, hex ids, temporary paths, characters a
phrase would have to escape, control characters or bytes that were not UTF-8."""


def stable_words(text: str) -> list[list[str]]:
    """Runs of consecutive stable words of ``text`` (split on blanks), longest first."""
    runs: list[list[str]] = [[]]
    for word in text.split():
        if VOLATILE_WORD.search(word) or len(word) > 60:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(word)
    return sorted((run for run in runs if run), key=len, reverse=True)
