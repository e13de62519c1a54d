"""Queueing messages: rows of outbox_messages, written in the transaction that caused them (the sender drains
them). Queueing a message about an appointment is the one place that picks its channel, template and
personalisation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hub.clock import format_date, format_time, to_db
from hub.db import Row, Transaction
from hub.links import patient_link
from hub.rules.feed import choose_channel
from hub.rules.sending import PDF_KINDS, is_urgent, may_withdraw, message_to_queue, postal_address
from hub.settings import Settings
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.tasks import create_task
from hub.vocabulary import (
    ActorType,
    AuditAction,
    Channel,
    EventKind,
    Lane,
    LetterKind,
    MessageKind,
    MessageStatus,
    RecordType,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)

CODE_EXPIRED = "code expired before it was sent"
# Why an unread invitation's posted copy cannot go after a move: the hospital's own letter is wrong now, and the hub's
# own letter, which gives the new time, has no address to go to (the PDF carried its own).
NOWHERE = (
    "appointment changed: the hospital's letter gives the old time or place, and there is no valid postal address"
    " for the hub's own"
)
# What a message about an appointment needs to know about the patient.
MESSAGE_PATIENT_COLUMNS = (
    "id, organisation_id, given_name, family_name, mobile, email, contact_preference, opted_out, sms_opted_out,"
    " email_opted_out, paperless, verification_code, address_lines, postcode, link_id"
)


async def queue_message(
    tx: Transaction,
    *,
    at: datetime,
    kind: MessageKind,
    channel: Channel,
    recipient: str,
    template_id: str,
    personalisation: dict[str, Any],
    patient_id: int | None,
    appointment_id: int | None = None,
    lane: Lane = Lane.BULK,
    urgent: bool = False,
) -> int:
    """A message to send. An immediate-lane message (a security code) is queued already 'sending', claimed by
    the web process that issued it and sends it just after answering (hub.notify.sender.send_immediate), with
    its request counted in Notify's per-minute limit here: one transaction fewer per sign-in. One the web process
    never sends is marked expired by the worker (expire_unsent_codes)."""
    immediate = lane == Lane.IMMEDIATE
    if immediate:
        await tx.execute("INSERT INTO notify_requests (at) VALUES (?)", (to_db(at),))
    row = await tx.fetch_one(
        "INSERT INTO outbox_messages (status, kind, lane, channel, patient_id, appointment_id, recipient,"
        " template_id, personalisation, next_attempt_at, created_at, urgent)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            MessageStatus.SENDING if immediate else MessageStatus.QUEUED,
            kind,
            lane,
            channel,
            patient_id,
            appointment_id,
            recipient,
            template_id,
            json.dumps(personalisation, sort_keys=True),
            to_db(at),
            to_db(at),
            int(urgent),
        ),
    )
    assert row is not None
    return int(row["id"])


async def announce(
    tx: Transaction,
    *,
    settings: Settings,
    kind: MessageKind,
    patient: Row,
    appointment_id: int,
    starts_at: datetime,
    site_name: str,
    clinic: str,
    now: datetime,
    fresh: bool = False,
    moved_from: datetime | None = None,
) -> list[int]:
    """Tell the patient of a change to an appointment: by their channel, and by post as well when they chose paper.
    Queued messages the change makes wrong (an invitation of an appointment now cancelled) are withdrawn first.
    `fresh`: the appointment was made in this transaction, so nothing about it is queued yet. `moved_from`: the time
    it had before this change, which the patient must hear of before as well (see queue_appointment_message)."""
    if not fresh:
        # Withdrawn first, and what to queue decided by what was withdrawn, not by a read before: on PostgreSQL a
        # worker claims messages beside this write (claims take a lock of their own). The UPDATE waits for a claim
        # under way and then passes its row by, no longer queued: a message already going is not counted as waiting.
        withdrawing = may_withdraw(kind)
        withdrawn = await tx.fetch_all(
            f"UPDATE outbox_messages SET status = ?, error = ? WHERE appointment_id = ? AND status = ? AND lane = ?"
            f" AND kind IN ({', '.join('?' for _ in withdrawing)}) RETURNING id, kind, patient_id, appointment_id",
            (
                MessageStatus.CANCELLED,
                f"superseded by {kind}",
                appointment_id,
                MessageStatus.QUEUED,
                Lane.BULK,
                *sorted(withdrawing),
            ),
        )
        why = "appointment cancelled" if kind == MessageKind.CANCELLED else f"superseded by {kind}"
        await withdraw_posted_copies(tx, withdrawn, why=why, now=now, actor="lifecycle")
        kind, _ = message_to_queue(kind, {r["kind"] for r in withdrawn})
    channels = [choose_channel(patient)]
    if channels != [Channel.LETTER] and not patient["paperless"]:
        channels.append(Channel.LETTER)  # they chose paper: it is posted too, at once
    ids = []
    for channel in channels:
        message_id = await queue_appointment_message(
            tx,
            settings=settings,
            kind=kind,
            patient=patient,
            appointment_id=appointment_id,
            starts_at=starts_at,
            site_name=site_name,
            clinic=clinic,
            now=now,
            channel=channel,
            moved_from=moved_from,
        )
        if message_id is not None:
            ids.append(message_id)
    return ids


def appointment_news(starts_at: datetime, site_name: str, clinic: str | None) -> dict[str, str]:
    """What a message about an appointment says of it."""
    return {"date": format_date(starts_at), "time": format_time(starts_at), "site": site_name, "clinic": clinic or ""}


async def queue_appointment_message(
    tx: Transaction,
    *,
    settings: Settings,
    kind: MessageKind,
    patient: dict[str, Any],
    appointment_id: int,
    starts_at: datetime,
    site_name: str,
    clinic: str,
    now: datetime,
    channel: Channel | None = None,
    moved_from: datetime | None = None,
) -> int | None:
    """Queue one message about an appointment; None when it cannot go that way: no template for the kind by that
    channel, or a letter with no address to go to (the booking centre gets a task and the hospital an event).
    `moved_from`: the time it had until now: a move away from tomorrow morning cannot wait for the morning either,
    or the patient sets off for an appointment that is no longer there."""
    channel = channel or choose_channel(patient)
    template_id = settings.notify.templates.template_for(kind, channel)
    if template_id is None:
        return None
    if channel == Channel.LETTER and not await can_post(tx, patient, appointment_id=appointment_id, kind=kind):
        await record_not_posted(tx, patient, appointment_id=appointment_id, kind=kind, now=now)
        return None
    recipient = {Channel.SMS: patient["mobile"], Channel.EMAIL: patient["email"]}.get(channel) or "post"
    personalisation = {
        "link": patient_link(settings, patient["link_id"]),
        "verification_code": patient["verification_code"],
        **appointment_news(starts_at, site_name, clinic),
    }
    return await queue_message(
        tx,
        at=now,
        kind=kind,
        channel=channel,
        recipient=recipient,
        template_id=template_id,
        personalisation=personalisation,
        patient_id=patient["id"],
        appointment_id=appointment_id,
        urgent=channel != Channel.LETTER
        and is_urgent(
            min(starts_at, moved_from) if moved_from is not None and moved_from > now else starts_at,
            now,
            start=settings.notify.quiet_start_hour,
            end=settings.notify.quiet_end_hour,
            margin=timedelta(hours=settings.notify.urgent_margin_hours),
        ),
    )


async def can_post(tx: Transaction, patient: Row, *, appointment_id: int | None, kind: MessageKind) -> bool:
    """A letter can go as the hospital's own PDF (which carries the address) when it is the appointment letter,
    or as a template to a postal address Notify accepts."""
    if has_address(patient):
        return True
    if kind not in PDF_KINDS or appointment_id is None:
        return False
    row = await tx.fetch_one(
        "SELECT id FROM letters WHERE appointment_id = ? AND kind = ? LIMIT 1",
        (appointment_id, LetterKind.APPOINTMENT_LETTER),
    )
    return row is not None


async def record_not_posted(
    tx: Transaction,
    patient: Row,
    *,
    appointment_id: int | None,
    kind: MessageKind,
    now: datetime,
    message_id: int | None = None,
    why: str = "no valid postal address",
) -> None:
    """A letter was due and there is nowhere to send it: say so, rather than claim it was posted. `message_id`: the
    posted copy queued (and announced) before it turned out to have nowhere to go."""
    await create_task(
        tx,
        kind=TaskKind.NO_POSTAL_ADDRESS,
        patient_id=patient["id"],
        appointment_id=appointment_id,
        reason=f"A letter ({kind}) could not be posted: {why}",
        now=now,
        source_id=message_id,
    )
    data: dict[str, Any] = {"kind": str(kind), "reason": "no_postal_address"}
    if message_id is not None:
        data["message_id"] = message_id
    await record_event(
        tx,
        at=now,
        kind=EventKind.LETTER_NOT_POSTED,
        organisation_id=patient["organisation_id"],
        patient_id=patient["id"],
        appointment_id=appointment_id,
        data=data,
    )
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.SYSTEM,
        actor_id="outbox",
        action=AuditAction.LETTER_NOT_POSTED,
        record_type=RecordType.PATIENT,
        record_id=patient["id"],
        detail=str(kind),
    )


# A withdrawal's why, as `letter.not_posted` names it (the lifecycle's own word for a passed appointment differs).
_REASONS = {"appointment past": "appointment_passed"}


async def withdraw_posted_copies(
    tx: Transaction,
    withdrawn: list[Row],
    *,
    why: str,
    now: datetime,
    actor: str,
    nowhere: bool = False,
    reason: str | None = None,
) -> None:
    """Messages just withdrawn before they went (id, kind, patient_id, appointment_id): an unread invitation's posted
    copy among them was announced when it was queued, to the booking centre by a "Letter sent by post" task and to
    the hospital by `letter.escalated_to_post`. The task is closed, so that no agent tells the patient a letter is on
    its way, and the hospital is told it was not posted. `nowhere`: withdrawn because it had nowhere to go (the
    hospital's PDF now wrong, and no address for the hub's own letter): the booking centre gets a "No postal
    address" task in its place. `reason`: the hospital's `data.reason` (else made from `why`); one that failed at
    Notify is `not_delivered`."""
    for message in withdrawn:
        if message["kind"] != MessageKind.INVITATION_POST or message["patient_id"] is None:
            continue
        closed = await tx.fetch_all(
            "UPDATE tasks SET status = ?, outcome = ?, closed_at = ?, claimed_until = NULL"
            " WHERE appointment_id = ? AND kind = ? AND source_id = ? AND status != ? RETURNING id",
            (
                TaskStatus.CLOSED,
                TaskOutcome.NOT_POSTED,
                to_db(now),
                message["appointment_id"],
                TaskKind.LETTER_POSTED,
                message["id"],
                TaskStatus.CLOSED,
            ),
        )
        for task in closed:
            await record_audit(
                tx,
                at=now,
                actor_type=ActorType.SYSTEM,
                actor_id=actor,
                action=AuditAction.LETTER_NOT_POSTED,
                record_type=RecordType.TASK,
                record_id=task["id"],
                detail=f"message {message['id']} not posted: {why}",
            )
        patient = await tx.fetch_one(
            f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE id = ?", (message["patient_id"],)
        )
        assert patient is not None
        if nowhere:
            await record_not_posted(
                tx,
                patient,
                appointment_id=message["appointment_id"],
                kind=MessageKind.INVITATION_POST,
                now=now,
                message_id=message["id"],
                why=why,
            )
            continue
        await record_event(
            tx,
            at=now,
            kind=EventKind.LETTER_NOT_POSTED,
            organisation_id=patient["organisation_id"],
            patient_id=patient["id"],
            appointment_id=message["appointment_id"],
            data={
                "kind": str(MessageKind.INVITATION_POST),
                "reason": reason or _REASONS.get(why, why.replace(" ", "_")),
                "message_id": message["id"],
            },
        )


async def goes_as_template(tx: Transaction, message_id: int) -> bool:
    """A letter to go as the hub's own template even where the hospital's PDF exists (a posted copy the appointment's
    move overtook: hub.store.stale_messages.judge)."""
    found = await tx.fetch_one("SELECT message_id FROM templated_letters WHERE message_id = ?", (message_id,))
    return found is not None


def has_address(patient: Row) -> bool:
    """A postal address Notify accepts for a letter of the hub's own template (the hospital's PDF carries its own)."""
    name = f"{patient['given_name']} {patient['family_name']}".strip()
    return postal_address(name, json.loads(patient["address_lines"]), patient["postcode"]) is not None


async def expire_unsent_codes(tx: Transaction, issued_before: datetime) -> int:
    """Security codes the web process never sent (it died after issuing them) are marked expired once the code
    has: the code itself was never stored, so no one else can send them. Expired, they leave the per-number caps,
    which count messages sent or being sent. (A row the web left 'sending' may have reached Notify; the patient's
    code has expired either way.)"""
    return await tx.execute(
        "UPDATE outbox_messages SET status = ?, claimed_until = NULL, claimed_by = NULL, error = ? WHERE id IN"
        f" (SELECT id FROM outbox_messages WHERE lane = '{Lane.IMMEDIATE}'"
        f" AND status IN ('{MessageStatus.QUEUED}', '{MessageStatus.SENDING}') AND created_at < ?)",
        (MessageStatus.EXPIRED, CODE_EXPIRED, to_db(issued_before)),
    )
