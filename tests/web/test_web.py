"""The pages' data, HTML and JSON, ``recheck report`` and ``recheck serve`` (no browser).

The store is real (tests/web_store.py: real builds' logs and generated builds of real
events); what each page should say is computed here from what was ingested. HTML is
checked by parsing it. The browser tests are in test_web_browser.py.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import cast

import pytest
from web_store import QUERIES, Data, fill_store, serving, shipped_signatures, write_config

from recheck.cli.main import main
from recheck.config.files import ConfigError, PagesConfig, load_config, parse_config
from recheck.logs.build import Build
from recheck.models import BugInfo, BugTracker, UrlOnlyTracker
from recheck.query.signatures import load_signatures
from recheck.store import Store, StoreError, open_store
from recheck.store.base import StoredBuild
from recheck.web.chart import BAR_WIDTH, HEIGHT, hourly_chart
from recheck.web.pages import WINDOWS, Header, Hours, as_json, trends_page, web_url
from recheck.web.render import Links, Renderer
from recheck.web.server import SECURITY_HEADERS
from recheck.web.site import Snapshot

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Data]]:
    path = tmp_path_factory.mktemp("web") / "store"
    with open_store(path) as store:
        data = fill_store(store, NOW)
    yield path, data


@pytest.fixture
def store(filled: tuple[Path, Data]) -> Iterator[Store]:
    with open_store(filled[0]) as opened:
        yield opened


@pytest.fixture
def data(filled: tuple[Path, Data]) -> Data:
    return filled[1]


class Tracker:
    """A tracker that knows some bugs' titles (as Launchpad would answer)."""

    def __init__(self, known: dict[str, BugInfo] | None = None) -> None:
        self.known = known or {}

    def url(self, bug: str) -> str:
        return f"https://bugs.example.org/{bug}"

    def lookup(self, bug: str) -> BugInfo | None:
        return self.known.get(bug)


def snapshot(
    store: Store, settings: PagesConfig | None = None, tracker: BugTracker | None = None
) -> Snapshot:
    return Snapshot(
        store, shipped_signatures(), tracker or Tracker(), settings or PagesConfig(), NOW
    )


