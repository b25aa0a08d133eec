"""The pages in a real browser: headless Chromium loads them from ``recheck report``'s
files (file://) and from ``recheck serve``, checks what they say, that the charts are
drawn, that the filters work, and that hostile data never runs. Screenshots are saved
(``$RECHECK_SCREENSHOTS`` keeps them; docs/ holds two of them).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import pytest
from web_store import QUERIES, Data, fill_store, serving, shipped_signatures, write_config

from recheck.cli.main import main
from recheck.config.files import PagesConfig
from recheck.logs.build import Build
from recheck.models import BugInfo, Match
from recheck.query.signatures import load_signatures
from recheck.store import open_store
from recheck.web.report import write_report
from recheck.web.server import PageServer
from recheck.web.site import Snapshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytest_plugins = ["browser"]

NOW = datetime.now(UTC).replace(microsecond=0)


class Site:
    """The same store as static files and as a live server."""

    def __init__(self, files: Path, url: str, data: Data) -> None:
        self.files = files
        self.url = url
        self.data = data

    def address(self, source: str, name: str) -> str:
        if source == "static":
            return (self.files / name).as_uri()
        return self.url + name


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("browser")
    with open_store(root / "store") as store:
        data = fill_store(store, NOW)
    config = write_config(root, LINKS)
    argv = ["report", "--store", str(root / "store"), "--config", str(config)]
    assert main([*argv, "--output", str(root / "site"), "--queries", str(QUERIES)]) == 0
    with serving(root / "store", config) as url:
        yield Site(root / "site", url, data)


SOURCES = ["static", "live"]
LINKS = (
    "gerrit:\n  url: https://review.example.org\n"
    "zuul:\n  url: https://zuul.example.org\n  tenant: openstack\n"
)
"""Where the uncategorized page links each build's review and build page."""


def _box_area(page: Page, selector: str) -> list[float]:
    return [
        (box["width"] * box["height"]) if box else 0.0
        for box in (element.bounding_box() for element in page.query_selector_all(selector))
    ]


@pytest.mark.parametrize("source", SOURCES)
def test_trends_show_a_drawn_chart_per_active_signature(
    page: Page, site: Site, source: str, screenshots: Path
) -> None:
    page.goto(site.address(source, "index.html"))
    graphed = [s for s in shipped_signatures() if not s.suppress_graph]
    active = {bug for made in site.data.builds for bug in made.bugs}
    quiet = [s.bug for s in graphed if s.bug not in active]
    # A card per signature with hits; the quiet ones one line each in a list at the end.
    assert page.locator("article.card").count() == len(graphed) - len(quiet)
    assert page.locator("ul.quiet li").count() == len(quiet) > 0
    # Every card has a chart that the browser laid out with a real size, and bars that
    # cover some of it.
    charts = _box_area(page, "article.card figure.chart svg")
    assert len(charts) == len(graphed) - len(quiet) and all(area > 0 for area in charts)
    assert all(area > 0 for area in _box_area(page, "#bug-demo-1 path.bar"))
    # The quiet list takes little room: several signatures side by side per row.
    boxes = (e.bounding_box() for e in page.query_selector_all("ul.quiet li"))
    tops = {round(box["y"]) for box in boxes if box}
    assert len(tops) < len(quiet) / 2
    # Red only for failures in the last 24 hours.
    red = "rgb(198, 47, 53)"
    colours = page.eval_on_selector_all(
        "strong.fails24", "es => es.map(e => [e.textContent, getComputedStyle(e).color])"
    )
    assert colours and all((text.startswith("0 ") != (colour == red)) for text, colour in colours)
    first = page.locator("article.card").first
    assert first.get_attribute("id") == "bug-demo-1", "most failures in 24 h first"
    assert "Generated" in page.locator("#freshness").inner_text()
    page.screenshot(path=screenshots / f"trends-{source}.png", full_page=True)


