"""The search page (``recheck serve``'s ``/search``) on a real embedded store and on the
cluster store (tests/elastic_fake.py), its HTML and the server's answers. What a page
should say is computed here from the ingested sample (tests/store_contract.py)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from elastic_fake import FakeCluster, fake_store
from store_contract import NOW, StoredSample, ingest_sample, make_signature

from recheck.config.files import PagesConfig
from recheck.models import UrlOnlyTracker
from recheck.query import Doc, compile_query
from recheck.store import Store, open_store
from recheck.store.freshness import Freshness
from recheck.web.pages import header
from recheck.web.render import Links, Renderer
from recheck.web.search import FACETS, SearchPage, search_page
from recheck.web.server import PageServer
from recheck.web.site import Snapshot

QUERY = 'message:"delete failed" OR message:error*'
TOP = header(PagesConfig(), NOW, Freshness(NOW, None))


@pytest.fixture(scope="module", params=["embedded", "elasticsearch"])
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, StoredSample]]:
    if request.param == "embedded":
        with open_store(tmp_path_factory.mktemp("search") / "store") as store:
            yield store, ingest_sample(store)
        return
    pytest.importorskip("elasticsearch")
    with fake_store() as cluster:
        yield cluster, ingest_sample(cluster)


def expected(sample: StoredSample, query: str, days: float = 10, **only: str) -> list[dict]:
    """The sample's events of the last ``days`` that ``query`` matches (and ``only``)."""
    compiled = compile_query(query)
    return [
        event
        for build, when, events in sample.builds
        if NOW - when <= timedelta(days=days)
        for _, event in events
        if compiled.matches(Doc(event)) and all(event.get(k) == v for k, v in only.items())
    ]


def test_a_search_counts_its_hits_by_day_and_lists_the_newest_lines(
    filled: tuple[Store, StoredSample],
) -> None:
    store, sample = filled
    page = search_page(store, TOP, QUERY, 10)
    hits = expected(sample, QUERY)
    assert page.problem is None and page.hits == len(hits) > 0
    assert sum(page.by_day.values()) == len(hits) and len(page.by_day) == 11
    assert len([b for b in page.bars if b.hits]) == sum(1 for n in page.by_day.values() if n)
    assert page.lines and len(page.lines) <= 50
    # Each line shows the words the engine matched, marked.
    for line in page.lines:
        marked = [text.lower() for parts in line.lines for text, on in parts if on]
        assert marked and all(m == "delete failed" or m.startswith("error") for m in marked)
    statuses = {f.name: f for f in page.facets}["build_status"]
    shares = {v.value: v.share for v in statuses.values}
    failed = sum(1 for e in hits if e.get("build_status") == "FAILURE")
    assert shares["FAILURE"] == pytest.approx(failed / len(hits), abs=1e-4)


def test_a_facet_value_filters_the_search_when_followed(
    filled: tuple[Store, StoredSample],
) -> None:
    store, sample = filled
    page = search_page(store, TOP, QUERY, 10)
    job = {f.name: f for f in page.facets}["build_name"].values[-1]
    link = urlsplit(job.href)
    params = {k: v[-1] for k, v in parse_qs(link.query).items()}
    assert link.path == "search" and params["q"] == QUERY and params["build_name"] == job.value
    filters = {k: v for k, v in params.items() if k in FACETS}
    narrowed = search_page(store, TOP, params["q"], float(params["days"]), filters)
    assert narrowed.hits == len(expected(sample, QUERY, build_name=job.value)) < page.hits
    assert {line.hit.build_name for line in narrowed.lines} == {job.value}
    facet = {f.name: f for f in narrowed.facets}["build_name"]
    assert facet.active == job.value and facet.clear_href is not None
    assert "build_name" not in parse_qs(urlsplit(facet.clear_href).query)


@pytest.mark.parametrize(
    ("query", "line", "column"),
    [
        (
            'message:"delete failed" AND (tags:screen',
            'message:"delete failed" AND (tags:screen',
            40,
        ),
        ('message:ok OR\n  message:"unclosed', '  message:"unclosed', 10),
    ],
)
def test_a_bad_query_says_what_and_points_at_the_column(
    filled: tuple[Store, StoredSample], query: str, line: str, column: int
) -> None:
    page = search_page(filled[0], TOP, query, 10)
    assert page.problem is not None and page.problem.message.startswith("bad query: ")
    assert (page.problem.line, page.problem.column) == (line, column)
    assert page.hits == 0 and page.lines == []
    html = Renderer().search_html(page, Links("search", live=True))
    assert f'{line}\n{" " * column}<span class="pointer">^</span>' in html.replace("&#34;", '"')


