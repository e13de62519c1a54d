"""Messages that may no longer go as they were queued: by a channel the patient has stopped, or with news the
appointment's later changes have made wrong. A STOP or the hospital's opt-out sends every waiting message of that
channel another way (`reroute_waiting`); a permanent failure sends one message by the next channel
(`replace_message`); and a message put back in the queue after a temporary failure is checked again first
(`requeued`), because while it was out (claimed by a worker, or sent and awaiting its receipt) those changes passed
it by: they withdraw only what is queued, never a message that may be on its way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, NamedTuple

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.sending import ESCALATION_KINDS, NEWS_KINDS, PDF_KINDS, REMINDER_KINDS, no_longer_true
from hub.settings import NotifyTemplates
from hub.store.audit import record_audit
from hub.store.outbox import (
    appointment_news,
    can_post,
    goes_as_template,
    has_address,
    queue_message,
    withdraw_posted_copies,
)
from hub.store.reminders import appointment_now, letter_opened
from hub.vocabulary import (
    ActorType,
    AuditAction,
    Channel,
    Lane,
    MessageKind,
    MessageStatus,
    OfferStatus,
    RecordType,
)

MESSAGE_COLUMNS = (
    "id, kind, lane, channel, patient_id, appointment_id, personalisation, status, attempts, notify_id,"
    " delivery_status, urgent, pdf_letter_id"
)
PATIENT_COLUMNS = (
    "id, organisation_id, mobile, email, opted_out, sms_opted_out, email_opted_out, given_name, family_name,"
    " address_lines, postcode, link_id"
)
_STOPPED = {Channel.SMS: "sms_opted_out", Channel.EMAIL: "email_opted_out"}
_CONTACT = {Channel.SMS: "mobile", Channel.EMAIL: "email"}
# A reply to the number that texted START goes to that number, whatever the patient's is now.
_TO_THE_SENDER = frozenset({MessageKind.SMS_OPT_IN_CONFIRMATION})
# Why an unread invitation's posted copy cannot go after a move: the hospital's own letter is wrong now, and the hub's
# own letter, which gives the new time, has no address to go to (the PDF carried its own).
NOWHERE = (
    "appointment changed: the hospital's letter gives the old time or place, and there is no valid postal address"
    " for the hub's own"
)


class Judgement(NamedTuple):
    """Whether a message about an appointment is still true as the appointment is now."""

    why: str | None  # why it should not go (None: it should)
    said: dict[str, Any] | None = None  # what it should say now, when that is not what it says
    templated: bool = False  # a letter that must go as the hub's own template now, not as the hospital's PDF


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
    none. Its callers first check it is still true (`judge`); `personalisation`: what it should say now, when not as
    it was."""
    channel: Channel | None
    if to is not None:
        channel, template_id = to, templates.template_for(message["kind"], to)
    else:
        channel, template_id = await _next_way(tx, message, patient, templates)
    if channel is None or template_id is None:
        return None
    was = json.loads(message["personalisation"])
    says = personalisation or was
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
            await _withdraw(tx, message, why, now=now, actor=actor)
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


async def out_of_date(tx: Transaction, message: Row, *, now: datetime, actor: str) -> str | None:
    """Why the message should not go now (None: it should), bringing its news up to date in its row on the way (and
    a posted copy that would have gone as the hospital's PDF, with the old time, to the hub's own letter)."""
    why, said, templated = await judge(tx, message, now=now)
    # Only while it is still queued: one a worker has claimed since it was read goes as it is.
    if (
        why is None
        and said is not None
        and await tx.execute(
            "UPDATE outbox_messages SET personalisation = ?, pdf_letter_id = CASE WHEN ? = 1 THEN NULL"
            " ELSE pdf_letter_id END WHERE id = ? AND status = ?",
            (json.dumps(said, sort_keys=True), int(templated), message["id"], MessageStatus.QUEUED),
        )
    ):
        detail = f"{message['kind']} brought up to date: the appointment changed while it was being sent"
        if templated:
            await tx.execute(
                "INSERT INTO templated_letters (message_id) VALUES (?) ON CONFLICT (message_id) DO NOTHING",
                (message["id"],),
            )
            detail = f"{message['kind']} brought up to date as the hub's own letter: the hospital's is out of date"
        await audit_message(tx, now, AuditAction.NOTIFICATION_QUEUED, message["id"], detail, actor=actor)
    return why


