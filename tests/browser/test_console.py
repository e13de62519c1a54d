"""The booking-centre console in real Chromium: an agent sets up, signs in with password and TOTP, claims the oldest
rebook request and records a new time; the patient's calendar file follows. axe-core on every console page."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.axe import DESKTOP, assert_accessible
from tests.browser.conftest import PEOPLE, Console, DemoServer, appointment_links

pytestmark = pytest.mark.browser

SETUP, TASK = "/staff/setup/{token}", "/staff/tasks/{id:record_id}"
PATIENTS, PATIENT = "/staff/patients", "/staff/patients/{id:record_id}"
STAFF, NEW_STAFF = "/staff/admin/staff", "/staff/admin/staff/new"
# Every route this module checks with axe (at 1280 px), for tests/browser/test_axe_coverage.py.
CHECKED_ROUTES = {
    "/staff",
    "/staff/sign-in",
    "/staff/sign-in/code",
    "/staff/enrol",
    SETUP,
    "/staff/sign-out",
    TASK,
    TASK + "/outcome",
    TASK + "/cancel",
    PATIENTS,
    PATIENT,
    PATIENT + "/new-link",
    "/staff/appointments/{id:record_id}/slots",
    STAFF,
    NEW_STAFF,
    STAFF + "/{id:record_id}/disable",
    STAFF + "/{id:record_id}/organisations",
    "/staff/admin/audit",
}
PASSWORD = "a long and memorable passphrase"


def _axe(page: Page, heading: str, route: str) -> None:
    assert route in CHECKED_ROUTES, f"add {route} to CHECKED_ROUTES"
    assert_accessible(page, route, heading=heading)


def _code(secret: str, *, ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * ahead)


def _set_up(page: Page, console: Console, link: str, *, check: bool = False) -> str:
    """Chooses a password and enrols the authenticator; returns the secret shown for manual entry."""
    page.goto(link)
    if check:
        _axe(page, "Choose your password", SETUP)
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Confirm password").fill("short")
    page.get_by_role("button", name="Continue").click()
    if check:
        _axe(page, "Choose your password", SETUP)  # with the error
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(console.url("/staff/enrol"))
    secret = page.locator("#totp-secret").get_attribute("data-secret") or ""
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 0, "the QR code is a broken image"
    if check:
        _axe(page, "Set up your authenticator app", "/staff/enrol")
    page.get_by_label("Authenticator code").fill(_code(secret))
    page.get_by_role("button", name="Finish set-up").click()
    expect(page).to_have_url(console.url("/staff"))
    return secret


def _sign_out(page: Page, console: Console) -> None:
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(console.url("/staff/sign-in?signed_out=1"))


def _ics(page: Page, console: Console, path: str) -> str:
    return page.context.request.get(console.url(path + ".ics")).text()


def test_agent_rebooks_and_the_patients_calendar_follows(browser: Browser, console: Console) -> None:
    # The patient asks to change an appointment.
    patient = browser.new_context(**DESKTOP).new_page()
    DemoServer(console.base_url, console.links).sign_in(patient, PEOPLE["Margaret Jones"])
    eye = appointment_links(patient)["Eye clinic"]
    before = _ics(patient, console, eye)
    old_sequence = int(re.search(r"^SEQUENCE:(\d+)", before, re.MULTILINE).group(1))  # type: ignore[union-attr]
    patient.goto(console.url(eye + "/rebook"))
    patient.get_by_label("When would suit you?").fill("Weekday mornings")
    patient.get_by_role("button", name="Send request").click()

    # The agent sets up, signs out, and signs in with password and a code from the app.
    agent = browser.new_context(**DESKTOP).new_page()
    secret = _set_up(agent, console, console.create_staff("agent1", "agent"))
    _sign_out(agent, console)
    agent.get_by_label("Username").fill("agent1")
    agent.get_by_label("Password").fill(PASSWORD)
    agent.get_by_role("button", name="Continue").click()
    expect(agent).to_have_url(console.url("/staff/sign-in/code"))
    agent.get_by_label("Authenticator code").fill(_code(secret, ahead=1))  # the enrolment used this step's code
    agent.keyboard.press("Enter")
    expect(agent).to_have_url(console.url("/staff"))

    # Claim the oldest rebook request (the queue is oldest first) and record the new time.
    agent.get_by_text("Filter the queue").click()
    agent.get_by_label("Kind").select_option("rebook")
    agent.get_by_role("button", name="Filter").click()
    first = agent.locator("#queue tbody tr").first
    expect(first).to_contain_text("Margaret Jones")
    expect(first).to_contain_text("Weekday mornings")
    first.get_by_role("button", name=re.compile("^Claim")).click()
    expect(agent.get_by_role("heading", level=1)).to_have_text("Rebook request: Margaret Jones")
    agent.get_by_label("Day").fill("15")
    agent.get_by_label("Month").fill("12")
    agent.get_by_label("Year").fill("2030")  # within the 5 years an outcome may reach
    agent.get_by_label("New time").fill("14:30")
    agent.get_by_role("button", name="Save new time and tell the patient").click()
    expect(agent.locator("#notice")).to_contain_text("Call-back closed: appointment moved to the new time")

    # The patient's next calendar file has the new time and a higher SEQUENCE.
    after = _ics(patient, console, eye)
    assert re.search(r"^DTSTART;TZID=Europe/London:20301215T143000\r?$", after, re.MULTILINE), after
    new_sequence = int(re.search(r"^SEQUENCE:(\d+)", after, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert new_sequence > old_sequence
    patient.context.close()
    agent.context.close()


def test_console_pages_are_accessible(browser: Browser, console: Console) -> None:
    page = browser.new_context(**DESKTOP).new_page()
    page.goto(console.url("/staff/sign-in"))
    _axe(page, "Sign in to the booking centre", "/staff/sign-in")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Continue").click()
    _axe(page, "Sign in to the booking centre", "/staff/sign-in")
    page.goto(console.url("/staff/setup/not-a-real-token"))
    _axe(page, "This set-up link does not work", SETUP)
    secret = _set_up(page, console, console.create_staff("admin1", "admin"), check=True)
    _sign_out(page, console)
    page.get_by_label("Username").fill("admin1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    _axe(page, "Enter the code from your authenticator app", "/staff/sign-in/code")
    page.get_by_label("Authenticator code").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    _axe(page, "Enter the code from your authenticator app", "/staff/sign-in/code")
    page.get_by_label("Authenticator code").fill(_code(secret, ahead=1))
    page.get_by_role("button", name="Sign in").click()
    _axe(page, "Call-back queue", "/staff")
    page.goto(console.url("/staff?kind=cancel&site=BCH"))
    _axe(page, "Call-back queue", "/staff")
    page.goto(console.url("/staff/patients"))
    _axe(page, "Find a patient", PATIENTS)
    page.get_by_label("Family name").fill("Jones")
    page.get_by_role("button", name="Search").click()
    _axe(page, "Find a patient", PATIENTS)  # date of birth missing
    page.goto(console.url("/staff/patients?family_name=Jones&dob-day=14&dob-month=3&dob-year=1948"))
    _axe(page, "Find a patient", PATIENTS)
    page.get_by_role("link", name="Margaret Jones").click()
    _axe(page, "Margaret Jones", PATIENT)
    page.get_by_role("button", name="Resend their link").click()
    _axe(page, "Margaret Jones", PATIENT)
    page.goto(console.url("/staff/admin/staff"))
    _axe(page, "Staff", STAFF)
    page.get_by_role("button", name="Add a staff member").click()
    _axe(page, "Add a staff member", NEW_STAFF)
    page.get_by_role("button", name="Add and show their set-up link").click()
    _axe(page, "Add a staff member", NEW_STAFF)  # with errors
    page.get_by_label("Username").fill("newcomer1")
    page.get_by_label("Agent: works the call-back queue").check()
    page.get_by_label(re.compile(r"\(RAL\)")).check()
    page.get_by_role("button", name="Add and show their set-up link").click()
    _axe(page, "Set-up link for newcomer1", NEW_STAFF)
    qr = page.get_by_role("img", name="QR code of the set-up link for newcomer1")
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 0, "the QR code is a broken image"
    page.get_by_role("link", name="Back to staff").click()
    page.get_by_role("button", name="Disable newcomer1").click()
    _axe(page, "Disable newcomer1?", STAFF + "/{id:record_id}/disable")
    page.get_by_role("link", name="No, go back to staff").click()
    _axe(page, "Staff", STAFF)
    page.get_by_role("link", name="Change trusts for newcomer1").click()  # not offered for oneself
    _axe(page, "Trusts for newcomer1", STAFF + "/{id:record_id}/organisations")
    page.goto(console.url("/staff/admin/audit?actor_type=agent"))
    _axe(page, "Audit log", "/staff/admin/audit")
    page.goto(console.url("/staff/sign-out"))
    _axe(page, "Sign out", "/staff/sign-out")
    page.context.close()


def test_console_task_page_is_accessible_while_held(browser: Browser, console: Console) -> None:
    patient = browser.new_context(**DESKTOP).new_page()
    DemoServer(console.base_url, console.links).sign_in(patient, PEOPLE["Margaret Jones"])
    patient.goto(console.url(appointment_links(patient)["Cardiology outpatients"] + "/rebook"))
    patient.get_by_role("button", name="Send request").click()
    patient.context.close()
    page = browser.new_context(**DESKTOP).new_page()
    _set_up(page, console, console.create_staff("agent2", "agent"))
    row = page.locator("#queue tbody tr").filter(has_text="Cardiology")
    row.get_by_role("button", name=re.compile("^Claim")).click()
    heading = page.locator("h1").inner_text()
    _axe(page, heading, TASK)
    page.get_by_role("button", name="Save new time and tell the patient").click()
    _axe(page, heading, TASK + "/outcome")  # with errors
    page.get_by_role("button", name="Release it").click()
    _axe(page, "Call-back queue", "/staff")
    page.context.close()


def test_the_queue_is_full_width_and_claims_are_near_the_top(browser: Browser, console: Console) -> None:
    patient = browser.new_context(**DESKTOP).new_page()
    DemoServer(console.base_url, console.links).sign_in(patient, PEOPLE["David Patel"])
    patient.goto(console.url(appointment_links(patient)["Dermatology"] + "/rebook"))
    patient.get_by_role("button", name="Send request").click()
    patient.context.close()
    page = browser.new_context(**DESKTOP).new_page()
    _set_up(page, console, console.create_staff("agent3", "agent"))
    # The queue uses the page's whole width, not two thirds of it.
    table = page.locator("#queue").bounding_box()
    main = page.locator("#maincontent").bounding_box()
    assert table and main and table["width"] >= 0.95 * main["width"], (table, main)
    # From the top of the page, Tab reaches Claim next straight after the header, and the first row's Claim after
    # the filters' one summary and the row's own links (it took 13 presses through the filters before).
    page.goto(console.url("/staff"))
    # The header's script moves the links that do not fit into "More": until it has run there are more to Tab
    # through (seen on a loaded machine as 8 presses to Claim next, not 6).
    page.locator('[data-module="nhsuk-header"][data-nhsuk-header-init]').wait_for(state="attached")
    reached: dict[str, int] = {}
    for presses in range(1, 16):
        page.keyboard.press("Tab")
        name = page.evaluate("() => (document.activeElement.innerText || '').trim()")
        in_queue = page.evaluate("() => !!document.activeElement.closest('#queue')")
        if name.startswith("Claim the next call-back"):
            reached.setdefault("next", presses)
        if in_queue and name.startswith("Claim"):
            reached.setdefault("row", presses)
            break
    assert reached.get("next", 99) <= 6 and reached.get("row", 99) <= 10, reached
    # Claim next takes the oldest; cancelling asks first, and No goes back with nothing changed.
    page.get_by_role("button", name="Claim the next call-back").click()
    expect(page).to_have_url(re.compile(r"/staff/tasks/\d+$"))
    heading = page.locator("h1").inner_text()
    page.get_by_role("button", name="Cancel the appointment").click()
    expect(page).to_have_url(re.compile(r"/staff/tasks/\d+/cancel$"))
    _axe(page, page.locator("h1").inner_text(), TASK + "/cancel")
    page.get_by_role("link", name="No, go back to the call-back").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    page.get_by_role("button", name="Release it").click()
    _axe(page, "Call-back queue", "/staff")  # with its notice
    page.context.close()
