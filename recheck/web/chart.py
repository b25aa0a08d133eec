"""Hourly bar charts drawn on the server as SVG geometry: no JavaScript, no chart library.

``hourly_chart`` turns ``Hours`` into numbers only (one path per build status, a tick per
day); the template writes them out, so no text from the data reaches the SVG unescaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from recheck.web.pages import FAILURE, SUCCESS, Hours

__all__ = ["BAR_WIDTH", "HEIGHT", "Chart", "hourly_chart"]

BAR_WIDTH = 3
"""Pixels per hour: 10 days are 720 pixels wide."""
HEIGHT = 60
"""Pixels of the tallest bar."""
_ORDER = (FAILURE, SUCCESS)
"""Stacking order from the bottom; other statuses (TIMED_OUT...) come after, by name."""


@dataclass(frozen=True)
class Series:
    """One build status's bars as a single SVG path."""

    status: str
    css: str
    """The CSS class that colours it: ``failure``, ``success`` or ``other``."""
    path: str
    builds: int


@dataclass(frozen=True)
class Tick:
    """A day boundary on the time axis."""

    x: int
    label: str


@dataclass(frozen=True)
class Chart:
    """What the template needs to draw one hourly chart."""

    width: int
    height: int
    peak: int
    """The most builds in one hour (the height the bars are scaled to)."""
    series: list[Series]
    ticks: list[Tick]


def hourly_chart(hours: Hours) -> Chart:
    """Stacked bars of ``hours``: one bar per hour, one colour per build status."""
    peak = max((sum(by_status.values()) for by_status in hours.counts.values()), default=0)
    statuses = sorted(
        {status for by_status in hours.counts.values() for status in by_status},
        key=lambda s: (_ORDER.index(s) if s in _ORDER else len(_ORDER), s),
    )
    paths: dict[str, list[str]] = {status: [] for status in statuses}
    totals = dict.fromkeys(statuses, 0)
    for index, by_status in sorted(hours.counts.items()):
        below = 0
        for status in statuses:
            count = by_status.get(status, 0)
            if not count:
                continue
            top = _y(below + count, peak)
            tall = _y(below, peak) - top
            below += count
            totals[status] += count
            # A rectangle: move to its top-left corner, right, down, left, close.
            paths[status].append(f"M{index * BAR_WIDTH} {top}h{BAR_WIDTH}v{tall}h-{BAR_WIDTH}z")
    series = [
        Series(status, _css(status), "".join(paths[status]), totals[status]) for status in statuses
    ]
    return Chart(hours.hours * BAR_WIDTH, HEIGHT, peak, series, _ticks(hours))


def _y(count: int, peak: int) -> int:
    """The SVG y of the top of ``count`` builds (0 is the chart's top)."""
    if peak == 0:
        return HEIGHT
    return HEIGHT - round(count * HEIGHT / peak)


def _css(status: str) -> str:
    return {FAILURE: "failure", SUCCESS: "success"}.get(status, "other")


def _ticks(hours: Hours) -> list[Tick]:
    ticks = []
    for index in range(hours.hours):
        moment = hours.start + timedelta(hours=index)
        if moment.hour == 0:
            ticks.append(Tick(index * BAR_WIDTH, moment.strftime("%b %d")))
    return ticks
