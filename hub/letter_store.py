"""Queries on letters: PDFs attached to a patient or an appointment."""

from __future__ import annotations

from datetime import datetime

from hub.audit import record_audit, record_event
from hub.clock import from_db, to_db
from hub.db import Database, Row

_COLUMNS = "id, organisation_id, appointment_id, kind, title, size_bytes, created_at, first_viewed_at"

KINDS = {
    "appointment_letter": "Appointment letter",
    "clinic_letter": "Clinic letter",
    "discharge_summary": "Discharge summary",
}


def _shaped(row: Row) -> Row:
    row["created_at"] = from_db(row["created_at"])
    row["unread"] = row["first_viewed_at"] is None
    return row


async def list_letters_for_patient(db: Database, patient_id: int, *, appointment_id: int | None = None) -> list[Row]:
    sql = f"SELECT {_COLUMNS} FROM letters WHERE patient_id = ?"
    params: list[object] = [patient_id]
    if appointment_id is not None:
        sql += " AND appointment_id = ?"
        params.append(appointment_id)
    return [_shaped(r) for r in await db.fetch_all(sql + " ORDER BY created_at DESC, id DESC", params)]


async def open_letter(db: Database, *, patient_id: int, letter_id: int, at: datetime) -> tuple[Row, bytes] | None:
    """The letter and its PDF; the first view is recorded (it stops escalation to post)."""
    row = await db.fetch_one(
        f"SELECT {_COLUMNS}, content FROM letters WHERE id = ? AND patient_id = ?", (letter_id, patient_id)
    )
    if row is None:
        return None
    content = bytes(row.pop("content"))
    if row["first_viewed_at"] is None:
        async with db.write() as tx:
            first = await tx.execute(
                "UPDATE letters SET first_viewed_at = ? WHERE id = ? AND first_viewed_at IS NULL",
                (to_db(at), letter_id),
            )
            if first:
                await record_audit(
                    tx,
                    at=at,
                    actor_type="patient",
                    actor_id=patient_id,
                    action="letter_viewed",
                    record_type="letter",
                    record_id=letter_id,
                )
                await record_event(
                    tx,
                    at=at,
                    kind="letter.viewed",
                    organisation_id=row["organisation_id"],
                    patient_id=patient_id,
                    appointment_id=row["appointment_id"],
                    data={"letter_id": letter_id},
                )
    return _shaped(row), content
