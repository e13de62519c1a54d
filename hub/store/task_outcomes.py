"""Recording a task's outcome: the appointment, the patient's message, the hospital event, the audit entry
and the task, all in one transaction, so a failure anywhere leaves nothing half-done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.links import patient_link
from hub.rules.tasks import QueuePolicy, after_no_answer
from hub.settings import Settings
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.outbox import MESSAGE_PATIENT_COLUMNS, queue_appointment_message, queue_message
from hub.store.reminders import announce_change
from hub.vocabulary import (
    ActorType,
    AuditAction,
    Channel,
    EventKind,
    HospitalStatus,
    MessageKind,
    RecordType,
    RequestState,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)

# What the hospital is told, and what the audit trail says, of each outcome an agent records.
_EVENTS = {
    TaskOutcome.REBOOKED: EventKind.TASK_REBOOKED,
    TaskOutcome.CANCELLED: EventKind.TASK_CANCELLED,
    TaskOutcome.NO_ANSWER: EventKind.TASK_NO_ANSWER,
    TaskOutcome.CLOSED: EventKind.TASK_CLOSED,
}
_AUDIT = {
    TaskOutcome.REBOOKED: AuditAction.TASK_REBOOKED,
    TaskOutcome.CANCELLED: AuditAction.TASK_CANCELLED,
    TaskOutcome.NO_ANSWER: AuditAction.TASK_NO_ANSWER,
    TaskOutcome.CLOSED: AuditAction.TASK_CLOSED,
}


@dataclass(frozen=True)
class Outcome:
    kind: TaskOutcome  # one of AGENT_OUTCOMES
    starts_at: datetime | None = None
    site_code: str = ""
    clinician: str = ""
    note: str = ""


class NotHeld(Exception):
    """The task is not (or no longer) claimed by this agent."""


async def _load(tx: Transaction, task_id: int, staff_id: int, now: datetime) -> Row:
    task = await tx.fetch_one(
        "SELECT id, kind, patient_id, appointment_id, attempts FROM tasks WHERE id = ? AND status = ?"
        " AND claimed_by = ? AND claimed_until > ?",
        (task_id, TaskStatus.CLAIMED, staff_id, to_db(now)),
    )
    if task is None:
        raise NotHeld(task_id)
    return task


async def _appointment(tx: Transaction, appointment_id: int) -> Row:
    row = await tx.fetch_one(
        "SELECT a.id, a.organisation_id, a.ref, a.patient_id, a.site_id, a.starts_at, a.clinic, a.clinician,"
        " a.status, s.name AS site_name, s.code AS site_code FROM appointments a JOIN sites s ON s.id = a.site_id"
        " WHERE a.id = ?",
        (appointment_id,),
    )
    assert row is not None
    return row


async def record_outcome(
    db: Database,
    *,
    task_id: int,
    staff_id: int,
    outcome: Outcome,
    settings: Settings,
    policy: QueuePolicy,
    now: datetime,
) -> str:
    """Returns what happened to the task: 'closed', 'retry' or 'letter'. Raises NotHeld, or ValueError for a
    site that does not exist or an appointment the outcome cannot apply to."""
    async with db.write() as tx:
        task = await _load(tx, task_id, staff_id, now)
        patient = await tx.fetch_one(
            f"SELECT {MESSAGE_PATIENT_COLUMNS}, organisation_id FROM patients WHERE id = ?", (task["patient_id"],)
        )
        assert patient is not None
        appointment = await _appointment(tx, task["appointment_id"]) if task["appointment_id"] else None
        if outcome.kind in (TaskOutcome.REBOOKED, TaskOutcome.CANCELLED) and appointment is None:
            raise ValueError("this call-back has no appointment to change")
        result = "closed"
        data: dict[str, Any] = {"task_id": task_id}
        if outcome.kind == TaskOutcome.REBOOKED and appointment is not None and outcome.starts_at is not None:
            data.update(await _rebook(tx, appointment, patient, outcome, settings=settings, now=now))
        elif outcome.kind == TaskOutcome.CANCELLED and appointment is not None:
            await _cancel(tx, appointment, patient, settings=settings, now=now)
        elif outcome.kind == TaskOutcome.NO_ANSWER:
            attempts, retry_at = after_no_answer(task["attempts"], now=now, policy=policy)
            data["attempts"] = attempts
            if retry_at is not None:
                await tx.execute(
                    "UPDATE tasks SET status = ?, claimed_by = NULL, claimed_until = NULL, attempts = ?,"
                    " not_before = ? WHERE id = ?",
                    (TaskStatus.OPEN, attempts, to_db(retry_at), task_id),
                )
                result = "retry"
            else:
                data["message_id"] = await _letter(tx, appointment, patient, settings=settings, now=now)
                result = "letter"
            await tx.execute("UPDATE tasks SET attempts = ? WHERE id = ?", (attempts, task_id))
        elif outcome.kind == TaskOutcome.CLOSED:
            await _withdraw_request(tx, task, now=now)
            data["note"] = outcome.note
        else:
            raise ValueError(f"unknown outcome {outcome.kind}")
        if result != "retry":
            await tx.execute(
                "UPDATE tasks SET status = ?, closed_at = ?, closed_by = ?, claimed_until = NULL,"
                " outcome = ?, note = ? WHERE id = ?",
                (
                    TaskStatus.CLOSED,
                    to_db(now),
                    staff_id,
                    outcome.kind if result == "closed" else TaskOutcome.NO_ANSWER_LETTER,
                    outcome.note,
                    task_id,
                ),
            )
        await record_event(
            tx,
            at=now,
            kind=_EVENTS[outcome.kind],
            organisation_id=patient["organisation_id"],
            patient_id=patient["id"],
            appointment_id=appointment["id"] if appointment else None,
            data={**data, "appointment_ref": appointment["ref"]} if appointment else data,
        )
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.AGENT,
            actor_id=staff_id,
            action=_AUDIT[outcome.kind],
            record_type=RecordType.TASK,
            record_id=task_id,
            detail=f"appointment {appointment['id']}" if appointment else "",
        )
    return result


async def _rebook(
    tx: Transaction, appointment: Row, patient: Row, outcome: Outcome, *, settings: Settings, now: datetime
) -> dict[str, Any]:
    assert outcome.starts_at is not None
    if appointment["status"] != HospitalStatus.BOOKED:
        raise ValueError("only a booked appointment can be rebooked")
    site_id, site_name = appointment["site_id"], appointment["site_name"]
    if outcome.site_code and outcome.site_code != appointment["site_code"]:
        site = await tx.fetch_one(
            "SELECT id, name FROM sites WHERE code = ? AND organisation_id = ?",
            (outcome.site_code, appointment["organisation_id"]),
        )
        if site is None:
            raise ValueError("no such site")
        site_id, site_name = site["id"], site["name"]
    clinician = outcome.clinician or appointment["clinician"]
    await tx.execute(
        "UPDATE appointments SET starts_at = ?, site_id = ?, clinician = ?, sequence = sequence + 1,"
        " request_state = ?, first_viewed_at = NULL, updated_at = ? WHERE id = ?",
        (to_db(outcome.starts_at), site_id, clinician, RequestState.NONE, to_db(now), appointment["id"]),
    )
    await announce_change(
        tx,
        settings=settings,
        notice=MessageKind.CHANGED,
        status=HospitalStatus.BOOKED,
        patient=patient,
        appointment_id=appointment["id"],
        starts_at=outcome.starts_at,
        site_name=site_name,
        clinic=appointment["clinic"],
        now=now,
    )
    return {
        "previous_start": from_db(appointment["starts_at"]).isoformat(),
        "start": outcome.starts_at.isoformat(),
        "site_code": outcome.site_code or appointment["site_code"],
        "clinician": clinician,
    }


async def _cancel(tx: Transaction, appointment: Row, patient: Row, *, settings: Settings, now: datetime) -> None:
    if appointment["status"] != HospitalStatus.BOOKED:
        raise ValueError("only a booked appointment can be cancelled")
    await tx.execute(
        "UPDATE appointments SET status = ?, sequence = sequence + 1, updated_at = ? WHERE id = ?",
        (HospitalStatus.CANCELLED, to_db(now), appointment["id"]),
    )
    # Another open request on the same appointment (a rebook) is answered by the cancellation.
    await tx.execute(
        "UPDATE tasks SET status = ?, closed_at = ?, outcome = ? WHERE appointment_id = ? AND status = ?",
        (TaskStatus.CLOSED, to_db(now), TaskOutcome.SUPERSEDED, appointment["id"], TaskStatus.OPEN),
    )
    starts_at = from_db(appointment["starts_at"])
    await announce_change(
        tx,
        settings=settings,
        notice=MessageKind.CANCELLED,
        status=HospitalStatus.CANCELLED,
        patient=patient,
        appointment_id=appointment["id"],
        starts_at=starts_at,
        site_name=appointment["site_name"],
        clinic=appointment["clinic"],
        now=now,
    )


async def _letter(tx: Transaction, appointment: Row | None, patient: Row, *, settings: Settings, now: datetime) -> int:
    """After the last unanswered call: a letter asking the patient to ring the booking team."""
    if appointment is not None:
        return await queue_appointment_message(
            tx,
            settings=settings,
            kind=MessageKind.NO_ANSWER,
            patient=patient,
            appointment_id=appointment["id"],
            starts_at=from_db(appointment["starts_at"]),
            site_name=appointment["site_name"],
            clinic=appointment["clinic"],
            now=now,
            channel=Channel.LETTER,
        )
    return await queue_message(
        tx,
        at=now,
        kind=MessageKind.NO_ANSWER,
        channel=Channel.LETTER,
        recipient="post",
        template_id=settings.notify.templates.no_answer_letter,
        personalisation={"link": patient_link(settings, patient["id"])},
        patient_id=patient["id"],
    )


async def _withdraw_request(tx: Transaction, task: Row, *, now: datetime) -> None:
    """Closing a rebook or cancel request (the patient changed their mind) leaves the appointment as it was."""
    if task["appointment_id"] is None or task["kind"] not in (TaskKind.REBOOK, TaskKind.CANCEL):
        return
    state = RequestState.REBOOK_REQUESTED if task["kind"] == TaskKind.REBOOK else RequestState.CANCEL_REQUESTED
    await tx.execute(
        "UPDATE appointments SET request_state = ?, updated_at = ? WHERE id = ? AND request_state = ?",
        (RequestState.NONE, to_db(now), task["appointment_id"], state),
    )
