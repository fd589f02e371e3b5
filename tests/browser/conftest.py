"""Debian's Chromium, driven by Playwright, opening the pages as a phone would.

The browser is `/usr/bin/chromium` from the Debian package (`.ci/run` installs it); Playwright
never downloads one. Every page talks only to pytest-django's live server: any other request
is blocked, so a test can never reach the network (and test_petition_pages checks none is made).
"""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")

# A small phone (iPhone SE/mini class): the narrowest screen the pages are built for.
PHONE = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    # A fixed Accept-Language, so the page language depends only on what the test does.
    "locale": "en-GB",
}


@pytest.fixture(scope="module")
def browser() -> Browser:
    """Launch headless Chromium once per test module."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (`apt-get install chromium`, as "
            ".ci/run does). The browser tests never download a browser.",
            pytrace=False,
        )
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API runs an asyncio event loop in the test thread, so Django takes
        # every ORM call the test makes for one from async code and refuses it. The calls are
        # plain synchronous ones; only this module's tests run with the check off.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
            )
            yield browser
            browser.close()


def live_server_context(browser: Browser, live_server, **options) -> BrowserContext:
    """Return a fresh browser context (own cookies) that reaches the live server and nothing else.

    `options` are Playwright's new_context options (viewport, locale, …); every test page is
    made through this, so none can reach the network.
    """
    context = browser.new_context(**options, base_url=live_server.url)
    server = urlsplit(live_server.url).netloc

    def only_live_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == server:
            route.continue_()
        else:
            route.abort("blockedbyclient")

    context.route("**/*", only_live_server)
    return context


@pytest.fixture
def phone(browser, live_server) -> Page:
    """Return a fresh page (own cookies) on a 375 px touch screen, with live_server as base URL."""
    context = live_server_context(browser, live_server, **PHONE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
