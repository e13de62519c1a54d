"""The hub cancels an appointment (the patient's immediate cancel) and frees the slot it held; the hospital, not yet
aware, sends its record of the booking, held as a conflict; an agent accepts the hospital's version. The appointment
is back at its time, and so back in the slot the cancel freed, while still free: nobody else is offered it or takes
it. The cancel is recorded as a move out of the slot, which is not a move of the patient's against their limit."""

from __future__ import annotations

from typing import Any

import pytest

from hub.store.appointments import count_rebook_requests
from hub.store.offers import accept_offer, run_offers
from hub.store.slot_moves import Moved
from hub.store.slots import count_patient_moves
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.hl7_listening import hl7_trust
from tests.pas import PATIENT
from tests.seams.conftest import POLICY, WINDOW, rows
from tests.seams.test_api_hl7 import BODY, api
from tests.seams.test_conflict_after_move import _slots
from tests.seams.test_typed_rebook_slots import SLOT, _hospitals_version_accepted, _someone_waiting
from tests.staff_harness import set_up_staff
from tests.web.api.test_handlers import Api
from tests.web.patient.test_slots import post

pytestmark = pytest.mark.anyio


@pytest.fixture
async def trust(make_hub: MakeHub) -> Harness:
    return await hl7_trust(make_hub, cancel_mode="immediate", **{"slots.earlier_batch": 1})


async def _cancelled_by_patient(trust: Harness) -> tuple[Api, dict[str, Any]]:
    """APT-1001, booked for 14 December in the hospital's own slot OLD (the clinic's only slot), cancelled by the
    patient on their pages."""
    pas = await api(trust)
    assert (await pas.put(f"patients/{BODY['patient_ref']}", PATIENT)).status_code == 201
    assert (await pas.put("appointments/APT-1001", BODY)).status_code == 201
    old = {**SLOT, "start": BODY["start"], "status": "busy", "appointment_ref": "APT-1001"}
    assert (await pas.put("slots/OLD", old)).status_code == 201
    [appointment] = await rows(trust, "SELECT id, patient_id FROM appointments")
    await set_up_staff(trust)
    await trust.sign_in()
    done = await post(trust, f"/appointments/{appointment['id']}/cancel", {"reason": "no_longer_needed"})
    assert done.status_code == 303 and done.headers["location"].endswith("done=cancelled"), done.text
    assert await _slots(trust) == {"OLD": ("free", None)}
    return pas, appointment


async def test_accepting_the_hospitals_version_takes_back_the_slot_the_cancel_freed(trust: Harness) -> None:
    pas, appointment = await _cancelled_by_patient(trust)
    waiting = await _someone_waiting(trust, pas)
    [old] = await rows(trust, "SELECT id FROM slots WHERE ref = 'OLD'")
    # The freed time is offered to the patient waiting for an earlier one, as it should be.
    assert (await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())).offered == 1
    assert await rows(trust, "SELECT slot_id, appointment_id FROM slot_offers WHERE status = 'offered'") == [
        {"slot_id": old["id"], "appointment_id": waiting["id"]}
    ]
    # The cancel is recorded as the appointment leaving OLD for no slot.
    moves = await rows(trust, "SELECT from_slot_id, to_slot_id, how, actor_type FROM slot_moves")
    assert moves == [{"from_slot_id": old["id"], "to_slot_id": None, "how": "cancelled", "actor_type": "patient"}]

    await _hospitals_version_accepted(trust, pas, str(BODY["start"]))

    # Booked again at 14 December, in OLD again (before: OLD stayed free, offered to and taken by another patient).
    assert await rows(trust, "SELECT status FROM appointments WHERE id = ?", (appointment["id"],)) == [
        {"status": "booked"}
    ]
    assert (await _slots(trust))["OLD"] == ("busy", appointment["id"])
    audit = await rows(
        trust,
        "SELECT actor_type, detail FROM audit_events WHERE record_type = 'slot' AND record_id = 'OLD' ORDER BY id",
    )
    assert audit[-1]["actor_type"] == "agent" and audit[-1]["detail"].startswith("busy: "), audit
    # The next round ends the offer of OLD, and the waiting patient can no longer take it.
    await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())
    [offer] = await rows(trust, "SELECT id, status FROM slot_offers WHERE slot_id = ?", (old["id"],))
    assert offer["status"] == "gone"
    taken = await accept_offer(
        trust.db,
        patient_id=waiting["patient_id"],
        offer_id=offer["id"],
        now=trust.clock.now(),
        policy=POLICY,
        window=WINDOW,
        settings=trust.settings,
    )
    assert not taken.done and (await _slots(trust))["OLD"] == ("busy", appointment["id"])
    # The console's history reads as what happened.
    history = await trust.get_page(f"/staff/appointments/{appointment['id']}/slots")
    assert "(slot OLD)" in history.text and "No slot: cancelled, the slot freed" in history.text
    assert "a time given by hand" not in history.text


