"""Messages that may no longer go as they were queued: by a channel the patient has stopped, or with news a later
change has made wrong. A STOP or the hospital's opt-out sends every waiting message of that channel another way
(`reroute_waiting`); a permanent failure sends one message by the next channel (`replace_message`); and a message
put back in the queue after a temporary failure is checked again first (`requeued`), because while it was out
(claimed by a worker, or sent and awaiting its receipt) those withdrawals passed it by: they touch only what is
queued, never a message that may be on its way."""

from __future__ import annotations

import json
from datetime import datetime

from hub.db import Row, Transaction
from hub.rules.sending import withdrawn_by
from hub.settings import NotifyTemplates
from hub.store.audit import record_audit
from hub.store.outbox import can_post, queue_message
from hub.vocabulary import (
    ESCALATION_PREFIX,
    ActorType,
    AuditAction,
    Channel,
    Lane,
    MessageKind,
    MessageStatus,
    RecordType,
)

MESSAGE_COLUMNS = (
    "id, kind, lane, channel, patient_id, appointment_id, personalisation, status, attempts, notify_id,"
    " delivery_status, urgent, pdf_letter_id"
)
PATIENT_COLUMNS = (
    "id, organisation_id, email, opted_out, sms_opted_out, email_opted_out, given_name, family_name, address_lines,"
    " postcode, link_id"
)
# The unread-letter escalation, stopped once the patient has read the letter (hub.store.reminders.stop_escalation).
_ESCALATION_KINDS = frozenset({MessageKind.INVITATION_REMINDER, MessageKind.INVITATION_POST})
_STOPPED = {Channel.SMS: "sms_opted_out", Channel.EMAIL: "email_opted_out"}


def next_channel(channel: str, *, has_email: bool, can_post: bool) -> Channel | None:
    """Where a message goes when its channel failed for good: a text by email, then by post."""
    if channel == Channel.SMS and has_email:
        return Channel.EMAIL
    if channel in (Channel.SMS, Channel.EMAIL) and can_post:
        return Channel.LETTER
    return None