class Tags(HTMLParser):
    """Every start tag of a document with its attributes, and the text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, css: str | None = None) -> list[dict[str, str | None]]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and (css is None or css in (attrs.get("class") or "").split())
        ]

    def hrefs(self) -> list[str]:
        return [str(attrs["href"]) for _, attrs in self.tags if attrs.get("href")]


# --------------------------------------------------------------------------- trends


def test_trend_cards_count_builds_per_signature_and_sort_by_recent_failures(
    store: Store, data: Data
) -> None:
    page = snapshot(store).trends(None)
    signatures = shipped_signatures()
    graphed = {s.bug for s in signatures if not s.suppress_graph}
    assert {card.bug.bug for card in page.cards} == graphed
    assert page.hidden == sorted(s.bug for s in signatures if s.suppress_graph)
    assert page.hidden, "the shipped signatures include suppress-graph ones"
    for card in page.cards:
        hits = [m for m in data.builds if card.bug.bug in m.bugs and m.time >= card.hours.start]
        failed = [m for m in hits if m.build.build_status == "FAILURE"]
        assert card.builds == len(hits)
        assert card.failures == len(failed)
        assert card.failures_24h == sum(1 for m in failed if m.time >= NOW - timedelta(days=1))
        assert card.quiet == (not hits)
        assert sum(sum(c.values()) for c in card.hours.counts.values()) == len(hits)
    keys = [(-c.failures_24h, -c.failures) for c in page.cards]
    assert keys == sorted(keys)
    busy = [c.bug.bug for c in page.cards if not c.quiet]
    assert {"demo-1", "demo-2", "demo-3"} <= set(busy)


def test_trends_sort_by_failures_in_24_hours_before_failures_in_total(tmp_path: Path) -> None:
    # As elastic-recheck did: a bug failing today outranks one that failed more, earlier.
    for bug in ("111", "222", "333", "444"):
        (tmp_path / f"{bug}.yaml").write_text('query: message:"x"\n', encoding="utf-8")
    signatures, errors = load_signatures(tmp_path)
    assert not errors
    ago = {"111": [(2, "FAILURE")], "222": [(72, "FAILURE")] * 5,
           "333": [(3, "FAILURE"), (96, "FAILURE"), (97, "FAILURE")],
           "444": [(1, "SUCCESS")] * 9}  # fmt: skip
    builds = [
        StoredBuild(
            Build(build_uuid=f"{bug}-{n}", build_status=status, build_queue="gate"),
            NOW - timedelta(hours=hours),
            NOW,
            1,
            True,
            (bug,),
        )
        for bug, hits in ago.items()
        for n, (hours, status) in enumerate(hits)
    ]
    top = Header("recheck", NOW, NOW, "gate")
    page = trends_page(builds, signatures, Tracker(), top, days=10)
    assert [(c.bug.bug, c.failures_24h, c.failures, c.builds) for c in page.cards] == [
        ("333", 1, 3, 3), ("111", 1, 1, 1), ("222", 0, 5, 5), ("444", 0, 0, 9)
    ]  # fmt: skip


def test_gate_trends_count_only_gate_builds(store: Store, data: Data) -> None:
    page = snapshot(store).trends("gate")
    card = next(c for c in page.cards if c.bug.bug == "demo-1")
    gate = [m for m in data.builds if "demo-1" in m.bugs and m.build.build_queue == "gate"]
    assert card.builds == len(gate)
    everywhere = sum(1 for m in data.builds if "demo-1" in m.bugs)
    assert len(gate) < everywhere, "the data has check-pipeline hits too"


def test_trends_html_draws_active_signatures_and_lists_quiet_ones_at_the_end(
    store: Store,
) -> None:
    page = snapshot(store).trends(None)
    html = Renderer().html(page, Links("index", live=False))
    tags = Tags(html)
    quiet = [c.bug.bug for c in page.cards if c.quiet]
    busy = [c.bug.bug for c in page.cards if not c.quiet]
    assert len(quiet) > len(busy) > 0, "the shipped signatures are mostly quiet here"
    # A card (with its chart) per signature with hits; the others one line each, after.
    assert [c["id"] for c in tags.having("article", "card")] == [f"bug-{b}" for b in busy]
    assert len(tags.having("svg")) == len(busy)
    listed = [str(a["id"]) for a in tags.having("li") if str(a.get("id")).startswith("bug-")]
    assert listed == [f"bug-{b}" for b in quiet]
    assert html.index('id="quiet"') > html.index(f'id="bug-{busy[-1]}"')
    assert f"{len(quiet)} of {len(page.cards)} signatures had no hit" in " ".join(tags.text)
    assert "bugs/demo-1.html" in tags.hrefs()
    assert "index.json" in tags.hrefs()
    # Red only where failures happened in the last 24 hours.
    alarms = tags.having("strong", "alarm")
    assert len(alarms) == sum(1 for c in page.cards if c.failures_24h) > 0
    assert len(tags.having("strong", "fails24")) == len(busy) > len(alarms)


def test_header_says_how_far_behind_the_newest_event_is(store: Store, data: Data) -> None:
    page = snapshot(store).trends(None)
    newest = max(m.time for m in data.builds)
    assert page.header.newest_event == newest
    assert page.header.behind == NOW - newest
    later = replace(page.header, generated=newest + timedelta(hours=5))
    html = Renderer().html(replace(page, header=later), Links("index", live=False))
    assert "indexing is 5 h behind" in " ".join(Tags(html).text)


class _YellowCluster:
    """A store as a cluster store is: it also tells its health (here: yellow)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def health(self) -> object:
        return type("Health", (), {"status": "yellow"})()


class _DownCluster(_YellowCluster):
    """A cluster store whose server went away: every question is a StoreError."""

    def newest_event_time(self) -> datetime | None:
        raise StoreError("https://es.example.org:9200", "connection refused; is it running?")


def test_header_tells_a_cluster_s_health_and_survives_it_being_down(store: Store) -> None:
    yellow = snapshot(cast(Store, _YellowCluster(store))).trends(None)
    assert yellow.header.health == "yellow"
    text = " ".join(Tags(Renderer().html(yellow, Links("index", live=False))).text)
    assert "Cluster health: yellow." in text
    down = snapshot(cast(Store, _DownCluster(store))).trends(None)
    assert down.header.newest_event is None
    text = " ".join(Tags(Renderer().html(down, Links("index", live=False))).text)
    assert "History unavailable: connection refused; is it running?" in text
    page = snapshot(store).trends(None)
    embedded = " ".join(Tags(Renderer().html(page, Links("index", live=False))).text)
    assert "Cluster health" not in embedded and "unavailable" not in embedded


