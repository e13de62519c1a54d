"""HL7 batches beside patients' own writes: on PostgreSQL a batch locks the patients and references its messages
name, as the JSON API's records do, so it neither waits for nor holds up writes about other patients; it still
takes turns with its own patients' writes (the lifecycle's seam), and a merge still takes the whole hub's lock.
The integration API's letters lock the same way."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hub.store.letters import open_letter
from tests.harness import Harness
from tests.hl7_samples import PDF, Client, adt, mdm, merge, pid, siu
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio


async def _patient(trust: Harness, mrn: str) -> int:
    row = await trust.db.fetch_one("SELECT id FROM patients WHERE mrn = ?", (mrn,))
    assert row is not None
    return int(row["id"])


async def test_hl7_messages_wait_for_no_other_patients_write(trust: Harness, port: int, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    someone_else = await trust.create_patient(mrn="OTHER1")
    async with Client(port) as client:
        await client.send(siu())
        async with held_write(trust.db, patient=someone_else, doing=touch_patient(someone_else)):
            moved = await asyncio.wait_for(client.send(siu("S13", control_id="S2", start="202612150930")), timeout=5)
            letter = await asyncio.wait_for(client.send(mdm()), timeout=5)
            new = await asyncio.wait_for(
                client.send(siu(control_id="S3", ref="APT-2", patient=pid("RF0000002", phones="07700 900002^ORN^CP"))),
                timeout=5,
            )
            updated = await asyncio.wait_for(client.send(adt("A08", control_id="A1", sent="20261121100000")), timeout=5)
    assert [a.code for a in (moved, letter, new, updated)] == ["AA"] * 4
    assert (moved.text, letter.text, new.text) == ("updated", "created", "created")


async def test_an_hl7_update_takes_its_turn_after_the_patients_own_write(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        await client.send(siu())
        patient = await _patient(trust, "RF1234567")
        async with held_write(trust.db, patient=patient, doing=touch_patient(patient)):
            update = asyncio.create_task(client.send(siu("S13", control_id="S2", start="202612150930")))
            await asyncio.sleep(0.3)
            assert not update.done()
        assert (await asyncio.wait_for(update, timeout=10)).text == "updated"
    [row] = await trust.db.fetch_all("SELECT starts_at FROM appointments")
    assert row["starts_at"].startswith("2026-12-15T09:30")


async def test_an_hl7_letter_takes_its_turn_after_its_patients_own_write(trust: Harness, port: int) -> None:
    # The letter is the patient's through their appointment: opening the appointment marks its letters seen.
    async with Client(port) as client:
        await client.send(siu())
        patient = await _patient(trust, "RF1234567")
        async with held_write(trust.db, patient=patient, doing=touch_patient(patient)):
            letter = asyncio.create_task(client.send(mdm()))
            await asyncio.sleep(0.3)
            assert not letter.done()
        assert (await asyncio.wait_for(letter, timeout=10)).text == "created"


async def test_a_merge_still_waits_for_every_write_in_flight(trust: Harness, port: int) -> None:
    # An A40 moves one patient's appointments, letters and messages to another: no patient's lock covers that.
    async with Client(port) as client:
        await client.send(siu(patient=pid("RF0000002", phones="07700 900002^ORN^CP")))
        await client.send(adt("A28", control_id="ADT1"))
        someone_else = await trust.create_patient(mrn="OTHER1")
        async with held_write(trust.db, patient=someone_else, doing=touch_patient(someone_else)):
            merged = asyncio.create_task(client.send(merge("RF1234567", "RF0000002")))
            await asyncio.sleep(0.3)
            assert not merged.done()
        assert (await asyncio.wait_for(merged, timeout=10)).text == "merged"


async def test_api_letters_wait_for_no_other_patients_write_and_take_turns_with_their_own(
    trust: Harness, port: int, backend: str
) -> None:
    async with Client(port) as client:
        await client.send(siu())
    key = await trust.create_api_key(organisation_code="RAL")
    patient = await _patient(trust, "RF1234567")
    someone_else = await trust.create_patient(mrn="OTHER1")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/pdf"}

    def put(ref: str) -> asyncio.Task[httpx.Response]:
        # By the appointment only: the letter's patient is the appointment's.
        query = {"appointment_ref": "APT-1001", "title": "Clinic letter", "kind": "clinic_letter"}
        return asyncio.create_task(
            trust.client.put(f"/api/v1/letters/{ref}", params=query, content=PDF, headers=headers)
        )

    if backend != "sqlite":
        async with held_write(trust.db, patient=someone_else, doing=touch_patient(someone_else)):
            assert (await asyncio.wait_for(put("L1"), timeout=5)).status_code == 201
    async with held_write(trust.db, patient=patient, doing=touch_patient(patient)):
        second = put("L2")
        await asyncio.sleep(0.3)
        assert not second.done()
    assert (await asyncio.wait_for(second, timeout=10)).status_code == 201


async def test_a_letter_given_to_another_patient_while_its_owner_opens_it_stays_unread_for_the_new_one(
    trust: Harness, port: int
) -> None:
    # The hospital moves letter L1 from one patient to another (a corrected PUT) just as the first opens it: the
    # move waits for the opening, or the opening finds the letter no longer theirs; either way the letter's new
    # patient has not read it, so its escalation to post still stands.
    async with Client(port) as client:
        await client.send(siu())
        await client.send(siu(control_id="S2", ref="APT-2", patient=pid("RF0000002", phones="07700 900002^ORN^CP")))
    key = await trust.create_api_key(organisation_code="RAL")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/pdf"}

    async def put(patient_ref: str) -> httpx.Response:
        query = {"patient_ref": patient_ref, "title": "Clinic letter", "kind": "clinic_letter"}
        return await trust.client.put("/api/v1/letters/L1", params=query, content=PDF, headers=headers)

    assert (await put("RF1234567")).status_code == 201
    owner, other = await _patient(trust, "RF1234567"), await _patient(trust, "RF0000002")
    letter = await trust.db.fetch_one("SELECT id FROM letters WHERE ref = 'L1'")
    assert letter is not None
    async with held_write(trust.db, patient=owner, doing=touch_patient(owner)):
        opening = asyncio.create_task(
            open_letter(trust.db, patient_id=owner, letter_id=int(letter["id"]), at=trust.clock.now())
        )
        await asyncio.sleep(0.1)
        moving = asyncio.create_task(put("RF0000002"))
        await asyncio.sleep(0.3)
    assert (await asyncio.wait_for(moving, timeout=10)).status_code == 200
    await asyncio.wait_for(opening, timeout=10)
    row = await trust.db.fetch_one("SELECT patient_id, first_viewed_at FROM letters WHERE ref = 'L1'")
    assert row == {"patient_id": other, "first_viewed_at": None}
