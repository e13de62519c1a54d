"""Messages that may no longer go as they were queued: by a channel the patient has stopped, or with news the
appointment's later changes have made wrong (judged in hub.store.stale_messages). A STOP or the hospital's opt-out
sends every waiting message of that channel another way (`reroute_waiting`); a permanent failure sends one message by
the next channel (`replace_message`); and a message put back in the queue after a temporary failure is checked again
first (`requeued`), because while it was out (claimed by a worker, or sent and awaiting its receipt) those changes
passed it by: they withdraw only what is queued, never a message that may be on its way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from hub.db import Database, Row, Transaction
from hub.rules.sending import PDF_KINDS
from hub.settings import NotifyTemplates
from hub.store.audit import audit_message
from hub.store.outbox import can_post, has_address, queue_message
from hub.store.stale_messages import MESSAGE_COLUMNS, judge, out_of_date, read_patient, withdraw_message
from hub.vocabulary import ActorType, AuditAction, Channel, Lane, MessageKind, MessageStatus

_STOPPED = {Channel.SMS: "sms_opted_out", Channel.EMAIL: "email_opted_out"}
_CONTACT = {Channel.SMS: "mobile", Channel.EMAIL: "email"}
# A reply to the number that texted START goes to that number, whatever the patient's is now.
_TO_THE_SENDER = frozenset({MessageKind.SMS_OPT_IN_CONFIRMATION})


def next_channel(channel: str, *, has_email: bool, can_post: bool) -> Channel | None:
    """Where a message goes when its channel failed for good: a text by email, then by post."""
    if channel == Channel.SMS and has_email:
        return Channel.EMAIL
    if channel in (Channel.SMS, Channel.EMAIL) and can_post:
        return Channel.LETTER
    return None


async def replace_message(
    tx: Transaction,
    message: Row,
    patient: Row,
    *,
    templates: NotifyTemplates,
    now: datetime,
    why: str,
    actor: str,
    actor_type: ActorType = ActorType.SYSTEM,
    personalisation: dict[str, Any] | None = None,
    to: Channel | None = None,
) -> tuple[str, int] | None:
    """Queue the same message by the next channel (or by `to`): (channel, new message id), or None when there is
    none; by post to a patient who chose paper, the letter already queued beside it (its id): nothing is posted
    twice. Its callers first check it is still true (`judge`); `personalisation`: what it should say now, when not
    as it was."""
    channel: Channel | None
    if to is not None:
        channel, template_id = to, templates.template_for(message["kind"], to)
    else:
        channel, template_id = await _next_way(tx, message, patient, templates)
    if channel is None or template_id is None:
        return None
    was = json.loads(message["personalisation"])
    says = personalisation or was
    if channel == Channel.LETTER and (posted := await _posted_beside(tx, message, says)) is not None:
        return channel, posted  # a patient who chose paper has it by post already: not posted a second time
    # Sent on as a letter after the appointment moved: the hospital's own PDF gives the old time or place, so it goes
    # as the hub's letter with the new one, to the address on record (without one, it cannot go).
    templated = (
        channel == Channel.LETTER
        and message["kind"] in PDF_KINDS
        and any(says.get(key) != was.get(key) for key in ("date", "time", "site"))
    )
    if templated and not has_address(patient):
        return None
    replacement = await queue_message(
        tx,
        at=now,
        kind=message["kind"],
        channel=channel,
        recipient=patient[_CONTACT[channel]] if channel in _CONTACT else "post",
        template_id=template_id,
        personalisation=says,
        patient_id=patient["id"],
        appointment_id=message["appointment_id"],
    )
    pdf = message["pdf_letter_id"] if channel == Channel.LETTER and not templated else None
    await tx.execute(
        "UPDATE outbox_messages SET urgent = ?, pdf_letter_id = ? WHERE id = ?", (message["urgent"], pdf, replacement)
    )
    if templated:
        await tx.execute("INSERT INTO templated_letters (message_id) VALUES (?)", (replacement,))
    detail = f"{channel}, replacing {message['channel']} message {message['id']} ({why})"
    await audit_message(
        tx, now, AuditAction.NOTIFICATION_QUEUED, replacement, detail, actor=actor, actor_type=actor_type
    )
    return channel, replacement


async def _posted_beside(tx: Transaction, message: Row, says: dict[str, Any]) -> int | None:
    """The letter of the same news queued beside the message, in the same transaction (for a patient who chose paper,
    `announce` posts it as well, at once), still going or gone: its id, or None."""
    if message["appointment_id"] is None:
        return None
    letters = await tx.fetch_all(
        "SELECT id, personalisation FROM outbox_messages WHERE appointment_id = ? AND kind = ? AND channel = ?"
        " AND lane = ? AND status IN (?, ?, ?) AND created_at = (SELECT created_at FROM outbox_messages WHERE id = ?)"
        " ORDER BY id DESC",
        (
            message["appointment_id"],
            message["kind"],
            Channel.LETTER,
            Lane.BULK,
            MessageStatus.QUEUED,
            MessageStatus.SENDING,
            MessageStatus.SENT,
            message["id"],
        ),
    )
    news = ("date", "time", "site")
    for letter in letters:
        said = json.loads(letter["personalisation"])
        if all(said.get(key) == says.get(key) for key in news):
            return int(letter["id"])
    return None


async def _next_way(
    tx: Transaction, message: Row, patient: Row, templates: NotifyTemplates
) -> tuple[Channel | None, str | None]:
    """Channel after channel from the message's own, to one it can go by: a kind with no template by a channel
    skips it."""
    posting = message["pdf_letter_id"] is not None or await can_post(
        tx, patient, appointment_id=message["appointment_id"], kind=message["kind"]
    )
    emailing = bool(patient["email"]) and not patient["email_opted_out"] and not patient["opted_out"]
    channel: Channel | None = Channel(message["channel"])
    template_id: str | None = None
    while template_id is None and channel is not None:
        channel = next_channel(channel, has_email=emailing, can_post=posting)
        if channel is not None:
            template_id = templates.template_for(message["kind"], channel)
    return channel, template_id


async def reroute_waiting(
    tx: Transaction,
    patient_id: int,
    channel: Channel,
    *,
    templates: NotifyTemplates,
    now: datetime,
    why: str,
    actor: str,
    actor_type: ActorType = ActorType.SYSTEM,
) -> None:
    """Messages waiting to go by a channel the patient has just stopped: sent another way instead. Each withdrawn by
    a conditional UPDATE, as `announce` withdraws: a message a worker has claimed meanwhile (and may be sending) is
    left to its claim, never marked cancelled under it and replaced, which sent it twice. If that claim's send
    fails for now, `requeued` sends it another way then."""
    patient = await read_patient(tx, patient_id)
    assert patient is not None
    # One by one in id order, as `withdraw_ended_offers` takes them, which another patient's acceptance runs without
    # this patient's lock: on PostgreSQL one UPDATE of them all locks its rows in the order it finds them (an
    # updated row moves), and two writers taking the same two rows in opposite orders deadlock. Each is judged
    # before it is taken, as that acceptance does: an earlier time offered locks its offer first, then its message.
    candidates = await tx.fetch_all(
        f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE patient_id = ? AND channel = ? AND lane = ?"
        " AND status = ? ORDER BY id",
        (patient_id, channel, Lane.BULK, MessageStatus.QUEUED),
    )
    for candidate in candidates:
        stale, said = (None, None)
        if candidate["appointment_id"] is not None:
            stale, said, _ = await judge(tx, candidate, now=now)
        message = await tx.fetch_one(
            f"UPDATE outbox_messages SET status = ?, error = ? WHERE id = ? AND status = ? RETURNING {MESSAGE_COLUMNS}",
            (MessageStatus.CANCELLED, why, candidate["id"], MessageStatus.QUEUED),
        )
        if message is None:  # a worker claimed it meanwhile: left to its claim
            continue
        # No longer true (its appointment cancelled, its offer ended): not sent another way either.
        detail = f"{why}; {stale}: not sent another way" if stale else why
        await audit_message(
            tx, now, AuditAction.NOTIFICATION_CANCELLED, message["id"], detail, actor=actor, actor_type=actor_type
        )
        if stale is None:
            await replace_message(
                tx,
                message,
                patient,
                templates=templates,
                now=now,
                why=why,
                actor=actor,
                actor_type=actor_type,
                personalisation=said,
            )


@asynccontextmanager
async def write_about_messages(db: Database, message_ids: list[int]) -> AsyncIterator[Transaction]:
    """A write holding the locks of the patients these messages are about (hub.db.postgres), as `requeued` needs.
    Their patients are read first, to know what to lock, and again inside: when a merge moved a message to another
    patient in between, the transaction ends unused and the new patient is locked instead."""
    while True:
        patients = await _patients_of(db, message_ids) if message_ids else []
        async with db.write(patients=patients) if patients else db.write(keys=()) as tx:
            if patients and await _patients_of(tx, message_ids) != patients:
                continue
            yield tx
            return


async def _patients_of(db: Database | Transaction, message_ids: list[int]) -> list[int]:
    rows = await db.fetch_all(
        "SELECT DISTINCT patient_id FROM outbox_messages WHERE patient_id IS NOT NULL"
        f" AND id IN ({', '.join('?' for _ in message_ids)})",
        message_ids,
    )
    return sorted(int(r["patient_id"]) for r in rows)


async def requeued(tx: Transaction, message_id: int, *, templates: NotifyTemplates, now: datetime, actor: str) -> None:
    """A bulk message just put back in the queue to try again, checked against what happened while it was out:
    withdrawn when its appointment as it is now makes it wrong (cancelled, passed, a reminder of a letter since
    read: `no_longer_true`), its news brought up to date when the appointment moved (the new time's own message was
    queued by the change as well), and sent another way when the patient has stopped its channel. Run in the
    transaction that re-queued it, under its patient's lock (hub.db.postgres), which the writes that change those
    hold too: none can pass it by between this check and the commit.

    A message Notify may already have (no answer, or a 5xx: `check_first`) is checked the same way: withdrawn, it
    is not sent again, whether or not it went; sent another way, the patient may have both. Hearing twice, by text
    before the STOP and by email after it, is the lesser harm than not hearing at all."""
    message = await tx.fetch_one(
        f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE id = ? AND status = ? AND lane = ?",
        (message_id, MessageStatus.QUEUED, Lane.BULK),
    )
    if message is None:
        return
    if message["appointment_id"] is not None:
        why = await out_of_date(tx, message, now=now, actor=actor)
        if why is not None:
            await withdraw_message(tx, message, why, now=now, actor=actor)
            return
    if message["patient_id"] is not None and message["channel"] in _CONTACT:
        await readdress_waiting(tx, int(message["patient_id"]), templates=templates, now=now, actor=actor)


async def readdress_waiting(
    tx: Transaction,
    patient_id: int,
    *,
    templates: NotifyTemplates,
    now: datetime,
    actor: str,
    actor_type: ActorType = ActorType.SYSTEM,
) -> None:
    """Texts and emails waiting to go (held by quiet hours, or put back to try again) go to the patient's mobile and
    email as they are on record now: to a new number or address when it changed (the old one may be someone
    else's now, and the message carries the patient's link and verification code), and another way, as after a
    STOP, when the patient has none now or has stopped that channel. Each by a conditional UPDATE of its own row in
    id order, as `reroute_waiting` takes them: a message a worker has claimed meanwhile goes as it is, and is
    checked again here should it come back."""
    patient = await read_patient(tx, patient_id)
    if patient is None:
        return
    for channel, column in _CONTACT.items():
        why = _cannot_go(patient, channel)
        if why is not None:
            await reroute_waiting(
                tx, patient_id, channel, templates=templates, now=now, why=why, actor=actor, actor_type=actor_type
            )
            continue
        waiting = await tx.fetch_all(
            "SELECT id, kind FROM outbox_messages WHERE patient_id = ? AND channel = ? AND lane = ? AND status = ?"
            " AND recipient != ? ORDER BY id",
            (patient_id, channel, Lane.BULK, MessageStatus.QUEUED, patient[column]),
        )
        for message in waiting:
            if message["kind"] in _TO_THE_SENDER:
                continue
            if await tx.execute(
                "UPDATE outbox_messages SET recipient = ? WHERE id = ? AND status = ?",
                (patient[column], message["id"], MessageStatus.QUEUED),
            ):
                detail = f"{channel} to the patient's {column} now: it changed while the message waited"
                await audit_message(
                    tx, now, AuditAction.NOTIFICATION_QUEUED, message["id"], detail, actor=actor, actor_type=actor_type
                )


async def switch_waiting(
    tx: Transaction,
    patient_id: int,
    channel: Channel,
    *,
    templates: NotifyTemplates,
    now: datetime,
    actor: str,
    actor_type: ActorType = ActorType.SYSTEM,
) -> None:
    """The patient now wants texts rather than emails, or emails rather than texts: what is waiting to go the other
    way (held overnight by quiet hours, say) goes this way instead, when it has a template this way. Each withdrawn
    by a conditional UPDATE, as `reroute_waiting` does: one a worker has claimed meanwhile goes as it is."""
    patient = await read_patient(tx, patient_id)
    if patient is None or _cannot_go(patient, channel) is not None:
        return
    other = Channel.EMAIL if channel == Channel.SMS else Channel.SMS
    candidates = await tx.fetch_all(
        f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE patient_id = ? AND channel = ? AND lane = ?"
        " AND status = ? ORDER BY id",
        (patient_id, other, Lane.BULK, MessageStatus.QUEUED),
    )
    why = f"the patient chose {channel} instead"
    for candidate in candidates:
        if candidate["kind"] in _TO_THE_SENDER or templates.template_for(candidate["kind"], channel) is None:
            continue
        message = await tx.fetch_one(
            f"UPDATE outbox_messages SET status = ?, error = ? WHERE id = ? AND status = ? RETURNING {MESSAGE_COLUMNS}",
            (MessageStatus.CANCELLED, why, candidate["id"], MessageStatus.QUEUED),
        )
        if message is None:
            continue
        await audit_message(
            tx, now, AuditAction.NOTIFICATION_CANCELLED, message["id"], why, actor=actor, actor_type=actor_type
        )
        await replace_message(
            tx, message, patient, templates=templates, now=now, why=why, actor=actor, actor_type=actor_type, to=channel
        )


def _cannot_go(patient: Row, channel: Channel) -> str | None:
    """Why nothing may go to the patient by this channel now (None: it may)."""
    if patient[_STOPPED[channel]]:
        return f"{channel} opted out"
    if patient["opted_out"]:
        return "digital messages opted out"
    return None if patient[_CONTACT[channel]] else f"no {_CONTACT[channel]} now"
