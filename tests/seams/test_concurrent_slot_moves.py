"""Two hub processes on one database and a crowd choosing slots at once: patients move their own appointments into
free slots (several wanting each), others cancel theirs (freeing slots that movers want too), two patients booked
at one clinic and time sit in busy slots that name no appointment. On PostgreSQL each of these locks only its own
patient and the slots it writes; afterwards every slot and appointment agree, as one step at a time would leave them:

- a busy slot holds one booked appointment, at the slot's time, and no appointment is in two slots;
- each move that went through freed exactly the slot it left, recorded one move and one event; each that did not
  changed nothing; each cancel recorded its move out of its slot;
- of the movers wanting one slot, at most one has it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from hub.clock import to_db
from hub.rules.appointments import ActionPolicy
from hub.rules.slots import Window
from hub.store.appointments import cancel_appointment
from hub.store.slot_moves import Moved, reschedule_by_patient
from hub.vocabulary import CancelMode
from tests.conftest import MakeHub
from tests.seams.conftest import rows

pytestmark = pytest.mark.anyio

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.IMMEDIATE)
WINDOW = Window(cutoff=timedelta(hours=24), days=42)
PATIENTS = 12
CANCELLING = (0, 1, 2)  # their slots are freed as movers 3-5 ask for them
SHARING = (10, 11)  # booked at one time, in two busy slots that name no appointment
FREE = 4  # free slots, wanted by movers 6-11 (and 3-5 when theirs is not yet free)


def booked_at(n: int) -> datetime:
    return NOON + timedelta(days=20, minutes=30 * min(n, SHARING[0]))


async def test_moves_and_cancels_at_once_on_two_instances_leave_every_slot_true(make_hub: MakeHub) -> None:
    first = await make_hub()
    first.clock.set(NOON)
    second = await make_hub(database_url=first.database_url)
    instances = (first, second)
    patients, appointments, olds = [], [], []
    for n in range(PATIENTS):
        patient = await first.create_patient(mrn=f"MRN{n}", mobile=f"+4477009{n:05d}")
        appointment = await first.create_appointment(patient_id=patient, starts_at=booked_at(n))
        linked = None if n in SHARING else appointment
        old = await first.create_slot(starts_at=booked_at(n), status="busy", appointment_id=linked, ref=f"OLD{n}")
        olds.append(old)
        patients.append(patient)
        appointments.append(appointment)
    free = [await first.create_slot(starts_at=NOON + timedelta(days=5, hours=k), ref=f"FREE{k}") for k in range(FREE)]
    # The sharing pair first, so that their moves overlap the most.
    order = [*SHARING, *(n for n in range(3, PATIENTS) if n not in SHARING)]
    wanted = {n: olds[n - 3] if n < 6 else free[n % FREE] for n in order}

    async def cancel(n: int) -> bool:
        hub = instances[n % 2]
        result = await cancel_appointment(
            hub.db,
            patient_id=patients[n],
            appointment_id=appointments[n],
            reason="feeling_better",
            details="",
            now=NOON,
            policy=POLICY,
            settings=hub.settings,
        )
        return result.done

    async def move(n: int) -> Moved:
        hub = instances[n % 2]
        return await reschedule_by_patient(
            hub.db,
            patient_id=patients[n],
            appointment_id=appointments[n],
            slot_id=wanted[n],
            now=NOON,
            policy=POLICY,
            window=WINDOW,
            settings=hub.settings,
        )

    cancelled, results = await asyncio.gather(
        asyncio.gather(*(cancel(n) for n in CANCELLING)), asyncio.gather(*(move(n) for n in wanted))
    )
    assert cancelled == [True] * len(CANCELLING)
    moved = dict(zip(wanted, results, strict=True))
    went = [n for n, m in moved.items() if m.done]
    assert went, moved

    slots = {s["id"]: s for s in await rows(first, "SELECT id, status, appointment_id, starts_at FROM slots")}
    states = {a["id"]: a for a in await rows(first, "SELECT id, status, starts_at FROM appointments")}
    # A busy slot holds one booked appointment at its time; no appointment is in two slots.
    held = Counter(s["appointment_id"] for s in slots.values() if s["status"] == "busy" and s["appointment_id"])
    assert max(held.values()) == 1
    for s in slots.values():
        if s["status"] == "busy" and s["appointment_id"]:
            a = states[s["appointment_id"]]
            assert (a["status"], a["starts_at"]) == ("booked", s["starts_at"]), (s, a)
    # Each move that went through has its slot and freed exactly the one it left; the rest changed nothing.
    for n, m in moved.items():
        a = states[appointments[n]]
        if m.done:
            assert slots[wanted[n]]["appointment_id"] == appointments[n]
            assert slots[wanted[n]]["starts_at"] == a["starts_at"]
        else:
            assert a["starts_at"] == to_db(booked_at(n)), (n, m)
    freed = [m.freed_slot_id for m in moved.values() if m.done]
    assert len(freed) == len(set(freed)) and None not in freed
    assert all(slots[f]["status"] == "free" for f in freed)
    for n in went:  # the sharing pair's slots name no one: either may free either, but not one both
        assert moved[n].freed_slot_id in ([olds[k] for k in SHARING] if n in SHARING else [olds[n]]), (n, moved[n])
    # The sharing pair's slots: one busy for each of them still there, none for one that moved.
    sharing_busy = [olds[n] for n in SHARING if slots[olds[n]]["status"] == "busy"]
    assert len(sharing_busy) == len([n for n in SHARING if not moved[n].done])
    # A cancelled appointment's slot is free, or taken by the one mover who wanted it.
    for n in CANCELLING:
        slot = slots[olds[n]]
        taker = n + 3
        assert slot["status"] == ("busy" if moved[taker].done else "free"), (n, slot, moved[taker])
    # One move and one event for each that went through; each cancel recorded its move out of its slot.
    moves = await rows(first, "SELECT appointment_id FROM slot_moves WHERE how != 'cancelled' ORDER BY appointment_id")
    assert [r["appointment_id"] for r in moves] == sorted(appointments[n] for n in went)
    outs = await rows(first, "SELECT appointment_id, from_slot_id FROM slot_moves WHERE how = 'cancelled' ORDER BY id")
    assert sorted((r["appointment_id"], r["from_slot_id"]) for r in outs) == [
        (appointments[n], olds[n]) for n in CANCELLING
    ]
    events = Counter(
        r["appointment_id"] for r in await rows(first, "SELECT appointment_id FROM events WHERE kind = ?", (_MOVED,))
    )
    assert events == Counter(appointments[n] for n in went)


_MOVED = "appointment.rescheduled_by_patient"
