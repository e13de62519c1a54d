"""Sending the hospital's events to the PAS over HL7 (hub.jobs.hl7_send): one cursor per organisation, claimed by
one worker at a time under a lease, with `claims` as the claim's fencing token. Events go strictly in id order, so
a later event about an appointment never reaches the PAS before an earlier one has been answered.

A worker that dies after sending and before recording leaves the cursor where it was: when its lease runs out the
next worker sends the same event again, with the same control id, and the PAS's duplicate detection drops it.

Every write here but the cursor's making changes the organisation's cursor row by a conditional UPDATE fenced by the
claim (and appends deliveries, tasks and audit), so on PostgreSQL it takes no lock of the whole hub (`keys=()`, see
hub.db.postgres): the answers to a burst of patients' confirmations hold none of them up. A claim reads the cursor
and then takes it by an UPDATE that holds only if nothing changed since the read: of two workers claiming at once,
the second takes nothing, and a claim never takes over a lease its holder renewed meanwhile."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Database, Transaction
from hub.rules.hl7_outbound import ACCEPTED, Answer, OutboundEvent
from hub.store.audit import record_audit
from hub.store.tasks import create_task
from hub.vocabulary import ActorType, AuditAction, RecordType, TaskKind

ACTOR = "hl7_outbound"


async def start_cursor(db: Database, organisation_code: str) -> int | None:
    """The organisation's id, its cursor made when there is none: sending starts after the newest event held
    (the events before were the JSON feed's to read). None when the hub has no such organisation."""
    async with db.write() as tx:
        org = await tx.fetch_one("SELECT id FROM organisations WHERE code = ?", (organisation_code,))
        if org is None:
            return None
        newest = await tx.fetch_one(
            "SELECT COALESCE(MAX(id), 0) AS id FROM events WHERE organisation_id = ?", (org["id"],)
        )
        assert newest is not None
        await tx.execute(
            "INSERT INTO hl7_outbound (organisation_id, last_event_id) VALUES (?, ?)"
            " ON CONFLICT (organisation_id) DO NOTHING",
            (org["id"], int(newest["id"])),
        )
    return int(org["id"])


async def has_work(db: Database, organisation_id: int, *, now: datetime) -> bool:
    """A read first, so that an idle worker's rounds take no write lock: an event waits, nobody holds the cursor,
    and no retry is being waited for."""
    row = await db.fetch_one(
        "SELECT o.claimed_until, o.next_attempt_at FROM hl7_outbound o WHERE o.organisation_id = ?"
        " AND EXISTS (SELECT 1 FROM events e WHERE e.organisation_id = o.organisation_id AND e.id > o.last_event_id)",
        (organisation_id,),
    )
    return bool(
        row
        and (row["claimed_until"] is None or from_db(row["claimed_until"]) <= now)
        and (row["next_attempt_at"] is None or from_db(row["next_attempt_at"]) <= now)
    )


async def claim_cursor(
    db: Database, organisation_id: int, *, now: datetime, lease: timedelta
) -> tuple[int, int, int] | None:
    """(token, last event id, attempts so far) for this worker, or None: another holds it, or a retry is not due."""
    async with db.write(keys=()) as tx:
        row = await tx.fetch_one(
            "SELECT last_event_id, claims, claimed_until, attempts, next_attempt_at FROM hl7_outbound"
            " WHERE organisation_id = ?",
            (organisation_id,),
        )
        if row is None:
            return None
        if row["claimed_until"] is not None and from_db(row["claimed_until"]) > now:
            return None
        if row["next_attempt_at"] is not None and from_db(row["next_attempt_at"]) > now:
            return None
        token = int(row["claims"]) + 1
        # Only if nothing changed since the read: not claimed by another, and not moved on, renewed or put off by
        # the holder whose lease had just lapsed (it may still be recording: its answer renews the lease).
        taken = await tx.execute(
            "UPDATE hl7_outbound SET claims = ?, claimed_until = ? WHERE organisation_id = ? AND claims = ?"
            " AND last_event_id = ? AND attempts = ? AND (claimed_until IS NULL OR claimed_until <= ?)"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
            (
                token,
                to_db(now + lease),
                organisation_id,
                row["claims"],
                row["last_event_id"],
                row["attempts"],
                to_db(now),
                to_db(now),
            ),
        )
        if taken != 1:
            return None
    return token, int(row["last_event_id"]), int(row["attempts"])


async def holds(db: Database, organisation_id: int, token: int, *, until: datetime) -> bool:
    """Whether the claim is still this worker's and lasts past `until` (checked before each send)."""
    row = await db.fetch_one(
        "SELECT claims, claimed_until FROM hl7_outbound WHERE organisation_id = ?", (organisation_id,)
    )
    return bool(row and int(row["claims"]) == token and row["claimed_until"] and from_db(row["claimed_until"]) > until)


_EVENTS = (
    "SELECT e.id, e.kind, e.created_at, e.data, e.patient_id, e.appointment_id, a.ref, a.starts_at,"
    " a.duration_minutes, a.clinic, s.code AS site_code, p.mrn, p.nhs_number, p.family_name, p.given_name,"
    " p.date_of_birth, h.placer_id, h.filler_id FROM events e"
    " LEFT JOIN appointments a ON a.id = e.appointment_id"
    " LEFT JOIN sites s ON s.id = a.site_id"
    " LEFT JOIN patients p ON p.id = a.patient_id"
    " LEFT JOIN hl7_appointment_ids h ON h.organisation_id = e.organisation_id AND h.ref = a.ref"
    " WHERE e.organisation_id = ? AND e.id > ? ORDER BY e.id LIMIT ?"
)


async def next_events(
    db: Database, organisation_id: int, *, after: int, limit: int, locations: dict[str, str]
) -> list[tuple[int, OutboundEvent | None]]:
    """The events after the cursor, oldest first: each with its message's content, or None when it has no HL7 form
    (it is not about an appointment)."""
    rows = await db.fetch_all(_EVENTS, (organisation_id, after, limit))
    found: list[tuple[int, OutboundEvent | None]] = []
    for r in rows:
        if r["ref"] is None:
            found.append((int(r["id"]), None))
            continue
        found.append((int(r["id"]), _event(r, locations)))
    return found


def _event(r: Any, locations: dict[str, str]) -> OutboundEvent:
    return OutboundEvent(
        id=int(r["id"]),
        kind=r["kind"],
        occurred_at=from_db(r["created_at"]),
        patient_id=int(r["patient_id"]),
        appointment_id=int(r["appointment_id"]),
        data=json.loads(r["data"]),
        appointment_ref=r["ref"],
        placer_id=r["placer_id"] or "",
        filler_id=r["filler_id"] or "",
        starts_at=from_db(r["starts_at"]),
        duration_minutes=int(r["duration_minutes"]),
        clinic=r["clinic"] or "",
        location=locations.get(r["site_code"], r["site_code"] or ""),
        mrn=r["mrn"] or "",
        nhs_number=r["nhs_number"] or "",
        family_name=r["family_name"] or "",
        given_name=r["given_name"] or "",
        date_of_birth=str(r["date_of_birth"] or ""),
    )


async def pass_over(
    db: Database, organisation_id: int, token: int, *, up_to: int, now: datetime, lease: timedelta
) -> bool:
    """The cursor moved past events with no HL7 form. False when the claim is no longer this worker's."""
    async with db.write(keys=()) as tx:
        moved = await tx.execute(
            "UPDATE hl7_outbound SET last_event_id = ?, claimed_until = ? WHERE organisation_id = ? AND claims = ?"
            " AND last_event_id < ?",
            (up_to, to_db(now + lease), organisation_id, token, up_to),
        )
    return moved == 1


async def record_answer(
    db: Database,
    organisation_id: int,
    token: int,
    *,
    event: OutboundEvent,
    control_id: str,
    message_type: str,
    answer: Answer,
    attempts: int,
    now: datetime,
    lease: timedelta,
) -> bool:
    """The PAS answered: the cursor moves past the event, and an AE or AR becomes a task for the booking centre
    (the PAS will not change its answer to the same message, so it is not sent again). False, and nothing
    recorded, when the claim is no longer this worker's."""
    async with db.write(keys=()) as tx:
        moved = await tx.execute(
            "UPDATE hl7_outbound SET last_event_id = ?, attempts = 0, next_attempt_at = NULL, last_error = '',"
            " claimed_until = ? WHERE organisation_id = ? AND claims = ? AND last_event_id < ?",
            (event.id, to_db(now + lease), organisation_id, token, event.id),
        )
        if moved != 1:
            return False
        await tx.execute(
            "INSERT INTO hl7_deliveries (event_id, organisation_id, control_id, message_type, ack_code, ack_text,"
            " attempts, answered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event.id, organisation_id, control_id, message_type, answer.code, answer.text, attempts, to_db(now)),
        )
        if answer.code != ACCEPTED:
            reason = f"The hospital's system answered {answer.code} to {message_type} for event {event.id}"
            reason += f" ({event.kind}): {answer.text}" if answer.text else f" ({event.kind})."
            await create_task(
                tx,
                kind=TaskKind.HL7_REFUSED,
                patient_id=event.patient_id,
                appointment_id=event.appointment_id,
                reason=reason,
                now=now,
                source_id=event.id,
            )
            await record_audit(
                tx,
                at=now,
                actor_type=ActorType.SYSTEM,
                actor_id=ACTOR,
                action=AuditAction.HL7_REFUSED,
                record_type=RecordType.APPOINTMENT,
                record_id=event.appointment_id,
                detail=f"event {event.id} {message_type} {answer.code}",
            )
    return True


async def record_failure(db: Database, organisation_id: int, token: int, *, error: str, retry_at: datetime) -> None:
    """No answer (refused, dropped, timed out, or not an ACK for the message): the same event goes again at
    `retry_at`, and nothing after it goes first."""
    async with db.write(keys=()) as tx:
        await tx.execute(
            "UPDATE hl7_outbound SET attempts = attempts + 1, next_attempt_at = ?, claimed_until = NULL,"
            " last_error = ? WHERE organisation_id = ? AND claims = ?",
            (to_db(retry_at), error[:200], organisation_id, token),
        )


async def release(db: Database, organisation_id: int, token: int) -> None:
    async with db.write(keys=()) as tx:
        await tx.execute(
            "UPDATE hl7_outbound SET claimed_until = NULL WHERE organisation_id = ? AND claims = ?",
            (organisation_id, token),
        )


async def remember_ids(tx: Transaction, organisation_id: int, ref: str, *, placer_id: str, filler_id: str) -> None:
    """SCH-1 and SCH-2 of an SIU, kept for the SRMs about the appointment (a later message that leaves one out
    keeps it)."""
    await tx.execute(
        "INSERT INTO hl7_appointment_ids (organisation_id, ref, placer_id, filler_id) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (organisation_id, ref) DO UPDATE SET"
        " placer_id = CASE WHEN excluded.placer_id = '' THEN hl7_appointment_ids.placer_id"
        " ELSE excluded.placer_id END,"
        " filler_id = CASE WHEN excluded.filler_id = '' THEN hl7_appointment_ids.filler_id"
        " ELSE excluded.filler_id END",
        (organisation_id, ref, placer_id, filler_id),
    )