@pytest.mark.parametrize("source", SOURCES)
def test_uncategorized_filters_change_the_window(
    page: Page, site: Site, source: str, screenshots: Path
) -> None:
    page.goto(site.address(source, "uncategorized.html"))
    assert page.locator(".windows a[aria-current]").inner_text() == "10d"
    for window, days in (("24h", 1), ("2d", 2), ("7d", 7), ("10d", 10)):
        page.click(f".windows a:text-is('{window}')")
        page.wait_for_load_state()
        assert page.url.endswith(f"uncategorized-{window}.html")
        assert page.locator(".windows a[aria-current]").inner_text() == window
        failed = site.data.failed_gate(days)
        unexplained = [m for m in failed if not m.bugs]
        assert page.locator("ul.builds li").count() == len(unexplained)
        explained = len(failed) - len(unexplained)
        rate = f"{explained / len(failed) * 100:.1f}%" if failed else "100.0%"
        assert rate in page.locator("#overall-rate").inner_text()
        if window == "7d":
            page.screenshot(path=screenshots / f"uncategorized-{source}.png", full_page=True)
        # Each unexplained build links to its logs, its review and its build page.
        logs = page.eval_on_selector_all("ul.builds a.logs-link", "es => es.map(a => a.href)")
        assert sorted(logs) == sorted(str(m.build.log_url) for m in unexplained)
        reviews = page.eval_on_selector_all("ul.builds .change a", "es => es.map(a => a.href)")
        assert sorted(reviews) == sorted(
            f"https://review.example.org/c/{m.build.project}/+/{m.build.build_change}/2"
            for m in unexplained
        )
        builds = page.eval_on_selector_all("ul.builds a.build-link", "es => es.map(a => a.href)")
        assert sorted(builds) == sorted(
            f"https://zuul.example.org/t/openstack/build/{m.build.build_uuid}" for m in unexplained
        )
        assert page.locator("ul.builds .error-line").count() == len(unexplained)


def test_live_uncategorized_takes_the_window_as_a_parameter(page: Page, site: Site) -> None:
    page.goto(site.url + "uncategorized.html?window=2d")
    assert page.locator(".windows a[aria-current]").inner_text() == "2d"
    unexplained = [m for m in site.data.failed_gate(2) if not m.bugs]
    assert page.locator("ul.builds li").count() == len(unexplained)


@pytest.mark.parametrize("source", SOURCES)
def test_bug_page_links_to_the_matching_lines(
    page: Page, site: Site, source: str, screenshots: Path
) -> None:
    page.goto(site.address(source, "index.html"))
    page.click("#bug-demo-1 a.bug-id")
    page.wait_for_load_state()
    assert page.url.endswith("bugs/demo-1.html")
    assert 'message:"delete failed"' in page.locator("pre.query").inner_text()
    hits = [m for m in site.data.builds if "demo-1" in m.bugs]
    assert page.locator("table.matches tbody tr").count() == len(hits)
    line = page.locator("a[href$='/neutron-gate-1/logs/screen-q-svc.txt#20']")
    assert line.inner_text() == "logs/screen-q-svc.txt:20"
    share = sum(1 for m in hits if m.build.build_status == "SUCCESS") / len(hits)
    assert f"{share * 100:.1f}% of them succeeded" in page.locator("#success-share").inner_text()
    assert all(area > 0 for area in _box_area(page, "figure.chart svg"))
    page.screenshot(path=screenshots / f"bug-{source}.png")


def test_search_from_a_bug_page_then_filter_by_a_facet_then_a_bad_query(
    page: Page, site: Site, screenshots: Path
) -> None:
    page.goto(site.url + "bugs/demo-1.html")
    page.click("#search-query")
    page.wait_for_load_state()
    assert "/search?q=" in page.url
    demo = next(s for s in shipped_signatures() if s.bug == "demo-1")
    assert page.input_value("#q") == demo.query
    # The search finds the signature's builds, and the non-voting ones a signature
    # without allow-nonvoting leaves out.
    hits = [m for m in site.data.builds if "demo-1" in m.bugs]
    summary = page.locator("#hits").inner_text()
    found = re.search(r"in (\d+) builds", summary)
    nonvoting = sum(1 for m in site.data.builds if m.build.voting == "0")
    assert found and len(hits) <= int(found[1]) <= len(hits) + nonvoting, summary
    rows = page.locator("table.lines tbody tr")
    assert 0 < rows.count() <= 50
    assert page.locator("table.lines mark").count() >= rows.count()
    assert all(area > 0 for area in _box_area(page, "figure.chart rect.bar"))
    page.screenshot(path=screenshots / "search-live.png")
    # A facet value narrows the search to it; the chip takes the filter away again.
    value = page.locator("#facet-build_name li a").first
    job = value.locator(".value").inner_text()
    value.click()
    page.wait_for_load_state()
    assert "build_name=" in page.url
    assert f"job: {job}" in page.locator("#filters").inner_text()
    jobs = page.eval_on_selector_all("table.lines .job", "es => es.map(e => e.textContent)")
    assert jobs and set(jobs) == {job}
    page.click("#filters a.chip")
    page.wait_for_load_state()
    assert "build_name=" not in page.url and page.locator("#filters").count() == 0
    # The form submits (the page's policy allows forms to its own server), and a bad
    # query is shown with its error pointing at the column.
    page.fill("#q", 'message:"delete failed" AND (tags:screen')
    page.press("#q", "Enter")
    page.wait_for_load_state()
    problem = page.locator("#problem")
    assert "bad query: unexpected end of query" in problem.inner_text()
    assert page.locator("#problem .pointer").bounding_box() is not None
    page.screenshot(path=screenshots / "search-bad-query.png")


