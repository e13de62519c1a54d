"""The booking-centre console in real Chromium: an agent sets up, signs in with password and TOTP, claims the oldest
rebook request and records a new time; the patient's calendar file follows. axe-core on every console page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from hub.settings import ROOT
from tests.browser.conftest import PEOPLE, DemoServer, _free_port, _healthy, _stable_links, appointment_links
from tests.databases import own_database_url

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}
  });
  // Best practice beyond WCAG that the issue holds us to: every part of the page in a landmark, headings in order.
  const practice = await axe.run(document, {runOnly: {type: "rule", values: ["region", "heading-order"]}});
  return results.violations.concat(practice.violations).map(v => ({
    id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))
  }));
}"""
PASSWORD = "a long and memorable passphrase"


@dataclass
class Console:
    base_url: str
    env: dict[str, str]
    links: dict[str, str]

    def url(self, path: str) -> str:
        return self.base_url + path

    def create_staff(self, username: str, role: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hub", "create-staff", "--username", username, "--role", role],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        match = re.search(r"(http://\S+/staff/setup/\S+)", done.stdout)
        assert match, done.stdout
        return match.group(1)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Console]:
    """Its own demo server, whose database the create-staff command can reach."""
    folder = tmp_path_factory.mktemp("console")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=own_database_url(backend, folder), HUB_BASE_URL=base_url)
    with open(folder / "stdout", "w+b") as out, open(folder / "stderr", "w+b") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", "demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 30
            while not _healthy(base_url):
                assert process.poll() is None and time.monotonic() < deadline, (folder / "stderr").read_text()
                time.sleep(0.1)
            # The CLI runs as the demo does: demo mode's key, so set-up links verify on the server.
            yield Console(base_url, {**env, "HUB_DEMO": "true"}, _stable_links((folder / "stdout").read_text()))
        finally:
            process.terminate()
            process.wait(timeout=10)


