"""axe-core on the console's pages new this round, and their states that need data no page makes: a refused HL7
update's task, a text from an email-only patient, a closed call-back, claim next with nothing to claim, a new link,
an appointment's slots, an agent at an admin's page, a page not found."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, expect

from hub.db import Database
from hub.vocabulary import TaskKind
from tests.browser.axe import DESKTOP
from tests.browser.conftest import Console, in_database
from tests.browser.test_console import PATIENT, PATIENTS, STAFF, TASK, _axe, _set_up
from tests.factories import create_task

pytestmark = pytest.mark.browser


def _seed_tasks(console: Console) -> None:
    """What no page makes: the HL7 sender's task when the hospital's system answers AE (Margaret's eye clinic), a
    text from David (email only, no appointment), and a closed call-back of David's."""

    async def work(db: Database) -> None:
        eye = await db.fetch_one("SELECT id, patient_id FROM appointments WHERE ref = 'A1002'")
        david = await db.fetch_one("SELECT id FROM patients WHERE mrn = 'RF100002'")
        assert eye is not None and david is not None
        now = datetime.now(UTC)
        async with db.write() as tx:
            await create_task(
                tx,
                kind=TaskKind.HL7_REFUSED,
                patient_id=eye["patient_id"],
                appointment_id=eye["id"],
                reason="The hospital's system answered AE to SRM^S04 for event 1 (cancel_requested): Unknown slot",
                now=now,
            )
            await create_task(tx, kind=TaskKind.INBOUND_TEXT, patient_id=david["id"], reason="Running late", now=now)
            await create_task(tx, kind=TaskKind.CANCEL, patient_id=david["id"], status="closed", now=now)

    in_database(console.env["HUB_DATABASE_URL"], work)


def test_console_pages_new_this_round_are_accessible(browser: Browser, console: Console) -> None:
    _seed_tasks(console)
    page = browser.new_context(**DESKTOP).new_page()
    _set_up(page, console, console.create_staff("admin3", "admin"))
    # The refused HL7 update, in the queue and claimed.
    page.goto(console.url(f"/staff?kind={TaskKind.HL7_REFUSED}"))
    _axe(page, "Call-back queue", "/staff")
    page.get_by_role("button", name="Claim the next call-back (filtered)").click()
    _axe(page, "Hospital system refused an update: Margaret Jones", TASK)
    page.get_by_role("button", name="Release it").click()
    # David's: a text not yet claimed (no appointment, email only), claimed, and a closed call-back.
    page.goto(console.url("/staff/patients?family_name=Patel&dob-day=2&dob-month=9&dob-year=1975"))
    page.get_by_role("link", name="David Patel").click()
    david = page.url
    page.get_by_role("link", name="Text from patient").click()
    _axe(page, "Text from patient: David Patel", TASK)
    page.get_by_role("button", name="Claim this call-back").click()
    _axe(page, "Text from patient: David Patel", TASK)
    page.get_by_role("button", name="Release it").click()
    page.goto(david)
    page.get_by_role("link", name="Cancel request").click()
    expect(page.get_by_text("This call-back is closed")).to_be_visible()
    _axe(page, "Cancel request: David Patel", TASK)
    # Claim next with nothing to claim.
    page.goto(console.url("/staff?kind=cancel&site=BCH"))
    page.get_by_role("button", name="Claim the next call-back (filtered)").click()
    expect(page.locator("#notice")).to_contain_text("No call-backs are waiting to be claimed")
    _axe(page, "Call-back queue", "/staff")
    # A search that finds nobody.
    page.goto(console.url("/staff/patients?family_name=Nobody&dob-day=1&dob-month=1&dob-year=1990"))
    _axe(page, "Find a patient", PATIENTS)
    # The patient's record: a new link (asked first), and an appointment's slots, with free ones and without.
    page.goto(console.url("/staff/patients?family_name=Jones&dob-day=14&dob-month=3&dob-year=1948"))
    page.get_by_role("link", name="Margaret Jones").click()
    record = page.url
    page.get_by_role("link", name="Send a new link to Margaret Jones").click()
    _axe(page, "Send a new link to Margaret Jones?", PATIENT + "/new-link")
    for ref in ("A1001", "A1002"):  # the cardiology clinic has free slots, the eye clinic none
        page.goto(record)
        page.get_by_role("link", name=f"Slots for {ref}").click()
        _axe(page, f"Slots for appointment {ref}", "/staff/appointments/{id:record_id}/slots")
    page.goto(page.url + "?done=booked")
    _axe(page, "Slots for appointment A1002", "/staff/appointments/{id:record_id}/slots")  # with its notice
    # Staff after a reset, and an audit log with nothing to show.
    page.goto(console.url("/staff/admin/staff?done=reset"))
    _axe(page, "Staff", STAFF)
    page.goto(console.url("/staff/admin/audit?actor_type=api_key"))
    _axe(page, "Audit log", "/staff/admin/audit")
    page.goto(console.url("/staff/tasks/999999"))
    _axe(page, "Page not found", TASK)
    # The console's header, not a patient's.
    expect(page.get_by_role("link", name="Call-back queue", exact=True)).to_be_visible()
    page.context.close()
    # An agent who opens an admin's page.
    page = browser.new_context(**DESKTOP).new_page()
    _set_up(page, console, console.create_staff("agent4", "agent"))
    page.goto(console.url(STAFF))
    _axe(page, "You cannot open this page", STAFF)
    expect(page.get_by_role("link", name="Call-back queue", exact=True)).to_be_visible()
    page.context.close()
