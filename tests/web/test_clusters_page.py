"""The uncategorized page's clusters: failures alike, from what ingest kept (issue 19).

Builds are ingested by the command (plain program output, no timestamps, so they are
stored as of now); the page shows the failures grouped by their top anomaly with the
proposed query, a search link when served live, and escapes the log's hostile text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from recheck.cli.main import main
from recheck.config.files import PagesConfig
from recheck.models import UrlOnlyTracker
from recheck.store import open_store
from recheck.web.render import Links, Renderer
from recheck.web.site import Snapshot

PASSING = "starting the service\nconnected to the database\nall 42 checks passed\n"
FAILING = PASSING.replace("all 42 checks passed", "ERROR: disk quota exceeded on node 7")
HOSTILE = PASSING.replace("all 42 checks passed", "ERROR: <script>alert(1)</script> boom")


def _ingest(store: Path, tmp: Path, text: str, status: str, uuid: str, change: str) -> None:
    log = tmp / uuid / "run.log"
    log.parent.mkdir()
    log.write_text(text, encoding="utf-8")
    argv = ["ingest", str(log), "--store", str(store), "--queries", str(tmp)]
    argv += ["--build-name", "unit-job", "--build-status", status, "--build-uuid", uuid]
    argv += ["--build-change", change, "--build-queue", "gate", "--voting", "1"]
    assert main(argv) == 0


def test_uncategorized_page_shows_clusters_with_their_query_and_search_link(
    tmp_path: Path,
) -> None:
    store_path = tmp_path / "store"
    _ingest(store_path, tmp_path, PASSING, "SUCCESS", "p" * 32, "1")
    _ingest(store_path, tmp_path, FAILING, "FAILURE", "a" * 32, "2")
    _ingest(store_path, tmp_path, FAILING.replace("node 7", "node 12"), "FAILURE", "b" * 32, "3")
    _ingest(store_path, tmp_path, HOSTILE, "FAILURE", "c" * 32, "4")
    with open_store(store_path, create=False) as store:
        snapshot = Snapshot(store, [], UrlOnlyTracker(), PagesConfig(), datetime.now(UTC))
        page = snapshot.uncategorized("24h")
        assert page is not None
        assert [len(cluster.builds) for cluster in page.clusters] == [2, 1]
        first = page.clusters[0]
        assert first.proposal == 'message:"ERROR: disk quota exceeded on node" AND tags:"run.log"'
        live = Renderer().html(page, Links("uncategorized", live=True))
        static = Renderer().html(page, Links("uncategorized", live=False))
    assert "Failures alike" in live and first.proposal.replace('"', "&#34;") in live
    assert 'href="search?q=message%3A%22ERROR%3A%20disk' in live
    assert "search?q=" not in static  # the static report has no search
    assert "<script>alert" not in live and "&lt;script&gt;alert(1)&lt;/script&gt;" in live
