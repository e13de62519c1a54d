"""What Notify tells us back: delivery receipts and the texts patients send, each applied in one transaction.

Notify retries a callback that gets no 2xx answer (every 5 minutes, 5 times) and may deliver receipts out of
order, so everything here is idempotent: a receipt or text seen before, or one that arrives after a final
answer, changes nothing. Audit details and events never carry message bodies or contact details.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import to_db
from hub.db import Database, Row, Transaction
from hub.links import patient_link
from hub.rules.contacts import normalise_mobile
from hub.rules.sending import RetryPolicy, backoff
from hub.settings import Settings
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.failures import Failure, Fence, fail_message
from hub.store.links import renew_queued_links
from hub.store.outbox import can_post, queue_message
from hub.store.rerouting import requeued, reroute_waiting
from hub.store.stale_messages import MESSAGE_COLUMNS, PATIENT_COLUMNS, read_patient
from hub.store.tasks import create_task
from hub.vocabulary import (
    ActorType,
    AuditAction,
    Channel,
    EventKind,
    Lane,
    MessageKind,
    MessageStatus,
    RecordType,
    TaskKind,
)

ACTOR = "notify-callback"
# Notify's own statuses for a message.
DELIVERED = frozenset({"delivered", "received"})  # "received": a letter printed and handed to Royal Mail
PERMANENT = frozenset({"permanent-failure", "validation-failed", "virus-scan-failed"})
TEMPORARY = frozenset({"temporary-failure", "technical-failure"})
# The message as a receipt may still settle it: sent by the attempt the receipt is about, no final answer yet.
_STILL_OUT = (
    f"status = '{MessageStatus.SENT}' AND notify_id = ?"
    f" AND COALESCE(delivery_status, '') NOT IN ({', '.join('?' for _ in DELIVERED | PERMANENT)})"
)


@dataclass(frozen=True)
class Receipt:
    notify_id: str
    reference: str | None  # our outbox message id, as we gave it
    status: str


@dataclass(frozen=True)
class Inbound:
    notify_id: str
    source_number: str
    content: str
    received_at: datetime


async def receipt_patient(db: Database, receipt: Receipt) -> int | None:
    """The patient of the message a receipt is about (None: no patient, or no such message), read before the
    receipt's transaction: it locks that patient (hub.db.postgres), so on PostgreSQL an invitation run's receipts
    hold up no other patient, while two receipts for one message, or a receipt and the patient's own change of
    contact details, still take turns. The transaction reads the message again."""
    message = await _message_of(db, receipt)
    return int(message["patient_id"]) if message is not None and message["patient_id"] is not None else None


async def _message_of(db: Database | Transaction, receipt: Receipt) -> Row | None:
    """By Notify's id for the send; failing that, by our reference (the message id), when Notify answers before
    our worker has recorded the send."""
    message = await db.fetch_one(
        f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE notify_id = ? ORDER BY id DESC LIMIT 1",
        (receipt.notify_id,),
    )
    if message is None and receipt.reference and receipt.reference.isdigit() and len(receipt.reference) <= 18:
        message = await db.fetch_one(
            f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE id = ?", (int(receipt.reference),)
        )
    return message


async def apply_receipt(
    tx: Transaction, receipt: Receipt, *, settings: Settings, now: datetime, locked: int | None = None
) -> str:
    """recorded | ignored | unknown | unsettled (we are mid-send, or the message changed hands: Notify should try
    again later). `locked`: the patient whose lock the transaction holds (receipt_patient's answer)."""
    if receipt.status not in DELIVERED | PERMANENT | TEMPORARY:
        return "ignored"  # an in-between status such as "sending": only final answers matter here
    message = await _message_of(tx, receipt)
    if (
        message is not None
        and message["notify_id"] is None
        and message["status"] in (MessageStatus.QUEUED, MessageStatus.SENDING)
    ):
        return "unsettled"  # Notify answered before our worker recorded the send (found by our reference)
    if message is not None and locked is not None and message["patient_id"] != locked:
        # A merge moved the message to another patient since it was read: acting now would be under the wrong
        # patient's lock (two copies of the receipt could both act). The next try locks the right one.
        return "unsettled"
    if message is None:
        return "unknown"
    # Only the answer to the current send of a message still out counts; anything else is a repeat, a late
    # receipt for an earlier attempt, or arrived after the message was already settled.
    if (
        message["notify_id"] != receipt.notify_id
        or message["status"] != MessageStatus.SENT
        or message["delivery_status"] in DELIVERED | PERMANENT
    ):
        return "ignored"
    if receipt.status in DELIVERED:
        await tx.execute("UPDATE outbox_messages SET delivery_status = ? WHERE id = ?", (receipt.status, message["id"]))
        await _audit(tx, now, AuditAction.NOTIFICATION_DELIVERED, RecordType.MESSAGE, message["id"], message["channel"])
        return "recorded"
    policy = RetryPolicy(max_attempts=settings.notify.max_attempts)
    if receipt.status in TEMPORARY and message["lane"] == Lane.BULK and message["attempts"] < policy.max_attempts:
        retry_at = now + backoff(message["attempts"], policy, random.Random())
        await tx.execute(
            "UPDATE outbox_messages SET status = ?, delivery_status = ?, next_attempt_at = ?, error = ?,"
            " check_first = 0, claimed_until = NULL, claimed_by = NULL WHERE id = ?",
            (MessageStatus.QUEUED, receipt.status, to_db(retry_at), f"notify {receipt.status}", message["id"]),
        )
        detail = f"{message['channel']} {receipt.status}"
        await _audit(tx, now, AuditAction.NOTIFICATION_RETRY, RecordType.MESSAGE, message["id"], detail)
        # Hours may have passed since it went: the appointment cancelled, a STOP or a new link, meanwhile.
        patient = await read_patient(tx, message["patient_id"])
        if patient is not None:
            await renew_queued_links(tx, patient_id=patient["id"], link=patient_link(settings, patient["link_id"]))
        await requeued(tx, message["id"], templates=settings.notify.templates, now=now, actor=ACTOR)
        return "recorded"
    # Given up on: a permanent failure goes again by the next channel, unless it is no longer true; a temporary
    # one has had its retries (Notify itself retries for 72 hours before saying so).
    failed = await fail_message(
        tx,
        message["id"],
        fence=Fence(_STILL_OUT, (receipt.notify_id, *sorted(DELIVERED | PERMANENT))),
        changes={"delivery_status": receipt.status, "error": f"notify {receipt.status}"},
        failure=Failure(receipt.status, fail_over=receipt.status in PERMANENT),
        templates=settings.notify.templates,
        now=now,
        actor=ACTOR,
    )
    return "recorded" if failed else "ignored"


async def record_inbound(
    tx: Transaction, inbound: Inbound, *, command: str | None, settings: Settings, now: datetime
) -> str:
    """Store a text a patient sent and act on STOP or START. duplicate | stop | start | for_booking_centre."""
    seen = await tx.fetch_one("SELECT id FROM inbound_messages WHERE notify_id = ?", (inbound.notify_id,))
    if seen is not None:
        return "duplicate"
    mobile = normalise_mobile(inbound.source_number)
    patients = (
        await tx.fetch_all(f"SELECT {PATIENT_COLUMNS} FROM patients WHERE mobile = ? ORDER BY id", (mobile,))
        if mobile
        else []
    )
    action = command or "for_booking_centre"
    row = await tx.fetch_one(
        "INSERT INTO inbound_messages (notify_id, patient_id, source_number, content, received_at, action)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (
            inbound.notify_id,
            patients[0]["id"] if len(patients) == 1 else None,
            mobile or inbound.source_number,
            inbound.content,
            to_db(inbound.received_at),
            action,
        ),
    )
    assert row is not None
    await _audit(
        tx,
        now,
        AuditAction.INBOUND_MESSAGE_RECEIVED,
        RecordType.INBOUND_MESSAGE,
        row["id"],
        f"{action}, patients matched: {len(patients)}",
    )
    if command == "stop" and mobile:
        await _opt_out(tx, [p for p in patients if not p["sms_opted_out"]], mobile, settings=settings, now=now)
    elif command == "start" and mobile:
        await _opt_in(tx, [p for p in patients if p["sms_opted_out"]], mobile, settings=settings, now=now)
    elif command is None:
        # One event per trust whose patient has this number; the patient named only when there is just one.
        by_organisation: dict[int, list[Row]] = {}
        for patient in patients:
            by_organisation.setdefault(patient["organisation_id"], []).append(patient)
        for organisation_id, theirs in by_organisation.items():
            # The booking centre calls back: one task per trust, on the first record with this number.
            await create_task(
                tx,
                kind=TaskKind.INBOUND_TEXT,
                patient_id=theirs[0]["id"],
                appointment_id=None,
                reason="",
                now=now,
                source_id=row["id"],
            )
            await record_event(
                tx,
                at=now,
                kind=EventKind.PATIENT_MESSAGE_RECEIVED,
                organisation_id=organisation_id,
                patient_id=theirs[0]["id"] if len(theirs) == 1 else None,
                data={"inbound_message_id": str(row["id"])},
            )
    return action


