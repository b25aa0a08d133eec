"""The tests page and the run view in headless Chromium, from ``recheck report``'s files
and ``recheck serve``: the real neutron build ingested with a real (derived) tempest
subunit stream, generated tempest-like runs over ten days, and a test id and traceback
full of script. Screenshots are saved (``$RECHECK_SCREENSHOTS`` keeps them).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from subunit_streams import TRACEBACK, stream_bytes, tempest_ids
from web_store import NEUTRON, serving, write_config

from recheck.cli.main import main
from recheck.logs.build import Build
from recheck.logs.sources import open_source
from recheck.logs.testresults import failed_tests
from recheck.pipeline import ingest_build
from recheck.query.signatures import load_signatures
from recheck.store import open_store

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytest_plugins = ["browser"]

NOW = datetime.now(UTC).replace(microsecond=0)
_RUNS_END = NOW if NOW.hour >= 4 else NOW.replace(hour=0, minute=0, second=0) - timedelta(minutes=1)
"""When the generated runs end: each day's three runs, 1-3 hours before it, fall on one
calendar day (a sparkline has a point a day), whatever the time of day the tests run at."""
SUBUNIT = Path(__file__).parents[1] / "fixtures" / "subunit" / "tempest-failures.subunit"
PLUGIN = "neutron_tempest_plugin.scenario.test_dns_integration."
REAL_FAILED = f"{PLUGIN}DNSIntegrationTests.test_fip[id-a8f2fade-8d5c-40f9-80f0-3de4b8d91985]"
PWN = "window.__pwned=1"
HOSTILE_TEST = f"tempest.api.<script>{PWN}</script>.Test.test_x[id-<img src=x onerror={PWN}>]"
HOSTILE_TRACE = f"</pre><script>{PWN}</script> Traceback"
IDS = [*tempest_ids(60, seed=4), HOSTILE_TEST]
SPORADIC, BROKEN = IDS[3], IDS[4]


class Site:
    def __init__(self, files: Path, url: str) -> None:
        self.files, self.url = files, url

    def address(self, source: str, name: str) -> str:
        return (self.files / name).as_uri() if source == "static" else self.url + name


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("testpages")
    queries = root / "queries"
    queries.mkdir()
    shutil.copy(Path(__file__).parents[2] / "queries" / "demo-1.yaml", queries)
    # A signature whose test_ids cover the real stream's failed DNS tests.
    (queries / "demo-7.yaml").write_text(
        "query: message:PortNotFound\ntest_ids:\n  - " + PLUGIN.rstrip(".") + "\n"
    )
    signatures, errors = load_signatures(queries)
    assert not errors
    logs = root / "neutron"
    shutil.copytree(NEUTRON, logs)
    shutil.copy(SUBUNIT, logs / "testrepository.subunit")
    with open_store(root / "store") as store:
        build = Build(
            build_uuid="neutron-run", build_name="gate-tempest-devstack-vm-neutron",
            build_status="FAILURE", build_queue="gate", voting="1", project="openstack/neutron",
            build_change="4242", build_patchset="3", log_url="https://logs.example.org/neutron/",
        )  # fmt: skip
        found = ingest_build(store, open_source(str(logs)), build, signatures, when=NOW)
        assert {m.bug for m in found.matches} == {"demo-1", "demo-7"}
        number = 0
        for day in range(10):
            for run in range(3):
                number += 1
                failed = [SPORADIC] if (day, run) in {(2, 1), (6, 0)} else []
                failed += [BROKEN] if day >= 7 else []
                failed += [HOSTILE_TEST] if (day, run) == (9, 0) else []
                when = _RUNS_END - timedelta(days=9 - day, hours=run + 1)
                stream = stream_bytes(
                    IDS, failed=failed, skipped=IDS[50:55], seed=number, start=when,
                    traceback=HOSTILE_TRACE + TRACEBACK,
                )  # fmt: skip
                tests = failed_tests(io.BytesIO(stream))
                assert not tests.problems
                generated = Build(
                    build_uuid=f"gen-{number:02d}", build_name="tempest-full",
                    build_status="FAILURE" if failed else "SUCCESS", build_queue="gate",
                    voting="1", project="openstack/nova", build_change=str(5000 + number),
                    build_patchset="1", log_url=f"https://logs.example.org/gen-{number}/",
                )  # fmt: skip
                store.ingest(generated, [], [], when=when, tests=tests)
    config = write_config(root)
    argv = ["report", "--store", str(root / "store"), "--config", str(config)]
    assert main([*argv, "--output", str(root / "site"), "--queries", str(queries)]) == 0
    with serving(root / "store", config, queries) as url:
        yield Site(root / "site", url)


SOURCES = ["static", "live"]


def _no_script_ran(page: Page) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.scripts.length") == 0


@pytest.mark.parametrize("source", SOURCES)
def test_the_tests_page_ranks_tests_with_sparklines_and_their_signatures(
    page: Page, site: Site, source: str, screenshots: Path
) -> None:
    page.goto(site.address(source, "tests.html"))
    _no_script_ran(page)
    uncategorized = page.locator("#uncategorized-tests tbody tr")
    rows = [
        uncategorized.nth(i).locator("td").first.inner_text() for i in range(uncategorized.count())
    ]
    assert rows[0].startswith(BROKEN) and rows[1].startswith(SPORADIC)
    assert "flaky" not in rows[0] and "flaky" in rows[1]
    assert any(row.startswith(HOSTILE_TEST) for row in rows), "a hostile id is shown as text"
    covered = page.locator("#covered-tests tbody tr")
    # The real stream's two failures (a test and a setUpClass), both in the plugin's module.
    assert covered.count() == 2 and any(REAL_FAILED in row for row in covered.all_inner_texts())
    assert covered.locator("a.bug-id").all_inner_texts() == ["demo-7", "demo-7"]
    # The broken test's sparkline: drawn, flat, then its last three days at the top.
    spark = uncategorized.first.locator("svg.spark")
    box = spark.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 20
    assert spark.locator("circle").count() == 3
    page.screenshot(path=screenshots / f"tests-{source}.png", full_page=True)
    uncategorized.first.locator("a.run-link").click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text().startswith("tempest-full")
    assert BROKEN in page.locator("details.failure summary").first.inner_text()


@pytest.mark.parametrize("source", SOURCES)
def test_the_run_view_draws_the_workers_and_the_failures_first(
    page: Page, site: Site, source: str, screenshots: Path
) -> None:
    page.goto(site.address(source, "runs/neutron-run.html"))
    _no_script_ran(page)
    # The real stream: three workers, six tests, two failed (one a setUpClass).
    labels = page.locator(".worker-label").all_text_contents()
    assert labels == ["worker-0", "worker-1", "worker-2"]
    assert page.locator("figure.timeline rect.bar").count() == 6
    assert page.locator("figure.timeline rect.bar.failure").count() == 2
    failures = page.locator("details.failure summary").all_inner_texts()
    assert len(failures) == 2 and any(REAL_FAILED in text for text in failures)
    assert page.locator("#run-counts a.bug-id").all_inner_texts() == ["demo-1", "demo-7"]
    assert "pythonlogging" in page.locator("details.failure").nth(1).inner_text()
    assert page.locator("a.logs-link").get_attribute("href") == "https://logs.example.org/neutron/"
    page.screenshot(path=screenshots / f"run-{source}.png", full_page=True)


@pytest.mark.parametrize("source", SOURCES)
def test_uncategorized_and_bug_pages_link_the_run_view(page: Page, site: Site, source: str) -> None:
    page.goto(site.address(source, "bugs/demo-1.html"))
    page.locator("a.run-link").first.click()
    page.wait_for_load_state("load")
    assert page.locator(".uuid").inner_text() == "neutron-run"
    page.goto(site.address(source, "uncategorized.html"))
    links = page.locator("a.run-link")
    assert links.count() >= 1  # the generated failures no signature explains
    links.first.click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text().startswith("tempest-full")


@pytest.mark.parametrize("source", SOURCES)
def test_a_hostile_test_id_and_traceback_are_text(page: Page, site: Site, source: str) -> None:
    page.goto(site.address(source, "runs/gen-28.html"))
    _no_script_ran(page)
    text = page.locator("main").inner_text()
    assert HOSTILE_TEST in text and HOSTILE_TRACE in text
    assert page.evaluate("document.querySelectorAll('img').length") == 0
