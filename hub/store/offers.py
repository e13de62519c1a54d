"""Earlier appointments: patients ask to be offered an earlier time; when a slot of their clinic is free, the worker
offers it to a small batch of them (outside quiet hours, outside the cut-off, within each one's limits); the first to
accept gets it through the same conditional write as any move, the others find it gone; offers lapse and the next
batch is offered. Every step is audited, and the hospital hears of requests and offers through events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.appointments import ActionPolicy
from hub.rules.feed import choose_channel
from hub.rules.sending import in_quiet_hours
from hub.rules.slots import Candidate, Window, offer_open, offer_order
from hub.settings import Settings
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.outbox import MESSAGE_PATIENT_COLUMNS, queue_appointment_message
from hub.store.slot_moves import Moved, reschedule_by_patient
from hub.store.slots import patient_moves
from hub.store.stale_messages import withdraw_ended_offers
from hub.vocabulary import (
    ActorType,
    AuditAction,
    Channel,
    EventKind,
    MessageKind,
    OfferStatus,
    RecordType,
    SlotMoveHow,
    SlotStatus,
    TaskKind,
    WhyNot,
)

_WORKER = "worker"
# The appointments a free slot suits: the same trust, site, clinic, clinician and kind, booked, later than the slot,
# and not waiting for a cancellation the patient asked for (they could not take it: their answer is "pending").
_SAME_PLACE = (
    "a.organisation_id = s.organisation_id AND a.site_id = s.site_id AND a.clinic = s.clinic"
    " AND a.clinician = s.clinician AND a.mode = s.mode AND a.status = 'booked' AND a.starts_at > s.starts_at"
    " AND a.request_state != 'cancel_requested'"
)


async def _audit(
    tx: Transaction,
    *,
    actor: tuple[ActorType, str | int],
    action: AuditAction,
    offer: int | str,
    now: datetime,
    detail: str = "",
    record_type: RecordType = RecordType.SLOT_OFFER,
) -> None:
    await record_audit(
        tx,
        at=now,
        actor_type=actor[0],
        actor_id=actor[1],
        action=action,
        record_type=record_type,
        record_id=offer,
        detail=detail,
    )


async def wants_earlier(db: Database, appointment_id: int) -> bool:
    return (
        await db.fetch_one("SELECT 1 AS x FROM earlier_requests WHERE appointment_id = ?", (appointment_id,))
        is not None
    )


async def set_earlier_request(
    db: Database, *, patient_id: int, appointment_id: int, wanted: bool, now: datetime
) -> bool:
    """The patient asks (or stops asking) to be offered an earlier time for their appointment. False: not theirs.
    Locks only the patient: the offers round and the hospital's changes take the ordinary lock outright."""
    async with db.write(patient=patient_id) as tx:
        row = await tx.fetch_one(
            "SELECT organisation_id, ref FROM appointments WHERE id = ? AND patient_id = ?",
            (appointment_id, patient_id),
        )
        if row is None:
            return False
        had = await tx.fetch_one("SELECT 1 AS x FROM earlier_requests WHERE appointment_id = ?", (appointment_id,))
        if bool(had) == wanted:
            return True
        if wanted:
            await tx.execute(
                "INSERT INTO earlier_requests (appointment_id, patient_id, created_at) VALUES (?, ?, ?)",
                (appointment_id, patient_id, to_db(now)),
            )
        else:
            await tx.execute("DELETE FROM earlier_requests WHERE appointment_id = ?", (appointment_id,))
        action = AuditAction.EARLIER_REQUESTED if wanted else AuditAction.EARLIER_STOPPED
        await _audit(
            tx,
            actor=(ActorType.PATIENT, patient_id),
            action=action,
            offer=appointment_id,
            now=now,
            record_type=RecordType.APPOINTMENT,
        )
        await record_event(
            tx,
            at=now,
            kind=EventKind.APPOINTMENT_EARLIER_REQUESTED,
            organisation_id=int(row["organisation_id"]),
            patient_id=patient_id,
            appointment_id=appointment_id,
            data={"appointment_ref": row["ref"], "wanted": wanted},
        )
    return True


_OFFER_COLUMNS = (
    "o.id, o.slot_id, o.appointment_id, o.patient_id, o.status, o.expires_at, s.starts_at AS slot_start,"
    " s.duration_minutes, a.starts_at AS appointment_start, a.status AS appointment_status, a.clinic,"
    " t.name AS site_name"
)
_OFFER_FROM = (
    " FROM slot_offers o JOIN slots s ON s.id = o.slot_id JOIN appointments a ON a.id = o.appointment_id"
    " JOIN sites t ON t.id = s.site_id"
)


