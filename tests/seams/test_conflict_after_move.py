"""A patient moves into a free slot; the hospital, not yet aware, sends its old record, held as a conflict for the
booking centre. What agents and patients do next must leave one true conflict task and the slots as they are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub.store.slot_moves import reschedule_by_patient
from tests.harness import Harness
from tests.pas import PATIENT
from tests.seams.conftest import POLICY, WINDOW, rows
from tests.seams.test_api_hl7 import BODY, api
from tests.staff_harness import set_up_staff
from tests.web.api.test_handlers import Api

pytestmark = pytest.mark.anyio
NEW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


async def _move(trust: Harness, appointment: dict[str, Any], slot_id: int) -> None:
    moved = await reschedule_by_patient(
        trust.db,
        patient_id=appointment["patient_id"],
        appointment_id=appointment["id"],
        slot_id=slot_id,
        now=trust.clock.now(),
        policy=POLICY,
        window=WINDOW,
        settings=trust.settings,
    )
    assert moved.done


async def moved_then_held(trust: Harness) -> tuple[Api, dict[str, Any]]:
    """Booked for 14 December in the hospital's slot OLD; the patient moves into the free slot NEW (28 November);
    the hospital sends its record of 14 December again (transport now booked): held as a conflict."""
    pas = await api(trust)
    assert (await pas.put(f"patients/{BODY['patient_ref']}", PATIENT)).status_code == 201
    assert (await pas.put("appointments/APT-1001", BODY)).status_code == 201
    slot = {"site_code": "RFH", "clinic": BODY["clinic"], "clinician": BODY["clinician"], "duration_minutes": 30}
    old = {**slot, "start": BODY["start"], "status": "busy", "appointment_ref": "APT-1001"}
    assert (await pas.put("slots/OLD", old)).status_code == 201
    assert (await pas.put("slots/NEW", {**slot, "start": NEW.isoformat(), "status": "free"})).status_code == 201
    [appointment] = await rows(trust, "SELECT id, patient_id FROM appointments")
    [new] = await rows(trust, "SELECT id FROM slots WHERE ref = 'NEW'")
    await _move(trust, appointment, new["id"])
    assert (await pas.put("appointments/APT-1001", {**BODY, "transport_booked": True})).status_code == 200
    assert await rows(trust, "SELECT kind, status FROM tasks") == [{"kind": "conflict", "status": "open"}]
    return pas, appointment


async def _open_tasks(trust: Harness) -> list[dict[str, Any]]:
    return await rows(trust, "SELECT kind, status FROM tasks WHERE status != 'closed'")


async def test_a_second_move_settles_the_conflict_and_a_later_stale_record_opens_one_task(trust: Harness) -> None:
    # Moving again replaces the hub's change the conflict was about: its task is closed (before, it stayed open with
    # nothing to accept), and the hospital's next stale record opens one new task, not a second.
    pas, appointment = await moved_then_held(trust)
    third = await trust.create_slot(
        starts_at=datetime(2026, 11, 30, 9, 30, tzinfo=UTC), ref="THIRD", clinician=str(BODY["clinician"])
    )
    await _move(trust, appointment, third)
    assert await _open_tasks(trust) == []
    assert (await pas.put("appointments/APT-1001", {**BODY, "interpreter_booked": True})).status_code == 200
    assert await _open_tasks(trust) == [{"kind": "conflict", "status": "open"}]


async def test_a_newer_disagreement_after_an_agent_closed_the_conflict_with_a_note_is_queued(trust: Harness) -> None:
    # "Closed with a note" (the agent rang the PAS team) dismisses the held record; before, it stayed held, and every
    # later disagreement, a hospital cancellation among them, was held with no task for anyone to see.
    pas, _ = await moved_then_held(trust)
    [task] = await rows(trust, "SELECT id FROM tasks WHERE kind = 'conflict'")
    await set_up_staff(trust)
    assert (await trust.post_form(f"/staff/tasks/{task['id']}/claim", {}, csrf_from="/staff")).status_code == 303
    closed = await trust.post_form(
        f"/staff/tasks/{task['id']}/outcome",
        {"outcome": "closed", "note": "Rang the PAS team, they will update it"},
        csrf_from=f"/staff/tasks/{task['id']}",
    )
    assert closed.status_code == 303, closed.text
    assert await rows(trust, "SELECT held_update FROM appointments") == [{"held_update": None}]
    assert (await pas.put("appointments/APT-1001", {**BODY, "status": "cancelled"})).status_code == 200
    assert await rows(trust, "SELECT status FROM appointments") == [{"status": "booked"}]  # the move still stands
    assert await _open_tasks(trust) == [{"kind": "conflict", "status": "open"}]


async def _accept_hospital(trust: Harness) -> None:
    [task] = await rows(trust, "SELECT id FROM tasks WHERE kind = 'conflict'")
    await set_up_staff(trust)
    assert (await trust.post_form(f"/staff/tasks/{task['id']}/claim", {}, csrf_from="/staff")).status_code == 303
    accepted = await trust.post_form(
        f"/staff/tasks/{task['id']}/outcome", {"outcome": "accepted_hospital"}, csrf_from=f"/staff/tasks/{task['id']}"
    )
    assert accepted.status_code == 303, accepted.text


async def _slots(trust: Harness) -> dict[str, tuple[str, int | None]]:
    found = await rows(trust, "SELECT ref, status, appointment_id FROM slots")
    return {r["ref"]: (r["status"], r["appointment_id"]) for r in found}


async def test_accepting_the_hospitals_time_takes_back_the_slot_the_patient_left(trust: Harness) -> None:
    # Back at 14 December, the appointment is in its slot again; before, OLD stayed free, to be offered to or taken
    # by another patient (a double booking), and NEW was freed too.
    pas, appointment = await moved_then_held(trust)
    await _accept_hospital(trust)
    assert await _slots(trust) == {"OLD": ("busy", appointment["id"]), "NEW": ("free", None)}
    # The hospital's record of OLD, as it always was on its side, changes nothing now.
    slot = {"site_code": "RFH", "clinic": BODY["clinic"], "clinician": BODY["clinician"], "duration_minutes": 30}
    old = {**slot, "start": BODY["start"], "status": "busy", "appointment_ref": "APT-1001"}
    assert (await pas.put("slots/OLD", old)).status_code == 200
    assert await _slots(trust) == {"OLD": ("busy", appointment["id"]), "NEW": ("free", None)}
