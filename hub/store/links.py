"""Patients' stable links: which patient a link reaches, and rotating a patient's link.

Rotating gives the patient a new random link id and sets `link_rotated_at`: from then on the previous link id
and any old-style link (the signed patient id, issued before link ids) no longer reach them. Sending a new link
rotates, gives messages still waiting the new link and queues it to the patient in the same transaction (the
console's admin action, and `python -m hub rotate-link`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from hub.clock import to_db
from hub.db import Database, Row, Transaction
from hub.links import LegacyLink, new_link_id, patient_link
from hub.rules.feed import choose_channel
from hub.settings import Settings
from hub.store.audit import record_audit
from hub.store.outbox import queue_message
from hub.store.sessions import end_patient_sessions
from hub.vocabulary import ActorType, AuditAction, Channel, MessageKind, MessageStatus, RecordType


def reachable_by(patient: Row) -> Channel | None:
    """The channel a link would go by: the patient's usual one, when we have its number or address."""
    channel = choose_channel(patient)
    return channel if {Channel.SMS: patient["mobile"], Channel.EMAIL: patient["email"]}.get(channel) else None


async def queue_link(
    tx: Transaction, patient: Row, *, patient_id: int, link_id: str, settings: Settings, now: datetime
) -> Channel | None:
    """Queues the patient's stable link by their usual channel, for the workers' next round (the immediate lane is
    the web's own, for codes: the workers never send it, and expire what it leaves). The patient row needs mobile,
    email and the columns `choose_channel` reads. None, and nothing queued, when there is no way to reach them."""
    channel = reachable_by(patient)
    if channel is None:
        return None
    await queue_message(
        tx,
        at=now,
        kind=MessageKind.PATIENT_LINK,
        channel=channel,
        recipient=patient["mobile"] if channel == Channel.SMS else patient["email"],
        template_id=settings.notify.templates.template_for(MessageKind.PATIENT_LINK, channel) or "",
        personalisation={"link": patient_link(settings, link_id)},
        patient_id=patient_id,
    )
    return channel


async def patient_for_link(db: Database | Transaction, link: str | LegacyLink) -> int | None:
    """The patient a read link reaches; None for an unknown link id or a rotated patient's old-style link."""
    if isinstance(link, LegacyLink):
        row = await db.fetch_one("SELECT id FROM patients WHERE id = ? AND link_rotated_at IS NULL", (link.patient_id,))
    else:
        row = await db.fetch_one("SELECT id FROM patients WHERE link_id = ?", (link,))
    return int(row["id"]) if row else None


async def patient_by_ref(db: Database, *, organisation_code: str, ref: str) -> int | None:
    """The patient the trust knows by this reference (MRN)."""
    row = await db.fetch_one(
        "SELECT p.id FROM patients p JOIN organisations o ON o.id = p.organisation_id WHERE o.code = ? AND p.mrn = ?",
        (organisation_code, ref),
    )
    return int(row["id"]) if row else None


async def _rotate(
    tx: Transaction, *, patient_id: int, actor_type: ActorType, actor_id: str | int, detail: str, now: datetime
) -> str | None:
    link_id = new_link_id()
    row = await tx.fetch_one(
        "UPDATE patients SET link_id = ?, link_rotated_at = ? WHERE id = ? RETURNING id",
        (link_id, to_db(now), patient_id),
    )
    if row is None:
        return None
    # The patient's every link stops, those of records merged into theirs as well (they reach the same patient),
    # and they are signed out everywhere: the link, and the phone it is on, may be in the wrong hands.
    merged = await tx.fetch_all("SELECT id FROM patients WHERE merged_into = ?", (patient_id,))
    for record in merged:
        await tx.execute(
            "UPDATE patients SET link_id = ?, link_rotated_at = ? WHERE id = ?",
            (new_link_id(), to_db(now), record["id"]),
        )
    await end_patient_sessions(tx, patient_id=patient_id, at=now)
    await record_audit(
        tx,
        at=now,
        actor_type=actor_type,
        actor_id=actor_id,
        action=AuditAction.PATIENT_LINK_ROTATED,
        record_type=RecordType.PATIENT,
        record_id=patient_id,
        detail=detail,
    )
    return link_id


async def rotate_patient_link(
    db: Database, *, patient_id: int, actor_type: ActorType, actor_id: str | int, now: datetime
) -> str | None:
    """A new link id for the patient (their earlier links stop working); None when there is no such patient."""
    async with db.write() as tx:
        return await _rotate(tx, patient_id=patient_id, actor_type=actor_type, actor_id=actor_id, detail="", now=now)


async def renew_queued_links(tx: Transaction, *, patient_id: int, link: str) -> None:
    """Messages still waiting (held for quiet hours, or for a retry) were written with the old link, which no longer
    works: they go with the new one. So do messages out with a worker now, should they come back to be tried again
    (the send under way goes as it was built); a message sent already, put back by a receipt, is renewed then."""
    waiting = await tx.fetch_all(
        "SELECT id, personalisation FROM outbox_messages WHERE patient_id = ? AND status IN (?, ?)",
        (patient_id, MessageStatus.QUEUED, MessageStatus.SENDING),
    )
    for row in waiting:
        said = json.loads(row["personalisation"] or "{}")
        if isinstance(said, dict) and "link" in said and said["link"] != link:
            await tx.execute(
                "UPDATE outbox_messages SET personalisation = ? WHERE id = ? AND status IN (?, ?)",
                (
                    json.dumps({**said, "link": link}, sort_keys=True),
                    row["id"],
                    MessageStatus.QUEUED,
                    MessageStatus.SENDING,
                ),
            )


@dataclass(frozen=True)
class NewLink:
    link_id: str
    channel: Channel | None  # how it was sent; None when we have no mobile or email we may use


async def send_new_link(
    db: Database, *, patient_id: int, actor_type: ActorType, actor_id: str | int, settings: Settings, now: datetime
) -> NewLink | None:
    """Rotates the patient's link and queues the new one by their usual channel (text or email), at once. With no
    way to reach them the link is changed all the same (the old one may be in the wrong hands): the hub's next
    message carries the new one. None when there is no such patient."""
    async with db.write() as tx:
        patient = await tx.fetch_one(
            "SELECT mobile, email, contact_preference, opted_out, sms_opted_out, paperless FROM patients WHERE id = ?",
            (patient_id,),
        )
        if patient is None:
            return None
        link_id = await _rotate(
            tx,
            patient_id=patient_id,
            actor_type=actor_type,
            actor_id=actor_id,
            detail=reachable_by(patient) or "not sent",
            now=now,
        )
        assert link_id is not None  # the row was read in this transaction
        await renew_queued_links(tx, patient_id=patient_id, link=patient_link(settings, link_id))
        channel = await queue_link(tx, patient, patient_id=patient_id, link_id=link_id, settings=settings, now=now)
    return NewLink(link_id, channel)
