"""HL7 SIU messages from the hospital meeting a patient's own move into a slot (an accepted earlier-appointment
offer): the hospital's stale change is held as a conflict, never silently undoing the move; the slot stays taken."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.store.offers import accept_offer, run_offers, set_earlier_request
from hub.store.slots import Moved
from tests.harness import Harness
from tests.hl7_samples import Client, pid, siu
from tests.seams.conftest import POLICY, WINDOW, rows

pytestmark = pytest.mark.anyio

EARLIER = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


async def moved_by_offer(trust: Harness, client: Client) -> tuple[int, int]:
    """APT-1001 booked over HL7 for 14 December; the patient asks for earlier and takes a freed slot on 28 November."""
    assert (await client.send(siu())).code == "AA"
    [appt] = await rows(trust, "SELECT id, patient_id FROM appointments")
    assert await set_earlier_request(
        trust.db, patient_id=appt["patient_id"], appointment_id=appt["id"], wanted=True, now=trust.clock.now()
    )
    slot = await trust.create_slot(starts_at=EARLIER, ref="FREED", clinician="Dr Anita Patel")
    assert (await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())).offered == 1
    [offer] = await rows(trust, "SELECT id FROM slot_offers")
    moved = await accept_offer(
        trust.db,
        patient_id=appt["patient_id"],
        offer_id=offer["id"],
        now=trust.clock.now(),
        policy=POLICY,
        window=WINDOW,
        settings=trust.settings,
    )
    assert moved == Moved(True)
    return int(appt["id"]), slot


async def held(trust: Harness, appointment_id: int, slot: int) -> None:
    [appt] = await rows(trust, "SELECT status, starts_at FROM appointments WHERE id = ?", (appointment_id,))
    assert appt == {"status": "booked", "starts_at": "2026-11-28T09:30:00.000000Z"}  # the patient's move stands
    assert await rows(trust, "SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "busy", "appointment_id": appointment_id}
    ]
    tasks = await rows(trust, "SELECT kind, status FROM tasks WHERE appointment_id = ?", (appointment_id,))
    assert tasks == [{"kind": "conflict", "status": "open"}]
    kinds = [r["kind"] for r in await rows(trust, "SELECT kind FROM events ORDER BY id")]
    assert kinds.count("appointment.conflict") == 1


@pytest.mark.xfail(
    strict=True,
    reason="HubChange.reflected_by treats any hospital status other than booked as settling the hub's change, so a"
    " stale S15 for the old time cancels the time the patient moved to: the patient is told 'cancelled' and the slot"
    " stays busy with a cancelled appointment, offered to no one",
)
async def test_a_hospital_cancel_after_the_patient_took_an_earlier_slot_is_held(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        appointment, slot = await moved_by_offer(trust, client)
        header = siu("S15", control_id="C1", sent="20261121100500").split("\r")[0]
        cancel = "\r".join([header, "SCH|APT-1001^RFH|APT-1001^RFH", pid()]) + "\r"
        assert (await client.send(cancel)).code == "AA"
        # The same message again is answered but holds nothing twice.
        assert (await client.send(cancel)).code == "AA"
    await held(trust, appointment, slot)
    cancelled = await rows(trust, "SELECT kind FROM outbox_messages WHERE kind = 'cancelled'")
    assert cancelled == []  # the patient is not told of a cancel the booking centre has still to settle


async def test_a_hospital_reschedule_after_the_patient_took_an_earlier_slot_is_held(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        appointment, slot = await moved_by_offer(trust, client)
        moved = siu("S13", control_id="R1", start="202612201100", sent="20261121100500")
        assert (await client.send(moved)).code == "AA"
    await held(trust, appointment, slot)


async def test_the_hospital_confirming_the_move_settles_it_and_the_slot_stays_taken(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        appointment, slot = await moved_by_offer(trust, client)
        confirmed = siu("S13", control_id="R2", start="202611280930", sent="20261121100500")
        assert (await client.send(confirmed)).code == "AA"
    assert await rows(trust, "SELECT status, starts_at FROM appointments") == [
        {"status": "booked", "starts_at": "2026-11-28T09:30:00.000000Z"}
    ]
    assert await rows(trust, "SELECT kind FROM tasks WHERE status = 'open'") == []
    assert await rows(trust, "SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "busy", "appointment_id": appointment}
    ]
