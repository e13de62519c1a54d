"""Where staff scopes (each account sees its own trusts) meet this round's other features: HL7-refused tasks and
claim next, a site code two trusts share (filters, the CSV, the slots page), an NHS number in two trusts, an admin's
own account, form tampering. (CSRF on every POST route: tests/web/staff/test_routes.py.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from hub.rules.staff_scope import SYSTEM
from hub.store.staff_scope import set_staff_organisations
from tests import factories
from tests.harness import Harness
from tests.pages import check_page
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio


@dataclass
class Trust:
    patient: int
    appointment: int
    task: int


async def _trust(hub: Harness, code: str, *, mrn: str, kind: str = "hl7_refused") -> Trust:
    """A trust with a site called MAIN (each trust has its own), a patient with the same NHS number in every trust, an
    appointment there and a task about it."""
    organisation = await hub.organisation_id(code)
    now = hub.clock.now()
    async with hub.db.write() as tx:
        site = await factories.create_site(tx, organisation_id=organisation, code="MAIN", name=f"{code} Main")
        patient = await factories.create_patient(
            tx, organisation_id=organisation, now=now, mrn=mrn, nhs_number="9434765919"
        )
        appointment = await factories.create_appointment(
            tx, organisation_id=organisation, site_id=site, patient_id=patient, now=now, ref=f"{mrn}-A"
        )
        task = await factories.create_task(
            tx, kind=kind, patient_id=patient, appointment_id=appointment, now=now, reason="AE to SRM^S03"
        )
    return Trust(patient, appointment, task)


@pytest.fixture
async def trusts(hub: Harness) -> tuple[Trust, Trust]:
    return await _trust(hub, "RAL", mrn="AAA1"), await _trust(hub, "RVR", mrn="BBB1")


async def test_another_trusts_hl7_refused_task_cannot_be_claimed_or_seen(
    hub: Harness, trusts: tuple[Trust, Trust]
) -> None:
    ours, theirs = trusts
    await set_up_staff(hub, organisations=["RAL"])
    # Claim next told to look at the other trust's tasks (a tampered filter) takes nothing of theirs.
    for data in ({"organisation": "RVR"}, {"organisation": "RVR", "kind": "hl7_refused"}, {"site": "MAIN"}):
        response = await hub.post_form("/staff/claim-next", data, csrf_from="/staff")
        assert response.headers["location"] in ("/staff?done=none", f"/staff/tasks/{ours.task}"), data
    assert (await hub.client.get(f"/staff/tasks/{theirs.task}")).status_code == 404
    for action in ("claim", "release", "outcome"):
        response = await hub.post_form(
            f"/staff/tasks/{theirs.task}/{action}", {"outcome": "closed", "note": "x"}, csrf_from="/staff"
        )
        assert response.status_code == 404, action
    row = await hub.db.fetch_one("SELECT status, claimed_by FROM tasks WHERE id = ?", (theirs.task,))
    assert row == {"status": "open", "claimed_by": None}


async def test_a_site_code_two_trusts_share_filters_only_the_staff_members_own(
    hub: Harness, trusts: tuple[Trust, Trust]
) -> None:
    ours, theirs = trusts
    await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    page = await hub.client.get("/staff", params={"site": "MAIN"})
    shown = {int(n) for n in re.findall(r'data-task="(\d+)"', page.text)}
    assert shown == {ours.task}
    csv = await hub.client.get("/staff/queue.csv", params={"site": "MAIN"})
    rows = csv.text.strip().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [str(ours.task)]
    assert (await hub.client.get(f"/staff/appointments/{theirs.appointment}/slots")).status_code == 404
    # Their trust's free slot at their MAIN, in our clinic: not offered to us, and refused when posted all the same.
    async with hub.db.write() as tx:
        site = await tx.fetch_one(
            "SELECT site_id, organisation_id FROM appointments WHERE id = ?", (theirs.appointment,)
        )
        assert site is not None
        slot = await factories.create_slot(
            tx,
            organisation_id=site["organisation_id"],
            site_id=site["site_id"],
            now=hub.clock.now(),
            starts_at=hub.clock.now() + timedelta(days=3),
            ref="THEIRS",
        )
    path = f"/staff/appointments/{ours.appointment}/slots"
    page = await hub.client.get(path)
    assert page.status_code == 200 and f'value="{slot}"' not in page.text
    before = await hub.db.fetch_one("SELECT starts_at, site_id FROM appointments WHERE id = ?", (ours.appointment,))
    response = await hub.post_form(path, {"slot": str(slot)}, csrf_from="/staff")
    assert response.status_code in (404, 409)
    after = await hub.db.fetch_one("SELECT starts_at, site_id FROM appointments WHERE id = ?", (ours.appointment,))
    assert after == before
    assert await hub.db.fetch_one("SELECT status FROM slots WHERE id = ?", (slot,)) == {"status": "free"}


async def test_a_staff_search_by_nhs_number_finds_only_the_staff_members_trusts_record(
    hub: Harness, trusts: tuple[Trust, Trust]
) -> None:
    await set_up_staff(hub, organisations=["RVR"])
    page = await hub.client.get("/staff/patients", params={"nhs_number": "943 476 5919"})
    assert "BBB1" in page.text and "AAA1" not in page.text


async def test_an_admin_cannot_take_their_own_trusts_away(hub: Harness, new_browser: Callable[..., Harness]) -> None:
    await hub.organisation_id("RAL")
    me = await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    response = await hub.post_form(f"/staff/admin/staff/{me.id}/organisations", {})
    assert response.status_code == 422 and "your own trusts" in response.text
    row = await hub.db.fetch_one("SELECT COUNT(*) AS n FROM staff_organisations WHERE staff_id = ?", (me.id,))
    assert row == {"n": 1}
    boss = new_browser(hub)
    top = await set_up_staff(boss, "hana", "admin", hub_wide=True)
    response = await boss.post_form(f"/staff/admin/staff/{top.id}/organisations", {"organisation-RAL": "yes"})
    assert response.status_code == 422 and "your own trusts" in response.text
    row = await hub.db.fetch_one("SELECT hub_wide FROM staff_users WHERE id = ?", (top.id,))
    assert row == {"hub_wide": 1}


async def test_a_trust_admin_cannot_tamper_their_way_to_a_hub_wide_account_or_another_trust(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    await hub.organisation_id("RAL"), await hub.organisation_id("RVR")
    top = await set_up_staff(new_browser(hub), "hana", "admin", hub_wide=True)
    await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    for form in (
        {"username": "mallory", "role": "admin", "hub_wide": "yes"},
        {"username": "mallory", "role": "admin", "organisation-RAL": "yes", "hub_wide": "yes"},
        {"username": "mallory", "role": "admin", "organisation-RVR": "yes"},
        {"username": "mallory", "role": "superuser", "organisation-RAL": "yes"},
    ):
        response = await hub.post_form("/staff/admin/staff/new", form)
        assert response.status_code == 400, form
    assert await hub.db.fetch_one("SELECT id FROM staff_users WHERE username = 'mallory'") is None
    for action in ("disable", "reset-authenticator", "organisations"):
        response = await hub.post_form(f"/staff/admin/staff/{top.id}/{action}", {"confirm": "yes"}, csrf_from="/staff")
        assert response.status_code == 404, action
    assert (await hub.client.get(f"/staff/admin/staff/{top.id}/disable")).status_code == 404


async def test_an_admin_cannot_disable_or_reset_their_own_account_by_posting_the_form(hub: Harness) -> None:
    """The list offers neither for oneself; the form posted all the same changes nothing."""
    await hub.organisation_id("RAL")
    me = await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    for action in ("disable", "reset-authenticator"):
        response = await hub.post_form(f"/staff/admin/staff/{me.id}/{action}", {"confirm": "yes"}, csrf_from="/staff")
        assert response.status_code == 303 and response.headers["location"] == "/staff/admin/staff", action
    row = await hub.db.fetch_one("SELECT disabled_at, enrolled_at FROM staff_users WHERE id = ?", (me.id,))
    assert row is not None and row["disabled_at"] is None and row["enrolled_at"] is not None
    assert (await hub.client.get("/staff")).status_code == 200
    listing = await hub.client.get("/staff/admin/staff")
    assert f"/staff/admin/staff/{me.id}/organisations" not in listing.text


async def test_an_agent_taken_off_a_trust_lets_go_of_its_call_backs(
    hub: Harness, new_browser: Callable[..., Harness], trusts: tuple[Trust, Trust]
) -> None:
    """Their claim would hold the call-back for half an hour on a page they can no longer open."""
    ours, theirs = trusts
    agent = new_browser(hub)
    bob = await set_up_staff(agent, "bob", "agent", organisations=["RAL", "RVR"])
    for task in (ours.task, theirs.task):
        response = await agent.post_form(f"/staff/tasks/{task}/claim", {}, csrf_from="/staff")
        assert response.headers["location"] == f"/staff/tasks/{task}"
    await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    response = await hub.post_form(f"/staff/admin/staff/{bob.id}/organisations", {})
    assert response.status_code == 303
    rows = await hub.db.fetch_all("SELECT id, status, claimed_by FROM tasks ORDER BY id")
    assert rows == [
        {"id": ours.task, "status": "open", "claimed_by": None},
        {"id": theirs.task, "status": "claimed", "claimed_by": bob.id},
    ]
    # With no trust left at all (the server's operator took the last one), nothing stays held.
    await set_staff_organisations(hub.db, staff_id=bob.id, codes=[], hub_wide=False, by=SYSTEM, now=hub.clock.now())
    row = await hub.db.fetch_one("SELECT status FROM tasks WHERE id = ?", (theirs.task,))
    assert row == {"status": "open"}


async def test_an_admin_of_one_trust_cannot_lock_out_an_account_another_trust_shares(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    """Disabling (or resetting) is of the whole account: it would lock bob out of trust RVR's work too. Their admin
    takes their own trust away instead."""
    await hub.organisation_id("RAL"), await hub.organisation_id("RVR")
    bob = await set_up_staff(new_browser(hub), "bob", "agent", organisations=["RAL", "RVR"])
    await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    question = await hub.client.get(f"/staff/admin/staff/{bob.id}/disable")
    assert question.status_code == 200 and 'name="confirm"' not in question.text
    assert "also works for another trust" in question.text
    check_page(question.text)
    listing = await hub.client.get("/staff/admin/staff")
    assert f"/staff/admin/staff/{bob.id}/reset-authenticator" not in listing.text
    for action in ("disable", "reset-authenticator"):
        response = await hub.post_form(f"/staff/admin/staff/{bob.id}/{action}", {"confirm": "yes"}, csrf_from="/staff")
        assert response.status_code == 303 and response.headers["location"] == f"/staff/admin/staff/{bob.id}/disable"
    row = await hub.db.fetch_one("SELECT disabled_at, enrolled_at FROM staff_users WHERE id = ?", (bob.id,))
    assert row is not None and row["disabled_at"] is None and row["enrolled_at"] is not None
