"""Staff see their own trusts only (issue 14, F5): another trust's patient, task, appointment and audit rows are not
found (404, not 403), and its tasks are not in the queue, the CSV or a search. Hub-wide admins see every trust."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from hub.store.audit import record_audit, record_staff_read
from hub.store.staff import create_staff
from hub.vocabulary import ActorType, AuditAction, RecordType
from tests import factories
from tests.harness import Harness
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio


@dataclass
class Trust:
    mrn: str
    patient: int
    appointment: int
    task: int


async def _trust(hub: Harness, code: str, *, mrn: str, site: str) -> Trust:
    """A trust with one patient (the same name and date of birth in every trust), an appointment and a task, and an
    audit row about the patient that only its own staff (and hub-wide admins) may read."""
    organisation = await hub.organisation_id(code)
    now = hub.clock.now()
    async with hub.db.write() as tx:
        site_id = await factories.create_site(tx, organisation_id=organisation, code=site, name=f"{site} Hospital")
        patient = await factories.create_patient(tx, organisation_id=organisation, now=now, mrn=mrn)
        appointment = await factories.create_appointment(
            tx, organisation_id=organisation, site_id=site_id, patient_id=patient, now=now, ref=f"{mrn}-A"
        )
        task = await factories.create_task(
            tx, patient_id=patient, appointment_id=appointment, now=now, reason=f"call {mrn}"
        )
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.SYSTEM,
            actor_id="worker",
            action=AuditAction.SMS_OPTED_OUT,
            record_type=RecordType.PATIENT,
            record_id=patient,
            detail=f"about {mrn}",
        )
    return Trust(mrn, patient, appointment, task)


@pytest.fixture
async def trusts(hub: Harness) -> tuple[Trust, Trust]:
    return await _trust(hub, "RAL", mrn="AAA1", site="RFH"), await _trust(hub, "RVR", mrn="BBB1", site="EPS")


async def _queue(hub: Harness) -> set[int]:
    page = await hub.client.get("/staff")
    assert page.status_code == 200
    return {int(n) for n in re.findall(r'data-task="(\d+)"', page.text)}


async def _search(hub: Harness, **query: str) -> str:
    response = await hub.client.get("/staff/patients", params=query)
    assert response.status_code == 200
    return response.text


async def _sees(hub: Harness, trust: Trust, *, admin: bool) -> bool:
    """Whether the signed-in staff member sees the trust anywhere; asserts they see it everywhere or nowhere."""
    found = [
        trust.task in await _queue(hub),
        f"hospital number {trust.mrn}" in await _search(hub, family_name="Jones", **_DOB),
        (await hub.client.get(f"/staff/patients/{trust.patient}")).status_code == 200,
        (await hub.client.get(f"/staff/tasks/{trust.task}")).status_code == 200,
        (await hub.client.get(f"/staff/appointments/{trust.appointment}/slots")).status_code == 200,
    ]
    if admin:
        csv = (await hub.client.get("/staff/queue.csv")).text
        audit = (await hub.client.get("/staff/admin/audit")).text
        found += [f"\n{trust.task}," in csv, f"about {trust.mrn}" in audit]
    assert all(found) or not any(found), found
    return all(found)


_DOB = {"dob-day": "14", "dob-month": "3", "dob-year": "1948"}


async def test_an_agent_of_one_trust_finds_nothing_of_another(hub: Harness, trusts: tuple[Trust, Trust]) -> None:
    mine, theirs = trusts
    await set_up_staff(hub, organisations=["RAL"])
    assert await _sees(hub, mine, admin=False)
    assert not await _sees(hub, theirs, admin=False)
    assert "0 patients found" in await _search(hub, mrn="BBB1")
    for path in ("claim", "release", "outcome"):
        response = await hub.post_form(f"/staff/tasks/{theirs.task}/{path}", {}, csrf_from="/staff")
        assert response.status_code == 404, path
    for path in ("stop-texts", "send-link"):
        response = await hub.post_form(f"/staff/patients/{theirs.patient}/{path}", {}, csrf_from="/staff")
        assert response.status_code == 404, path
    response = await hub.post_form(f"/staff/appointments/{theirs.appointment}/slots", {"slot": "1"}, csrf_from="/staff")
    assert response.status_code == 404
    row = await hub.db.fetch_one("SELECT status FROM tasks WHERE id = ?", (theirs.task,))
    assert row is not None and row["status"] == "open"


async def test_an_admin_of_one_trust_sees_only_its_rows_in_the_csv_and_audit_log(
    hub: Harness, trusts: tuple[Trust, Trust]
) -> None:
    mine, theirs = trusts
    await create_staff(
        hub.db, username="bob", role="agent", secret="x", now=hub.clock.now(), hours=1, organisations=["RVR"]
    )
    await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    assert await _sees(hub, mine, admin=True)
    assert not await _sees(hub, theirs, admin=True)
    # Their own actions, whatever they are about, and not those of another trust's staff.
    for row in await hub.db.fetch_all("SELECT id FROM staff_users WHERE username IN ('bob', 'erin')"):
        await record_staff_read(
            hub.db,
            at=hub.clock.now(),
            staff_id=row["id"],
            action=AuditAction.QUEUE_EXPORTED,
            record_type=RecordType.TASK,
            record_id="export",
        )
    log = (await hub.client.get("/staff/admin/audit", params={"action": "queue_exported"})).text
    rows = re.findall(r'<td class="nhsuk-table__cell">([^<]*)</td>\s*<td class="nhsuk-table__cell">Queue exported', log)
    assert rows and {who.strip() for who in rows} == {"erin (admin)"}, rows


async def test_a_hub_wide_admin_sees_every_trust(hub: Harness, trusts: tuple[Trust, Trust]) -> None:
    await set_up_staff(hub, "hana", "admin", hub_wide=True)
    assert all([await _sees(hub, trust, admin=True) for trust in trusts])


async def test_an_agent_of_both_trusts_sees_both(hub: Harness, trusts: tuple[Trust, Trust]) -> None:
    await set_up_staff(hub, organisations=["RAL", "RVR"])
    assert all([await _sees(hub, trust, admin=False) for trust in trusts])


async def test_an_admin_of_both_trusts_sees_both_in_the_csv_and_audit_log(
    hub: Harness, trusts: tuple[Trust, Trust]
) -> None:
    await set_up_staff(hub, "erin", "admin", organisations=["RAL", "RVR"])
    assert all([await _sees(hub, trust, admin=True) for trust in trusts])


async def test_claim_next_takes_only_the_agents_trusts_tasks(hub: Harness, trusts: tuple[Trust, Trust]) -> None:
    mine, theirs = trusts
    await set_up_staff(hub, organisations=["RVR"])  # the other trust's agent: its task is the newer one
    first = await hub.post_form("/staff/claim-next", {}, csrf_from="/staff")
    assert first.headers["location"] == f"/staff/tasks/{theirs.task}"
    second = await hub.post_form("/staff/claim-next", {}, csrf_from="/staff")
    assert second.headers["location"] == "/staff?done=none"
    row = await hub.db.fetch_one("SELECT status FROM tasks WHERE id = ?", (mine.task,))
    assert row is not None and row["status"] == "open"
