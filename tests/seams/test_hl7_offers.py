"""HL7 SIU messages from the hospital meeting a patient's own move into a slot (an accepted earlier-appointment
offer): the hospital's stale change is held as a conflict, never silently undoing the move; the slot stays taken."""

from __future__ import annotations

import pytest

from tests.harness import Harness
from tests.hl7_samples import Client, pid, siu
from tests.seams.conftest import held, rows, take_earlier_slot

pytestmark = pytest.mark.anyio


async def moved_by_offer(trust: Harness, client: Client) -> tuple[int, int]:
    """APT-1001 booked over HL7 for 14 December; the patient takes an earlier slot on 28 November."""
    assert (await client.send(siu())).code == "AA"
    return await take_earlier_slot(trust)


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


async def test_a_hospital_cancel_for_the_old_time_after_the_patient_took_an_earlier_slot_is_held(
    trust: Harness, port: int
) -> None:
    async with Client(port) as client:
        appointment, slot = await moved_by_offer(trust, client)
        stale = siu("S15", control_id="C2", start="202612140930", sent="20261121100500")
        assert (await client.send(stale)).code == "AA"
    await held(trust, appointment, slot)
    assert await rows(trust, "SELECT kind FROM outbox_messages WHERE kind = 'cancelled'") == []


async def test_a_hospital_cancel_naming_the_time_the_patient_took_cancels_it(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        await moved_by_offer(trust, client)
        cancel = siu("S15", control_id="C3", start="202611280930", sent="20261121100500")
        assert (await client.send(cancel)).code == "AA"
    assert await rows(trust, "SELECT status, starts_at FROM appointments") == [
        {"status": "cancelled", "starts_at": "2026-11-28T09:30:00.000000Z"}
    ]
    assert await rows(trust, "SELECT kind FROM tasks WHERE status = 'open'") == []
    assert await rows(trust, "SELECT kind FROM outbox_messages WHERE kind = 'cancelled'") != []


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