def _axe(page: Page, heading: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    assert not violations, f"{page.url}\n" + "\n".join(f"{v['id']}: {v['help']} {v['nodes']}" for v in violations)


def _code(secret: str, *, ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * ahead)


def _set_up(page: Page, console: Console, link: str, *, check: bool = False) -> str:
    """Chooses a password and enrols the authenticator; returns the secret shown for manual entry."""
    page.goto(link)
    if check:
        _axe(page, "Choose your password")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Confirm password").fill("short")
    page.get_by_role("button", name="Continue").click()
    if check:
        _axe(page, "Choose your password")  # with the error
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(console.url("/staff/enrol"))
    secret = page.locator("#totp-secret").get_attribute("data-secret") or ""
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 0, "the QR code is a broken image"
    if check:
        _axe(page, "Set up your authenticator app")
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
    patient = browser.new_context().new_page()
    DemoServer(console.base_url, console.links).sign_in(patient, PEOPLE["Margaret Jones"])
    eye = appointment_links(patient)["Eye clinic"]
    before = _ics(patient, console, eye)
    old_sequence = int(re.search(r"^SEQUENCE:(\d+)", before, re.MULTILINE).group(1))  # type: ignore[union-attr]
    patient.goto(console.url(eye + "/rebook"))
    patient.get_by_label("When would suit you?").fill("Weekday mornings")
    patient.get_by_role("button", name="Send request").click()

    # The agent sets up, signs out, and signs in with password and a code from the app.
    agent = browser.new_context().new_page()
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
    page = browser.new_context().new_page()
    page.goto(console.url("/staff/sign-in"))
    _axe(page, "Sign in to the booking centre")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Continue").click()
    _axe(page, "Sign in to the booking centre")
    page.goto(console.url("/staff/setup/not-a-real-token"))
    _axe(page, "This set-up link does not work")
    secret = _set_up(page, console, console.create_staff("admin1", "admin"), check=True)
    _sign_out(page, console)
    page.get_by_label("Username").fill("admin1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    _axe(page, "Enter the code from your authenticator app")
    page.get_by_label("Authenticator code").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    _axe(page, "Enter the code from your authenticator app")
    page.get_by_label("Authenticator code").fill(_code(secret, ahead=1))
    page.get_by_role("button", name="Sign in").click()
    _axe(page, "Call-back queue")
    page.goto(console.url("/staff?kind=cancel&site=BCH"))
    _axe(page, "Call-back queue")
    page.goto(console.url("/staff/patients"))
    _axe(page, "Find a patient")
    page.get_by_label("Family name").fill("Jones")
    page.get_by_role("button", name="Search").click()
    _axe(page, "Find a patient")  # date of birth missing
    page.goto(console.url("/staff/patients?family_name=Jones&dob-day=14&dob-month=3&dob-year=1948"))
    _axe(page, "Find a patient")
    page.get_by_role("link", name="Margaret Jones").click()
    _axe(page, "Margaret Jones")
    page.get_by_role("button", name="Resend their link").click()
    _axe(page, "Margaret Jones")
    page.goto(console.url("/staff/admin/staff"))
    _axe(page, "Staff")
    page.get_by_role("button", name="Add a staff member").click()
    _axe(page, "Add a staff member")
    page.get_by_role("button", name="Add and show their set-up link").click()
    _axe(page, "Add a staff member")  # with errors
    page.get_by_label("Username").fill("newcomer1")
    page.get_by_label("Agent: works the call-back queue").check()
    page.get_by_label(re.compile(r"\(RAL\)")).check()
    page.get_by_role("button", name="Add and show their set-up link").click()
    _axe(page, "Set-up link for newcomer1")
    qr = page.get_by_role("img", name="QR code of the set-up link for newcomer1")
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 0, "the QR code is a broken image"
    page.get_by_role("link", name="Back to staff").click()
    page.get_by_role("button", name="Disable newcomer1").click()
    _axe(page, "Disable newcomer1?")
    page.get_by_role("link", name="No, go back to staff").click()
    _axe(page, "Staff")
    page.get_by_role("link", name="Change trusts for newcomer1").click()  # not offered for oneself
    _axe(page, "Trusts for newcomer1")
    page.goto(console.url("/staff/admin/audit?actor_type=agent"))
    _axe(page, "Audit log")
    page.goto(console.url("/staff/sign-out"))
    _axe(page, "Sign out")
    page.context.close()


def test_console_task_page_is_accessible_while_held(browser: Browser, console: Console) -> None:
    patient = browser.new_context().new_page()
    DemoServer(console.base_url, console.links).sign_in(patient, PEOPLE["Margaret Jones"])
    patient.goto(console.url(appointment_links(patient)["Cardiology outpatients"] + "/rebook"))
    patient.get_by_role("button", name="Send request").click()
    patient.context.close()
    page = browser.new_context().new_page()
    _set_up(page, console, console.create_staff("agent2", "agent"))
    row = page.locator("#queue tbody tr").filter(has_text="Cardiology")
    row.get_by_role("button", name=re.compile("^Claim")).click()
    heading = page.locator("h1").inner_text()
    _axe(page, heading)
    page.get_by_role("button", name="Save new time and tell the patient").click()
    _axe(page, heading)  # with errors
    page.get_by_role("button", name="Release it").click()
    _axe(page, "Call-back queue")
    page.context.close()


def test_the_queue_is_full_width_and_claims_are_near_the_top(browser: Browser, console: Console) -> None:
    patient = browser.new_context().new_page()
    DemoServer(console.base_url, console.links).sign_in(patient, PEOPLE["David Patel"])
    patient.goto(console.url(appointment_links(patient)["Dermatology"] + "/rebook"))
    patient.get_by_role("button", name="Send request").click()
    patient.context.close()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    _set_up(page, console, console.create_staff("agent3", "agent"))
    # The queue uses the page's whole width, not two thirds of it.
    table = page.locator("#queue").bounding_box()
    main = page.locator("#maincontent").bounding_box()
    assert table and main and table["width"] >= 0.95 * main["width"], (table, main)
    # From the top of the page, Tab reaches Claim next straight after the header, and the first row's Claim after
    # the filters' one summary and the row's own links (it took 13 presses through the filters before).
    page.goto(console.url("/staff"))
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
    _axe(page, page.locator("h1").inner_text())
    page.get_by_role("link", name="No, go back to the call-back").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    page.get_by_role("button", name="Release it").click()
    _axe(page, "Call-back queue")  # with its notice
    page.context.close()
