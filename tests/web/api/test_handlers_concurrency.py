"""The hospital's records beside patients' own writes: on PostgreSQL a record about one patient locks that patient
and its references, not the whole hub; records making the same row at once take turns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.db import Transaction
from hub.store.feed_locks import appointment_ref_key, patient_ref_key
from tests import factories
from tests.harness import Harness
from tests.holding import held_write, touch_patient
from tests.pas import PATIENT, pas_for

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)  # the clock fixture's start


def _appointment(start_days: int) -> dict[str, object]:
    start = T0 + timedelta(days=start_days)
    return {"patient_ref": "MRN1", "site_code": "RFH", "start": start.isoformat(), "duration_minutes": 30}


async def test_a_hospital_update_waits_for_no_other_patients_write(hub: Harness, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    someone_else = await hub.create_patient()
    async with held_write(hub.db, patient=someone_else, doing=touch_patient(someone_else)):
        moved = await asyncio.wait_for(pas.put("appointments/A1", _appointment(21)), timeout=5)
        assert moved.status_code == 200 and moved.json()["outcome"] == "updated"
        patient = await asyncio.wait_for(pas.put("patients/MRN1", {**PATIENT, "given_name": "Maggie"}), timeout=5)
        assert patient.status_code == 200 and patient.json()["outcome"] == "updated"


async def test_a_hospital_update_takes_its_turn_after_the_patients_own_write(hub: Harness) -> None:
    # The lifecycle's seam: the patient's write (a cancel, say) and the hospital's update about them never run at
    # once, so the update reads what the patient did.
    pas = await pas_for(hub)
    await pas.book(start=T0 + timedelta(days=20))
    row = await hub.db.fetch_one("SELECT id FROM patients WHERE mrn = 'MRN1'")
    assert row is not None
    async with held_write(hub.db, patient=int(row["id"]), doing=touch_patient(int(row["id"]))):
        update = asyncio.create_task(pas.put("appointments/A1", _appointment(21)))
        await asyncio.sleep(0.3)
        assert not update.done()
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
    async with held_write(hub.db, keys=[appointment_ref_key(await _organisation(hub), "A2")]):
        mine = asyncio.create_task(pas.put("appointments/A2", {**_appointment(30), "patient_ref": "MRN2"}))
        await asyncio.sleep(0.3)
        assert not mine.done()
    assert (await asyncio.wait_for(mine, timeout=10)).status_code == 201
    # The other patient's record for the same appointment now finds it made, and is refused.
    assert (await pas.put("appointments/A2", _appointment(30))).status_code == 422
    assert len(await hub.db.fetch_all("SELECT id FROM appointments WHERE ref = 'A2'")) == 1


async def test_two_records_making_the_same_patient_at_once_make_them_once(hub: Harness) -> None:
    pas = await pas_for(hub)
    body = {**PATIENT, "mobile": "07700 900009"}
    async with held_write(hub.db, keys=[patient_ref_key(await _organisation(hub), "MRN9")]):
        second = asyncio.create_task(pas.put("patients/MRN9", body))
        await asyncio.sleep(0.3)
        assert not second.done()  # the patient does not exist yet: the reference's key is what it waits for
    assert (await asyncio.wait_for(second, timeout=10)).status_code == 201
    again = await asyncio.gather(pas.put("patients/MRN9", body), pas.put("patients/MRN9", body))
    assert [r.json()["outcome"] for r in again] == ["unchanged", "unchanged"]
    assert len(await hub.db.fetch_all("SELECT id FROM patients WHERE mrn = 'MRN9'")) == 1


async def test_a_patient_made_by_hl7_while_a_record_waited_is_locked_after_all(hub: Harness, backend: str) -> None:
    # The record read "no such patient" (so nothing to lock but its references) while HL7 was making the patient;
    # once HL7 commits, the patient's own write gets in first. The record must wait for it, not run beside it on
    # the strength of its stale read (it would overwrite a cancel the patient made meanwhile).
    if backend == "sqlite":
        pytest.skip(
            "SQLite has one writer at a time: the record reads nothing before its turn, and nothing runs beside it"
        )
    pas = await pas_for(hub)
    organisation = await _organisation(hub)
    made: list[int] = []

    async def hl7_makes_mrn7(tx: Transaction) -> None:
        made.append(await factories.create_patient(tx, organisation_id=organisation, now=T0, mrn="MRN7"))

    patient_inside, patient_release = asyncio.Event(), asyncio.Event()

    async def patients_own_write() -> None:
        async with hub.db.write(patient=made[0]) as tx:
            await touch_patient(made[0])(tx)
            patient_inside.set()
            await patient_release.wait()

    async with held_write(hub.db, doing=hl7_makes_mrn7):  # HL7's write: the lock of the whole hub
        record = asyncio.create_task(pas.put("appointments/A7", {**_appointment(40), "patient_ref": "MRN7"}))
        await asyncio.sleep(0.3)
        patient = asyncio.create_task(patients_own_write())  # queued behind HL7 too
        await asyncio.sleep(0.1)
    try:
        await asyncio.wait_for(patient_inside.wait(), timeout=10)
        await asyncio.sleep(0.3)
        assert not record.done()  # waiting for the patient
    finally:
        patient_release.set()
        await patient
    assert (await asyncio.wait_for(record, timeout=10)).status_code == 201