async def judge(tx: Transaction, message: Row, *, now: datetime) -> Judgement:
    """Whether a message about an appointment is still true as the appointment is now: why it should not go (None:
    it should), what it should say when that is not what it says (None: as it is), and whether a letter must go as
    the hub's own template rather than the hospital's PDF. Writes nothing (an earlier time offered waits for an
    acceptance of its slot in flight: `_offer_ended`)."""
    kind = message["kind"]
    a = await appointment_now(tx, message["appointment_id"])
    if a is None:
        return Judgement("appointment gone")
    starts_at = from_db(a["starts_at"])
    why = no_longer_true(
        kind,
        status=a["status"],
        request_state=a["request_state"],
        starts_at=starts_at,
        opened=letter_opened(a),
        now=now,
    )
    if why is None and kind == MessageKind.EARLIER_OFFER:
        return Judgement(await _offer_ended(tx, message, now=now))
    if why is not None or kind not in NEWS_KINDS | REMINDER_KINDS:
        return Judgement(why)
    said = json.loads(message["personalisation"])
    news = appointment_news(starts_at, a["site_name"], a["clinic"])
    stale = {key for key, value in news.items() if said.get(key) != value}
    if not stale:
        return Judgement(None)
    if stale & {"date", "time"} and kind == MessageKind.APPOINTMENT_REMINDER:
        return Judgement("appointment changed")  # the reminders are planned again for the new time
    hospitals_letter = message["pdf_letter_id"] is not None or (
        message["channel"] == Channel.LETTER and kind in PDF_KINDS and a["appointment_letters"]
    )
    if stale & {"date", "time", "site"} and hospitals_letter and not await goes_as_template(tx, message["id"]):
        # The hospital's own letter, with the old time or place, cannot be rewritten. The change's notice is posted
        # to a patient who chose paper; the unread invitation's posted copy, the only letter a patient who reads
        # online gets, goes as the hub's own letter with the new details, when there is an address for it.
        if kind != MessageKind.INVITATION_POST:
            return Judgement("appointment changed")
        patient = await read_patient(tx, message["patient_id"])
        if patient is None or not has_address(patient):
            return Judgement(NOWHERE)
        return Judgement(None, {**said, **news}, templated=True)
    if stale & {"date", "time"} and kind == MessageKind.CHANGED and await _said_since(tx, message, news):
        return Judgement("superseded by a later change")
    return Judgement(None, {**said, **news})


async def withdraw_ended_offers(tx: Transaction, appointment_ids: list[int], *, now: datetime, actor: str) -> None:
    """The offers of these appointments just ended (their slot taken by another patient, lapsed): their texts and
    emails still waiting to go would offer what is no longer there, and are withdrawn. Each by a conditional UPDATE
    of its own row, so one a worker is claiming at this moment goes, and is answered "gone" if taken up."""
    if not appointment_ids:
        return
    marks = ", ".join("?" for _ in appointment_ids)
    waiting = await tx.fetch_all(
        f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE kind = ? AND status = ? AND appointment_id IN ({marks})"
        " ORDER BY id",
        (MessageKind.EARLIER_OFFER, MessageStatus.QUEUED, *appointment_ids),
    )
    for message in waiting:
        why = await _offer_ended(tx, message, now=now)
        if why is not None:
            await _withdraw(tx, message, why, now=now, actor=actor)