async def read_patient(tx: Transaction, patient_id: int | None) -> Row | None:
    if patient_id is None:
        return None
    return await tx.fetch_one(f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id = ?", (patient_id,))


async def replace_message(
    tx: Transaction, message: Row, patient: Row, *, templates: NotifyTemplates, now: datetime, why: str, actor: str
) -> tuple[str, int] | None:
    """Queue the same message by the next channel: (channel, new message id), or None when there is none."""
    posting = message["pdf_letter_id"] is not None or await can_post(
        tx, patient, appointment_id=message["appointment_id"], kind=message["kind"]
    )
    emailing = bool(patient["email"]) and not patient["email_opted_out"]
    channel: Channel | None = Channel(message["channel"])
    template_id: str | None = None
    # Channel after channel, to one the message can go by: a kind with no template by a channel skips it.
    while template_id is None and channel is not None:
        channel = next_channel(channel, has_email=emailing, can_post=posting)
        if channel is not None:
            template_id = templates.template_for(message["kind"], channel)
    if channel is None or template_id is None:
        return None
    replacement = await queue_message(
        tx,
        at=now,
        kind=message["kind"],
        channel=channel,
        recipient=patient["email"] if channel == Channel.EMAIL else "post",
        template_id=template_id,
        personalisation=json.loads(message["personalisation"]),
        patient_id=patient["id"],
        appointment_id=message["appointment_id"],
    )
    await tx.execute(
        "UPDATE outbox_messages SET urgent = ?, pdf_letter_id = ? WHERE id = ?",
        (message["urgent"], message["pdf_letter_id"] if channel == Channel.LETTER else None, replacement),
    )
    detail = f"{channel}, replacing {message['channel']} message {message['id']} ({why})"
    await audit_message(tx, now, AuditAction.NOTIFICATION_QUEUED, replacement, detail, actor=actor)
    return channel, replacement


async def reroute_waiting(
    tx: Transaction,
    patient_id: int,
    channel: Channel,
    *,
    templates: NotifyTemplates,
    now: datetime,
    why: str,
    actor: str,
) -> None:
    """Messages waiting to go by a channel the patient has just stopped: sent another way instead. Withdrawn in one
    conditional UPDATE, as `announce` withdraws: a message a worker has claimed meanwhile (and may be sending) is
    left to its claim, never marked cancelled under it and replaced, which sent it twice. If that claim's send
    fails for now, `requeued` sends it another way then."""
    patient = await read_patient(tx, patient_id)
    assert patient is not None
    waiting = await tx.fetch_all(
        "UPDATE outbox_messages SET status = ?, error = ? WHERE patient_id = ? AND channel = ? AND lane = ?"
        f" AND status = ? RETURNING {MESSAGE_COLUMNS}",
        (MessageStatus.CANCELLED, why, patient_id, channel, Lane.BULK, MessageStatus.QUEUED),
    )
    for message in sorted(waiting, key=lambda m: int(m["id"])):
        await audit_message(tx, now, AuditAction.NOTIFICATION_CANCELLED, message["id"], why, actor=actor)
        await replace_message(tx, message, patient, templates=templates, now=now, why=why, actor=actor)


async def requeued(tx: Transaction, message_id: int, *, templates: NotifyTemplates, now: datetime, actor: str) -> None:
    """A bulk message just put back in the queue to try again: withdrawn if, while it was out, a later message
    about its appointment made it wrong (an invitation once the appointment is cancelled or moved), the patient
    read the letter an unread-letter reminder is about, or they stopped its channel (then it goes another way).
    Run in the transaction that re-queued it, under its patient's lock (hub.db.postgres), which the writes that
    withdraw messages hold too: none can pass it by between this check and the commit."""
    message = await tx.fetch_one(
        f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE id = ? AND status = ? AND lane = ?",
        (message_id, MessageStatus.QUEUED, Lane.BULK),
    )
    if message is None:
        return
    why = await _superseded(tx, message)
    if why is not None:
        await tx.execute(
            "UPDATE outbox_messages SET status = ?, error = ? WHERE id = ? AND status = ?",
            (MessageStatus.CANCELLED, why, message_id, MessageStatus.QUEUED),
        )
        await audit_message(tx, now, AuditAction.NOTIFICATION_CANCELLED, message_id, why, actor=actor)
        return
    patient = await read_patient(tx, message["patient_id"])
    stopped = _STOPPED.get(message["channel"])
    if patient is not None and stopped is not None and patient[stopped]:
        channel = Channel(message["channel"])
        await reroute_waiting(
            tx, patient["id"], channel, templates=templates, now=now, why=f"{channel} opted out", actor=actor
        )


async def _superseded(tx: Transaction, message: Row) -> str | None:
    if message["appointment_id"] is None:
        return None
    later = withdrawn_by(message["kind"])
    if later:
        newer = await tx.fetch_one(
            "SELECT kind FROM outbox_messages WHERE appointment_id = ? AND id > ? AND lane = ?"
            f" AND kind IN ({', '.join('?' for _ in later)}) ORDER BY id LIMIT 1",
            (message["appointment_id"], message["id"], Lane.BULK, *sorted(later)),
        )
        if newer is not None:
            return f"superseded by {newer['kind']}"
    if message["kind"] in _ESCALATION_KINDS:
        opened = await tx.fetch_one(
            "SELECT 1 AS opened FROM scheduled_notices WHERE appointment_id = ? AND outcome = 'opened'"
            " AND substr(kind, 1, ?) = ? LIMIT 1",
            (message["appointment_id"], len(ESCALATION_PREFIX), ESCALATION_PREFIX),
        )
        if opened is not None:
            return "letter opened"
    return None


async def audit_message(
    tx: Transaction, now: datetime, action: AuditAction, message_id: int, detail: str, *, actor: str
) -> None:
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.SYSTEM,
        actor_id=actor,
        action=action,
        record_type=RecordType.MESSAGE,
        record_id=message_id,
        detail=detail,
    )