async def test_a_patients_cancel_does_not_count_against_their_rebook_limit(trust: Harness) -> None:
    _, appointment = await _cancelled_by_patient(trust)
    assert len(await rows(trust, "SELECT id FROM slot_moves WHERE actor_type = 'patient'")) == 1
    assert await count_patient_moves(trust.db, appointment["id"]) == 0
    assert await count_rebook_requests(trust.db, appointment["id"]) == 0


async def test_a_freed_slot_another_patient_took_meanwhile_stays_theirs(trust: Harness) -> None:
    pas, appointment = await _cancelled_by_patient(trust)
    waiting = await _someone_waiting(trust, pas)
    assert (await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())).offered == 1
    [offer] = await rows(trust, "SELECT id FROM slot_offers")
    taken = await accept_offer(
        trust.db,
        patient_id=waiting["patient_id"],
        offer_id=offer["id"],
        now=trust.clock.now(),
        policy=POLICY,
        window=WINDOW,
        settings=trust.settings,
    )
    assert taken == Moved(True)
    await _hospitals_version_accepted(trust, pas, str(BODY["start"]))
    assert (await _slots(trust))["OLD"] == ("busy", waiting["id"])
    assert await rows(trust, "SELECT status FROM appointments WHERE id = ?", (appointment["id"],)) == [
        {"status": "booked"}
    ]


async def test_the_hospital_booking_it_again_after_taking_in_the_cancel_takes_the_slot_back(trust: Harness) -> None:
    # The hospital has processed the hub's cancel (it says so) and books the same appointment again at its time.
    pas, appointment = await _cancelled_by_patient(trust)
    [told] = await rows(trust, "SELECT id FROM events WHERE kind = 'appointment.cancelled_by_patient'")
    again = await pas.put("appointments/APT-1001", {**BODY, "acknowledged_event": int(told["id"])})
    assert again.status_code == 200, again.text
    assert await rows(trust, "SELECT status FROM appointments") == [{"status": "booked"}]
    assert (await _slots(trust))["OLD"] == ("busy", appointment["id"])


async def test_an_agents_cancel_is_taken_back_the_same_way(trust: Harness) -> None:
    pas = await api(trust)
    assert (await pas.put(f"patients/{BODY['patient_ref']}", PATIENT)).status_code == 201
    assert (await pas.put("appointments/APT-1001", BODY)).status_code == 201
    old = {**SLOT, "start": BODY["start"], "status": "busy", "appointment_ref": "APT-1001"}
    assert (await pas.put("slots/OLD", old)).status_code == 201
    [appointment] = await rows(trust, "SELECT id, patient_id FROM appointments")
    await set_up_staff(trust)
    task = await trust.create_task(
        patient_id=appointment["patient_id"], appointment_id=appointment["id"], reason="Cannot come"
    )
    assert (await trust.post_form(f"/staff/tasks/{task}/claim", {}, csrf_from="/staff")).status_code == 303
    form = {"outcome": "cancelled", "confirm": "yes"}
    cancelled = await trust.post_form(f"/staff/tasks/{task}/outcome", form, csrf_from=f"/staff/tasks/{task}")
    assert cancelled.status_code == 303 and cancelled.headers["location"] == "/staff?done=cancelled", cancelled.text
    assert await _slots(trust) == {"OLD": ("free", None)}
    history = await trust.get_page(f"/staff/appointments/{appointment['id']}/slots")
    assert "No slot: cancelled, the slot freed" in history.text and "The patient" not in history.text

    await _hospitals_version_accepted(trust, pas, str(BODY["start"]))
    assert await _slots(trust) == {"OLD": ("busy", appointment["id"])}
