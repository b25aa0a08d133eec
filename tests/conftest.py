"""Shared test fixtures (the real data copied into tests/fixtures/, the Lucene oracle) and
the marks of tests that need an outside program: `lucene`, `ircd`, `chromium` (registered
in pyproject.toml), given here to every test that uses the fixture starting that program.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def real_queries_dir() -> Path:
    """The 91 real elastic-recheck signature files (Jan 2020)."""
    return FIXTURES / "queries" / "elastic-recheck-2020"


# --- Lucene oracle (tests/lucene_oracle.py) -------------------------------------------
# Importing the fixture makes the session-wide `lucene` oracle available to every module.
from lucene_oracle import lucene  # noqa: E402, F401

# --- end Lucene oracle ----------------------------------------------------------------

# --- compiled-query cache (recheck/querycache.py) -------------------------------------
# Tests, and the commands they run, keep compiled queries in a directory of their own,
# never in the user's ~/.cache.
if "RECHECK_CACHE_DIR" not in os.environ:
    os.environ["RECHECK_CACHE_DIR"] = tempfile.mkdtemp(prefix="recheck-test-cache-")
    # Made here: gone with the session (a run left one behind in /tmp each time).
    atexit.register(shutil.rmtree, os.environ["RECHECK_CACHE_DIR"], ignore_errors=True)

# --- marks for tests that need an outside program -----------------------------------------
# The fixture that starts the program decides the mark, so a new test that uses it is
# marked too (`pytest -m "not chromium"` leaves it out). Tests that start the program
# without its fixture carry the mark themselves.
FIXTURE_MARKS = {
    "lucene": "lucene",  # tests/lucene_oracle.py: Java and Debian's Lucene jars
    "ircd": "ircd",  # tests/ircd.py: ngircd
    "browser": "chromium",  # tests/browser.py: headless Chromium through playwright
    "page": "chromium",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for name in sorted({mark for f, mark in FIXTURE_MARKS.items() if f in fixtures}):
            item.add_marker(name)
