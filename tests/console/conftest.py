"""Browser fixtures: one served demo instance per module, headless Chromium at phone size."""

from __future__ import annotations

import pytest

from tests.console.a11y import axe_source
from tests.console.served import CHROMIUM, CHROMIUM_ARGS, PASSWORD, PHONE, browser_missing, serve_demo


@pytest.fixture(scope="module")
def served():
    with serve_demo() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser():
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser, served):
    """Open a new phone (its own storage, like another person's device); returns a function email -> page."""
    contexts = []

    def open_phone(email: str | None = None):
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                      base_url=served.base)
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        page.goto("/")
        if email:
            log_in(page, email)
        return page

    yield open_phone
    for context in contexts:
        context.close()


def log_in(page, email: str) -> None:
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=active-runs]")


@pytest.fixture(scope="session")
def axe():
    """The axe-core script (from its npm package, installed into a cache folder; never served by the app)."""
    source, reason = axe_source()
    if source is None:
        pytest.skip(reason)
    return source
