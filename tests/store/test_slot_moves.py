"""Moving appointments into slots: one conditional write takes a slot, so of many choosing it at once exactly one
gets it; the move goes through the lifecycle (new time, SEQUENCE, reminders, one message, the event with both slot
references, the old slot freed); limits and the cut-off; agents and patients racing."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from hub.rules.appointments import ActionPolicy
from hub.rules.slots import Window
from hub.store.slot_moves import Moved, book_slot_by_agent, reschedule_by_patient
from hub.store.slots import count_patient_moves, slot_history
from hub.vocabulary import CancelMode, WhyNot
from tests.harness import Harness
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio

POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
WINDOW = Window(cutoff=timedelta(hours=24), days=42)
DAY = timedelta(days=1)


async def booked(hub: Harness, *, n: int = 1, days: int = 20) -> list[tuple[int, int, int]]:
    """n patients, each with an appointment in a busy slot of the clinic: (patient, appointment, slot)."""
    made = []
    for i in range(n):
        patient = await hub.create_patient(mrn=f"MRN{i}", mobile=f"+4477009{i:05d}")
        start = hub.clock.now() + timedelta(days=days, hours=5, minutes=30 * i)
        appointment = await hub.create_appointment(patient_id=patient, starts_at=start)
        slot = await hub.create_slot(starts_at=start, status="busy", appointment_id=appointment, ref=f"OLD{i}")
        made.append((patient, appointment, slot))
    return made


async def move(hub: Harness, patient: int, appointment: int, slot: int, **kwargs: Any) -> Moved:
    return await reschedule_by_patient(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        slot_id=slot,
        now=hub.clock.now(),
        policy=kwargs.pop("policy", POLICY),
        window=WINDOW,
        settings=hub.settings,
        **kwargs,
    )


async def row(hub: Harness, sql: str, *params: Any) -> dict[str, Any]:
    found = await hub.db.fetch_one(sql, params)
    assert found is not None
    return found


async def test_twenty_patients_choosing_one_slot_at_once_exactly_one_gets_it(hub: Harness) -> None:
    patients = await booked(hub, n=20)
    wanted = await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY, ref="NEW")
    results = await asyncio.gather(*(move(hub, p, a, wanted) for p, a, _ in patients))
    winners = [i for i, r in enumerate(results) if r.done]
    assert len(winners) == 1
    assert [r.why_not for r in results if not r.done] == [WhyNot.GONE] * 19
    patient, appointment, old = patients[winners[0]]
    slot = await row(hub, "SELECT status, appointment_id FROM slots WHERE id = ?", wanted)
    assert slot == {"status": "busy", "appointment_id": appointment}
    assert (await row(hub, "SELECT status, appointment_id FROM slots WHERE id = ?", old)) == {
        "status": "free",
        "appointment_id": None,
    }
    # Everyone else's appointment and slot are as they were.
    busy = await hub.db.fetch_all("SELECT id FROM slots WHERE status = 'busy' ORDER BY id")
    assert len(busy) == 20
    moved = await hub.db.fetch_all("SELECT id FROM appointments WHERE sequence > 0")
    assert [m["id"] for m in moved] == [appointment]
    assert len(await hub.db.fetch_all("SELECT id FROM slot_moves")) == 1


async def test_a_move_goes_through_the_lifecycle(hub: Harness) -> None:
    [(patient, appointment, old)] = await booked(hub)
    await hub.create_task(patient_id=patient, appointment_id=appointment, kind="rebook")
    wanted = await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY, ref="NEW", duration_minutes=20)
    assert (await move(hub, patient, appointment, wanted)) == Moved(True, freed_slot_id=old)
    a = await row(hub, "SELECT starts_at, duration_minutes, sequence, hub_change FROM appointments WHERE id = ?", 1)
    assert a["starts_at"].startswith((hub.clock.now() + 5 * DAY).date().isoformat())
    assert a["duration_minutes"] == 20 and a["sequence"] == 1
    assert json.loads(a["hub_change"])["kind"] == "rebooked"
    events = await hub.db.fetch_all("SELECT kind, data FROM events")
    assert [e["kind"] for e in events] == ["appointment.rescheduled_by_patient"]
    data = json.loads(events[0]["data"])
    assert (data["slot_ref"], data["previous_slot_ref"], data["how"]) == ("NEW", "OLD0", "patient")
    messages = await hub.db.fetch_all("SELECT kind FROM outbox_messages")
    assert [m["kind"] for m in messages] == ["changed"]  # one message confirms it
    reminders = await hub.db.fetch_all("SELECT due_at FROM scheduled_notices WHERE done_at IS NULL")
    assert reminders and all(r["due_at"] < a["starts_at"] for r in reminders)
    task = await row(hub, "SELECT status, outcome FROM tasks")
    assert task == {"status": "closed", "outcome": "superseded"}  # no call-back needed now
    audit = await hub.db.fetch_all(
        "SELECT action, record_id, detail FROM audit_events WHERE actor_type = 'patient' ORDER BY id"
    )
    assert audit == [  # both slots' changes are audited, as the appointment's is
        {"action": "slot_updated", "record_id": "NEW", "detail": "busy: an appointment moved into it (patient)"},
        {
            "action": "slot_updated",
            "record_id": "OLD0",
            "detail": "free: its appointment moved to another slot (patient)",
        },
        {"action": "rescheduled_by_patient", "record_id": str(appointment), "detail": "notice changed"},
    ]
    [history] = await slot_history(hub.db, appointment)
    assert (history["from_ref"], history["to_ref"], history["how"]) == ("OLD0", "NEW", "patient")


async def test_moves_count_against_the_rebook_limit(hub: Harness) -> None:
    [(patient, appointment, _)] = await booked(hub)
    slots = [await hub.create_slot(starts_at=hub.clock.now() + (3 + i) * DAY) for i in range(3)]
    assert (await move(hub, patient, appointment, slots[0])).done
    await hub.create_task(patient_id=patient, appointment_id=appointment, kind="rebook", status="closed")
    assert (await move(hub, patient, appointment, slots[1])) == Moved(False, WhyNot.LIMIT)
    assert await count_patient_moves(hub.db, appointment) == 1
    free = await hub.db.fetch_all("SELECT id FROM slots WHERE status = 'free' ORDER BY id")
    assert [f["id"] for f in free] == [1, slots[1], slots[2]]  # the first move freed the old slot


async def test_inside_the_cut_off_the_appointment_cannot_move(hub: Harness) -> None:
    [(patient, appointment, _)] = await booked(hub, days=0)  # starts within 24 hours
    wanted = await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY)
    assert (await move(hub, patient, appointment, wanted)) == Moved(False, WhyNot.CUTOFF)
    assert (await row(hub, "SELECT status FROM slots WHERE id = ?", wanted))["status"] == "free"


async def test_slots_outside_the_window_or_elsewhere_are_not_offered(hub: Harness) -> None:
    [(patient, appointment, _)] = await booked(hub)
    soon = await hub.create_slot(starts_at=hub.clock.now() + timedelta(hours=5))  # inside the cut-off
    far = await hub.create_slot(starts_at=hub.clock.now() + 60 * DAY)
    other = await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY, clinician="Dr B Other")
    for slot in (soon, far, other):
        assert (await move(hub, patient, appointment, slot)) == Moved(False, WhyNot.GONE)
    someone_else = await hub.create_patient(mrn="MRN9", mobile="+447700900999")
    assert (await move(hub, someone_else, appointment, soon)) == Moved(False, WhyNot.MISSING)


async def test_an_agent_and_a_patient_racing_for_one_slot(hub: Harness) -> None:
    (p1, a1, _), (_, a2, _) = await booked(hub, n=2)
    staff = await hub.create_staff_user()
    wanted = await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY)
    patient, agent = await asyncio.gather(
        move(hub, p1, a1, wanted),
        book_slot_by_agent(
            hub.db, staff_id=staff, appointment_id=a2, slot_id=wanted, now=hub.clock.now(), settings=hub.settings
        ),
    )
    assert sorted([patient.done, agent.done]) == [False, True]
    assert WhyNot.GONE in (patient.why_not, agent.why_not)
    winner = a1 if patient.done else a2
    slot = await row(hub, "SELECT status, appointment_id FROM slots WHERE id = ?", wanted)
    assert slot == {"status": "busy", "appointment_id": winner}
    kinds = [e["kind"] for e in await hub.db.fetch_all("SELECT kind FROM events")]
    assert kinds == ["appointment.rescheduled_by_patient" if patient.done else "callback.rebooked"]


async def test_a_patients_move_waits_for_no_other_patients_write(hub: Harness, backend: str) -> None:
    # On PostgreSQL a patient's own move locks that patient and the slots it writes, not the whole hub: the 9 am
    # crowd signing in and confirming does not queue behind one patient's move, nor it behind them.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    (mover, appointment, old), (other, _, _) = await booked(hub, n=2)
    wanted = await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY)
    async with held_write(hub.db, patient=other, doing=touch_patient(other)):
        moved = await asyncio.wait_for(move(hub, mover, appointment, wanted), timeout=5)
    assert moved == Moved(True, freed_slot_id=old)


async def test_two_moves_from_one_place_and_time_free_both_of_its_unlinked_slots(hub: Harness) -> None:
    # The hospital's slots need not name their appointment: two patients booked at one clinic and time sit in two
    # busy slots there that name no one. Moving at the same moment (on PostgreSQL each under its own patient's
    # lock), each frees one of them; both chose the first, before, and it was freed twice while the other stayed busy.
    start = hub.clock.now() + 20 * DAY
    patients = [await hub.create_patient(mrn=f"MRN{i}", mobile=f"+4477009{i:05d}") for i in range(2)]
    appointments = [await hub.create_appointment(patient_id=p, starts_at=start) for p in patients]
    olds = [await hub.create_slot(starts_at=start, status="busy", ref=f"OLD{i}") for i in range(2)]
    news = [await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY + i * timedelta(hours=1)) for i in range(2)]
    results = await asyncio.gather(*(move(hub, p, a, n) for p, a, n in zip(patients, appointments, news, strict=True)))
    assert [r.done for r in results] == [True, True]
    assert sorted(r.freed_slot_id or 0 for r in results) == olds
    for old in olds:
        assert (await row(hub, "SELECT status FROM slots WHERE id = ?", old)) == {"status": "free"}
    moves = await hub.db.fetch_all("SELECT from_slot_id FROM slot_moves ORDER BY from_slot_id")
    assert [m["from_slot_id"] for m in moves] == olds


async def test_a_move_waits_for_the_same_patients_write_and_then_sees_it(hub: Harness) -> None:
    [(patient, appointment, _)] = await booked(hub)
    wanted = await hub.create_slot(starts_at=hub.clock.now() + 5 * DAY)

    async def cancel_it(tx: Any) -> None:  # the patient's cancel, in flight in another tab
        await tx.execute("UPDATE appointments SET status = 'cancelled' WHERE id = ?", (appointment,))

    async with held_write(hub.db, patient=patient, doing=cancel_it):
        moving = asyncio.create_task(move(hub, patient, appointment, wanted))
        await asyncio.sleep(0.3)
        assert not moving.done()
    assert (await moving).done is False
    assert (await row(hub, "SELECT status FROM slots WHERE id = ?", wanted)) == {"status": "free"}
