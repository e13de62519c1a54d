"""The hospital re-sends its record of the slot a patient has just moved out of (busy with that appointment, as its
system still has it) before it has taken in the move: the patient's next move frees the slot they are in, not that
one, and tells the hospital so (before, the slot they were in stayed busy with them for good, never offered again)."""

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
