"""Recording a task's outcome: the appointment, the patient's message, the hospital event, the audit entry
and the task, all in one transaction, so a failure anywhere leaves nothing half-done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import format_date, format_time, to_db
from hub.db import Database, Row, Transaction
from hub.links import patient_link
from hub.rules.appointments import Refused, Transition
from hub.rules.lifecycle import accept_hospital, agent_cancelled, agent_rebooked, request_closed
from hub.rules.tasks import QueuePolicy, after_no_answer, may_email
from hub.settings import Settings
from hub.store.appointment_state import held_version
from hub.store.audit import Actor, record_audit
from hub.store.events import record_event
from hub.store.lifecycle import Loaded, apply_transition, load_appointment
from hub.store.outbox import (
    MESSAGE_PATIENT_COLUMNS,
    can_post,
    queue_appointment_message,
    queue_message,
    record_not_posted,
)
from hub.vocabulary import (
    ActorType,
    AuditAction,
    Channel,
    EventKind,
    MessageKind,
    RecordType,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)

# What the hospital is told, and what the audit trail says, of each outcome an agent records.
# (Rebooked and cancelled are the appointment's own events, written with the change by the lifecycle.)
_EVENTS = {
    TaskOutcome.NO_ANSWER: EventKind.TASK_NO_ANSWER,
    TaskOutcome.CLOSED: EventKind.TASK_CLOSED,
    # The patient's request is withdrawn as by a note: the hospital, told of the request, is told it closed.
    TaskOutcome.EMAILED: EventKind.TASK_CLOSED,
}
_AUDIT = {
    TaskOutcome.REBOOKED: AuditAction.TASK_REBOOKED,
    TaskOutcome.CANCELLED: AuditAction.TASK_CANCELLED,
    TaskOutcome.NO_ANSWER: AuditAction.TASK_NO_ANSWER,
    TaskOutcome.CLOSED: AuditAction.TASK_CLOSED,
    TaskOutcome.ACCEPTED_HOSPITAL: AuditAction.CONFLICT_ACCEPTED,
    TaskOutcome.EMAILED: AuditAction.TASK_EMAILED,
}


@dataclass(frozen=True)
class Outcome:
    kind: TaskOutcome  # one of AGENT_OUTCOMES
    starts_at: datetime | None = None
    site_code: str = ""
    clinician: str = ""
    note: str = ""
    held_version: str | None = None  # accepting the hospital's version: the held update the agent saw


class NotHeld(Exception):
    """The task is not (or no longer) claimed by this agent."""


async def _load(tx: Transaction, task_id: int, staff_id: int, now: datetime) -> Row:
    task = await tx.fetch_one(
        "SELECT id, kind, patient_id, appointment_id, attempts, prior_request_state FROM tasks WHERE id = ?"
        " AND status = ? AND claimed_by = ? AND claimed_until > ?",
        (task_id, TaskStatus.CLAIMED, staff_id, to_db(now)),
    )
    if task is None:
        raise NotHeld(task_id)
    return task


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
    """Returns what happened to the task: 'closed', 'retry', 'letter' or 'emailed'. Raises NotHeld, or ValueError for a
    site that does not exist or an appointment the outcome cannot apply to."""
    async with db.write() as tx:
        task = await _load(tx, task_id, staff_id, now)
        patient = await tx.fetch_one(
            f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE id = ?", (task["patient_id"],)
        )
        assert patient is not None
        appointment = await load_appointment(tx, task["appointment_id"]) if task["appointment_id"] else None
        changes = (TaskOutcome.REBOOKED, TaskOutcome.CANCELLED, TaskOutcome.ACCEPTED_HOSPITAL)
        if outcome.kind in changes and appointment is None:
            raise ValueError("this task has no appointment to change")
        agent = Actor(ActorType.AGENT, staff_id)
        result = "closed"
        data: dict[str, Any] = {"task_id": task_id}
        if outcome.kind in changes and appointment is not None:
            transition, extra = await _change(tx, appointment, outcome, now=now)
            await apply_transition(
                tx,
                appointment,
                transition,
                actor=agent,
                now=now,
                settings=settings,
                event_data={"task_id": task_id, **extra},
                acting_task_id=task_id,
            )
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
                await _close_request(tx, task, appointment, agent=agent, settings=settings, now=now)
                result = "letter"
            await tx.execute("UPDATE tasks SET attempts = ? WHERE id = ?", (attempts, task_id))
        elif outcome.kind == TaskOutcome.CLOSED:
            await _close_request(tx, task, appointment, agent=agent, settings=settings, now=now)
            data["note"] = outcome.note
        elif outcome.kind == TaskOutcome.EMAILED:
            # Nobody can phone a patient with no number: the approved template asks them to ring us instead.
            if not may_email(patient):
                raise ValueError(
                    "emailing is for a patient with an email address they have not stopped and no phone number"
                )
            data["message_id"] = await _email(tx, appointment, patient, settings=settings, now=now)
            await _close_request(tx, task, appointment, agent=agent, settings=settings, now=now)
            result = "emailed"
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
                    TaskOutcome.NO_ANSWER_LETTER if result == "letter" else outcome.kind,
                    outcome.note,
                    task_id,
                ),
            )
        if outcome.kind in _EVENTS:
            await record_event(
                tx,
                at=now,
                kind=_EVENTS[outcome.kind],
                organisation_id=patient["organisation_id"],
                patient_id=patient["id"],
                appointment_id=appointment.id if appointment else None,
                data={**data, "appointment_ref": appointment.ref} if appointment else data,
            )
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.AGENT,
            actor_id=staff_id,
            action=_AUDIT[outcome.kind],
            record_type=RecordType.TASK,
            record_id=task_id,
            detail=f"appointment {appointment.id}" if appointment else "",
        )
    return result


async def _change(
    tx: Transaction, appointment: Loaded, outcome: Outcome, *, now: datetime
) -> tuple[Transition, dict[str, Any]]:
    """The agent's change to the appointment, and what the hospital's event says beside the lifecycle's data."""
    extra: dict[str, Any] = {}
    result: Transition | Refused
    if outcome.kind == TaskOutcome.REBOOKED:
        assert outcome.starts_at is not None
        site_id = appointment.state.facts.site_id
        site = await tx.fetch_one(
            "SELECT id, code FROM sites WHERE organisation_id = ? AND (code = ? OR (? = '' AND id = ?))",
            (appointment.organisation_id, outcome.site_code, outcome.site_code, site_id),
        )
        if site is None:
            raise ValueError("no such site")
        extra["site_code"] = site["code"]
        clinician = outcome.clinician or appointment.state.facts.clinician
        result = agent_rebooked(appointment.state, starts_at=outcome.starts_at, site_id=site["id"], clinician=clinician)
        if isinstance(result, Refused):
            raise ValueError("only a booked appointment can be rebooked")
    elif outcome.kind == TaskOutcome.CANCELLED:
        result = agent_cancelled(appointment.state)
        if isinstance(result, Refused):
            raise ValueError("only a booked appointment can be cancelled")
    else:
        held = appointment.state.held
        if held is not None and outcome.held_version is not None and outcome.held_version != held_version(held):
            raise ValueError("the hospital has sent another update since this page was shown: check it, then accept")
        result = accept_hospital(appointment.state, now=now)
        if isinstance(result, Refused):
            raise ValueError("the hospital's record agrees with the hub's: there is nothing to accept")
    return result, extra


