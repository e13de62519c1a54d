"""An agent rebooks by typing a new time in (no slot chosen). The slot the hub had moved the appointment into is free
again, to be offered, and the move out of it is recorded, so that the hospital's version, accepted later, takes it
back while still free. A slot the hospital booked it into itself, or one it is still in, is left as it is."""

from __future__ import annotations

from typing import Any

import pytest

from hub.store.offers import accept_offer, run_offers, set_earlier_request
from hub.store.slot_moves import Moved
from tests.harness import Harness
from tests.pas import PATIENT
from tests.seams.conftest import POLICY, WINDOW, rows
from tests.seams.test_api_hl7 import BODY, api
from tests.seams.test_conflict_after_move import NEW, _move, _slots
from tests.staff_harness import set_up_staff
from tests.web.api.test_handlers import Api

pytestmark = pytest.mark.anyio
SLOT = {"site_code": "RFH", "clinic": BODY["clinic"], "clinician": BODY["clinician"], "duration_minutes": 30}
TYPED = {"outcome": "rebooked", "day": "20", "month": "12", "year": "2026", "time": "11:00"}


async def _booked(trust: Harness) -> tuple[Api, dict[str, Any]]:
    """APT-1001 booked for 14 December in the hospital's own slot OLD; NEW (28 November) free."""
    pas = await api(trust)
    assert (await pas.put(f"patients/{BODY['patient_ref']}", PATIENT)).status_code == 201
    assert (await pas.put("appointments/APT-1001", BODY)).status_code == 201
    old = {**SLOT, "start": BODY["start"], "status": "busy", "appointment_ref": "APT-1001"}
    assert (await pas.put("slots/OLD", old)).status_code == 201
    assert (await pas.put("slots/NEW", {**SLOT, "start": NEW.isoformat(), "status": "free"})).status_code == 201
    [appointment] = await rows(trust, "SELECT id, patient_id FROM appointments")
    await set_up_staff(trust)
    return pas, appointment


async def _someone_waiting(trust: Harness, pas: Api) -> dict[str, Any]:
    """Another patient of the clinic, booked for 18 December, asking for an earlier time."""
    other = {**PATIENT, "given_name": "Olive", "mobile": "07700 900002", "email": "olive@example.com"}
    assert (await pas.put("patients/RF7654321", other)).status_code == 201
    later = {**BODY, "patient_ref": "RF7654321", "start": "2026-12-18T09:30:00+00:00"}
    assert (await pas.put("appointments/APT-2002", later)).status_code == 201
    [waiting] = await rows(trust, "SELECT id, patient_id FROM appointments WHERE ref = 'APT-2002'")
    assert await set_earlier_request(
        trust.db, patient_id=waiting["patient_id"], appointment_id=waiting["id"], wanted=True, now=trust.clock.now()
    )
    return waiting


async def _type_in(trust: Harness, appointment: dict[str, Any], form: dict[str, str] = TYPED) -> None:
    """An agent claims a call-back about the appointment and rebooks it by typing the time in."""
    task = await trust.create_task(
        patient_id=appointment["patient_id"], appointment_id=appointment["id"], reason="Away"
    )
    assert (await trust.post_form(f"/staff/tasks/{task}/claim", {}, csrf_from="/staff")).status_code == 303
    rebooked = await trust.post_form(f"/staff/tasks/{task}/outcome", form, csrf_from=f"/staff/tasks/{task}")
    assert rebooked.status_code == 303 and "rebooked" in rebooked.headers["location"], rebooked.text


async def _hospitals_version_accepted(trust: Harness, pas: Api, start: str) -> None:
    """The hospital, not yet aware of the agent's rebook, sends its record at `start`, held as a conflict; an agent
    accepts the hospital's version."""
    stale = await pas.put("appointments/APT-1001", {**BODY, "start": start, "transport_booked": True})
    assert stale.status_code == 200
    [task] = await rows(trust, "SELECT id, kind FROM tasks WHERE status = 'open'")
    assert task["kind"] == "conflict"
    assert (await trust.post_form(f"/staff/tasks/{task['id']}/claim", {}, csrf_from="/staff")).status_code == 303
    accepted = await trust.post_form(
        f"/staff/tasks/{task['id']}/outcome", {"outcome": "accepted_hospital"}, csrf_from=f"/staff/tasks/{task['id']}"
    )
    assert accepted.status_code == 303, accepted.text


