"""axe-core (WCAG 2.2 AA rules) on every patient page, in each state a patient can meet it.

Each page is checked twice: on a 375 px phone with JavaScript, and on a 320 px screen (a desktop at 400% zoom) with
our scripts blocked (the no-JavaScript page, which must also fit without scrolling sideways). Every step here only
reads, or posts a form that fails validation, so the shared demo data never changes (the second trusts' sites for
the "choose your hospital" page are added once, and no other test looks at them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.axe import NARROW, PHONE, assert_accessible
from tests.browser.conftest import PEOPLE, SHARED_SITE, DemoServer, Person, seed_shared_site

pytestmark = pytest.mark.browser

MODES: dict[str, dict[str, Any]] = {"phone-javascript": PHONE, "narrow-no-javascript": NARROW}
STRANGER = Person("A stranger", "nobody@example.com", "nobody@example.com", "1", "1", "1990", "")
Ids = dict[str, str]  # where Margaret's appointments are: clinic (or "past") -> path
Steps = Callable[[Page, DemoServer, Ids], None]


@dataclass(frozen=True)
class Check:
    heading: str  # the page's h1, so a redirect cannot pass for the page meant; "" for appointment dates
    route: str  # the route whose page this is, as the app's route table spells it; "" for a path with no route
    steps: Steps


def _go(path: str) -> Steps:
    def steps(page: Page, server: DemoServer, ids: Ids) -> None:
        page.goto(server.url(ids[path] if path in ids else path))

    return steps


def _go_to(name: str, suffix: str = "") -> Steps:
    def steps(page: Page, server: DemoServer, ids: Ids) -> None:
        page.goto(server.url(ids[name] + suffix))

    return steps


def _stranger(email: str) -> Person:
    # Each check that asks for a code uses its own address, so no per-contact limit is reached.
    return Person(STRANGER.name, email, email, STRANGER.day, STRANGER.month, STRANGER.year, "")


def _details_errors(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.url("/"))
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".nhsuk-error-summary")).to_be_visible()


def _bad_date(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.url("/"))
    page.get_by_label("Mobile phone number or email address").fill("07700 900001")
    page.get_by_label("Day").fill("31")
    page.get_by_label("Month").fill("2")
    page.get_by_label("Year").fill("1948")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".nhsuk-error-summary")).to_be_visible()


def _code(email: str, then: str = "") -> Steps:
    def steps(page: Page, server: DemoServer, ids: Ids) -> None:
        server.enter_details(page, _stranger(email), via_link=False)
        if then in ("resend", "not-received"):
            page.get_by_role("link", name="Not received an email?").click()  # the stranger signs in by email
            if then == "not-received":
                return
            page.get_by_role("button", name="Send a new code").click()
            expect(page).to_have_url(server.url("/sign-in/code?resent=1"))
        elif then:
            page.get_by_label("Security code").fill(then)
            page.get_by_role("button", name="Continue").click()
            expect(page.locator(".nhsuk-error-summary")).to_be_visible()

    return steps


def _twins(wrong: bool) -> Steps:
    def steps(page: Page, server: DemoServer, ids: Ids) -> None:
        amir = PEOPLE["Amir Ahmed"]
        server.enter_details(page, amir, via_link=False)
        server.enter_code(page, server.read_code(page, amir))
        expect(page).to_have_url(server.url("/sign-in/verification-code"))
        if wrong:
            page.get_by_label("Verification code").fill("ZZ9Z9Z")
            page.get_by_role("button", name="Continue").click()
            expect(page.locator(".nhsuk-error-summary")).to_be_visible()

    return steps


def _form_expired(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.url("/"))
    page.locator('input[name="csrf_token"]').evaluate("input => { input.value = 'stale' }")
    page.get_by_role("button", name="Continue").click()


def _rebook_errors(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.url(ids["Eye clinic"] + "/rebook"))
    page.get_by_label("Why do you need to change it?").fill("x" * 501)
    page.get_by_role("button", name="Send request").click()
    expect(page.locator(".nhsuk-error-summary")).to_be_visible()


def _cancel_errors(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.url(ids["Eye clinic"] + "/cancel"))
    page.get_by_role("button", name="Ask to cancel appointment").click()
    expect(page.locator(".nhsuk-error-summary")).to_be_visible()


def _cancel_with_transport(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.url(ids["Eye clinic"] + "/cancel"))
    expect(page.get_by_text("You have hospital transport booked")).to_be_visible()


def _preferences_errors(page: Page, server: DemoServer, ids: Ids) -> None:
    # Every question comes answered; a browser that sends none must still get a clear page.
    page.goto(server.url("/preferences"))
    page.locator("form input[type=radio]").evaluate_all("radios => radios.forEach(r => { r.checked = false })")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.locator(".nhsuk-error-summary")).to_be_visible()


def _patient_link(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.links["Margaret Jones"])


def _someone_elses_link(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.links["David Patel"])


def _no_messages(page: Page, server: DemoServer, ids: Ids) -> None:
    page.goto(server.url("/messages"))
    expect(page.locator("table")).to_have_count(0)


def _too_many_codes(page: Page, server: DemoServer, ids: Ids) -> None:
    # On a server allowing one code an hour per contact and date of birth: asking again is refused.
    stranger = _stranger(f"limit-{page.viewport_size['width'] if page.viewport_size else 0}@example.com")
    for _ in range(4):
        page.context.clear_cookies()  # a new browser each time, not one asking for the same code again
        page.goto(server.url("/"))
        page.get_by_label("Mobile phone number or email address").fill(stranger.contact)
        page.get_by_label("Day").fill(stranger.day)
        page.get_by_label("Month").fill(stranger.month)
        page.get_by_label("Year").fill(stranger.year)
        page.get_by_role("button", name="Continue").click()
        if page.url == server.url("/sign-in"):
            return


SIGN_IN = "Sign in to see your hospital appointments"
APPOINTMENT = "/appointments/{id:record_id}"
REBOOK, CANCEL = APPOINTMENT + "/rebook", APPOINTMENT + "/cancel"
NOT_RECEIVED = "/sign-in/not-received"
ANONYMOUS = {
    "start": Check(SIGN_IN, "/", _go("/")),
    "start-signed-out": Check(SIGN_IN, "/", _go("/?signed_out=yes")),
    "start-timed-out": Check(SIGN_IN, "/", _go("/?signed_out=timeout")),
    "patient-link": Check(SIGN_IN, "/p/{token}", _patient_link),
    "bad-link": Check("This link does not work", "/p/{token}", _go("/p/not-a-real-link")),
    "sign-in-errors": Check(SIGN_IN, "/sign-in", _details_errors),
    "sign-in-impossible-date": Check(SIGN_IN, "/sign-in", _bad_date),
    "code": Check("Enter your security code", "/sign-in/code", _code("code@example.com")),
    "code-resent": Check("Enter your security code", "/sign-in/code", _code("resent@example.com", "resend")),
    "code-not-received": Check("Not received an email?", NOT_RECEIVED, _code("help@example.com", "not-received")),
    "code-too-short": Check("Enter your security code", "/sign-in/code", _code("short@example.com", "12")),
    "code-wrong": Check("Enter your security code", "/sign-in/code", _code("wrong@example.com", "000000")),
    "verification-code": Check("Enter the verification code", "/sign-in/verification-code", _twins(wrong=False)),
    "verification-code-wrong": Check("Enter the verification code", "/sign-in/verification-code", _twins(wrong=True)),
    "form-expired": Check("This form has expired", "/sign-in", _form_expired),
    "site": Check("Royal Free Hospital", "/sites/{code}", _go("/sites/RFH")),
    "site-choice": Check("Choose your hospital", "/sites/{code}", _go(f"/sites/{SHARED_SITE}")),
    "site-without-map": Check(
        "Worcestershire Royal Hospital", "/sites/{code}", _go(f"/sites/{SHARED_SITE}?organisation=RWP")
    ),
    "accessibility": Check("Accessibility statement", "/accessibility", _go("/accessibility")),
    "privacy": Check("Privacy", "/privacy", _go("/privacy")),
    "not-found": Check("Page not found", "", _go("/no-such-page")),
    "method-not-allowed": Check("Page not found", "/sign-in", _go("/sign-in")),  # a bookmarked form's address
    "dev-outbox": Check("Dev outbox", "/dev/outbox", _go("/dev/outbox")),
}
SIGNED_IN = {
    "appointments": Check("Your appointments", "/appointments", _go("/appointments")),
    "appointment-with-every-action": Check("", APPOINTMENT, _go_to("Cardiology outpatients")),
    "appointment-just-confirmed": Check("", APPOINTMENT, _go_to("Cardiology outpatients", "?done=confirmed")),
    "appointment-change-refused": Check("", APPOINTMENT, _go_to("Eye clinic", "?refused=limit")),
    "appointment-by-telephone": Check("", APPOINTMENT, _go_to("Diabetes review")),
    "appointment-inside-cutoff": Check("", APPOINTMENT, _go_to("Blood tests")),
    "appointment-cancelled": Check("", APPOINTMENT, _go_to("Physiotherapy")),
    "appointment-past": Check("", APPOINTMENT, _go_to("past")),
    "rebook": Check("Ask to change your appointment", REBOOK, _go_to("Eye clinic", "/rebook")),
    "rebook-errors": Check("Ask to change your appointment", REBOOK, _rebook_errors),
    "cancel-with-transport": Check("Cancel your appointment", CANCEL, _cancel_with_transport),
    "cancel-errors": Check("Cancel your appointment", CANCEL, _cancel_errors),
    "letters": Check("Your letters", "/letters", _go("/letters")),
    "messages": Check("Your messages", "/messages", _go("/messages")),
    "preferences": Check("Contact preferences", "/preferences", _go("/preferences")),
    "preferences-saved": Check("Contact preferences", "/preferences", _go("/preferences?saved=1")),
    "preferences-errors": Check("Contact preferences", "/preferences", _preferences_errors),
    "site": Check("Royal Free Hospital", "/sites/{code}", _go("/sites/RFH")),
    "site-choice": Check("Choose your hospital", "/sites/{code}", _go(f"/sites/{SHARED_SITE}")),
    "sign-out": Check("Sign out", "/sign-out", _go("/sign-out")),
    "someone-elses-link": Check("You are signed in as someone else", "/p/{token}", _someone_elses_link),
    "privacy": Check("Privacy", "/privacy", _go("/privacy")),
    "accessibility": Check("Accessibility statement", "/accessibility", _go("/accessibility")),
    "not-found": Check("Page not found", APPOINTMENT, _go("/appointments/999999")),
}
TOO_MANY_CODES = Check("You have asked for too many codes", "/sign-in", _too_many_codes)
# David Patel: email only, a video appointment, no messages yet (the markup of an empty list).
DAVID = {
    "appointments-email-only": Check("Your appointments", "/appointments", _go("/appointments")),
    "appointment-by-video": Check("", APPOINTMENT, _go_to("Dermatology")),
    "no-messages": Check("Your messages", "/messages", _no_messages),
    "preferences-email-only": Check("Contact preferences", "/preferences", _go("/preferences")),
}


@pytest.fixture(scope="module", autouse=True)
def _shared_site(demo: DemoServer) -> None:
    seed_shared_site(demo)


@pytest.fixture(scope="module", params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _new_context(browser: Browser, mode: str) -> BrowserContext:
    context = browser.new_context(**MODES[mode])
    if "no-javascript" in mode:
        # Playwright's own evaluate (which runs axe) needs JavaScript on, so block the page's scripts instead.
        def block(route: Route) -> None:
            route.abort()

        context.route("**/*.js*", block)
        context.route("**/*.mjs*", block)
    return context


@pytest.fixture(scope="module")
def stranger_page(browser: Browser, mode: str) -> Iterator[Page]:
    context = _new_context(browser, mode)
    yield context.new_page()
    context.close()


@pytest.fixture
def anonymous_page(stranger_page: Page) -> Page:
    """A browser with no cookies, keeping its cache between tests (a new context per test is slow)."""
    stranger_page.context.clear_cookies()
    return stranger_page


def _signed_in(browser: Browser, demo: DemoServer, mode: str, name: str) -> tuple[BrowserContext, Page, Ids]:
    """Someone signed in, with where their appointments are: clinic (or "past") -> path."""
    context = _new_context(browser, mode)
    page = context.new_page()
    demo.sign_in(page, PEOPLE[name])
    ids: Ids = {}
    for card in page.locator(".nhsuk-card").all():
        clinic = card.locator(".hub-card-meta").inner_text().splitlines()[0].split(" (")[0].strip()
        href = card.get_by_role("link").first.get_attribute("href") or ""
        ids.setdefault(clinic, href)
        if "Attended" in card.inner_text():
            ids["past"] = href
    return context, page, ids


@pytest.fixture(scope="module")
def margaret(browser: Browser, demo: DemoServer, mode: str) -> Iterator[tuple[Page, Ids]]:
    """Margaret Jones signed in once per mode."""
    context, page, ids = _signed_in(browser, demo, mode, "Margaret Jones")
    assert {"Cardiology outpatients", "Eye clinic", "Diabetes review", "Blood tests", "Physiotherapy", "past"} <= set(
        ids
    ), ids
    yield page, ids
    context.close()


@pytest.fixture(scope="module")
def david(browser: Browser, demo: DemoServer, mode: str) -> Iterator[tuple[Page, Ids]]:
    """David Patel signed in once per mode."""
    context, page, ids = _signed_in(browser, demo, mode, "David Patel")
    yield page, ids
    context.close()


def _check(page: Page, check: Check, name: str, mode: str) -> None:
    if check.heading:
        expect(page.get_by_role("heading", level=1)).to_have_text(check.heading)
    body_classes = page.evaluate("document.body.className")
    assert ("js-enabled" in body_classes) == ("no-javascript" not in mode), body_classes
    screens = os.environ.get("HUB_SCREENSHOTS")
    if screens:
        Path(screens).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{screens}/{mode}-{name}.png", full_page=True)
    width, wide = MODES[mode]["viewport"]["width"], page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{page.url} is {wide} px wide: it scrolls sideways on a {width} px screen"
    assert_accessible(page, check.route)


@pytest.mark.parametrize("name", list(ANONYMOUS))
def test_signed_out_page_is_accessible(anonymous_page: Page, demo: DemoServer, mode: str, name: str) -> None:
    check = ANONYMOUS[name]
    check.steps(anonymous_page, demo, {})
    _check(anonymous_page, check, name, mode)


@pytest.mark.parametrize("name", list(SIGNED_IN))
def test_signed_in_page_is_accessible(margaret: tuple[Page, Ids], demo: DemoServer, mode: str, name: str) -> None:
    page, ids = margaret
    check = SIGNED_IN[name]
    check.steps(page, demo, ids)
    _check(page, check, name, mode)


@pytest.mark.parametrize("name", list(DAVID))
def test_email_only_patients_page_is_accessible(
    david: tuple[Page, Ids], demo: DemoServer, mode: str, name: str
) -> None:
    page, ids = david
    check = DAVID[name]
    check.steps(page, demo, ids)
    _check(page, check, name, mode)


@pytest.fixture(scope="module")
def limited(start_demo: Callable[..., DemoServer]) -> DemoServer:
    return start_demo({"HUB_CODES_PER_IDENTITY_PER_HOUR": "1"})


def test_too_many_codes_page_is_accessible(anonymous_page: Page, limited: DemoServer, mode: str) -> None:
    TOO_MANY_CODES.steps(anonymous_page, limited, {})
    _check(anonymous_page, TOO_MANY_CODES, "too-many-codes", mode)
