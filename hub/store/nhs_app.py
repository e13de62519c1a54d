"""What the NHS App's Wayfinder reads: a patient's appointments and letters by NHS number, the trust's exclusion
flag, and the "Seen" receipt of letters listed on an opened appointment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.store.audit import record_audit
from hub.store.sessions import end_nhs_login_sessions
from hub.vocabulary import ActorType, AuditAction, RecordType

_APPOINTMENTS = (
    "SELECT a.id, a.ref, a.status, a.request_state, a.mode, a.starts_at, a.duration_minutes, a.clinic, a.specialty,"
    " s.name AS site_name, o.code AS organisation_code, o.name AS organisation_name"
    " FROM appointments a JOIN sites s ON s.id = a.site_id JOIN organisations o ON o.id = a.organisation_id"
    " WHERE a.patient_id IN ({ids}) ORDER BY a.starts_at, a.id"
)
_LETTERS = (
    "SELECT l.id, l.ref, l.kind, l.created_at, l.first_viewed_at, l.seen_at, l.appointment_id, a.clinic, a.specialty,"
    " o.code AS organisation_code, o.name AS organisation_name"
    " FROM letters l JOIN organisations o ON o.id = l.organisation_id"
    " LEFT JOIN appointments a ON a.id = l.appointment_id"
    " WHERE l.patient_id IN ({ids}) ORDER BY l.created_at DESC, l.id DESC"
)


def _marks(ids: Sequence[int]) -> str:
    return ", ".join("?" for _ in ids)


async def find_patients_by_nhs_number(db: Database, nhs_number: str) -> list[Row]:
    """Every record with this NHS number: one per trust that knows the patient."""
    return await db.fetch_all(
        "SELECT p.id, p.date_of_birth, p.nhs_app_excluded, o.code AS organisation_code FROM patients p"
        " JOIN organisations o ON o.id = p.organisation_id WHERE p.nhs_number = ? ORDER BY p.id",
        (nhs_number,),
    )


async def list_wayfinder_appointments(db: Database, patient_ids: Sequence[int]) -> list[Row]:
    if not patient_ids:
        return []
    rows = await db.fetch_all(_APPOINTMENTS.format(ids=_marks(patient_ids)), list(patient_ids))
    for row in rows:
        row["starts_at"] = from_db(row["starts_at"])
    return rows


async def list_wayfinder_letters(db: Database, patient_ids: Sequence[int]) -> list[Row]:
    if not patient_ids:
        return []
    rows = await db.fetch_all(_LETTERS.format(ids=_marks(patient_ids)), list(patient_ids))
    for row in rows:
        row["created_at"] = from_db(row["created_at"])
    return rows


async def set_nhs_app_excluded(tx: Transaction, *, patient_id: int, excluded: bool, actor: str, now: datetime) -> bool:
    """The trust's own flag (SRCBR1a): nothing of the patient's reaches the NHS App, and their NHS login sessions end.
    Returns whether it changed."""
    changed = await tx.execute(
        "UPDATE patients SET nhs_app_excluded = ?, updated_at = ? WHERE id = ? AND nhs_app_excluded != ?",
        (int(excluded), to_db(now), patient_id, int(excluded)),
    )
    if changed:
        # A session NHS login started is the NHS App's way in (its deep links sign in through it): it ends too.
        ended = await end_nhs_login_sessions(tx, patient_id=patient_id, at=now) if excluded else 0
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.API_KEY,
            actor_id=actor,
            action=AuditAction.NHS_APP_EXCLUSION_CHANGED,
            record_type=RecordType.PATIENT,
            record_id=patient_id,
            detail=("excluded" if excluded else "included") + (f"; {ended} NHS login sessions ended" if ended else ""),
        )
    return bool(changed)


async def mark_letters_seen(db: Database, *, patient_id: int, appointment_id: int, now: datetime) -> int:
    """The patient opened an appointment: the letters it lists are Seen, each audited. A read first, so a page view
    that finds them all seen already writes nothing. One conditional UPDATE of the appointment's own rows: on
    PostgreSQL it waits for no other patient (the burst's "open one" step)."""
    unseen = await db.fetch_one(
        "SELECT 1 AS x FROM letters WHERE appointment_id = ? AND seen_at IS NULL LIMIT 1", (appointment_id,)
    )
    if unseen is None:
        return 0
    async with db.write(keys=()) as tx:
        seen = await tx.fetch_all(
            "UPDATE letters SET seen_at = ? WHERE appointment_id = ? AND seen_at IS NULL RETURNING id",
            (to_db(now), appointment_id),
        )
        for letter in sorted(seen, key=lambda r: int(r["id"])):
            await record_audit(
                tx,
                at=now,
                actor_type=ActorType.PATIENT,
                actor_id=patient_id,
                action=AuditAction.LETTER_SEEN,
                record_type=RecordType.LETTER,
                record_id=letter["id"],
                detail="listed on the appointment the patient opened",
            )
    return len(seen)