async def _close_request(
    tx: Transaction, task: Row, appointment: Loaded | None, *, agent: Actor, settings: Settings, now: datetime
) -> None:
    """A patient's request closed without a change: their request state returns to what it was before it."""
    if appointment is None:
        return
    transition = request_closed(appointment.state, kind=TaskKind(task["kind"]), prior_state=task["prior_request_state"])
    await apply_transition(
        tx, appointment, transition, actor=agent, now=now, settings=settings, acting_task_id=task["id"]
    )


async def _email(
    tx: Transaction, appointment: Loaded | None, patient: Row, *, settings: Settings, now: datetime
) -> int:
    personalisation: dict[str, str] = {"link": patient_link(settings, patient["link_id"])}
    if appointment is not None:
        site = await tx.fetch_one("SELECT name FROM sites WHERE id = ?", (appointment.state.facts.site_id,))
        personalisation.update(
            date=format_date(appointment.state.facts.starts_at),
            time=format_time(appointment.state.facts.starts_at),
            site=site["name"] if site else "",
            clinic=appointment.state.facts.clinic,
        )
    return await queue_message(
        tx,
        at=now,
        kind=MessageKind.NO_ANSWER,
        channel=Channel.EMAIL,
        recipient=patient["email"],
        template_id=settings.notify.templates.no_answer_email,
        personalisation=personalisation,
        patient_id=patient["id"],
        appointment_id=appointment.id if appointment else None,
    )


async def _letter(
    tx: Transaction, appointment: Loaded | None, patient: Row, *, settings: Settings, now: datetime
) -> int | None:
    """After the last unanswered call: a letter asking the patient to ring the booking team (None when there is no
    address to post it to: the booking centre gets a task for that instead)."""
    if appointment is not None:
        site = await tx.fetch_one("SELECT name FROM sites WHERE id = ?", (appointment.state.facts.site_id,))
        assert site is not None
        return await queue_appointment_message(
            tx,
            settings=settings,
            kind=MessageKind.NO_ANSWER,
            patient=patient,
            appointment_id=appointment.id,
            starts_at=appointment.state.facts.starts_at,
            site_name=site["name"],
            clinic=appointment.state.facts.clinic,
            now=now,
            channel=Channel.LETTER,
        )
    if not await can_post(tx, patient, appointment_id=None, kind=MessageKind.NO_ANSWER):
        await record_not_posted(tx, patient, appointment_id=None, kind=MessageKind.NO_ANSWER, now=now)
        return None
    return await queue_message(
        tx,
        at=now,
        kind=MessageKind.NO_ANSWER,
        channel=Channel.LETTER,
        recipient="post",
        template_id=settings.notify.templates.no_answer_letter,
        personalisation={"link": patient_link(settings, patient["link_id"])},
        patient_id=patient["id"],
    )
