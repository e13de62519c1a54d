"""What a newcomer met in Chromium on the demo: console errors on every page, and pages wider than a 320 px
screen (WCAG 1.4.10 reflow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from tests.browser.conftest import PEOPLE, DemoServer

pytestmark = pytest.mark.browser

SIGNED_IN_PAGES = ("/appointments", "/letters", "/messages", "/preferences", "/sites/RFH", "/accessibility")


@pytest.fixture(scope="module")
def narrow_margaret(browser: Browser, demo: DemoServer) -> Iterator[Page]:
    """Margaret Jones signed in on a 320 px wide screen (a 1280 px screen at 400% zoom)."""
    context = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)
    page = context.new_page()
    demo.sign_in(page, PEOPLE["Margaret Jones"])
    yield page
    context.close()


@pytest.mark.parametrize("path", SIGNED_IN_PAGES)
def test_signed_in_pages_reflow_at_320_pixels(narrow_margaret: Page, demo: DemoServer, path: str) -> None:
    narrow_margaret.goto(demo.url(path))
    width = narrow_margaret.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"{path} is {width} px wide on a 320 px screen"


def test_pages_log_no_console_errors(browser: Browser, demo: DemoServer) -> None:
    page = browser.new_context().new_page()
    errors: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", listen)
    for path in ("/", "/accessibility", "/no-such-page"):
        page.goto(demo.url(path))
        page.wait_for_load_state("networkidle")
    demo.sign_in(page, PEOPLE["Margaret Jones"])
    for path in SIGNED_IN_PAGES:
        page.goto(demo.url(path))
        page.wait_for_load_state("networkidle")
    page.context.close()
    assert not [e for e in errors if "/no-such-page: Failed to load resource" not in e], "\n".join(errors)