# --------------------------------------------------------------------------- chart


def test_chart_stacks_one_rectangle_per_hour_and_status_scaled_to_the_peak() -> None:
    start = datetime(2024, 5, 19, 22, tzinfo=UTC)
    counts = {0: {"FAILURE": 2}, 3: {"FAILURE": 1, "SUCCESS": 3}, 5: {"TIMED_OUT": 1}}
    hours = Hours(start, 6, counts)
    chart = hourly_chart(hours)
    assert chart.width == 6 * BAR_WIDTH and chart.peak == 4
    paths = {s.status: s.path for s in chart.series}
    assert list(paths) == ["FAILURE", "SUCCESS", "TIMED_OUT"]
    rects = {status: re.findall(r"M(\d+) (\d+)h\d+v(\d+)", d) for status, d in paths.items()}
    # Hour 3: one failure at the bottom (a quarter of the height), three successes on it.
    assert rects["FAILURE"] == [("0", str(HEIGHT - 30), "30"), (str(3 * BAR_WIDTH), "45", "15")]
    assert rects["SUCCESS"] == [(str(3 * BAR_WIDTH), "0", "45")]
    assert [s.css for s in chart.series] == ["failure", "success", "other"]
    assert [(t.x, t.label) for t in chart.ticks] == [(2 * BAR_WIDTH, "May 20")]


# --------------------------------------------------------------------------- uncategorized


@pytest.mark.parametrize("window", [label for label, _ in WINDOWS])
def test_uncategorized_lists_exactly_the_unexplained_failed_voting_gate_builds(
    store: Store, data: Data, window: str
) -> None:
    days = dict(WINDOWS)[window]
    page = snapshot(store).uncategorized(window)
    assert page is not None
    failed = data.failed_gate(days)
    unexplained = {m.build.build_uuid for m in failed if not m.bugs}
    listed = [b for g in page.groups for j in g.jobs for b in j.uncategorized]
    assert {b.uuid for b in listed} == unexplained
    assert page.failures == len(failed)
    assert page.classified == len(failed) - len(unexplained)
    for group in page.groups:
        for job in group.jobs:
            times = [b.time for b in job.uncategorized]
            assert times == sorted(times, reverse=True)
            assert all(b.job == job.job for b in job.uncategorized)
            assert job.rate == pytest.approx(job.classified / job.failures)


def test_uncategorized_groups_split_integrated_gate_projects_from_others(
    store: Store, data: Data
) -> None:
    page = snapshot(store).uncategorized("10d")
    assert page is not None
    by_name = {g.name: g for g in page.groups}
    assert set(by_name) == {"integrated gate", "other projects"}
    projects = {
        name: {b.project for j in g.jobs for b in j.uncategorized} for name, g in by_name.items()
    }
    assert projects["other projects"] <= {"x/whitebox", "x/octavia"}
    assert projects["integrated gate"] <= {f"openstack/{p}" for p in ("nova", "neutron", "cinder")}
    failed = data.failed_gate(10)
    assert by_name["other projects"].failures == sum(
        1 for m in failed if str(m.build.project).startswith("x/")
    )


def test_excluded_jobs_are_left_off_the_uncategorized_page(store: Store, data: Data) -> None:
    settings = PagesConfig(excluded_jobs=r"tox")
    page = snapshot(store, settings).uncategorized("10d")
    assert page is not None
    jobs = {j.job for g in page.groups for j in g.jobs}
    assert jobs and not any("tox" in job for job in jobs)
    failed = [m for m in data.failed_gate(10) if "tox" not in str(m.build.build_name)]
    assert page.failures == len(failed)


def test_uncategorized_html_links_each_build_to_its_logs(store: Store, data: Data) -> None:
    page = snapshot(store).uncategorized("7d")
    html = Renderer().html(page, Links("uncategorized-7d", live=False))
    tags = Tags(html)
    unexplained = [m for m in data.failed_gate(7) if not m.bugs]
    assert unexplained
    for made in unexplained:
        assert made.build.log_url in tags.hrefs()
    current = [a for a in tags.having("a") if a.get("aria-current") == "page"]
    assert [a["href"] for a in current] == ["uncategorized.html", "uncategorized-7d.html"]


LINKED = PagesConfig(
    review_url="https://review.example.org/c/{project}/+/{change}/{patchset}",
    build_url="https://zuul.example.org/t/openstack/build/{uuid}",
)


