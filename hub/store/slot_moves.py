"""Moving an appointment into a free slot: one conditional write takes the slot, so two people choosing the same
time at once get it once; the appointment moves through the lifecycle in the same transaction, and the slot it
leaves is freed. By the patient (their own clinic, site and clinician, inside the window) or by an agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import to_db
from hub.db import Database, Row, Transaction
from hub.db.dialect import SKIP_LOCKED
from hub.rules.appointments import ActionPolicy, Appointment, Refused, Transition
from hub.rules.lifecycle import agent_rebooked, patient_rescheduled
from hub.rules.slots import Window
from hub.settings import Settings
from hub.store.audit import Actor
from hub.store.lifecycle import apply_transition, load_appointment
from hub.store.slots import get_slot, record_slot_move, slot_audit
from hub.vocabulary import ActorType, AuditAction, SlotMoveHow, SlotStatus, WhyNot


@dataclass(frozen=True)
class Moved:
    done: bool
    why_not: WhyNot = WhyNot.NONE
    freed_slot_id: int | None = None  # the slot the appointment left, free again


# What a move decides from the appointment's state, the slot and the event's slot data.
Decide = Callable[[Appointment, Row, dict[str, str]], Transition | Refused]


async def move_into_slot(
    db: Database,
    *,
    appointment_id: int,
    slot_id: int,
    decide: Decide,
    actor: Actor,
    how: SlotMoveHow,
    now: datetime,
    settings: Settings,
    patient_id: int | None = None,
    suits: Callable[[Row, Row], bool] | None = None,
    after: Callable[[Transaction, bool], Awaitable[None]] | None = None,
) -> Moved:
    """Move an appointment into a free slot, in one transaction: the slot is taken by one conditional write (free ->
    busy), so of everyone choosing it at once exactly one gets it and the rest are told it has gone; then the
    appointment moves through the lifecycle and the slot it leaves is freed. `patient_id`: only their own. `after`
    runs in the same transaction once the slot is known taken (True) or gone (False).

    A patient's own move locks only that patient (on PostgreSQL, see hub.db.postgres): the slot it takes is locked by
    its conditional write, the one it leaves as it is chosen (`_current_slot`), both until it commits; every other
    writer of the appointment holds the same patient's lock (their own actions, the hospital's feed) or the ordinary
    lock outright (an agent's move, a merge, the hospital's slots), so waits for it."""
    async with db.write(patient=patient_id) if patient_id is not None else db.write() as tx:
        loaded = await load_appointment(tx, appointment_id)
        if loaded is None or (patient_id is not None and loaded.patient_id != patient_id):
            return Moved(False, WhyNot.MISSING)
        slot = await get_slot(tx, slot_id)
        if slot is None or slot["organisation_id"] != loaded.organisation_id:
            return Moved(False, WhyNot.MISSING)
        if slot["status"] != SlotStatus.FREE or (suits is not None and not suits(_appointment_row(loaded), slot)):
            if after is not None:
                await after(tx, False)
            return Moved(False, WhyNot.GONE)
        old = await _current_slot(
            tx, loaded.id, loaded.organisation_id, _appointment_row(loaded), skip_locked=SKIP_LOCKED[db.dialect]
        )
        data = {"slot_ref": slot["ref"], "previous_slot_ref": old["ref"] if old else "", "how": str(how)}
        result = decide(loaded.state, slot, data)
        if isinstance(result, Refused):
            return Moved(False, result.why_not)
        taken = await tx.execute(
            "UPDATE slots SET status = ?, appointment_id = ?, updated_at = ? WHERE id = ? AND status = ?",
            (SlotStatus.BUSY, loaded.id, to_db(now), slot_id, SlotStatus.FREE),
        )
        if taken != 1:
            if after is not None:
                await after(tx, False)
            return Moved(False, WhyNot.GONE)
        updated = AuditAction.SLOT_UPDATED
        await slot_audit(
            tx,
            slot["ref"],
            actor=actor,
            action=updated,
            now=now,
            detail=f"{SlotStatus.BUSY}: an appointment moved into it ({how})",
        )
        if old is not None and await tx.execute(
            "UPDATE slots SET status = ?, appointment_id = NULL, updated_at = ? WHERE id = ? AND status = ?",
            (SlotStatus.FREE, to_db(now), old["id"], SlotStatus.BUSY),
        ):
            await slot_audit(
                tx,
                old["ref"],
                actor=actor,
                action=updated,
                now=now,
                detail=f"{SlotStatus.FREE}: its appointment moved to another slot ({how})",
            )
        if after is not None:  # before the lifecycle's event: its lock is taken last (hub.db.postgres)
            await after(tx, True)
        await record_slot_move(
            tx,
            loaded.id,
            from_slot_id=int(old["id"]) if old else None,
            to_slot_id=slot_id,
            previous_start=loaded.state.facts.starts_at,
            actor=actor,
            how=how,
            now=now,
        )
        await apply_transition(tx, loaded, result, actor=actor, now=now, settings=settings, event_data=data)
    return Moved(True, freed_slot_id=int(old["id"]) if old else None)


def _appointment_row(loaded: Any) -> Row:
    f = loaded.state.facts
    return {
        "organisation_id": loaded.organisation_id,
        "site_id": f.site_id,
        "clinic": f.clinic,
        "clinician": f.clinician,
        "mode": f.mode,
        "starts_at": f.starts_at,
    }


async def _current_slot(
    tx: Transaction, appointment_id: int, organisation_id: int, appointment: Row, *, skip_locked: str
) -> Row | None:
    """The slot the appointment is in: the one linked to it (at its time and site first: the hospital may still link
    it to a slot the hub moved it out of, not having taken the move in yet), or else a busy slot at its place and time
    that no appointment is linked to. Such a slot may serve several appointments at that place and time (the
    hospital's parallel slots): it is locked as it is chosen, and a move choosing at the same moment passes it by for
    the next, so that two moves never free one slot (and leave its twin busy), nor free one another patient has just
    taken."""
    row = await tx.fetch_one(
        "SELECT id, ref FROM slots WHERE appointment_id = ? AND status = ?"
        " ORDER BY CASE WHEN starts_at = ? AND site_id = ? THEN 0 ELSE 1 END, id LIMIT 1",
        (appointment_id, SlotStatus.BUSY, to_db(appointment["starts_at"]), appointment["site_id"]),
    )
    if row is not None:
        return row
    return await tx.fetch_one(
        "SELECT id, ref FROM slots WHERE organisation_id = ? AND site_id = ? AND clinic = ? AND clinician = ?"
        f" AND starts_at = ? AND status = ? AND appointment_id IS NULL ORDER BY id LIMIT 1{skip_locked}",
        (
            organisation_id,
            appointment["site_id"],
            appointment["clinic"],
            appointment["clinician"],
            to_db(appointment["starts_at"]),
            SlotStatus.BUSY,
        ),
    )


def same_place(appointment: Row, slot: Row) -> bool:
    """A slot a patient may move to: the appointment's own clinic, site, clinician and kind (only the time changes)."""
    return all(appointment[k] == slot[k] for k in ("organisation_id", "site_id", "clinic", "clinician", "mode"))


async def reschedule_by_patient(
    db: Database,
    *,
    patient_id: int,
    appointment_id: int,
    slot_id: int,
    now: datetime,
    policy: ActionPolicy,
    window: Window,
    settings: Settings,
    how: SlotMoveHow = SlotMoveHow.PATIENT,
    after: Callable[[Transaction, bool], Awaitable[None]] | None = None,
    shown_start: datetime | None = None,
) -> Moved:
    """The patient moves their own appointment into a free slot of the same clinic, site and clinician, inside the
    window, within their rebook limit and outside the change cut-off. `shown_start`: the slot's time on the page the
    patient confirmed; a slot the hospital has given another time since is gone to them, not taken at a time they
    never saw."""

    def decide(state: Appointment, slot: Row, data: dict[str, str]) -> Transition | Refused:
        return patient_rescheduled(
            state,
            starts_at=slot["starts_at"],
            duration_minutes=int(slot["duration_minutes"]),
            data=data,
            now=now,
            policy=policy,
        )

    return await move_into_slot(
        db,
        appointment_id=appointment_id,
        slot_id=slot_id,
        decide=decide,
        actor=Actor(ActorType.PATIENT, patient_id),
        how=how,
        now=now,
        settings=settings,
        patient_id=patient_id,
        suits=lambda appointment, slot: (
            same_place(appointment, slot)
            and window.holds(slot["starts_at"], now)
            and shown_start in (None, slot["starts_at"])
        ),
        after=after,
    )


async def book_slot_by_agent(
    db: Database, *, staff_id: int, appointment_id: int, slot_id: int, now: datetime, settings: Settings
) -> Moved:
    """An agent moves a patient's appointment into a free slot of its clinic (any site or clinician), with the same
    conditional write as patients use: an agent and a patient never both get one slot."""

    def decide(state: Appointment, slot: Row, data: dict[str, str]) -> Transition | Refused:
        return agent_rebooked(
            state,
            starts_at=slot["starts_at"],
            site_id=int(slot["site_id"]),
            clinician=str(slot["clinician"]),
            in_slot=True,
        )

    return await move_into_slot(
        db,
        appointment_id=appointment_id,
        slot_id=slot_id,
        decide=decide,
        actor=Actor(ActorType.AGENT, staff_id),
        how=SlotMoveHow.AGENT,
        now=now,
        settings=settings,
        suits=lambda appointment, slot: appointment["clinic"] == slot["clinic"] and slot["starts_at"] > now,
    )