async def test_a_typed_rebook_frees_the_slot_the_patient_moved_into_and_the_hospitals_version_takes_it_back(
    trust: Harness,
) -> None:
    pas, appointment = await _booked(trust)
    waiting = await _someone_waiting(trust, pas)
    [new] = await rows(trust, "SELECT id FROM slots WHERE ref = 'NEW'")
    await _move(trust, appointment, new["id"])
    await _type_in(trust, appointment)

    # NEW is nobody's now (before: busy for good with an appointment no longer in it); the move out is recorded and
    # audited, and the console's history shows it.
    assert (await _slots(trust))["NEW"] == ("free", None)
    moves = await rows(trust, "SELECT from_slot_id, to_slot_id, how, actor_type FROM slot_moves ORDER BY id")
    assert moves[-1] == {"from_slot_id": new["id"], "to_slot_id": None, "how": "agent", "actor_type": "agent"}
    audit = await rows(
        trust,
        "SELECT actor_type, detail FROM audit_events WHERE record_type = 'slot' AND record_id = ? ORDER BY id",
        ("NEW",),
    )
    assert audit[-1]["actor_type"] == "agent" and audit[-1]["detail"].startswith("free: "), audit
    history = await trust.get_page(f"/staff/appointments/{appointment['id']}/slots")
    assert "(slot NEW)" in history.text and "No slot: a time given by hand" in history.text
    # Counted against nobody's rebook limit: an agent's move, not the patient's.
    [limit] = await rows(trust, "SELECT COUNT(*) AS n FROM slot_moves WHERE actor_type = 'patient'")
    assert limit["n"] == 1

    # The worker offers NEW to the patient waiting for an earlier time (the earliest free slot of the clinic first).
    assert (await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())).offered == 1
    offered = await rows(trust, "SELECT slot_id, appointment_id FROM slot_offers WHERE status = 'offered'")
    assert offered == [{"slot_id": new["id"], "appointment_id": waiting["id"]}]

    # The hospital had booked the patient's move (28 November) but not the agent's rebook: accepting its version
    # puts the appointment back into NEW, still free, so that the offer of it is gone.
    await _hospitals_version_accepted(trust, pas, NEW.isoformat())
    assert (await _slots(trust))["NEW"] == ("busy", appointment["id"])
    await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())
    assert await rows(trust, "SELECT status FROM slot_offers WHERE slot_id = ?", (new["id"],)) == [{"status": "gone"}]


async def test_a_freed_slot_another_patient_took_meanwhile_stays_theirs(trust: Harness) -> None:
    pas, appointment = await _booked(trust)
    waiting = await _someone_waiting(trust, pas)
    [new] = await rows(trust, "SELECT id FROM slots WHERE ref = 'NEW'")
    await _move(trust, appointment, new["id"])
    await _type_in(trust, appointment)
    assert (await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())).offered == 1
    [offer] = await rows(trust, "SELECT id FROM slot_offers WHERE slot_id = ?", (new["id"],))
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
    await _hospitals_version_accepted(trust, pas, NEW.isoformat())
    assert (await _slots(trust))["NEW"] == ("busy", waiting["id"])


async def test_a_slot_the_hospital_booked_it_into_is_left_to_the_hospital(trust: Harness) -> None:
    # OLD is the hospital's own booking of the appointment, not a move of the hub's: the hospital frees it when it
    # books the agent's new time. Accepting its version (still 14 December) leaves the appointment in it; before,
    # OLD was freed with the appointment back in it, to be offered to and taken by another patient.
    pas, appointment = await _booked(trust)
    await _type_in(trust, appointment)
    assert await _slots(trust) == {"OLD": ("busy", appointment["id"]), "NEW": ("free", None)}
    assert await rows(trust, "SELECT id FROM slot_moves") == []
    await _hospitals_version_accepted(trust, pas, str(BODY["start"]))
    assert await _slots(trust) == {"OLD": ("busy", appointment["id"]), "NEW": ("free", None)}


async def test_a_typed_rebook_keeping_the_time_and_site_leaves_the_appointment_in_its_slot(trust: Harness) -> None:
    pas, appointment = await _booked(trust)
    [new] = await rows(trust, "SELECT id FROM slots WHERE ref = 'NEW'")
    await _move(trust, appointment, new["id"])
    other_clinician = {**TYPED, "day": "28", "month": "11", "time": "09:30", "clinician": "Dr Ben Okafor"}
    await _type_in(trust, appointment, other_clinician)
    assert (await _slots(trust))["NEW"] == ("busy", appointment["id"])
    assert len(await rows(trust, "SELECT id FROM slot_moves")) == 1


async def test_a_slot_taken_back_is_freed_again_by_the_next_typed_rebook(trust: Harness) -> None:
    # Taken back when the hospital's version was accepted, the slot was the appointment's again with no move into it
    # recorded: the next typed-in time left it busy for good (found in review).
    pas, appointment = await _booked(trust)
    [new] = await rows(trust, "SELECT id FROM slots WHERE ref = 'NEW'")
    await _move(trust, appointment, new["id"])
    await _type_in(trust, appointment)
    await _hospitals_version_accepted(trust, pas, NEW.isoformat())
    assert (await _slots(trust))["NEW"] == ("busy", appointment["id"])
    moves = await rows(trust, "SELECT from_slot_id, to_slot_id, how, actor_type FROM slot_moves ORDER BY id")
    assert moves[-1] == {"from_slot_id": None, "to_slot_id": new["id"], "how": "agent", "actor_type": "agent"}

    await _type_in(trust, appointment, {**TYPED, "day": "21"})
    assert (await _slots(trust))["NEW"] == ("free", None)
