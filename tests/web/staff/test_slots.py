"""The console's slots page: an appointment's slot history, and agents booking it into a free slot with the same
conditional write as patients (a slot a patient has just taken is refused)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hub.rules.appointments import ActionPolicy
from hub.rules.slots import Window
from hub.store.slot_moves import reschedule_by_patient
from hub.vocabulary import CancelMode
from tests.harness import Harness
from tests.pages import check_page
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio

DAY = timedelta(days=1)
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)


async def test_history_and_booking_into_a_free_slot(hub: Harness) -> None:
    patient = await hub.create_patient()
    start = hub.clock.now() + 20 * DAY
    appointment = await hub.create_appointment(patient_id=patient, starts_at=start)
    await hub.create_slot(starts_at=start, status="busy", appointment_id=appointment, ref="OLD")
    chosen = await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY, ref="MINE")
    for_agent = await hub.create_slot(starts_at=hub.clock.now() + 6 * DAY, ref="AGENTS")
    taken = await hub.create_slot(starts_at=hub.clock.now() + 7 * DAY, ref="TAKEN")
    other_clinic = await hub.create_slot(starts_at=hub.clock.now() + 8 * DAY, clinic="Eye clinic")
    moved = await reschedule_by_patient(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        slot_id=chosen,
        now=hub.clock.now(),
        policy=POLICY,
        window=Window(timedelta(hours=24), 42),
        settings=hub.settings,
    )
    assert moved.done
    staff = await set_up_staff(hub)
    record = await hub.get_page(f"/staff/patients/{patient}")
    assert f'href="/staff/appointments/{appointment}/slots"' in record.text
    page = await hub.get_page(f"/staff/appointments/{appointment}/slots")
    assert "(slot OLD)" in page.text and "(slot MINE)" in page.text and "The patient" in page.text
    assert f'value="{for_agent}"' in page.text and f'value="{other_clinic}"' not in page.text

    # A patient takes a slot while the agent has the page open.
    async with hub.db.write() as tx:
        await tx.execute("UPDATE slots SET status = 'busy' WHERE id = ?", (taken,))
    refused = await hub.post_form(f"/staff/appointments/{appointment}/slots", {"slot": str(taken)})
    assert refused.status_code == 409 and "That slot has just been taken" in refused.text
    check_page(refused.text)
    nothing = await hub.post_form(f"/staff/appointments/{appointment}/slots", {})
    assert nothing.status_code == 422

    booked = await hub.post_form(f"/staff/appointments/{appointment}/slots", {"slot": str(for_agent)})
    assert booked.status_code == 303
    after = await hub.get_page(booked.headers["location"])
    assert "The appointment is booked into the slot" in after.text and "(slot AGENTS)" in after.text
    slots = await hub.db.fetch_all("SELECT ref, status, appointment_id FROM slots ORDER BY id")
    assert [(s["ref"], s["status"]) for s in slots[:3]] == [("OLD", "free"), ("MINE", "free"), ("AGENTS", "busy")]
    event = await hub.db.fetch_one("SELECT kind, data FROM events WHERE kind = 'callback.rebooked'")
    assert event is not None
    data = json.loads(event["data"])
    assert (data["slot_ref"], data["previous_slot_ref"], data["how"]) == ("AGENTS", "MINE", "agent")
    history = await hub.db.fetch_all("SELECT how, actor_id FROM slot_moves ORDER BY id")
    assert history == [{"how": "patient", "actor_id": str(patient)}, {"how": "agent", "actor_id": str(staff.id)}]
    assert (await hub.client.get("/staff/appointments/999/slots")).status_code == 404