# --------------------------------------------------------------------------- hostile data

PWN = "window.__pwned=1"
HOSTILE_BUG = f'x"><img src=x onerror={PWN}>'
HOSTILE_TEXT = f'<script>{PWN}</script><img src=x onerror="{PWN}">'


class HostileTracker:
    """A tracker answering script for every field, and a javascript: URL."""

    def url(self, bug: str) -> str:
        return f"javascript:{PWN}"

    def lookup(self, bug: str) -> BugInfo:
        return BugInfo(bug, HOSTILE_TEXT, f"<svg onload={PWN}>", (HOSTILE_TEXT,))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A store, signatures and tracker full of script: static files and a live server."""
    root = tmp_path_factory.mktemp("hostile")
    queries = root / "queries"
    queries.mkdir()
    query = f'message:hostilemarker OR message:"</code></pre>{HOSTILE_TEXT} javascript:{PWN}"'
    (queries / f"{HOSTILE_BUG}.yaml").write_text(f"query: '{query}'\n", encoding="utf-8")
    signatures, errors = load_signatures(queries)
    assert not errors and [s.bug for s in signatures] == [HOSTILE_BUG]
    settings = PagesConfig(title=HOSTILE_TEXT, excluded_jobs=f"<script>{PWN}</script>")
    store = open_store(root / "store")
    for number, matched in enumerate((True, False)):
        build = Build(
            build_uuid=f"<b>{number}</b>{HOSTILE_TEXT}", build_name=HOSTILE_TEXT,
            build_status="FAILURE", build_queue="gate", project=HOSTILE_TEXT, voting="1",
            build_branch=f'"><svg onload={PWN}>', build_change=f"javascript:{PWN}",
            build_patchset=HOSTILE_TEXT, log_url=f"javascript:{PWN}//",
        )  # fmt: skip
        filename = f'"><script>{PWN}</script>.txt'
        message = f'hostilemarker {HOSTILE_TEXT} <a href="javascript:{PWN}">x</a>'
        events = [(f"{filename}:1", {"message": message, "filename": filename})]
        matches = [Match(HOSTILE_BUG, filename, 1, message)] if matched else []
        store.ingest(build, events, matches, when=NOW)
    snapshot = Snapshot(store, signatures, HostileTracker(), settings, NOW)
    write_report(snapshot, root / "site")
    server = PageServer(lambda: snapshot, port=0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield root / "site", server.url
    finally:
        server.shutdown()
        thread.join()
        store.close()


NO_HANDLERS = """() => [...document.querySelectorAll('*')].flatMap(e =>
    [...e.attributes].filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))"""


def test_hostile_log_text_is_escaped_on_the_search_page(
    page: Page, hostile: tuple[Path, str]
) -> None:
    _, url = hostile
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url + "search?q=" + quote(f"hostilemarker OR {PWN.split('=')[0]}"))
    page.wait_for_load_state("load")
    assert page.locator("table.lines tbody tr").count() == 2
    assert page.evaluate("window.__pwned") is None and dialogs == []
    assert page.evaluate("document.scripts.length") == 0
    assert page.evaluate(NO_HANDLERS) == []
    assert HOSTILE_TEXT in page.locator("table.lines").inner_text()


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "name", ["index.html", "gate.html", "uncategorized.html", f"bugs/{quote(HOSTILE_BUG)}.html"]
)
def test_hostile_data_is_shown_as_text_and_never_runs(
    page: Page, hostile: tuple[Path, str], source: str, name: str
) -> None:
    files, url = hostile
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    address = (files / unquote(name)).as_uri() if source == "static" else url + name
    response = page.goto(address)
    assert response is None or response.status == 200
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert page.evaluate("document.scripts.length") == 0
    assert page.evaluate(NO_HANDLERS) == []
    hrefs = page.eval_on_selector_all("[href]", "es => es.map(e => e.getAttribute('href'))")
    assert hrefs, "the page has links"
    for href in hrefs:
        assert href.startswith(("http://", "https://", "#")) or ":" not in href.split("/")[0], href
    # The script is there, as text a triager can read.
    assert HOSTILE_TEXT in page.locator("body").inner_text()
