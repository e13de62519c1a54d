"""Whether a message about an appointment is still true as the appointment is now (`judge`): withdrawn when the
appointment's later changes have made it wrong (cancelled, passed, a reminder of a letter since read:
`no_longer_true`; an earlier time offered whose offer has ended), its news brought up to date when the appointment
moved (`out_of_date`), and a posted copy that would have gone as the hospital's PDF, with the old time, sent as the
hub's own letter instead. Checked when a message goes back in the queue after a temporary failure
(hub.store.rerouting.requeued) or is given up on (hub.store.failures), when an appointment changes and its
invitation's reminders and posted copy still wait (`check_escalations`), and when offers end (`withdraw_ended_offers`).
Each withdraws only what is still queued, by a conditional UPDATE of its own row: a message a worker has claimed
meanwhile goes as it is."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from hub.clock import from_db, to_db
from hub.db import Row, Transaction
from hub.rules.sending import ESCALATION_KINDS, NEWS_KINDS, PDF_KINDS, REMINDER_KINDS, no_longer_true
from hub.store.audit import audit_message
from hub.store.outbox import NOWHERE, appointment_news, goes_as_template, has_address, withdraw_posted_copies
from hub.store.reminders import appointment_now, letter_opened
from hub.vocabulary import AuditAction, Channel, Lane, MessageKind, MessageStatus, OfferStatus

# Shared with hub.store.rerouting, which imports this module (never the other way round).
MESSAGE_COLUMNS = (
    "id, kind, lane, channel, patient_id, appointment_id, personalisation, status, attempts, notify_id,"
    " delivery_status, urgent, pdf_letter_id"
)
PATIENT_COLUMNS = (
    "id, organisation_id, mobile, email, opted_out, sms_opted_out, email_opted_out, given_name, family_name,"
    " address_lines, postcode, link_id"
)


class Judgement(NamedTuple):
    """Whether a message about an appointment is still true as the appointment is now."""

    why: str | None  # why it should not go (None: it should)
    said: dict[str, Any] | None = None  # what it should say now, when that is not what it says
    templated: bool = False  # a letter that must go as the hub's own template now, not as the hospital's PDF


async def read_patient(tx: Transaction, patient_id: int | None) -> Row | None:
    if patient_id is None:
        return None
    return await tx.fetch_one(f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id = ?", (patient_id,))


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
            await withdraw_message(tx, message, why, now=now, actor=actor)


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
            await withdraw_message(tx, message, why, now=now, actor=actor)


async def withdraw_message(tx: Transaction, message: Row, why: str, *, now: datetime, actor: str) -> None:
    """A message still waiting to go, cancelled for `why` (audited), and any posted copy that hung on it."""
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
