"""Recording a call-back's outcome: the appointment, the patient's message, the hospital event, the audit entry
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
from hub.store.audit import record_audit, record_event
from hub.store.notices import NOTICE_PATIENT_COLUMNS, queue_appointment_notice
from hub.store.outbox import queue_message
from hub.store.reminders import announce_change


@dataclass(frozen=True)
class Outcome:
    kind: str  # rebooked | cancelled | no_answer | closed
    starts_at: datetime | None = None
    site_code: str = ""
    clinician: str = ""
    note: str = ""


class NotHeld(Exception):
    """The task is not (or no longer) claimed by this agent."""


async def _load(tx: Transaction, task_id: int, staff_id: int, now: datetime) -> Row:
    task = await tx.fetch_one(
        "SELECT id, kind, patient_id, appointment_id, attempts FROM tasks WHERE id = ? AND status = 'claimed'"
        " AND claimed_by = ? AND claimed_until > ?",
        (task_id, staff_id, to_db(now)),
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
            f"SELECT {NOTICE_PATIENT_COLUMNS}, organisation_id FROM patients WHERE id = ?", (task["patient_id"],)
        )
        assert patient is not None
        appointment = await _appointment(tx, task["appointment_id"]) if task["appointment_id"] else None
        if outcome.kind in ("rebooked", "cancelled") and appointment is None:
            raise ValueError("this call-back has no appointment to change")
        result = "closed"
        data: dict[str, Any] = {"task_id": task_id}
        if outcome.kind == "rebooked" and appointment is not None and outcome.starts_at is not None:
            data.update(await _rebook(tx, appointment, patient, outcome, settings=settings, now=now))
        elif outcome.kind == "cancelled" and appointment is not None:
            await _cancel(tx, appointment, patient, settings=settings, now=now)
        elif outcome.kind == "no_answer":
            attempts, retry_at = after_no_answer(task["attempts"], now=now, policy=policy)
            data["attempts"] = attempts
            if retry_at is not None:
                await tx.execute(
                    "UPDATE tasks SET status = 'open', claimed_by = NULL, claimed_until = NULL, attempts = ?,"
                    " not_before = ? WHERE id = ?",
                    (attempts, to_db(retry_at), task_id),
                )
                result = "retry"
            else:
                data["message_id"] = await _letter(tx, appointment, patient, settings=settings, now=now)
                result = "letter"
            await tx.execute("UPDATE tasks SET attempts = ? WHERE id = ?", (attempts, task_id))
        elif outcome.kind == "closed":
            await _withdraw_request(tx, task, now=now)
            data["note"] = outcome.note
        else:
            raise ValueError(f"unknown outcome {outcome.kind}")
        if result != "retry":
            await tx.execute(
                "UPDATE tasks SET status = 'closed', closed_at = ?, closed_by = ?, claimed_until = NULL,"
                " outcome = ?, note = ? WHERE id = ?",
                (
                    to_db(now),
                    staff_id,
                    outcome.kind if result == "closed" else "no_answer_letter",
                    outcome.note,
                    task_id,
                ),
            )
        await record_event(
            tx,
            at=now,
            kind=f"callback.{outcome.kind}",
            organisation_id=patient["organisation_id"],
            patient_id=patient["id"],
            appointment_id=appointment["id"] if appointment else None,
            data={**data, "appointment_ref": appointment["ref"]} if appointment else data,
        )
        await record_audit(
            tx,
            at=now,
            actor_type="agent",
            actor_id=staff_id,
            action=f"task_{outcome.kind}",
            record_type="callback_task",
            record_id=task_id,
            detail=f"appointment {appointment['id']}" if appointment else "",
        )
    return result


async def _rebook(
    tx: Transaction, appointment: Row, patient: Row, outcome: Outcome, *, settings: Settings, now: datetime
) -> dict[str, Any]:
    assert outcome.starts_at is not None
    if appointment["status"] != "booked":
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
        " request_state = 'none', first_viewed_at = NULL, updated_at = ? WHERE id = ?",
        (to_db(outcome.starts_at), site_id, clinician, to_db(now), appointment["id"]),
    )
    await announce_change(
        tx,
        settings=settings,
        notice="changed",
        status="booked",
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
    if appointment["status"] != "booked":
        raise ValueError("only a booked appointment can be cancelled")
    await tx.execute(
        "UPDATE appointments SET status = 'cancelled', sequence = sequence + 1, updated_at = ? WHERE id = ?",
        (to_db(now), appointment["id"]),
    )
    # Another open request on the same appointment (a rebook) is answered by the cancellation.
    await tx.execute(
        "UPDATE tasks SET status = 'closed', closed_at = ?, outcome = 'superseded' WHERE appointment_id = ?"
        " AND status = 'open'",
        (to_db(now), appointment["id"]),
    )
    starts_at = from_db(appointment["starts_at"])
    await announce_change(
        tx,
        settings=settings,
        notice="cancelled",
        status="cancelled",
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
        return await queue_appointment_notice(
            tx,
            settings=settings,
            kind="no_answer",
            patient=patient,
            appointment_id=appointment["id"],
            starts_at=from_db(appointment["starts_at"]),
            site_name=appointment["site_name"],
            clinic=appointment["clinic"],
            now=now,
            channel="letter",
        )
    return await queue_message(
        tx,
        at=now,
        kind="no_answer",
        channel="letter",
        recipient="post",
        template_id=settings["notify.templates.no_answer_letter"],
        personalisation={"link": patient_link(settings, patient["id"])},
        patient_id=patient["id"],
    )


async def _withdraw_request(tx: Transaction, task: Row, *, now: datetime) -> None:
    """Closing a rebook or cancel request (the patient changed their mind) leaves the appointment as it was."""
    if task["appointment_id"] is None or task["kind"] not in ("rebook", "cancel"):
        return
    state = "rebook_requested" if task["kind"] == "rebook" else "cancel_requested"
    await tx.execute(
        "UPDATE appointments SET request_state = 'none', updated_at = ? WHERE id = ? AND request_state = ?",
        (to_db(now), task["appointment_id"], state),
    )
