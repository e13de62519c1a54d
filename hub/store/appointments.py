"""Queries on appointments, and the patient's actions on them (each one transaction, audited, an event)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.appointments import ActionPolicy, Allowed, allowed_actions
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.reminders import stop_escalation, withdraw_reminders
from hub.vocabulary import (
    ActorType,
    AuditAction,
    CancelMode,
    EventKind,
    HospitalStatus,
    RecordType,
    RequestState,
    TaskKind,
    TaskStatus,
    WhyNot,
)

_COLUMNS = (
    "a.id, a.organisation_id, a.ref, a.patient_id, a.clinic, a.specialty, a.clinician, a.starts_at,"
    " a.duration_minutes, a.mode, a.transport_booked, a.interpreter_booked, a.status, a.request_state,"
    " a.sequence, a.first_viewed_at, s.code AS site_code, s.name AS site_name, s.address AS site_address,"
    " s.postcode AS site_postcode,"
    " s.phone AS site_phone, o.phone AS organisation_phone,"
    " EXISTS (SELECT 1 FROM letters l WHERE l.appointment_id = a.id AND l.first_viewed_at IS NULL) AS unread_letter"
)
_FROM = " FROM appointments a JOIN sites s ON s.id = a.site_id JOIN organisations o ON o.id = a.organisation_id"


def _shaped(row: Row) -> Row:
    row["starts_at"] = from_db(row["starts_at"])
    row["unread_letter"] = bool(row["unread_letter"])
    return row


async def list_appointments_for_patient(db: Database, patient_id: int, *, since: datetime) -> list[Row]:
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS}{_FROM} WHERE a.patient_id = ? AND a.starts_at >= ? ORDER BY a.starts_at",
        (patient_id, to_db(since)),
    )
    return [_shaped(r) for r in rows]


async def get_appointment_for_patient(db: Database | Transaction, patient_id: int, appointment_id: int) -> Row | None:
    row = await db.fetch_one(
        f"SELECT {_COLUMNS}{_FROM} WHERE a.id = ? AND a.patient_id = ?", (appointment_id, patient_id)
    )
    return _shaped(row) if row else None


async def count_rebook_requests(db: Database | Transaction, appointment_id: int) -> int:
    row = await db.fetch_one(
        "SELECT COUNT(*) AS n FROM tasks WHERE appointment_id = ? AND kind = ?",
        (appointment_id, TaskKind.REBOOK),
    )
    return int(row["n"]) if row else 0


async def get_open_rebook_task_id(db: Database | Transaction, appointment_id: int) -> int | None:
    row = await db.fetch_one(
        "SELECT id FROM tasks WHERE appointment_id = ? AND kind = ? AND status != ?",
        (appointment_id, TaskKind.REBOOK, TaskStatus.CLOSED),
    )
    return int(row["id"]) if row else None


async def actions_for(db: Database | Transaction, appointment: Row, *, now: datetime, policy: ActionPolicy) -> Allowed:
    return allowed_actions(
        status=appointment["status"],
        request_state=appointment["request_state"],
        starts_at=appointment["starts_at"],
        now=now,
        rebook_requests=await count_rebook_requests(db, appointment["id"]),
        policy=policy,
    )


@dataclass(frozen=True)
class ActionResult:
    done: bool
    why_not: WhyNot = WhyNot.NONE


async def _record(
    tx: Transaction, appointment: Row, *, action: AuditAction, kind: EventKind, at: datetime, data: dict[str, str]
) -> None:
    patient_id = appointment["patient_id"]
    await record_audit(
        tx,
        at=at,
        actor_type=ActorType.PATIENT,
        actor_id=patient_id,
        action=action,
        record_type=RecordType.APPOINTMENT,
        record_id=appointment["id"],
    )
    await record_event(
        tx,
        at=at,
        kind=kind,
        organisation_id=appointment["organisation_id"],
        patient_id=patient_id,
        appointment_id=appointment["id"],
        data={"appointment_ref": appointment["ref"], **data},
    )


async def _load(
    tx: Transaction, patient_id: int, appointment_id: int, now: datetime, policy: ActionPolicy
) -> tuple[Row | None, Allowed]:
    appointment = await get_appointment_for_patient(tx, patient_id, appointment_id)
    if appointment is None:
        return None, Allowed(False, False, False, WhyNot.MISSING)
    return appointment, await actions_for(tx, appointment, now=now, policy=policy)


async def confirm_appointment(
    db: Database, *, patient_id: int, appointment_id: int, now: datetime, policy: ActionPolicy
) -> ActionResult:
    async with db.write() as tx:
        appointment, allowed = await _load(tx, patient_id, appointment_id, now, policy)
        if appointment is None or not allowed.confirm:
            return ActionResult(False, allowed.why_not or WhyNot.CLOSED)
        if appointment["request_state"] == RequestState.CONFIRMED:
            return ActionResult(True)  # confirming twice is the same as once
        await tx.execute(
            "UPDATE appointments SET request_state = ?, updated_at = ? WHERE id = ?",
            (RequestState.CONFIRMED, to_db(now), appointment_id),
        )
        await _record(
            tx,
            appointment,
            action=AuditAction.CONFIRMED,
            kind=EventKind.APPOINTMENT_CONFIRMED,
            at=now,
            data={},
        )
    return ActionResult(True)


async def request_rebook(
    db: Database,
    *,
    patient_id: int,
    appointment_id: int,
    reason: str,
    preferred_times: str,
    now: datetime,
    policy: ActionPolicy,
) -> ActionResult:
    async with db.write() as tx:
        appointment, allowed = await _load(tx, patient_id, appointment_id, now, policy)
        if appointment is None:
            return ActionResult(False, WhyNot.MISSING)
        open_task = await get_open_rebook_task_id(tx, appointment_id)
        if open_task is not None and allowed.why_not == WhyNot.NONE:
            # Asking again before the booking centre has called updates the request; it is not a new one.
            await tx.execute(
                "UPDATE tasks SET reason = ?, preferred_times = ? WHERE id = ?",
                (reason, preferred_times, open_task),
            )
            await _record(
                tx,
                appointment,
                action=AuditAction.REBOOK_UPDATED,
                kind=EventKind.APPOINTMENT_REBOOK_UPDATED,
                at=now,
                data={"reason": reason},
            )
            return ActionResult(True)
        if not allowed.rebook:
            return ActionResult(False, allowed.why_not or WhyNot.LIMIT)
        await tx.execute(
            "INSERT INTO tasks (kind, patient_id, appointment_id, reason, preferred_times, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (TaskKind.REBOOK, patient_id, appointment_id, reason, preferred_times, to_db(now)),
        )
        await tx.execute(
            "UPDATE appointments SET request_state = ?, updated_at = ? WHERE id = ?",
            (RequestState.REBOOK_REQUESTED, to_db(now), appointment_id),
        )
        await _record(
            tx,
            appointment,
            action=AuditAction.REBOOK_REQUESTED,
            kind=EventKind.APPOINTMENT_REBOOK_REQUESTED,
            at=now,
            data={"reason": reason, "preferred_times": preferred_times},
        )
    return ActionResult(True)


async def cancel_appointment(
    db: Database,
    *,
    patient_id: int,
    appointment_id: int,
    reason: str,
    details: str,
    now: datetime,
    policy: ActionPolicy,
) -> ActionResult:
    async with db.write() as tx:
        appointment, allowed = await _load(tx, patient_id, appointment_id, now, policy)
        if appointment is None:
            return ActionResult(False, WhyNot.MISSING)
        if allowed.why_not == WhyNot.PENDING:
            return ActionResult(True)  # already asked: a second press changes nothing
        if not allowed.cancel:
            return ActionResult(False, allowed.why_not or WhyNot.CLOSED)
        data = {"reason": reason, "details": details}
        await withdraw_reminders(tx, appointment_id=appointment_id, now=now)
        # A cancel supersedes an open request to rebook: nobody should call back with a new date.
        await tx.execute(
            "UPDATE tasks SET status = ?, closed_at = ? WHERE appointment_id = ? AND kind = ? AND status != ?",
            (TaskStatus.CLOSED, to_db(now), appointment_id, TaskKind.REBOOK, TaskStatus.CLOSED),
        )
        if policy.cancel_mode == CancelMode.IMMEDIATE:
            await tx.execute(
                "UPDATE appointments SET status = ?, request_state = ?, sequence = sequence + 1, updated_at = ?"
                " WHERE id = ?",
                (HospitalStatus.CANCELLED, RequestState.CANCEL_REQUESTED, to_db(now), appointment_id),
            )
            await _record(
                tx,
                appointment,
                action=AuditAction.CANCELLED_BY_PATIENT,
                kind=EventKind.APPOINTMENT_CANCELLED_BY_PATIENT,
                at=now,
                data=data,
            )
            return ActionResult(True)
        await tx.execute(
            "INSERT INTO tasks (kind, patient_id, appointment_id, reason, created_at) VALUES (?, ?, ?, ?, ?)",
            (TaskKind.CANCEL, patient_id, appointment_id, f"{reason}: {details}" if details else reason, to_db(now)),
        )
        await tx.execute(
            "UPDATE appointments SET request_state = ?, updated_at = ? WHERE id = ?",
            (RequestState.CANCEL_REQUESTED, to_db(now), appointment_id),
        )
        await _record(
            tx,
            appointment,
            action=AuditAction.CANCEL_REQUESTED,
            kind=EventKind.APPOINTMENT_CANCEL_REQUESTED,
            at=now,
            data=data,
        )
    return ActionResult(True)


async def record_appointment_view(db: Database, appointment: Row, *, now: datetime) -> None:
    """The first time the patient opens an appointment. With no letter to read, that is what stops escalation."""
    if appointment["first_viewed_at"] is not None:
        return
    async with db.write() as tx:
        first = await tx.execute(
            "UPDATE appointments SET first_viewed_at = ? WHERE id = ? AND first_viewed_at IS NULL",
            (to_db(now), appointment["id"]),
        )
        letters = await tx.fetch_one("SELECT COUNT(*) AS n FROM letters WHERE appointment_id = ?", (appointment["id"],))
        if first and letters is not None and letters["n"] == 0:
            await stop_escalation(tx, appointment_id=appointment["id"], now=now)
