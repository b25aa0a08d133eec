"""``recheck query``'s text report: the summary, the hits per day as bars, and the newest
matching events with the query's words highlighted and a link to each line.

Log text is hostile: control characters (a terminal's escape sequences among them) are
shown as ``?`` before anything reaches the terminal. On a terminal, matched words are bold
and coloured; elsewhere they are written ``**word**``.
"""

from __future__ import annotations

import re
from typing import IO

from recheck.query import Query
from recheck.query.highlight import excerpt
from recheck.store.evidence import EventHit, Evidence

__all__ = ["BAR_WIDTH", "print_evidence"]

BAR_WIDTH = 40
"""Characters of the longest bar of the per-day histogram."""
_LINES_SHOWN = 3
"""Lines of a multi-line message shown: the first, and those with highlighted words."""
_LINE_CHARS = 300
"""A long line is cut around its first highlighted word."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_STYLE = "bold magenta"
_QUIET_RUN = 3
"""Longer runs of days without hits print as one line."""


def print_evidence(stream: IO[str], found: Evidence, query: Query, days: float) -> None:
    """Write the report of ``found`` (``query``'s hits over ``days``) to ``stream``."""
    out = _Writer(stream)
    for index, text in enumerate(found.stats.lines()):
        out.line(text, "bold" if index < 2 or not text.startswith(" ") else "")
    if not found.stats.hits:
        out.line(
            f"no stored event of the last {days:g} days matches: widen --days, or check the "
            "query with recheck match on a build's logs"
        )
        return
    out.line("")
    out.line(f"hits per day (last {days:g} days)", "bold")
    peak = max(found.by_day.values(), default=0)
    bar = "█" if out.terminal else "#"
    quiet: list[str] = []
    for day, hits in [*found.by_day.items(), ("", -1)]:
        if hits == 0:
            quiet.append(day)
            continue
        if len(quiet) > _QUIET_RUN:
            out.line(f"  {quiet[0]} .. {quiet[-1]}: {len(quiet):,} days without hits", "dim")
        else:
            for empty in quiet:
                out.line(f"  {empty} {'':<{BAR_WIDTH}} 0")
        quiet = []
        if hits > 0:
            # At least one character: a day with hits always shows.
            length = max(1, round(hits * BAR_WIDTH / peak))
            out.line(f"  {day} {bar * length:<{BAR_WIDTH}} {hits:,}")
    out.line("")
    shown = len(found.events)
    out.line(f"newest {shown:,} of {found.stats.hits:,} matching events", "bold")
    for hit in found.events:
        _event(out, hit, query)


def _event(out: _Writer, hit: EventHit, query: Query) -> None:
    when = hit.time.strftime("%Y-%m-%d %H:%M") if hit.time is not None else "?"
    where = hit.filename or "?"
    if hit.line is not None:
        where += f":{hit.line}"
    build = (hit.build_uuid or "?")[:10]
    head = f"{when}  {hit.build_name or '?'}  {hit.build_status or '?'}  {build}  {where}"
    out.line(_clean(head), "cyan")
    message = _clean(hit.message.replace("\r\n", "\n").replace("\t", " "))
    for line in excerpt(query.root, message, _LINES_SHOWN, _LINE_CHARS):
        out.parts([("    ", False), *line])
    if hit.url:
        out.line("    " + _clean(hit.url), "dim")


def _clean(text: str) -> str:
    return _CONTROL.sub("?", text)


class _Writer:
    """Lines with styles on a terminal (rich), plain text anywhere else."""

    def __init__(self, stream: IO[str]) -> None:
        self.terminal = stream.isatty()
        self._stream = stream
        if self.terminal:
            from rich.console import Console

            self._console = Console(file=stream, highlight=False, soft_wrap=True)

    def line(self, text: str, style: str = "") -> None:
        self.parts([(text, False)], style)

    def parts(self, parts: list[tuple[str, bool]], style: str = "") -> None:
        if not self.terminal:
            print("".join(f"**{t}**" if marked else t for t, marked in parts), file=self._stream)
            return
        from rich.text import Text

        text = Text(style=style)
        for piece, marked in parts:
            text.append(piece, style=_STYLE if marked else "")
        self._console.print(text)
