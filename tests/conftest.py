"""Shared test fixtures: paths to the real data copied into tests/fixtures/."""

from __future__ import annotations

import os
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
os.environ.setdefault("RECHECK_CACHE_DIR", tempfile.mkdtemp(prefix="recheck-test-cache-"))