def test_uncategorized_builds_link_to_review_and_build_and_show_an_error_line(
    store: Store, data: Data
) -> None:
    page = snapshot(store, LINKED).uncategorized("10d")
    assert page is not None
    html = Renderer().html(page, Links("uncategorized-10d", live=False))
    tags = Tags(html)
    unexplained = [m.build for m in data.failed_gate(10) if not m.bugs]
    for build in unexplained:
        review = f"https://review.example.org/c/{build.project}/+/{build.build_change}/2"
        assert review in tags.hrefs()
        assert f"https://zuul.example.org/t/openstack/build/{build.build_uuid}" in tags.hrefs()
    listed = [b for g in page.groups for j in g.jobs for b in j.uncategorized]
    with_line = [b for b in listed if b.error is not None]
    # The generated builds hold slices of a real console: some end in its failures.
    assert 0 < len(with_line) < len(listed)
    for build in with_line:
        assert build.error is not None and build.log_url is not None
        assert build.error.url == f"{build.log_url}{build.error.filename}#{build.error.line}"
        assert build.error.url in tags.hrefs() and build.error.message in html
    assert len(tags.having("div", "error-line")) == len(listed)
    assert len(tags.having("div", "none")) == len(listed) - len(with_line)
    # Without the templates (no gerrit.url, no zuul.url), only the logs are linked.
    plain = snapshot(store).uncategorized("10d")
    assert plain is not None
    hrefs = Tags(Renderer().html(plain, Links("uncategorized-10d", live=False))).hrefs()
    assert not any("example.org/c/" in h or "/build/" in h for h in hrefs)


def test_an_uncategorized_page_without_failures_says_so_instead_of_a_rate(
    tmp_path: Path,
) -> None:
    with open_store(tmp_path / "store") as empty:
        page = snapshot(empty).uncategorized("24h")
        assert page is not None and page.rate is None
        text = " ".join(Tags(Renderer().html(page, Links("uncategorized", live=False))).text)
    assert "No failed builds." in text and "%" not in text
    assert as_json(page)["rate"] is None


# --------------------------------------------------------------------------- bug page


def test_bug_page_lists_every_matching_build_with_links_to_the_lines(
    store: Store, data: Data
) -> None:
    page = snapshot(store).bug("demo-1")
    assert page is not None
    expected = [m for m in data.builds if "demo-1" in m.bugs]
    assert {b.uuid for b in page.builds} == {m.build.build_uuid for m in expected}
    assert [b.time for b in page.builds] == sorted((b.time for b in page.builds), reverse=True)
    real = next(b for b in page.builds if b.uuid == "neutron-gate-1")
    # The line recheck classify prints for this build: logs/screen-q-svc.txt:20.
    assert [(line.filename, line.line) for line in real.lines] == [("logs/screen-q-svc.txt", 20)]
    assert real.lines[0].url == "https://logs.example.org/neutron-gate-1/logs/screen-q-svc.txt#20"
    assert "delete failed" in real.lines[0].message
    successes = sum(1 for m in expected if m.build.build_status == "SUCCESS")
    assert successes, "the data has successful builds the signature matches"
    assert page.success_share == pytest.approx(successes / len(expected))
    assert sum(s.builds for s in page.jobs) == len(expected)
    assert {s.value for s in page.projects} == {str(m.build.project) for m in expected}
    assert {s.value for s in page.branches} == {str(m.build.build_branch) for m in expected}
    assert page.query == next(s.query for s in shipped_signatures() if s.bug == "demo-1")


def test_bug_page_html_shows_the_query_and_warns_about_successful_hits(store: Store) -> None:
    page = snapshot(store).bug("demo-1")
    html = Renderer().html(page, Links("bugs/demo-1", live=False))
    tags = Tags(html)
    assert page is not None and page.query in "".join(tags.text)
    assert tags.having("span", "broad"), "a signature hitting successes is flagged"
    assert "https://logs.example.org/neutron-gate-1/logs/screen-q-svc.txt#20" in tags.hrefs()
    assert "../index.html" in tags.hrefs() and "../static/style.css" in tags.hrefs()


def test_static_pages_carry_the_policy_recheck_serve_sends(store: Store) -> None:
    # Any web server may serve a report: the page itself forbids scripts, as the header does.
    html = Renderer().html(snapshot(store).trends(None), Links("index", live=False))
    policies = [m for m in Tags(html).having("meta") if m.get("http-equiv")]
    assert [m["http-equiv"] for m in policies] == ["Content-Security-Policy"]
    sent = SECURITY_HEADERS["Content-Security-Policy"].split("; ")
    # frame-ancestors only works as a header; the rest is the same policy.
    assert str(policies[0]["content"]).split("; ") == [d for d in sent if "frame" not in d]


