"""The acceptance journey in real Chromium, with JavaScript on and off: link, sign in, act, calendar, sign out."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from hub.vocabulary import REQUEST_STATE_LABELS, RequestState
from tests.browser.axe import NARROW, PHONE, assert_accessible
from tests.browser.conftest import PEOPLE, DemoServer, appointment_links

pytestmark = pytest.mark.browser


def _open_appointment(page: Page, server: DemoServer, clinic: str) -> None:
    page.goto(server.url("/appointments"))
    href = appointment_links(page)[clinic]
    page.locator(f'a.nhsuk-card__link[href="{href}"]').click()
    expect(page).to_have_url(server.url(href))


def _banner(page: Page) -> str:
    banner = page.locator(".nhsuk-notification-banner--success")
    expect(banner).to_be_visible()
    return banner.inner_text()


def _card_text(page: Page, server: DemoServer, clinic: str) -> str:
    page.goto(server.url("/appointments"))
    href = appointment_links(page)[clinic]
    return page.locator(".nhsuk-card").filter(has=page.locator(f'a[href="{href}"]')).inner_text()


def _summary_value(page: Page, key: str) -> str:
    row = page.locator(".nhsuk-summary-list__row").filter(has=page.locator(".nhsuk-summary-list__key", has_text=key))
    return row.locator(".nhsuk-summary-list__value").inner_text().strip()


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_patient_journey(browser: Browser, start_demo: Callable[[], DemoServer], javascript: bool) -> None:
    server = start_demo()  # a fresh database each run: both runs are Margaret, neither sees the other's changes
    margaret = PEOPLE["Margaret Jones"]
    # A 375 px phone with JavaScript, a 320 px screen without. axe runs through Playwright's JavaScript, so only on
    # the first: tests/browser/test_accessibility.py checks the pages without our scripts.
    screen = PHONE if javascript else NARROW
    context = browser.new_context(**screen, java_script_enabled=javascript, accept_downloads=True)

    def accessible(route: str) -> None:
        if javascript:
            assert_accessible(page, route)

    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    def console(message: ConsoleMessage) -> None:
        # NHS.UK frontend's CSS asks for the Frutiger font from assets.nhs.uk, which our CSP (font-src 'self')
        # refuses; the pages fall back to Arial. Anything else refused or thrown is a bug.
        if message.type == "error" and "assets.nhs.uk/fonts/" not in message.text:
            problems.append(f"console: {message.text}")

    page.on("console", console)
    try:
        # The stable link, then mobile and date of birth, then the code from the (dev) text message.
        server.enter_details(page, margaret)
        expect(page.get_by_role("heading", level=1)).to_have_text("Enter your security code")
        server.enter_code(page, server.read_code(page, margaret))
        expect(page).to_have_url(server.url("/appointments"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Your appointments")
        expect(page.get_by_text("Margaret Jones").first).to_be_visible()
        # The NHS.UK styles arrived (NHS blue header), and JavaScript is on or off as this run says.
        expect(page.locator("header.nhsuk-header")).to_have_css("background-color", "rgb(0, 94, 184)")
        expect(page.locator("body.js-enabled")).to_have_count(1 if javascript else 0)

        # Confirm one.
        _open_appointment(page, server, "Cardiology outpatients")
        page.get_by_role("button", name="Confirm I will attend").click()
        assert "Thank you for confirming" in _banner(page)
        accessible("/appointments/{id:record_id}")  # with the banner and a confirmed request
        assert _summary_value(page, "Your request") == REQUEST_STATE_LABELS[RequestState.CONFIRMED]
        assert "Confirmed" in _card_text(page, server, "Cardiology outpatients")

        # Ask to change another.
        _open_appointment(page, server, "Eye clinic")
        page.get_by_role("button", name="Ask to change this appointment").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Ask to change your appointment")
        page.get_by_label("Why do you need to change it?").fill("I am away that week")
        page.get_by_label("When would suit you?").fill("Weekday mornings")
        page.get_by_role("button", name="Send request").click()
        assert "The booking team will call you" in _banner(page)
        accessible("/appointments/{id:record_id}")
        assert "Change requested" in _card_text(page, server, "Eye clinic")

        # Cancel a third.
        _open_appointment(page, server, "Diabetes review")
        page.get_by_role("button", name="Cancel this appointment").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your appointment")
        page.get_by_label("I no longer need this appointment").check()
        page.get_by_role("button", name="Ask to cancel appointment").click()
        assert "We have your request to cancel" in _banner(page)
        accessible("/appointments/{id:record_id}")
        assert "Cancellation requested" in _card_text(page, server, "Diabetes review")
        accessible("/appointments")  # confirmed, change requested and cancellation requested tags

        # Add the confirmed one to the diary: the file starts at the date and time the page shows.
        _open_appointment(page, server, "Cardiology outpatients")
        day = _summary_value(page, "Date")  # "Thursday 3 December 2026"
        clock = _summary_value(page, "Time").split(" ")[0].upper()  # "9:30AM"
        start = datetime.strptime(f"{day} {clock}", "%A %d %B %Y %I:%M%p" if ":" in clock else "%A %d %B %Y %I%p")
        with page.expect_download() as download_info:
            page.get_by_role("link", name="Download this appointment for your phone's calendar").click()
        download = download_info.value
        assert download.suggested_filename.endswith(".ics")
        calendar = Path(download.path()).read_text(encoding="utf-8")
        assert calendar.startswith("BEGIN:VCALENDAR")
        assert re.search(rf"^DTSTART;TZID=Europe/London:{start:%Y%m%dT%H%M%S}\r?$", calendar, re.MULTILINE), calendar

        # Sign out, and the pages are closed again.
        page.get_by_role("link", name="Sign out").click()
        expect(page).to_have_url(server.url("/sign-out"))
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(server.url("/?signed_out=yes"))
        expect(page.get_by_text("You have signed out.")).to_be_visible()
        accessible("/")
        page.goto(server.url("/appointments"))
        expect(page).to_have_url(server.url("/"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to see your hospital appointments")
        assert not problems, "\n".join(problems)
    finally:
        context.close()