async def check_escalations(tx: Transaction, appointment_id: int, *, now: datetime, actor: str) -> None:
    """The appointment just changed, and its notice does not withdraw the reminders of its unread invitation or the
    invitation's posted copy (the invitation is still unread): those waiting to go (held by quiet hours, say) are
    checked as a retry is and brought up to date: a posted copy that would have gone as the hospital's own PDF, with
    the old time, goes as the hub's own letter with the new one, or, with no address for that, is withdrawn (and its
    task and the hospital told: `withdraw_posted_copies`). Each by its own conditional UPDATE, so one a worker is
    claiming at this moment goes as it is."""
    waiting = await tx.fetch_all(
        f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE appointment_id = ? AND status = ? AND lane = ?"
        f" AND kind IN ({', '.join('?' for _ in ESCALATION_KINDS)}) ORDER BY id",
        (appointment_id, MessageStatus.QUEUED, Lane.BULK, *sorted(ESCALATION_KINDS)),
    )
    for message in waiting:
        why = await out_of_date(tx, message, now=now, actor=actor)
        if why is not None:
            await _withdraw(tx, message, why, now=now, actor=actor)


async def _withdraw(tx: Transaction, message: Row, why: str, *, now: datetime, actor: str) -> None:
    if await tx.execute(
        "UPDATE outbox_messages SET status = ?, error = ? WHERE id = ? AND status = ?",
        (MessageStatus.CANCELLED, why, message["id"], MessageStatus.QUEUED),
    ):
        await audit_message(tx, now, AuditAction.NOTIFICATION_CANCELLED, message["id"], why, actor=actor)
        await withdraw_posted_copies(tx, [message], why=why, now=now, actor=actor, nowhere=why == NOWHERE)


async def _offer_ended(tx: Transaction, message: Row, *, now: datetime) -> str | None:
    """An earlier time offered stands only while its offer is open: taken by someone else, declined or lapsed, the
    message would offer what is no longer there."""
    said = json.loads(message["personalisation"])
    # Another patient's acceptance ends this patient's offers of the slot under the other patient's lock: a write to
    # the rows (changing nothing) waits for one in flight, so that the read below sees it.
    await tx.execute(
        "UPDATE slot_offers SET status = status WHERE appointment_id = ? AND patient_id = ? AND status = ?",
        (message["appointment_id"], message["patient_id"], OfferStatus.OFFERED),
    )
    open_offers = await tx.fetch_all(
        "SELECT s.starts_at FROM slot_offers o JOIN slots s ON s.id = o.slot_id"
        " WHERE o.appointment_id = ? AND o.patient_id = ? AND o.status = ? AND o.expires_at > ?",
        (message["appointment_id"], message["patient_id"], OfferStatus.OFFERED, to_db(now)),
    )
    for offer in open_offers:
        slot = appointment_news(from_db(offer["starts_at"]), "", "")
        if (said.get("date"), said.get("time")) == (slot["date"], slot["time"]):
            return None
    return "offer ended"


async def _said_since(tx: Transaction, message: Row, news: dict[str, str]) -> bool:
    """A later message about the appointment, by the same channel, already gives its news as it is now."""
    later = await tx.fetch_all(
        "SELECT personalisation FROM outbox_messages WHERE appointment_id = ? AND channel = ? AND lane = ? AND id > ?"
        " AND kind IN (?, ?) AND status IN (?, ?, ?)",
        (
            message["appointment_id"],
            message["channel"],
            Lane.BULK,
            message["id"],
            *sorted(NEWS_KINDS),
            MessageStatus.QUEUED,
            MessageStatus.SENDING,
            MessageStatus.SENT,
        ),
    )
    return any(news.items() <= json.loads(row["personalisation"]).items() for row in later)


async def audit_message(
    tx: Transaction,
    now: datetime,
    action: AuditAction,
    message_id: int,
    detail: str,
    *,
    actor: str,
    actor_type: ActorType = ActorType.SYSTEM,
) -> None:
    await record_audit(
        tx,
        at=now,
        actor_type=actor_type,
        actor_id=actor,
        action=action,
        record_type=RecordType.MESSAGE,
        record_id=message_id,
        detail=detail,
    )