def test_unknown_pages_are_none(store: Store) -> None:
    site = snapshot(store)
    assert site.page("bugs/424242") is None
    assert site.page("uncategorized-3d") is None
    assert site.page("nothing") is None


def test_bug_data_from_the_tracker_is_shown_and_a_failing_tracker_is_survived(
    store: Store,
) -> None:
    info = BugInfo("demo-2", "Tempest EC2 boot times out", "Confirmed", ("nova", "tempest"))
    page = snapshot(store, tracker=Tracker({"demo-2": info})).bug("demo-2")
    html = Renderer().html(page, Links("bugs/demo-2", live=False))
    text = " ".join(Tags(html).text)
    assert "Tempest EC2 boot times out" in text and "Confirmed" in text and "nova, tempest" in text
    assert "https://bugs.example.org/demo-2" in Tags(html).hrefs()

    class Broken:
        def url(self, bug: str) -> str:
            raise RuntimeError("tracker bug")

        def lookup(self, bug: str) -> BugInfo | None:
            raise RuntimeError("tracker bug")

    page = snapshot(store, tracker=Broken()).bug("demo-2")
    assert page is not None and page.bug.url is None and page.bug.title is None
    assert Renderer().html(page, Links("bugs/demo-2", live=False))


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("https://logs.example.org/a/b/", True),
        ("http://logs.example.org/x", True),
        ("javascript:alert(1)", False),
        (" JavaScript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:x", False),
        ("//evil.example.org/x", False),
        ("https://", False),
        ("https://ok.example.org/a b", False),
        ("https://ok.example.org/\x00", False),
        ("", False),
        (None, False),
    ],
)
def test_only_http_urls_become_links(text: str | None, kept: bool) -> None:
    assert (web_url(text) is not None) == kept


# --------------------------------------------------------------------------- JSON


def test_trend_cards_show_precision_and_flags_as_recheck_stats(store: Store, data: Data) -> None:
    page = snapshot(store).trends(None)
    since = NOW - timedelta(days=PagesConfig().days)
    for card in page.active:
        hits = [m for m in data.builds if card.bug.bug in m.bugs and m.time >= since]
        passed = sum(m.build.build_status == "SUCCESS" for m in hits)
        assert card.precision == round((len(hits) - passed) / len(hits), 4)
        assert ("too_broad" in card.flags) == (passed > 0)
    demo1 = next(card for card in page.cards if card.bug.bug == "demo-1")
    assert demo1.flags["too_broad"].startswith("hits "), "fill_store has passing demo-1 hits"

    tags = Tags(Renderer().html(page, Links("index", live=False)))
    flagged = tags.having("li", "flag-too_broad")
    assert len(flagged) == sum("too_broad" in card.flags for card in page.active)
    assert tags.having("span", "precision")
    assert as_json(page)["cards"][0]["flags"] == page.cards[0].flags
    fixed = Tracker({"demo-1": BugInfo("demo-1", "a title", status="Fix Released")})
    again = snapshot(store, tracker=fixed).trends(None)
    card = next(card for card in again.cards if card.bug.bug == "demo-1")
    assert card.flags["stale"] == "bug demo-1 is Fix Released"
    assert "stale" not in demo1.flags


def test_json_holds_what_the_page_shows(store: Store) -> None:
    page = snapshot(store).trends(None)
    data = as_json(page)
    json.dumps(data)  # plain JSON types only
    card = next(c for c in data["cards"] if c["bug"]["bug"] == "demo-1")
    assert set(card) >= {"bug", "query", "failures_24h", "failures", "builds", "hours", "quiet"}
    assert card["hours"]["hours"] == 240
    assert datetime.fromisoformat(data["header"]["generated"]) == NOW


# --------------------------------------------------------------------------- config


def test_pages_section_of_bot_yaml(tmp_path: Path) -> None:
    text = (
        "pages:\n  title: OpenStack recheck\n  queue: gate\n  days: 7\n"
        "  integrated_gate: ['openstack/nova']\n  excluded_jobs: '-docs$'\n"
    )
    pages = parse_config(text, tmp_path / "bot.yaml").pages
    assert pages == PagesConfig("OpenStack recheck", "gate", 7, ("openstack/nova",), "-docs$")