def test_broad_queries_carry_check_s_warnings(filled: tuple[Store, StoredSample]) -> None:
    page = search_page(filled[0], TOP, "message:error* OR tags:console", 10)
    assert any(w.startswith("broad: clause 'tags:console'") for w in page.warnings)
    typo = search_page(filled[0], TOP, "mesage:error OR message:error", 10)
    assert "unknown field 'mesage': no event has it, so it never matches" in typo.warnings


class _Texts(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.marks: list[str] = []
        self.hrefs: list[str] = []
        self._in_mark = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_mark = tag == "mark"
        self.hrefs += [str(v) for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        if self._in_mark:
            self.marks.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_mark = False


def test_the_page_marks_the_words_and_links_filters_and_json(
    filled: tuple[Store, StoredSample],
) -> None:
    page = search_page(filled[0], TOP, QUERY, 10)
    html = Renderer().search_html(page, Links("search", live=True, params=page.params))
    texts = _Texts(html)
    assert texts.marks and {m.lower() for m in texts.marks} <= {
        m.lower() for line in page.lines for parts in line.lines for m, on in parts if on
    }
    assert f"api/search.json?{page.params}" in texts.hrefs
    facet_links = [h for h in texts.hrefs if h.startswith("search?") and "build_name=" in h]
    assert len(facet_links) == len({f.name: f for f in page.facets}["build_name"].values)


# --------------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, StoredSample]]:
    store = open_store(tmp_path_factory.mktemp("served") / "store")
    sample = ingest_sample(store)
    try:
        with _serving(store) as url:
            yield url, sample
    finally:
        store.close()


@contextmanager
def _serving(store: Store) -> Iterator[str]:
    """``recheck serve``'s pages of ``store``, at the URL given."""
    tracker = UrlOnlyTracker("https://bugs.example.org/{bug}")
    server = PageServer(lambda: Snapshot(store, [], tracker, PagesConfig(), NOW), port=0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        thread.join()


def fetch(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_serve_answers_searches_and_their_json(server: tuple[str, StoredSample]) -> None:
    import json

    url, sample = server
    status, headers, body = fetch(f"{url}search?q={quote(QUERY)}&days=10")
    assert status == 200 and "form-action 'self'" in headers["Content-Security-Policy"]
    assert f"{len(expected(sample, QUERY)):,} hits" in body
    status, headers, body = fetch(f"{url}api/search.json?q={quote(QUERY)}&build_status=SUCCESS")
    data = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert data["hits"] == len(expected(sample, QUERY, build_status="SUCCESS"))
    assert data["filters"] == {"build_status": "SUCCESS"}
    assert set(data["lines"][0]["hit"]) >= {"build_uuid", "filename", "line", "message", "url"}
    status, _, body = fetch(f"{url}search")
    assert status == 200 and "Search every stored log line" in body
    status, _, body = fetch(f"{url}search?q=x&days=-1")
    assert status == 400 and "?days= takes a number of days" in body
    status, _, body = fetch(f"{url}api/search.json?q={'x' * 10_001}")
    assert status == 400 and "longer than 10,000 characters" in body


def test_bug_pages_link_to_a_search_of_their_query_when_served(tmp_path: Path) -> None:
    with open_store(tmp_path / "store") as store:
        sample = ingest_sample(store)
        tracker = UrlOnlyTracker("https://bugs.example.org/{bug}")
        signature = make_signature("7", 'message:"delete failed"')
        snapshot = Snapshot(store, [signature], tracker, PagesConfig(), NOW)
        page = snapshot.bug("7")
        assert page is not None and sample.builds
        live = Renderer().html(page, Links("bugs/7", live=True))
        static = Renderer().html(page, Links("bugs/7", live=False))
    assert 'href="../search?q=message%3A%22delete%20failed%22"' in live
    assert "search?q=" not in static, "the static report has no search"


def test_search_page_is_a_dataclass_with_its_params() -> None:
    page = SearchPage(TOP, "a b", 2.0, {"build_name": "x"})
    assert page.params == "q=a+b&days=2&build_name=x"


def test_serve_on_a_cluster_store_asks_the_cluster(tmp_path: Path) -> None:
    pytest.importorskip("elasticsearch")
    cluster = FakeCluster()
    with fake_store(cluster) as store:
        sample = ingest_sample(store)
        with _serving(store) as url:
            cluster.requests.clear()
            status, _, body = fetch(f"{url}search?q={quote(QUERY)}&build_name=grenade")
    assert status == 200
    assert f"{len(expected(sample, QUERY, build_name='grenade')):,} hits" in body
    searches = [r.json() for r in cluster.calls("/_search") if r.path.startswith("/logstash-")]
    [search] = [body for body in searches if "by_day" in body.get("aggs", {})]
    assert {"term": {"build_name.keyword": "grenade"}} in search["query"]["bool"]["filter"]