async def _opt_out(tx: Transaction, patients: list[Row], mobile: str, *, settings: Settings, now: datetime) -> None:
    confirmed: set[Any] = set()
    for patient in patients:
        await _set_opted_out(tx, patient, True, now=now)
        await reroute_waiting(
            tx,
            patient["id"],
            Channel.SMS,
            templates=settings.notify.templates,
            now=now,
            why="sms opted out",
            actor=ACTOR,
        )
        # Twins sharing a parent's mobile and email get one confirmation, not two.
        emailing = patient["email"] and not patient["opted_out"] and not patient["email_opted_out"]
        channel = Channel.EMAIL if emailing else Channel.LETTER
        destination = patient["email"] if channel == Channel.EMAIL else patient["id"]
        if destination in confirmed:
            continue
        kind = MessageKind.SMS_OPT_OUT_CONFIRMATION
        if channel == Channel.LETTER and not await can_post(tx, patient, appointment_id=None, kind=kind):
            continue  # nowhere to post it: the STOP itself is what matters, and it is recorded
        confirmed.add(destination)
        await _confirm(tx, patient, MessageKind.SMS_OPT_OUT_CONFIRMATION, channel, settings=settings, now=now)


async def _opt_in(tx: Transaction, patients: list[Row], mobile: str, *, settings: Settings, now: datetime) -> None:
    for patient in patients:
        await _set_opted_out(tx, patient, False, now=now)
    if patients:
        await _confirm(
            tx,
            patients[0],
            MessageKind.SMS_OPT_IN_CONFIRMATION,
            Channel.SMS,
            recipient=mobile,
            settings=settings,
            now=now,
        )


