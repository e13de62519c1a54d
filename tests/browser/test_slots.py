"""Choosing a new time in real Chromium at 320 px wide with our scripts blocked: every page of the flow works, fits
the screen and is axe-clean (WCAG 2.2 AA), and the appointment ends up at the new time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import PEOPLE, DemoServer, appointment_links
from tests.browser.test_accessibility import AXE, AXE_RUN

pytestmark = pytest.mark.browser


def _accessible(page: Page) -> None:
    assert "js-enabled" not in page.evaluate("document.body.className")  # the page as it is without JavaScript
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 320, f"{page.url} is {wide} px wide: it scrolls sideways at 320 px"
    page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    assert not violations, f"{page.url}\n" + "\n".join(f"{v['id']}: {v['help']} {v['nodes']}" for v in violations)


def test_choosing_a_new_time_at_320_px_without_javascript(
    browser: Browser, start_demo: Callable[..., DemoServer]
) -> None:
    server = start_demo({"HUB_SLOTS__SELF_SERVICE_CLINICS": "RAL:Cardiology outpatients"})
    context = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)

    def block(route: Route) -> None:
        route.abort()

    context.route("**/*.js*", block)
    context.route("**/*.mjs*", block)
    page = context.new_page()
    try:
        server.sign_in(page, PEOPLE["Margaret Jones"])
        href = appointment_links(page)["Cardiology outpatients"]
        page.goto(server.url(href))
        page.get_by_role("button", name="Change the date or time").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new date and time")
        _accessible(page)

        page.get_by_role("button", name="Continue").click()  # nothing chosen
        expect(page.locator(".nhsuk-error-summary")).to_contain_text("Select a new date and time")
        _accessible(page)

        first = page.locator('input[name="slot"]').first
        first.check()
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Check your new appointment time")
        chosen = page.locator(".nhsuk-summary-list__value").first.inner_text().strip()
        _accessible(page)

        page.get_by_role("button", name="Confirm new time").click()
        expect(page).to_have_url(server.url(href + "?done=moved"))
        banner = page.locator(".nhsuk-notification-banner--success")
        expect(banner).to_contain_text("Your appointment has been changed to " + chosen)
        expect(page.get_by_role("heading", level=1)).to_contain_text(chosen)
        _accessible(page)
    finally:
        context.close()