@pytest.mark.parametrize(
    ("text", "review", "build"),
    [
        ("", None, None),
        (
            "gerrit: {url: 'https://review.opendev.org/'}\n"
            "zuul: {url: https://zuul.opendev.org, tenant: openstack}\n",
            "https://review.opendev.org/c/{project}/+/{change}/{patchset}",
            "https://zuul.opendev.org/t/openstack/build/{uuid}",
        ),
        (
            "gerrit: {host: review.example.org}\nzuul: {url: https://zuul.example.org}\n",
            "https://review.example.org/c/{project}/+/{change}/{patchset}",
            "https://zuul.example.org/t/{tenant}/build/{uuid}",
        ),
        (
            "gerrit: {url: https://review.example.org}\n"
            "pages: {review_url: 'https://r.example.org/{change}', build_url: 'https://b/{job}'}\n",
            "https://r.example.org/{change}",
            "https://b/{job}",
        ),
    ],
)
def test_review_and_build_links_come_from_gerrit_and_zuul_unless_pages_says(
    tmp_path: Path, text: str, review: str | None, build: str | None
) -> None:
    pages = parse_config(text, tmp_path / "bot.yaml").pages
    assert (pages.review_url, pages.build_url) == (review, build)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pages: {review_url: 'review/{change}'}", "pages.review_url must be an http(s) URL"),
        ("pages: {build_url: 'https://z/{build}'}", "pages.build_url may hold {uuid}"),
    ],
)
def test_bad_link_templates_are_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text, tmp_path / "bot.yaml")


def test_the_shipped_bot_yaml_spells_out_the_default_pages_settings() -> None:
    assert load_config(ROOT / "bot.yaml").pages == PagesConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pages:\n  excluded_jobs: '(tox'\n", "bot.yaml:2:18: pages.excluded_jobs is not a valid"),
        ("pages:\n  integrated_gate: [ok, '[']\n", "bot.yaml:2:25: pages.integrated_gate entry"),
        ("pages:\n  queue: ../etc\n", "bot.yaml:2:10: pages.queue must be a pipeline name"),
        ("pages:\n  queue: index\n", "bot.yaml:2:10: pages.queue must be a pipeline name"),
        ("pages:\n  days: 0\n", "bot.yaml:2:9: pages.days must be a whole number"),
        ("pages:\n  titel: x\n", "bot.yaml:2:3: unknown key 'pages.titel'; did you mean 'title'?"),
    ],
)
def test_bad_pages_settings_are_errors_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "bot.yaml")
    assert message in str(caught.value)


# --------------------------------------------------------------------------- commands


