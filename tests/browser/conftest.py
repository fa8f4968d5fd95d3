"""Browser tests: real headless Chromium (Debian's ``chromium``) driven by Playwright.

Playwright drives ``/usr/bin/chromium`` through ``executable_path``: no browser is downloaded
(never ``playwright install``). The flags are the ones this machine kind needs: without the
background-networking ones Chromium keeps dialling Google's hosts, which a closed network refuses.

``CLOUDSMS_CHROMIUM`` names another Chromium binary (tests/conftest.py keeps that variable).
Skipped, with the reason, when Chromium, Playwright or Chart.js (``make assets``) is missing;
under CI (``CI=true``) a missing part fails instead (tests/needs.py). ``make system-deps
assets`` installs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from needs import unavailable

from cloudsms.admin.pages import chart_js_path

CHROMIUM = os.environ.get("CLOUDSMS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _missing() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (make system-deps)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if chart_js_path() is None:
        return "Chart.js is not installed (make assets)"
    return None


@pytest.fixture(scope="module")  # the sync API holds an event loop: end it with the module
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        unavailable(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, errors