def _shaped(row: Row) -> Row:
    for column in ("expires_at", "slot_start", "appointment_start"):
        row[column] = from_db(row[column])
    return row


async def get_offer(db: Database, patient_id: int, offer_id: int) -> Row | None:
    row = await db.fetch_one(
        f"SELECT {_OFFER_COLUMNS}{_OFFER_FROM} WHERE o.id = ? AND o.patient_id = ?", (offer_id, patient_id)
    )
    return _shaped(row) if row else None


async def list_open_offers(db: Database, patient_id: int, *, now: datetime) -> list[Row]:
    rows = await db.fetch_all(
        f"SELECT {_OFFER_COLUMNS}{_OFFER_FROM} WHERE o.patient_id = ? AND o.status = ? AND o.expires_at > ?"
        " ORDER BY s.starts_at",
        (patient_id, OfferStatus.OFFERED, to_db(now)),
    )
    return [offer for offer in map(_shaped, rows) if offer_open(offer, now=now)]


class _OfferEnded(Exception):
    """The offer ended between its reading and its acceptance: the acceptance is rolled back whole."""


async def accept_offer(
    db: Database,
    *,
    patient_id: int,
    offer_id: int,
    now: datetime,
    policy: ActionPolicy,
    window: Window,
    settings: Settings,
    shown_start: datetime | None = None,
) -> Moved:
    """The first to accept gets the slot (the same conditional write as any move); a later one finds it gone. The offer
    is read open before the transaction, and accepted in it only while still open (one conditional write): one that
    ended in between (lapsed, declined in another tab, gone, no longer earlier than the appointment) is answered as
    gone, and nothing of the move stays.
    `shown_start`: the slot's time on the offer the patient took (hub.store.slot_moves.reschedule_by_patient)."""
    offer = await get_offer(db, patient_id, offer_id)
    if offer is None:
        return Moved(False, WhyNot.MISSING)
    if not offer_open(offer, now=now):
        return Moved(False, WhyNot.GONE)

    async def settle(tx: Transaction, taken: bool) -> None:
        if not taken:
            await tx.execute(
                "UPDATE slot_offers SET status = ?, answered_at = ? WHERE id = ? AND status = ?",
                (OfferStatus.GONE, to_db(now), offer_id, OfferStatus.OFFERED),
            )
            await withdraw_ended_offers(tx, [offer["appointment_id"]], now=now, actor=_WORKER)
            return
        # After the slot's write, as every acceptance of the slot takes its rows (the slot, then its offers). Still
        # earlier than the appointment as it is now: the hospital may have moved it while the acceptance waited.
        accepted = await tx.execute(
            "UPDATE slot_offers SET status = ?, answered_at = ? WHERE id = ? AND status = ? AND expires_at > ?"
            " AND EXISTS (SELECT 1 FROM appointments a JOIN slots s ON s.id = slot_offers.slot_id"
            " WHERE a.id = slot_offers.appointment_id AND a.status = 'booked' AND a.starts_at > s.starts_at)",
            (OfferStatus.ACCEPTED, to_db(now), offer_id, OfferStatus.OFFERED, to_db(now)),
        )
        if accepted != 1:
            raise _OfferEnded(offer_id)  # the slot just taken goes back with the rest of the transaction
        gone = await tx.fetch_all(
            "UPDATE slot_offers SET status = ? WHERE slot_id = ? AND status = ? RETURNING appointment_id",
            (OfferStatus.GONE, offer["slot_id"], OfferStatus.OFFERED),
        )
        # An offer answered on the site before its text went (a queue behind an invitation run), and the others'
        # offers of this slot not gone out yet, are not sent now.
        ended = [offer["appointment_id"], *(int(r["appointment_id"]) for r in gone)]
        await withdraw_ended_offers(tx, ended, now=now, actor=_WORKER)
        await tx.execute("DELETE FROM earlier_requests WHERE appointment_id = ?", (offer["appointment_id"],))
        await _audit(
            tx,
            actor=(ActorType.PATIENT, patient_id),
            action=AuditAction.EARLIER_ACCEPTED,
            offer=offer_id,
            now=now,
            detail=f"slot {offer['slot_id']}",
        )

    try:
        return await reschedule_by_patient(
            db,
            patient_id=patient_id,
            appointment_id=offer["appointment_id"],
            slot_id=offer["slot_id"],
            now=now,
            policy=policy,
            window=window,
            settings=settings,
            how=SlotMoveHow.EARLIER_OFFER,
            after=settle,
            shown_start=shown_start,
        )
    except _OfferEnded:
        return Moved(False, WhyNot.GONE)


