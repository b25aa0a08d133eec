"""Measure the uncategorized page's error lines (``recheck.web.errorline``).

Run: .venv/bin/python benchmarks/error_lines.py [--builds 6000]

Generates (not timed) ``--builds`` builds as ``benchmarks/report.py`` does (30% failed,
80% of those explained by a signature) into an embedded store on /dev/shm, then times
the four uncategorized pages side by side: without error lines (the baseline), with
them (one ``Store.classify`` of two queries per listed build), with them but the
candidate-query cache emptied before each build (as before the cache), and again with
the lines remembered (what ``recheck serve`` pays after its first snapshot).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import report  # noqa: E402

from recheck.config.files import PagesConfig  # noqa: E402
from recheck.models import UrlOnlyTracker  # noqa: E402
from recheck.query.signatures import load_signatures  # noqa: E402
from recheck.store import EmbeddedStore  # noqa: E402
from recheck.store.embedded import index  # noqa: E402
from recheck.web import errorline, site  # noqa: E402
from recheck.web.pages import WINDOWS, uncategorized_page  # noqa: E402
from recheck.web.site import Snapshot  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=6000)
    args = parser.parse_args()
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="recheck-errorlines-", dir=base))
    try:
        run(work, args.builds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, builds: int) -> None:
    now = datetime.now(UTC)
    bugs = report.write_signatures(work / "queries", 500)
    with EmbeddedStore(work / "store") as store:
        report.generate(store, bugs, builds, now)
    signatures, _ = load_signatures(work / "queries")
    with EmbeddedStore(work / "store") as store:
        snapshot = Snapshot(store, signatures, UrlOnlyTracker(), PagesConfig(), now)
        stored = snapshot.builds

        def pages(lines: bool) -> tuple[float, int]:
            started = time.perf_counter()
            for label, _ in WINDOWS:
                if lines:
                    page = snapshot.uncategorized(label)
                else:
                    page = uncategorized_page(
                        stored, signatures, snapshot.settings, snapshot.header, label
                    )
            assert page is not None
            listed = sum(len(j.uncategorized) for g in page.groups for j in g.jobs)
            return time.perf_counter() - started, listed

        baseline, listed = pages(lines=False)
        errorline._KNOWN.clear()
        with_lines, _ = pages(lines=True)
        remembered, _ = pages(lines=True)
        site.error_line = _uncached  # type: ignore[assignment]
        uncached, _ = pages(lines=True)
        site.error_line = errorline.error_line
    per_build = (with_lines - baseline) / max(listed, 1) * 1000
    print(f"{builds:,} builds, {listed} uncategorized in 10 days; the 4 uncategorized pages:")
    print(f"  without error lines (baseline): {baseline:.3f} s")
    print(f"  with error lines:               {with_lines:.3f} s ({per_build:.1f} ms a build)")
    print(f"  same, no candidate-query cache: {uncached:.3f} s ({uncached / with_lines:.1f}x)")
    print(f"  again, lines remembered:        {remembered:.3f} s")


def _uncached(store: EmbeddedStore, build: object) -> object:
    """As before the caches: every build searched, every candidate query built again."""
    errorline._KNOWN.clear()
    index.candidate_query.cache_clear()
    return errorline.error_line(store, build)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