def test_report_writes_pages_and_json_and_removes_stale_bug_pages(
    filled: tuple[Path, Data], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "site"
    (out / "bugs").mkdir(parents=True)
    (out / "bugs" / "1000000.html").write_text("old")
    (out / "bugs" / "1000000.json").write_text("{}")
    (out / "bugs" / "notes.txt").write_text("not ours")
    config = write_config(tmp_path)
    argv = ["report", "--store", str(filled[0]), "--config", str(config), "--output", str(out)]
    assert main([*argv, "--queries", str(QUERIES)]) == 0
    said = capsys.readouterr().out
    signatures = shipped_signatures()
    pages = 2 + 1 + len(WINDOWS) + len(signatures) + 1  # + the tests page (no run views:
    # the fixture builds have no subunit stream)
    expected = rf"wrote {pages} pages to .* in \d+\.\d s, removed 1 stale bug pages\n"
    assert re.fullmatch(expected, said)
    for name in ("index", "gate", "uncategorized", "uncategorized-24h", "bugs/demo-1"):
        assert (out / f"{name}.html").is_file()
        assert json.loads((out / f"{name}.json").read_text())["header"]["title"] == "recheck"
    assert (out / "static" / "style.css").is_file()
    assert not (out / "bugs" / "1000000.html").exists()
    assert (out / "bugs" / "notes.txt").exists()
    assert len(list((out / "bugs").glob("*.html"))) == len(signatures)
    assert not list(out.rglob(".recheck-*")), "no temporary files are left behind"


def test_report_into_an_unwritable_place_is_an_error(
    filled: tuple[Path, Data], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["report", "--store", str(filled[0]), "--config", str(write_config(tmp_path))]
    assert main([*argv, "--output", str(blocker / "site"), "--queries", str(QUERIES)]) == 2
    assert "recheck report: error: cannot write" in capsys.readouterr().err


@pytest.fixture
def server(filled: tuple[Path, Data], tmp_path: Path) -> Iterator[str]:
    with serving(filled[0], write_config(tmp_path)) as url:
        yield url


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_serve_answers_pages_json_and_errors(server: str, data: Data) -> None:
    assert server.startswith("http://127.0.0.1:"), "without --host, only this machine"
    status, headers, body = fetch(server)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert len(Tags(body.decode()).having("article", "card")) > 0

    status, _, body = fetch(server + "api/")
    listing = json.loads(body)["pages"]
    assert "/api/index.json" in listing and "/api/bugs/demo-1.json" in listing

    status, headers, body = fetch(server + "api/uncategorized.json?window=24h")
    assert status == 200 and headers["Content-Type"] == "application/json"
    page = json.loads(body)
    assert page["window"] == "24h"
    unexplained = {m.build.build_uuid for m in data.failed_gate(1) if not m.bugs}
    listed = {b["uuid"] for g in page["groups"] for j in g["jobs"] for b in j["uncategorized"]}
    assert listed == unexplained

    status, _, body = fetch(server + "uncategorized.html?window=2d")
    current = [a["href"] for a in Tags(body.decode()).having("a") if a.get("aria-current")]
    assert "uncategorized-2d.html" in current

    status, _, body = fetch(server + "api/bugs/demo-1.json")
    assert status == 200 and json.loads(body)["bug"]["bug"] == "demo-1"
    status, _, body = fetch(server + "bugs/demo-1.html")
    assert status == 200 and "../api/bugs/demo-1.json" in Tags(body.decode()).hrefs()

    for missing in ("nope.html", "bugs/424242.html", "static/../../bot.yaml",
                    "static/%2e%2e/bot.yaml", "index.txt"):  # fmt: skip
        assert fetch(server + missing)[0] == 404, missing
    assert json.loads(fetch(server + "api/bugs/424242.json")[2])["error"]
    # An error page's links are relative to where the browser is, as a page's are.
    status, _, body = fetch(server + "bugs/424242.html")
    assert {"../index.html", "../static/style.css"} <= set(Tags(body.decode()).hrefs())

    status, _, body = fetch(server + "uncategorized.html?window=3d")
    said = "".join(Tags(body.decode()).text)
    assert status == 400 and "Unknown window '3d': ?window= takes one of 24h, 2d, 7d, 10d" in said
    status, _, body = fetch(server + "api/uncategorized.json?window=%3Cb%3E")
    assert status == 400 and "Unknown window '<b>'" in json.loads(body)["error"]
    status, headers, _ = fetch(server + "static/style.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")


def test_a_store_that_cannot_be_read_is_an_error_page_and_the_server_goes_on(
    filled: tuple[Path, Data], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "store"
    shutil.copytree(filled[0], broken)
    # A damaged catalog: SQLite itself fails on reading, not recheck's store code.
    with sqlite3.connect(broken / "catalog.sqlite") as catalog:
        catalog.execute("ALTER TABLE matches RENAME TO lost")
    config = write_config(tmp_path)
    with serving(broken, config) as url:
        for path in ("", "bugs/demo-1.html"):
            status, headers, body = fetch(url + path)
            assert status == 503 and headers["Content-Type"].startswith("text/html"), path
            said = body.decode()
            assert f"{broken / 'catalog.sqlite'}: cannot read the catalog" in said, path
            assert "(no such table: matches)" in said
        for path in ("api/", "api/index.json", "api/bugs/demo-1.json"):
            status, _, body = fetch(url + path)
            assert status == 503 and str(broken) in json.loads(body)["error"], path
        assert fetch(url + "static/style.css")[0] == 200, "the server still answers"
    argv = ["report", "--store", str(broken), "--config", str(config), "--queries", str(QUERIES)]
    assert main([*argv, "--output", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert f"recheck report: error: {broken / 'catalog.sqlite'}: cannot read the catalog" in err


def test_unknown_port_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert "'70000' is not a port number" in capsys.readouterr().err


def test_url_only_tracker_is_the_default_link(store: Store) -> None:
    page = snapshot(store, tracker=UrlOnlyTracker()).bug("demo-3")
    assert page is not None and page.bug.url == "https://bugs.launchpad.net/bugs/demo-3"