async def decline_offer(db: Database, *, patient_id: int, offer_id: int, now: datetime) -> bool:
    """One conditional write of the patient's own offer (an acceptance of the same slot waits for it, and then
    leaves it declined): the patient's lock only."""
    async with db.write(patient=patient_id) as tx:
        declined = await tx.fetch_one(
            "UPDATE slot_offers SET status = ?, answered_at = ? WHERE id = ? AND patient_id = ? AND status = ?"
            " RETURNING appointment_id",
            (OfferStatus.DECLINED, to_db(now), offer_id, patient_id, OfferStatus.OFFERED),
        )
        if declined is not None:
            await _audit(
                tx, actor=(ActorType.PATIENT, patient_id), action=AuditAction.EARLIER_DECLINED, offer=offer_id, now=now
            )
            await withdraw_ended_offers(tx, [int(declined["appointment_id"])], now=now, actor=_WORKER)
    return declined is not None


@dataclass(frozen=True)
class OfferRound:
    lapsed: int
    offered: int


async def run_offers(db: Database, *, settings: Settings, now: datetime, slots_per_round: int = 100) -> OfferRound:
    """One round of the worker: offers past their time lapse, offers of slots taken meanwhile are gone, and each free
    slot with no open offer is offered to the next batch of patients waiting for an earlier appointment (outside quiet
    hours only: an offer that waits overnight would lapse before it is read). Only a slot inside the window a patient
    may move into (`slots.window_days`): one further ahead could not be taken, and waits until it can."""
    cutoff = timedelta(hours=settings.change_cutoff_hours)
    horizon = now + timedelta(days=settings.slots.window_days)
    async with db.write() as tx:
        lapsed = await end_offers(tx, now=now)
        if in_quiet_hours(now, start=settings.notify.quiet_start_hour, end=settings.notify.quiet_end_hour):
            return OfferRound(lapsed, 0)
        free = await tx.fetch_all(
            "SELECT s.id, s.ref, s.organisation_id, s.starts_at, s.clinic, t.name AS site_name FROM slots s"
            " JOIN sites t ON t.id = s.site_id WHERE s.status = ? AND s.starts_at >= ? AND s.starts_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM slot_offers o WHERE o.slot_id = s.id AND o.status = ?)"
            # Someone waiting who has not yet been offered this slot: a slot all have had stays out of the round.
            f" AND EXISTS (SELECT 1 FROM earlier_requests r JOIN appointments a ON a.id = r.appointment_id"
            f" WHERE {_SAME_PLACE} AND NOT EXISTS (SELECT 1 FROM slot_offers o WHERE o.slot_id = s.id"
            " AND o.appointment_id = a.id)) ORDER BY s.starts_at LIMIT ?",
            (SlotStatus.FREE, to_db(now + cutoff), to_db(horizon), OfferStatus.OFFERED, slots_per_round),
        )
        offered = 0
        for slot in free:
            offered += await _offer(tx, slot, settings=settings, now=now, cutoff=cutoff)
    return OfferRound(lapsed, offered)


async def end_offers(tx: Transaction, *, now: datetime) -> int:
    """The start of the worker's round: offers past their time lapse, offers of slots taken meanwhile and offers their
    appointment can no longer take are gone, and their texts still waiting are withdrawn. Returns how many lapsed."""
    lapsing = await tx.fetch_all(
        "SELECT id, appointment_id FROM slot_offers WHERE status = ? AND expires_at <= ?",
        (OfferStatus.OFFERED, to_db(now)),
    )
    for row in lapsing:
        await tx.execute("UPDATE slot_offers SET status = ? WHERE id = ?", (OfferStatus.LAPSED, row["id"]))
        await _audit(tx, actor=(ActorType.SYSTEM, _WORKER), action=AuditAction.EARLIER_LAPSED, offer=row["id"], now=now)
    gone = await tx.fetch_all(
        "UPDATE slot_offers SET status = ? WHERE status = ?"
        " AND slot_id IN (SELECT id FROM slots WHERE status != ?) RETURNING appointment_id",
        (OfferStatus.GONE, OfferStatus.OFFERED, SlotStatus.FREE),
    )
    # Offers their appointment can no longer take (the hospital cancelled it, or moved it to the slot's time or before
    # it, or elsewhere; the patient asked to cancel it): they would hold the slot from the next batch until they lapse.
    unsuited = await tx.fetch_all(
        "SELECT o.id, o.appointment_id FROM slot_offers o JOIN slots s ON s.id = o.slot_id"
        f" JOIN appointments a ON a.id = o.appointment_id WHERE o.status = ? AND NOT ({_SAME_PLACE}) ORDER BY o.id",
        (OfferStatus.OFFERED,),
    )
    for row in unsuited:
        await tx.execute(
            "UPDATE slot_offers SET status = ? WHERE id = ? AND status = ?",
            (OfferStatus.GONE, row["id"], OfferStatus.OFFERED),
        )
        await _audit(
            tx,
            actor=(ActorType.SYSTEM, _WORKER),
            action=AuditAction.EARLIER_ENDED,
            offer=row["id"],
            now=now,
            detail="its appointment can no longer take it",
        )
    ended = sorted({int(r["appointment_id"]) for r in [*lapsing, *gone, *unsuited]})
    await withdraw_ended_offers(tx, ended, now=now, actor=_WORKER)
    return len(lapsing)


