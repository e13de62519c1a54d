"""Choosing a new time, and taking up an earlier one, in real Chromium: on a 375 px phone with JavaScript and on a
320 px screen with our scripts blocked, every page of the flow works, fits the screen and is axe-clean (WCAG 2.2
AA), and the appointment ends up at the new time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from hub.db import Database
from hub.settings import load_settings
from hub.store.offers import run_offers
from tests.browser.axe import NARROW, PHONE, assert_accessible
from tests.browser.conftest import PEOPLE, DemoServer, appointment_links, in_database

pytestmark = pytest.mark.browser

SELF_SERVICE = "RAL:Cardiology outpatients"
APPOINTMENT = "/appointments/{id:record_id}"
CHANGE_TIME, OFFER = APPOINTMENT + "/change-time", "/offers/{id:record_id}"
# Every route this module checks with axe, for tests/browser/test_axe_coverage.py.
CHECKED_ROUTES = {APPOINTMENT, "/appointments", CHANGE_TIME, CHANGE_TIME + "/{slot:record_id}", OFFER}
MODES: dict[str, dict[str, Any]] = {"phone-javascript": PHONE, "narrow-no-javascript": NARROW}


def _accessible(page: Page, route: str, mode: str) -> None:
    assert route in CHECKED_ROUTES, f"add {route} to CHECKED_ROUTES"
    assert ("js-enabled" in page.evaluate("document.body.className")) == ("no-javascript" not in mode)
    width, wide = MODES[mode]["viewport"]["width"], page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{page.url} is {wide} px wide: it scrolls sideways on a {width} px screen"
    assert_accessible(page, route)


def _offer_earlier_times(server: DemoServer) -> None:
    """The worker's round of offers, now (not in quiet hours, whatever the time of day the test runs)."""
    settings = load_settings(
        environ={"HUB_SLOTS__SELF_SERVICE_CLINICS": SELF_SERVICE},
        overrides={"demo": True, "notify.quiet_start_hour": 0, "notify.quiet_end_hour": 0},
    )

    async def work(db: Database) -> None:
        await run_offers(db, settings=settings, now=datetime.now(UTC))

    in_database(server.database_url, work)


@pytest.mark.parametrize("mode", list(MODES))
def test_choosing_a_new_time(browser: Browser, start_demo: Callable[..., DemoServer], mode: str) -> None:
    server = start_demo({"HUB_SLOTS__SELF_SERVICE_CLINICS": SELF_SERVICE})
    context = browser.new_context(**MODES[mode])
    if "no-javascript" in mode:

        def block(route: Route) -> None:
            route.abort()

        context.route("**/*.js*", block)
        context.route("**/*.mjs*", block)
    page = context.new_page()
    try:
        server.sign_in(page, PEOPLE["Margaret Jones"])
        href = appointment_links(page)["Cardiology outpatients"]
        page.goto(server.url(href))

        # Earlier times: asked for, offered, looked at, declined, gone.
        page.get_by_role("button", name="Tell me if an earlier time comes up").click()
        expect(page).to_have_url(server.url(href + "?done=earlier_on"))
        _accessible(page, APPOINTMENT, mode)
        _offer_earlier_times(server)
        page.goto(server.url("/appointments"))
        _accessible(page, "/appointments", mode)  # with the offers' banners
        page.get_by_role("link", name="See the earlier appointment").first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("An earlier appointment for you")
        offer = page.url
        _accessible(page, OFFER, mode)
        page.get_by_role("button", name="No thanks, keep my current time").click()
        expect(page).to_have_url(server.url("/appointments?done=offer_declined"))
        _accessible(page, "/appointments", mode)
        page.goto(offer)
        expect(page.get_by_role("heading", level=1)).to_have_text("This earlier appointment has gone")
        _accessible(page, OFFER, mode)

        # A new time chosen from the clinic's free slots.
        page.goto(server.url(href))
        page.get_by_role("button", name="Change the date or time").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new date and time")
        _accessible(page, CHANGE_TIME, mode)

        page.get_by_role("button", name="Continue").click()  # nothing chosen
        expect(page.locator(".nhsuk-error-summary")).to_contain_text("Select a new date and time")
        _accessible(page, CHANGE_TIME, mode)

        first = page.locator('input[name="slot"]').first
        first.check()
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Check your new appointment time")
        chosen = page.locator(".nhsuk-summary-list__value").first.inner_text().strip()
        _accessible(page, CHANGE_TIME + "/{slot:record_id}", mode)

        page.get_by_role("button", name="Confirm new time").click()
        expect(page).to_have_url(server.url(href + "?done=moved"))
        banner = page.locator(".nhsuk-notification-banner--success")
        expect(banner).to_contain_text("Your appointment has been changed to " + chosen)
        expect(page.get_by_role("heading", level=1)).to_contain_text(chosen)
        _accessible(page, APPOINTMENT, mode)
    finally:
        context.close()
