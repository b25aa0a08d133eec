"""Headless Chromium for the page tests: Debian's ``chromium`` driven by playwright.

Playwright's own browser downloads are never used: it launches ``/usr/bin/chromium``
(or ``$RECHECK_CHROMIUM``). Without it (or without playwright) the browser tests are
skipped on a developer's machine, and fail under CI (``CI=true``), where .ci/run
installs it. Every launch gets a fresh profile directory from playwright.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_ARGS = [
    "--no-sandbox",  # tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None when there is none."""
    named = os.environ.get("RECHECK_CHROMIUM")
    if named:
        return named
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}: CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole test session."""
    executable = chromium_path()
    if executable is None:
        _unavailable("no chromium executable (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own context: no cookies or cache shared between tests)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests save screenshots: $RECHECK_SCREENSHOTS, else a temporary directory."""
    named = os.environ.get("RECHECK_SCREENSHOTS")
    if not named:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(named)
    path.mkdir(parents=True, exist_ok=True)
    return path
