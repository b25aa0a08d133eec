"""Pages into HTML (Jinja2 templates, autoescaped) and JSON.

Templates and the stylesheet ship in the package (``web/templates/``, ``web/static/``).
Every value from the store or a bug tracker is escaped, and links are only made from
URLs that ``pages.web_url`` accepted (http and https).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import jinja2

from recheck.web.chart import hourly_chart
from recheck.web.pages import WINDOWS, BugPage, TrendsPage, UncategorizedPage, as_json
from recheck.web.search import SearchPage, day_choices, search_href, tick_every
from recheck.web.site import UNCATEGORIZED, Page, bug_name
from recheck.web.testpages import TESTS, RunPage, TestsPage

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "Links", "Renderer", "page_json"]


WEB_DIR = Path(__file__).resolve().parent  # templates/ and static/ ship inside the package
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


@dataclass(frozen=True)
class Links:
    """Where a page's links point: relative, so the same pages work from any directory."""

    name: str
    """The page's name (``index``, ``bugs/1234``...)."""
    live: bool
    """Served by ``recheck serve`` (JSON under ``/api/``) rather than written as files."""
    params: str = ""
    """The page's URL query string (a search's), which its JSON link keeps."""

    @property
    def root(self) -> str:
        """The way back to the site's top directory from this page."""
        return "../" * self.name.count("/")

    def page(self, name: str) -> str:
        """The link to the page called ``name``."""
        return self.root + quote(name) + ".html"

    def bug(self, bug: str) -> str:
        """The link to a bug's page."""
        return self.page(bug_name(bug))

    def search(self, query: str) -> str:
        """The link to the live search for ``query`` (``recheck serve``'s ``/search``)."""
        return self.root + "search?q=" + quote(query, safe="")

    @property
    def json(self) -> str:
        """The link to this page's data."""
        link = self.root + ("api/" if self.live else "") + quote(self.name) + ".json"
        return f"{link}?{self.params}" if self.params else link

    @property
    def static(self) -> str:
        """The directory of the stylesheet."""
        return self.root + "static/"


def page_json(page: Page) -> str:
    """The data a page is built from, as JSON text."""
    # Compact: indenting would make json use its slow pure-Python encoder.
    return json.dumps(as_json(page), ensure_ascii=False, separators=(",", ":")) + "\n"


class Renderer:
    """Renders pages with the templates of ``TEMPLATES_DIR``."""

    def __init__(self, templates: Path = TEMPLATES_DIR) -> None:
        if not (templates / "base.html").is_file():
            raise FileNotFoundError(
                f"{templates}: the page templates are missing; recheck's web/ directory must "
                "sit beside the recheck package (install from a source checkout)"
            )
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=_when, ago=_ago, percent=_percent, count=_count, days=lambda d: f"{d:g}"
        )
        self.env.globals.update(
            chart=hourly_chart,
            windows=[label for label, _ in WINDOWS],
            uncategorized=UNCATEGORIZED,
            tests_page=TESTS,
            day_choices=day_choices,
            tick_every=tick_every,
            example=search_href,
        )

    def html(self, page: Page, links: Links) -> str:
        """The page as an HTML document."""
        if isinstance(page, TrendsPage):
            template = "trends.html"
        elif isinstance(page, UncategorizedPage):
            template = "uncategorized.html"
        elif isinstance(page, TestsPage):
            template = "tests.html"
        elif isinstance(page, RunPage):
            template = "run.html"
        else:
            assert isinstance(page, BugPage)
            template = "bug.html"
        return self.env.get_template(template).render(page=page, links=links)

    def search_html(self, page: SearchPage, links: Links) -> str:
        """The search page as an HTML document."""
        return self.env.get_template("search.html").render(page=page, links=links)

    def not_found(self, title: str, what: str, links: Links) -> str:
        """A page saying ``what`` was not found."""
        return self.env.get_template("not_found.html").render(title=title, what=what, links=links)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _ago(span: timedelta) -> str:
    """A duration for people: ``45 s``, ``12 min``, ``3 h 20 min``, ``2 days 4 h``."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"