async def keep_number_stopped(
    tx: Transaction, *, patient_id: int, organisation_id: int, mobile: str, now: datetime
) -> bool:
    """A patient the hospital gives a number that texted STOP (and not START since) has texts stopped, as every
    patient on it had when it said STOP: whoever holds that phone asked for no more texts (a parent's mobile, put
    on another child's record). Returns whether texts were stopped."""
    last = await tx.fetch_one(
        "SELECT action FROM inbound_messages WHERE source_number = ? AND action IN (?, ?)"
        " ORDER BY received_at DESC, id DESC LIMIT 1",
        (mobile, "stop", "start"),
    )
    if last is None or last["action"] != "stop":
        return False
    return await _set_opted_out(tx, {"id": patient_id, "organisation_id": organisation_id}, True, now=now)


async def _set_opted_out(tx: Transaction, patient: Row, opted_out: bool, *, now: datetime) -> bool:
    if not await tx.execute(
        "UPDATE patients SET sms_opted_out = ?, updated_at = ? WHERE id = ? AND sms_opted_out != ?",
        (int(opted_out), to_db(now), patient["id"], int(opted_out)),
    ):
        return False
    action, kind = (
        (AuditAction.PATIENT_SMS_OPTED_OUT, EventKind.PATIENT_SMS_OPTED_OUT)
        if opted_out
        else (AuditAction.PATIENT_SMS_OPTED_IN, EventKind.PATIENT_SMS_OPTED_IN)
    )
    await _audit(tx, now, action, RecordType.PATIENT, patient["id"], "by text")
    await record_event(tx, at=now, kind=kind, organisation_id=patient["organisation_id"], patient_id=patient["id"])
    return True


async def _confirm(
    tx: Transaction,
    patient: Row,
    kind: MessageKind,
    channel: Channel,
    *,
    settings: Settings,
    now: datetime,
    recipient: str | None = None,
) -> None:
    message_id = await queue_message(
        tx,
        at=now,
        kind=kind,
        channel=channel,
        recipient=recipient or (patient["email"] if channel == Channel.EMAIL else "post"),
        template_id=_template(settings, kind, channel),
        personalisation={"link": patient_link(settings, patient["link_id"])},
        patient_id=patient["id"],
    )
    await _audit(tx, now, AuditAction.NOTIFICATION_QUEUED, RecordType.MESSAGE, message_id, f"{kind} by {channel}")


def _template(settings: Settings, kind: str, channel: str) -> str:
    return settings.notify.templates.template_for(kind, channel) or ""


async def _audit(
    tx: Transaction, now: datetime, action: AuditAction, record_type: RecordType, record_id: int, detail: str
) -> None:
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.SYSTEM,
        actor_id=ACTOR,
        action=action,
        record_type=record_type,
        record_id=record_id,
        detail=detail,
    )
