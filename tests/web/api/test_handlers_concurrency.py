"""The hospital's records beside patients' own writes: on PostgreSQL a record about one patient locks that patient
and its references, not the whole hub; records making the same row at once take turns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.store.feed import appointment_ref_key, patient_ref_key
from tests.harness import Harness
from tests.pas import PATIENT, pas_for

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)  # the clock fixture's start


def _appointment(start_days: int) -> dict[str, object]:
    start = T0 + timedelta(days=start_days)
    return {"patient_ref": "MRN1", "site_code": "RFH", "start": start.isoformat(), "duration_minutes": 30}


async def _hold(hub: Harness, patient_id: int, inside: asyncio.Event, release: asyncio.Event) -> None:
    async with hub.db.write(patient=patient_id) as tx:
        await tx.execute("UPDATE patients SET given_name = given_name WHERE id = ?", (patient_id,))
        inside.set()
        await release.wait()


async def test_a_hospital_update_waits_for_no_other_patients_write(hub: Harness, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    someone_else = await hub.create_patient()
    inside, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(hub, someone_else, inside, release))
    await asyncio.wait_for(inside.wait(), timeout=10)
    try:
        moved = await asyncio.wait_for(pas.put("appointments/A1", _appointment(21)), timeout=5)
        assert moved.status_code == 200 and moved.json()["outcome"] == "updated"
        patient = await asyncio.wait_for(pas.put("patients/MRN1", {**PATIENT, "given_name": "Maggie"}), timeout=5)
        assert patient.status_code == 200 and patient.json()["outcome"] == "updated"
    finally:
        release.set()
        await holder


async def test_a_hospital_update_takes_its_turn_after_the_patients_own_write(hub: Harness) -> None:
    # The lifecycle's seam: the patient's write (a cancel, say) and the hospital's update about them never run at
    # once, so the update reads what the patient did.
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    row = await hub.db.fetch_one("SELECT id FROM patients WHERE mrn = 'MRN1'")
    assert row is not None
    inside, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(hub, int(row["id"]), inside, release))
    await asyncio.wait_for(inside.wait(), timeout=10)
    update = asyncio.create_task(pas.put("appointments/A1", _appointment(21)))
    await asyncio.sleep(0.3)
    assert not update.done()
    release.set()
    await holder
    assert (await asyncio.wait_for(update, timeout=10)).json()["outcome"] == "updated"


async def _organisation(hub: Harness) -> int:
    row = await hub.db.fetch_one("SELECT id FROM organisations WHERE code = 'RAL'")
    assert row is not None
    return int(row["id"])


async def test_a_record_making_an_appointment_waits_for_another_making_it(hub: Harness) -> None:
    # Two records naming different patients for one new appointment each lock their own patient, so the
    # appointment's reference is what makes them take turns: without it both would insert the appointment (a 500
    # for the second). Here another record about A2 is in flight, holding that reference.
    pas = await pas_for(hub)
    await pas.put("patients/MRN2", {**PATIENT, "mobile": "07700 900002"})
    organisation = await _organisation(hub)
    inside, release = asyncio.Event(), asyncio.Event()

    async def other_record() -> None:
        async with hub.db.write(keys=[appointment_ref_key(organisation, "A2")]) as tx:
            await tx.execute("UPDATE organisations SET code = code WHERE id = ?", (organisation,))
            inside.set()
            await release.wait()

    holder = asyncio.create_task(other_record())
    await asyncio.wait_for(inside.wait(), timeout=10)
    mine = asyncio.create_task(pas.put("appointments/A2", {**_appointment(30), "patient_ref": "MRN2"}))
    await asyncio.sleep(0.3)
    assert not mine.done()
    release.set()
    await holder
    assert (await asyncio.wait_for(mine, timeout=10)).status_code == 201
    # The other patient's record for the same appointment now finds it made, and is refused.
    assert (await pas.put("appointments/A2", _appointment(30))).status_code == 422
    assert len(await hub.db.fetch_all("SELECT id FROM appointments WHERE ref = 'A2'")) == 1


async def test_two_records_making_the_same_patient_at_once_make_them_once(hub: Harness) -> None:
    pas = await pas_for(hub)
    organisation = await _organisation(hub)
    body = {**PATIENT, "mobile": "07700 900009"}
    inside, release = asyncio.Event(), asyncio.Event()

    async def first_record() -> None:
        async with hub.db.write(keys=[patient_ref_key(organisation, "MRN9")]) as tx:
            await tx.execute("UPDATE organisations SET code = code WHERE id = ?", (organisation,))
            inside.set()
            await release.wait()

    holder = asyncio.create_task(first_record())
    await asyncio.wait_for(inside.wait(), timeout=10)
    second = asyncio.create_task(pas.put("patients/MRN9", body))
    await asyncio.sleep(0.3)
    assert not second.done()  # the patient does not exist yet: the reference's key is what it waits for
    release.set()
    await holder
    assert (await asyncio.wait_for(second, timeout=10)).status_code == 201
    again = await asyncio.gather(pas.put("patients/MRN9", body), pas.put("patients/MRN9", body))
    assert [r.json()["outcome"] for r in again] == ["unchanged", "unchanged"]
    assert len(await hub.db.fetch_all("SELECT id FROM patients WHERE mrn = 'MRN9'")) == 1
