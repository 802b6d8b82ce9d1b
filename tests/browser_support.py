"""What the browser tests share: Debian's Chromium under Playwright, a page that fails its
test on any JavaScript error, and screenshots to ``$TRAINYARD_SCREENSHOTS``.

Playwright never downloads a browser here (``.ci/run`` installs Debian's ``chromium``).
Used by tests/browser (the console on pytest-django's live server) and tests/e2e (the
dashboard on the live stack).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screenshots_dir(tmp_path_factory, name: str) -> Path:
    """``$TRAINYARD_SCREENSHOTS`` or a fresh pytest temporary folder called ``name``; printed."""
    folder = Path(os.environ.get("TRAINYARD_SCREENSHOTS") or tmp_path_factory.mktemp(name))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@contextlib.contextmanager
def chromium_browser() -> Iterator:
    """A headless Chromium (Playwright ``Browser``); fails the test if it is not installed."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django's ORM (used by the
    # fixtures and the test database teardown) refuses to run there unless told it is safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def browser_page(browser, *, base_url: str, width: int, height: int, timeout_ms: int) -> Iterator:
    """A page in a fresh context; asserts at the end that no JavaScript error happened."""
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": height})
    context.set_default_timeout(timeout_ms)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def snap(page, shots: Path, name: str) -> None:
    """A full-page screenshot ``<shots>/<name>.png``."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
