"""Slots: the hospital's bookable times (upserted and withdrawn through the feed), the free ones that suit an
appointment, and the moves made into them (hub.store.slot_moves makes them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.appointments import Facts
from hub.rules.feed import Applied, source_hash
from hub.store.audit import Actor, record_audit
from hub.vocabulary import ActorType, AuditAction, RecordType, SlotMoveHow, SlotStatus

_SLOT_COLUMNS = (
    "s.id, s.organisation_id, s.ref, s.site_id, s.clinic, s.specialty, s.clinician, s.starts_at,"
    " s.duration_minutes, s.mode, s.status, s.appointment_id"
)


def _shaped(row: Row) -> Row:
    row["starts_at"] = from_db(row["starts_at"])
    return row


async def slot_audit(
    tx: Transaction, ref: str, *, actor: Actor, action: AuditAction, now: datetime, detail: str = ""
) -> None:
    await record_audit(
        tx,
        at=now,
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        record_type=RecordType.SLOT,
        record_id=ref,
        detail=detail,
    )


async def upsert_slot(
    tx: Transaction, *, organisation_id: int, ref: str, values: dict[str, Any], actor: str, now: datetime
) -> Applied:
    """The hospital's record of a slot. A slot the hub moved a patient into stays busy with that appointment, whatever
    the record says, while the appointment is booked at that time: the hospital has not booked it on its side yet."""
    fingerprint = source_hash(values)
    site = await tx.fetch_one(
        "SELECT id FROM sites WHERE organisation_id = ? AND code = ?", (organisation_id, values["site_code"])
    )
    errors: list[dict[str, str]] = []
    if site is None:
        errors.append({"field": "site_code", "message": "no site with this code in your organisation"})
    appointment_id: int | None = None
    if values.get("appointment_ref"):
        found = await tx.fetch_one(
            "SELECT id FROM appointments WHERE organisation_id = ? AND ref = ?",
            (organisation_id, values["appointment_ref"]),
        )
        if found is None:
            errors.append({"field": "appointment_ref", "message": "no appointment with this reference"})
        else:
            appointment_id = int(found["id"])
    if site is None or errors:
        return Applied("rejected", errors=tuple(errors))
    row = await tx.fetch_one(
        "SELECT id, source_hash FROM slots WHERE organisation_id = ? AND ref = ?", (organisation_id, ref)
    )
    held = await _held_by_hub(tx, int(row["id"]), values["start"]) if row is not None else None
    # The same record again changes nothing, unless the hub's hold on the slot has ended since: the record it
    # overrode (free, say, sent before the patient's move) applies now.
    if row is not None and row["source_hash"] == fingerprint and (held or not await _moved_into(tx, int(row["id"]))):
        return Applied("unchanged", int(row["id"]))
    status = str(values["status"])
    if status != SlotStatus.BUSY:
        appointment_id = None
    if held is not None:
        status, appointment_id = SlotStatus.BUSY, held
    params = (
        int(site["id"]),
        values["clinic"] or "",
        values["specialty"] or "",
        values["clinician"] or "",
        to_db(values["start"]),
        values["duration_minutes"],
        values["mode"],
        status,
        appointment_id,
        fingerprint,
        to_db(now),
    )
    columns = "site_id, clinic, specialty, clinician, starts_at, duration_minutes, mode, status, appointment_id"
    if row is None:
        created = await tx.fetch_one(
            f"INSERT INTO slots ({columns}, source_hash, updated_at, organisation_id, ref, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (*params, organisation_id, ref, to_db(now)),
        )
        assert created is not None
        applied, action = Applied("created", int(created["id"])), AuditAction.SLOT_CREATED
    else:
        sets = ", ".join(f"{c.strip()} = ?" for c in columns.split(","))
        await tx.execute(f"UPDATE slots SET {sets}, source_hash = ?, updated_at = ? WHERE id = ?", (*params, row["id"]))
        applied, action = Applied("updated", int(row["id"])), AuditAction.SLOT_UPDATED
    await slot_audit(tx, ref, actor=Actor(ActorType.API_KEY, actor), action=action, now=now, detail=status)
    return applied


async def _held_by_hub(tx: Transaction, slot_id: int, start: datetime) -> int | None:
    """The appointment the hub moved into this slot, while it is still booked there."""
    row = await tx.fetch_one(
        "SELECT a.id FROM slots s JOIN appointments a ON a.id = s.appointment_id"
        " WHERE s.id = ? AND s.status = ? AND a.status = 'booked' AND a.starts_at = ?"
        " AND EXISTS (SELECT 1 FROM slot_moves m WHERE m.to_slot_id = s.id AND m.appointment_id = a.id)",
        (slot_id, SlotStatus.BUSY, to_db(start)),
    )
    return int(row["id"]) if row else None


async def _moved_into(tx: Transaction, slot_id: int) -> bool:
    """Whether the slot is busy with an appointment the hub moved into it."""
    row = await tx.fetch_one(
        "SELECT 1 AS x FROM slots s WHERE s.id = ? AND s.status = ?"
        " AND EXISTS (SELECT 1 FROM slot_moves m WHERE m.to_slot_id = s.id AND m.appointment_id = s.appointment_id)",
        (slot_id, SlotStatus.BUSY),
    )
    return row is not None


async def withdraw_slot(tx: Transaction, *, organisation_id: int, ref: str, actor: str, now: datetime) -> Applied:
    """The hospital takes a slot back. An appointment in it stays as it is: only the hospital moves or cancels it."""
    row = await tx.fetch_one(
        "SELECT id, status FROM slots WHERE organisation_id = ? AND ref = ?", (organisation_id, ref)
    )
    if row is None:
        return Applied("rejected", errors=({"field": "slot_ref", "message": "no slot with this reference"},))
    if row["status"] == SlotStatus.WITHDRAWN:
        return Applied("unchanged", int(row["id"]))
    await tx.execute(
        "UPDATE slots SET status = ?, appointment_id = NULL, source_hash = NULL, updated_at = ? WHERE id = ?",
        (SlotStatus.WITHDRAWN, to_db(now), row["id"]),
    )
    await slot_audit(tx, ref, actor=Actor(ActorType.API_KEY, actor), action=AuditAction.SLOT_WITHDRAWN, now=now)
    return Applied("updated", int(row["id"]))


async def retake_left_slot(
    tx: Transaction,
    appointment_id: int,
    facts: Facts,
    *,
    previous_start: datetime,
    actor: Actor,
    now: datetime,
    how: SlotMoveHow | None = None,
) -> None:
    """Back at a time it was moved away from (an agent accepting the hospital's version of a conflict, which never
    had the move), or booked again after the hub's cancel (`how`: only a slot a cancel freed): the slot it left is its
    own again, when still free, so that nobody else is offered it. The move back into it is recorded, so that a later
    move away (an agent's typed-in time) frees it again."""
    if not facts.booked():
        return
    left = await tx.fetch_one(
        "SELECT s.id, s.ref, m.how FROM slot_moves m JOIN slots s ON s.id = m.from_slot_id WHERE m.appointment_id = ?"
        " AND s.status = ? AND s.starts_at = ? AND s.site_id = ? AND m.how = COALESCE(?, m.how)"
        " ORDER BY m.id DESC LIMIT 1",
        (appointment_id, SlotStatus.FREE, to_db(facts.starts_at), facts.site_id, how),
    )
    if left is None:
        return
    if await tx.execute(
        "UPDATE slots SET status = ?, appointment_id = ?, updated_at = ? WHERE id = ? AND status = ?",
        (SlotStatus.BUSY, appointment_id, to_db(now), left["id"], SlotStatus.FREE),
    ):
        back = SlotMoveHow.CANCELLED if left["how"] == SlotMoveHow.CANCELLED else SlotMoveHow.AGENT
        await record_slot_move(
            tx,
            appointment_id,
            from_slot_id=None,
            to_slot_id=int(left["id"]),
            previous_start=previous_start,
            actor=actor,
            how=back,
            now=now,
        )
        await slot_audit(
            tx,
            left["ref"],
            actor=actor,
            action=AuditAction.SLOT_UPDATED,
            now=now,
            detail=f"{SlotStatus.BUSY}: its appointment is back at its time",
        )


async def leave_moved_into_slots(
    tx: Transaction, appointment_id: int, facts: Facts, *, previous_start: datetime, actor: Actor, now: datetime
) -> None:
    """The appointment has gone to a time in no slot (an agent typed it in, or accepted the hospital's version of a
    conflict): a slot the hub had moved it into is free again, to be offered, and the move out of it is recorded, so
    that the hospital's version, accepted later, takes it back (`retake_left_slot`). Left as they are: a slot the
    hospital booked it into itself (the hospital frees it when it books the new time) and one at the time and site
    the appointment still has (it is still in it)."""
    held = await tx.fetch_all(
        "SELECT s.id, s.ref, s.starts_at, s.site_id FROM slots s WHERE s.appointment_id = ? AND s.status = ?"
        # Moved into by the hub, and not moved out of since (the hospital may have booked it there again itself).
        " AND EXISTS (SELECT 1 FROM slot_moves m WHERE m.appointment_id = s.appointment_id AND m.to_slot_id = s.id"
        "   AND NOT EXISTS (SELECT 1 FROM slot_moves n WHERE n.appointment_id = m.appointment_id"
        "     AND n.from_slot_id = s.id AND n.id > m.id))"
        " ORDER BY s.id",
        (appointment_id, SlotStatus.BUSY),
    )
    for slot in held:
        if facts.booked() and slot["starts_at"] == to_db(facts.starts_at) and int(slot["site_id"]) == facts.site_id:
            continue
        why = "its appointment moved to a time in no slot"
        await _leave(
            tx,
            appointment_id,
            slot,
            how=SlotMoveHow.AGENT,
            why=why,
            previous_start=previous_start,
            actor=actor,
            now=now,
        )


async def _leave(
    tx: Transaction,
    appointment_id: int,
    slot: Row,
    *,
    how: SlotMoveHow,
    why: str,
    previous_start: datetime,
    actor: Actor,
    now: datetime,
) -> None:
    """The appointment leaves the slot, which is free again: the move out of it recorded (to no slot), audited."""
    await tx.execute(
        "UPDATE slots SET status = ?, appointment_id = NULL, updated_at = ? WHERE id = ?",
        (SlotStatus.FREE, to_db(now), slot["id"]),
    )
    await record_slot_move(
        tx,
        appointment_id,
        from_slot_id=int(slot["id"]),
        to_slot_id=None,
        previous_start=previous_start,
        actor=actor,
        how=how,
        now=now,
    )
    detail = f"{SlotStatus.FREE}: {why}"
    await slot_audit(tx, slot["ref"], actor=actor, action=AuditAction.SLOT_UPDATED, now=now, detail=detail)


async def record_slot_move(
    tx: Transaction,
    appointment_id: int,
    *,
    from_slot_id: int | None,
    to_slot_id: int | None,
    previous_start: datetime,
    actor: Actor,
    how: SlotMoveHow,
    now: datetime,
) -> None:
    """A move of an appointment out of one slot (or none) into another (or none), for the console's history, the
    patient's rebook limit and taking a slot back (`retake_left_slot`)."""
    await tx.execute(
        "INSERT INTO slot_moves (appointment_id, from_slot_id, to_slot_id, previous_start, actor_type, actor_id, how,"
        " at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (appointment_id, from_slot_id, to_slot_id, to_db(previous_start), actor.type, str(actor.id), how, to_db(now)),
    )


async def free_held_slots(
    tx: Transaction, appointment_id: int, *, previous_start: datetime, actor: Actor, now: datetime
) -> None:
    """The hub cancelled the appointment (and tells the hospital): the slot it held is free again, to be offered, the
    hospital's own booking of it too (the hospital frees it when it takes in the cancel). The move out of it is
    recorded, so that the appointment, booked again at that time, takes it back (`retake_left_slot`)."""
    held = await tx.fetch_all(
        "SELECT id, ref FROM slots WHERE appointment_id = ? AND status = ? ORDER BY id",
        (appointment_id, SlotStatus.BUSY),
    )
    for slot in held:
        why = "its appointment was cancelled"
        await _leave(
            tx,
            appointment_id,
            slot,
            how=SlotMoveHow.CANCELLED,
            why=why,
            previous_start=previous_start,
            actor=actor,
            now=now,
        )


async def get_slot(db: Database | Transaction, slot_id: int) -> Row | None:
    row = await db.fetch_one(f"SELECT {_SLOT_COLUMNS} FROM slots s WHERE s.id = ?", (slot_id,))
    return _shaped(row) if row else None


async def list_free_slots(
    db: Database | Transaction, appointment: Row, *, first: datetime, last: datetime, limit: int = 1000
) -> list[Row]:
    """Free slots of the appointment's clinic, site, clinician and mode, from `first` to `last`, in time order."""
    rows = await db.fetch_all(
        f"SELECT {_SLOT_COLUMNS} FROM slots s WHERE s.organisation_id = ? AND s.site_id = ? AND s.clinic = ?"
        " AND s.clinician = ? AND s.mode = ? AND s.status = ? AND s.starts_at >= ? AND s.starts_at <= ?"
        " ORDER BY s.starts_at, s.id LIMIT ?",
        (
            appointment["organisation_id"],
            appointment["site_id"],
            appointment["clinic"],
            appointment["clinician"],
            appointment["mode"],
            SlotStatus.FREE,
            to_db(first),
            to_db(last),
            limit,
        ),
    )
    return [_shaped(r) for r in rows]


async def get_appointment_place(db: Database | Transaction, appointment_id: int) -> Row | None:
    """What decides which slots suit an appointment and whether its patient may move it themselves."""
    return await db.fetch_one(
        "SELECT a.id, a.organisation_id, o.code AS organisation_code, a.site_id, a.clinic, a.specialty, a.clinician,"
        " a.mode FROM appointments a JOIN organisations o ON o.id = a.organisation_id WHERE a.id = ?",
        (appointment_id,),
    )


async def list_clinic_free_slots(
    db: Database, appointment: Row, *, first: datetime, last: datetime, limit: int = 200
) -> list[Row]:
    """For agents: free slots of the appointment's clinic at any of the trust's sites and with any clinician."""
    rows = await db.fetch_all(
        f"SELECT {_SLOT_COLUMNS}, t.name AS site_name FROM slots s JOIN sites t ON t.id = s.site_id"
        " WHERE s.organisation_id = ? AND s.clinic = ? AND s.status = ? AND s.starts_at >= ? AND s.starts_at <= ?"
        " ORDER BY s.starts_at, s.id LIMIT ?",
        (appointment["organisation_id"], appointment["clinic"], SlotStatus.FREE, to_db(first), to_db(last), limit),
    )
    return [_shaped(r) for r in rows]


def patient_moves(appointment_id: str) -> str:
    """A subquery counting the patient's own moves of an appointment (`appointment_id`: its column, or `?`), which
    count against the rebook limit. A cancel's move out of the slot is none, whoever cancelled."""
    return (
        f"(SELECT COUNT(*) FROM slot_moves m WHERE m.appointment_id = {appointment_id}"
        f" AND m.actor_type = '{ActorType.PATIENT}' AND m.how != '{SlotMoveHow.CANCELLED}')"
    )


async def count_patient_moves(db: Database | Transaction, appointment_id: int) -> int:
    """The patient's own moves of an appointment, which count against the rebook limit."""
    row = await db.fetch_one(f"SELECT {patient_moves('?')} AS n", (appointment_id,))
    return int(row["n"]) if row else 0


async def slot_history(db: Database, appointment_id: int) -> list[Row]:
    """Every move of the appointment between slots, oldest first (for the console). A move to a time in no slot, or
    out of its slot by a cancel (`how` cancelled), has no `to_ref` or `to_start`."""
    rows = await db.fetch_all(
        "SELECT m.at, m.how, m.actor_type, m.actor_id, m.previous_start, f.ref AS from_ref, t.ref AS to_ref,"
        " t.starts_at AS to_start FROM slot_moves m LEFT JOIN slots t ON t.id = m.to_slot_id"
        " LEFT JOIN slots f ON f.id = m.from_slot_id WHERE m.appointment_id = ? ORDER BY m.at, m.id",
        (appointment_id,),
    )
    for row in rows:
        row["at"], row["previous_start"], row["to_start"] = (
            from_db(row["at"]),
            from_db(row["previous_start"]),
            from_db(row["to_start"]) if row["to_start"] else None,
        )
    return rows
