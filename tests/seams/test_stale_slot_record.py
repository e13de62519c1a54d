"""The hospital's slot records meeting the hub's moves. It re-sends its record of the slot a patient has just moved
out of (busy with that appointment, as its system still has it) before it has taken in the move: the patient's next
move frees the slot they are in, not that one, and tells the hospital so (before, the slot they were in stayed busy
with them for good, never offered again). It cancels the appointment in the slot the patient moved into, and sends
that slot free again, as it sent it before the move: it is free (before, the same record was "unchanged", and the
slot stayed busy with a cancelled appointment for good)."""

from __future__ import annotations

import json

import pytest

from hub.store.slot_moves import Moved, reschedule_by_patient
from tests.conftest import MakeHub
from tests.seams.conftest import POLICY, WINDOW
from tests.web.api.test_handlers import Api
from tests.web.patient.test_slots import NOW, SELF_SERVICE, clinic

pytestmark = pytest.mark.anyio


async def test_a_move_after_the_hospital_resent_the_slot_left_frees_the_slot_the_patient_is_in(
    make_hub: MakeHub,
) -> None:
    hub = await make_hub(**SELF_SERVICE)
    hub.clock.set(NOW)
    patient, appointment = await clinic(hub)  # booked by the hospital in its slot OLD1, 11 December
    [booked] = await hub.db.fetch_all("SELECT ref FROM appointments")
    slots = {r["ref"]: r["id"] for r in await hub.db.fetch_all("SELECT id, ref FROM slots")}

    async def move(ref: str) -> Moved:
        return await reschedule_by_patient(
            hub.db,
            patient_id=patient,
            appointment_id=appointment,
            slot_id=slots[ref],
            now=hub.clock.now(),
            policy=POLICY,
            window=WINDOW,
            settings=hub.settings,
        )

    assert (await move("FREE0")).done
    # The PAS's record of OLD1, changed in some other way, still names the appointment: it has not taken in the move.
    stale = {
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "clinician": "Dr A Example",
        "start": "2026-12-11T10:00:00+00:00",
        "duration_minutes": 20,
        "mode": "in_person",
        "status": "busy",
        "appointment_ref": booked["ref"],
    }
    pas = Api(hub, await hub.create_api_key(), "pas")
    assert (await pas.put(f"slots/OLD{appointment}", stale)).status_code == 200

    assert await move("FREE1") == Moved(True, freed_slot_id=slots["FREE0"])
    busy = await hub.db.fetch_all("SELECT ref FROM slots WHERE status = 'busy' ORDER BY ref")
    assert [r["ref"] for r in busy] == ["FREE1", f"OLD{appointment}"]  # OLD1 is the hospital's to free
    [event] = await hub.db.fetch_all(
        "SELECT data FROM events WHERE kind = 'appointment.rescheduled_by_patient' ORDER BY id DESC LIMIT 1"
    )
    told = json.loads(event["data"])
    assert (told["previous_slot_ref"], told["slot_ref"]) == ("FREE0", "FREE1")


async def test_the_hospitals_free_record_sent_again_after_it_cancelled_the_appointment_frees_the_slot(
    make_hub: MakeHub,
) -> None:
    hub = await make_hub(**SELF_SERVICE)
    hub.clock.set(NOW)
    patient, appointment = await clinic(hub)
    [booked] = await hub.db.fetch_all("SELECT ref FROM appointments")
    pas = Api(hub, await hub.create_api_key(), "pas")
    free = {
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "clinician": "Dr A Example",
        "start": "2026-11-24T09:00:00+00:00",
        "duration_minutes": 30,
        "mode": "in_person",
        "status": "free",
    }
    assert (await pas.put("slots/FREE0", free)).status_code == 200
    [slot] = await hub.db.fetch_all("SELECT id FROM slots WHERE ref = 'FREE0'")
    moved = await reschedule_by_patient(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        slot_id=slot["id"],
        now=hub.clock.now(),
        policy=POLICY,
        window=WINDOW,
        settings=hub.settings,
    )
    assert moved.done
    # Before the PAS has taken the move in, its record of the slot says free: the patient keeps it.
    assert (await pas.put("slots/FREE0", free)).json()["outcome"] == "unchanged"
    assert await hub.db.fetch_all("SELECT status FROM slots WHERE ref = 'FREE0'") == [{"status": "busy"}]
    # The PAS takes the move in and cancels the appointment at its new time, then frees the slot.
    cancel = {
        "patient_ref": "MRN001",
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
        "clinician": "Dr A Example",
        "start": free["start"],
        "duration_minutes": 30,
        "mode": "in_person",
        "status": "cancelled",
    }
    answer = await pas.put(f"appointments/{booked['ref']}", cancel)
    assert answer.status_code == 200 and answer.json()["notice"] == "cancelled"
    assert (await pas.put("slots/FREE0", free)).json()["outcome"] == "updated"
    assert await hub.db.fetch_all("SELECT status, appointment_id FROM slots WHERE ref = 'FREE0'") == [
        {"status": "free", "appointment_id": None}
    ]
    assert (await pas.put("slots/FREE0", free)).json()["outcome"] == "unchanged"
