"""Giving up on a message: one function for every place that does, so that each failure is handled alike. Notify's
delivery receipts give up on a message it could not deliver (hub.store.receipts); the sender gives up on one Notify
refused, or still did not have after the last attempt (hub.notify.sender).

Given up on, a message is marked failed and audited. When its address failed (a number or an email address that
reaches nobody) and it is still true, it goes again by the patient's next channel, and the hospital hears it failed
over; otherwise the hospital hears it failed, and the booking centre gets a task to chase it, unless it is no longer
true (its appointment cancelled or past since it was queued, its offer ended): then there is nothing to chase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.db import Row, Transaction
from hub.settings import NotifyTemplates
from hub.store.audit import audit_message
from hub.store.events import record_event
from hub.store.outbox import withdraw_posted_copies
from hub.store.rerouting import replace_message
from hub.store.stale_messages import MESSAGE_COLUMNS, judge, read_patient
from hub.store.tasks import create_task
from hub.vocabulary import AuditAction, EventKind, Lane, MessageStatus, TaskKind


@dataclass(frozen=True)
class Failure:
    """Why a message is given up on. `status`: what the hospital is told (`data.status`), Notify's own status from
    a receipt or the sender's (hub.vocabulary.SendFailure). `fail_over`: the address failed, so another channel may
    reach the patient; not when the sending did (its retries used up), nor for a security code (dead long before
    another channel could deliver it). `detail`: more for staff, with no personal data."""

    status: str
    fail_over: bool
    detail: str = ""


@dataclass(frozen=True)
class Fence:
    """The state of the message its caller read and acts on (`where`, over outbox_messages' columns): the UPDATE
    that fails it changes nothing when the row has moved on since (another claim took it, another receipt settled
    it), and then nothing else is done."""

    where: str
    params: tuple[Any, ...] = ()


async def fail_message(
    tx: Transaction,
    message_id: int,
    *,
    fence: Fence,
    changes: dict[str, Any],
    failure: Failure,
    templates: NotifyTemplates,
    now: datetime,
    actor: str,
) -> bool:
    """Give up on the message, as the module says, when it is still as its caller read it; `changes`: the caller's
    own columns to set with its status (its error, its claim released). True when it was given up on here.

    The transaction holds the lock of the message's patient (hub.db.postgres): sending it another way reads the
    patient's channels and the appointment, which their own writes change."""
    assigned = "".join(f", {column} = ?" for column in changes)
    message = await tx.fetch_one(
        f"UPDATE outbox_messages SET status = ?{assigned} WHERE id = ? AND {fence.where} RETURNING {MESSAGE_COLUMNS}",
        (MessageStatus.FAILED, *changes.values(), message_id, *fence.params),
    )
    if message is None:
        return False
    bulk = message["lane"] == Lane.BULK
    stale, said = (None, None)
    if message["appointment_id"] is not None and bulk:
        stale, said, _ = await judge(tx, message, now=now)
    what = f"{message['channel']} {failure.status}" + (f": {failure.detail}" if failure.detail else "")
    detail = what + (f"; {stale}: not sent another way" if stale else "")
    await audit_message(tx, now, AuditAction.NOTIFICATION_FAILED, message["id"], detail, actor=actor)
    # The unread invitation's posted copy was announced when queued ("Letter sent by post"; letter.escalated_to_post):
    # that task is closed and the hospital told it was not posted, as when it is withdrawn.
    why = f"Notify could not deliver it ({failure.status})"
    await withdraw_posted_copies(tx, [message], why=why, now=now, actor=actor, reason="not_delivered")
    patient = await read_patient(tx, message["patient_id"])
    if patient is None:
        return True
    data = {"message_id": str(message["id"]), "kind": message["kind"], "status": failure.status}
    replaced = None
    if failure.fail_over and bulk and not stale:
        replaced = await replace_message(
            tx,
            message,
            patient,
            templates=templates,
            now=now,
            why=failure.status,
            actor=actor,
            personalisation=said,
        )
    if replaced is not None:
        channel, replacement = replaced
        data.update({"from": message["channel"], "to": channel, "replacement_id": str(replacement)})
        await _event(tx, now, EventKind.NOTIFICATION_FAILED_OVER, patient, message, data)
        return True
    await _event(tx, now, EventKind.NOTIFICATION_FAILED, patient, message, {**data, "channel": message["channel"]})
    if bulk and not stale:
        # Staff see it in the task queue: the patient has not heard from us.
        await create_task(
            tx,
            kind=TaskKind.FAILED_NOTIFICATION,
            patient_id=patient["id"],
            appointment_id=message["appointment_id"],
            reason=what,
            now=now,
            source_id=message["id"],
        )
    return True


async def _event(
    tx: Transaction, now: datetime, kind: EventKind, patient: Row, message: Row, data: dict[str, Any]
) -> None:
    await record_event(
        tx,
        at=now,
        kind=kind,
        organisation_id=patient["organisation_id"],
        patient_id=patient["id"],
        appointment_id=message["appointment_id"],
        data=data,
    )