async def _offer(tx: Transaction, slot: Row, *, settings: Settings, now: datetime, cutoff: timedelta) -> int:
    s = settings.slots
    rows = await tx.fetch_all(
        "SELECT a.id, a.ref, a.starts_at, a.created_at, a.patient_id FROM earlier_requests r"
        " JOIN appointments a ON a.id = r.appointment_id JOIN slots s ON s.id = ?"
        f" WHERE {_SAME_PLACE} AND a.starts_at >= ?"
        " AND NOT EXISTS (SELECT 1 FROM slot_offers o WHERE o.appointment_id = a.id"
        "   AND (o.slot_id = s.id OR o.status = ?))"
        " AND (SELECT COUNT(*) FROM slot_offers o WHERE o.appointment_id = a.id) < ?"
        " AND (SELECT COUNT(*) FROM tasks t WHERE t.appointment_id = a.id AND t.kind = ?)"
        f"   + {patient_moves('a.id')} < ?",
        (
            slot["id"],
            to_db(now + cutoff),
            OfferStatus.OFFERED,
            s.earlier_max_offers,
            TaskKind.REBOOK,
            settings.rebook_limit,
        ),
    )
    by_id = {int(r["id"]): r for r in rows}
    ordered = offer_order(
        (Candidate(int(r["id"]), from_db(r["starts_at"]), from_db(r["created_at"])) for r in rows),
        slot_start=from_db(slot["starts_at"]),
        order=s.earlier_order,
    )
    batch_row = await tx.fetch_one(
        "SELECT COALESCE(MAX(batch), 0) + 1 AS n FROM slot_offers WHERE slot_id = ?", (slot["id"],)
    )
    batch = int(batch_row["n"]) if batch_row else 1
    expires = now + timedelta(minutes=s.earlier_offer_minutes)
    made = 0
    for candidate in ordered:
        if made == s.earlier_batch:
            break
        appointment = by_id[candidate.appointment_id]
        patient = await tx.fetch_one(
            f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE id = ?", (appointment["patient_id"],)
        )
        if patient is None or choose_channel(patient) == Channel.LETTER:
            continue  # an offer by post would lapse before it arrived
        offer = await tx.fetch_one(
            "INSERT INTO slot_offers (slot_id, appointment_id, patient_id, batch, status, offered_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                slot["id"],
                candidate.appointment_id,
                patient["id"],
                batch,
                OfferStatus.OFFERED,
                to_db(now),
                to_db(expires),
            ),
        )
        assert offer is not None
        await queue_appointment_message(
            tx,
            settings=settings,
            kind=MessageKind.EARLIER_OFFER,
            patient=patient,
            appointment_id=candidate.appointment_id,
            starts_at=from_db(slot["starts_at"]),
            site_name=slot["site_name"],
            clinic=slot["clinic"],
            now=now,
        )
        await _audit(
            tx,
            actor=(ActorType.SYSTEM, _WORKER),
            action=AuditAction.EARLIER_OFFERED,
            offer=offer["id"],
            now=now,
            detail=f"slot {slot['id']} batch {batch}",
        )
        await record_event(
            tx,
            at=now,
            kind=EventKind.APPOINTMENT_EARLIER_OFFERED,
            organisation_id=int(slot["organisation_id"]),
            patient_id=int(patient["id"]),
            appointment_id=candidate.appointment_id,
            data={"appointment_ref": appointment["ref"], "slot_ref": slot["ref"], "expires_at": expires.isoformat()},
        )
        made += 1
    return made
