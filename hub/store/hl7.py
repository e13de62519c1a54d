"""What the HL7 v2 listener keeps of its own: the answer to every message (a repeat gets the same answer), the time of
the newest message applied to each record (an older one never undoes it), and the records as the API's bodies (an
HL7 update names only the fields it changes)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Database, Transaction
from hub.rules.appointments import ChangeKind
from hub.store.appointment_state import change_from
from hub.vocabulary import HospitalStatus


async def organisation_ids(db: Database, codes: set[str]) -> dict[str, int]:
    if not codes:
        return {}
    marks = ", ".join("?" for _ in codes)
    rows = await db.fetch_all(f"SELECT id, code FROM organisations WHERE code IN ({marks})", tuple(sorted(codes)))
    return {r["code"]: int(r["id"]) for r in rows}


async def get_answer(tx: Transaction, facility: str, control_id: str) -> str | None:
    row = await tx.fetch_one(
        "SELECT ack FROM hl7_messages WHERE facility = ? AND control_id = ?", (facility, control_id)
    )
    return str(row["ack"]) if row else None


async def record_answer(
    tx: Transaction, *, facility: str, control_id: str, message_type: str, code: str, ack: str, now: datetime
) -> None:
    await tx.execute(
        "INSERT INTO hl7_messages (facility, control_id, message_type, received_at, ack_code, ack)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (facility, control_id, message_type[:20], to_db(now), code, ack),
    )


async def is_outdated(tx: Transaction, organisation_id: int, record: str, ref: str, sent_at: datetime | None) -> bool:
    """Whether a newer message than one sent at `sent_at` was already applied to this record."""
    if sent_at is None:
        return False
    row = await tx.fetch_one(
        "SELECT message_at FROM hl7_record_times WHERE organisation_id = ? AND record = ? AND ref = ?",
        (organisation_id, record, ref),
    )
    return row is not None and from_db(row["message_at"]) > sent_at


async def mark_applied(tx: Transaction, organisation_id: int, record: str, ref: str, sent_at: datetime | None) -> None:
    if sent_at is None:
        return
    await tx.execute(
        "INSERT INTO hl7_record_times (organisation_id, record, ref, message_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (organisation_id, record, ref) DO UPDATE SET message_at = excluded.message_at"
        " WHERE hl7_record_times.message_at < excluded.message_at",
        (organisation_id, record, ref, to_db(sent_at)),
    )


async def find_patient(tx: Transaction, organisation_id: int, mrn: str) -> tuple[int, int | None] | None:
    """The patient's id and the record it was merged into (None while it stands), or None when there is none."""
    row = await tx.fetch_one(
        "SELECT id, merged_into FROM patients WHERE organisation_id = ? AND mrn = ?", (organisation_id, mrn)
    )
    if row is None:
        return None
    return int(row["id"]), int(row["merged_into"]) if row["merged_into"] is not None else None


_PATIENT_BODY = "nhs_number, given_name, family_name, date_of_birth, mobile, email, address_lines, postcode"


async def patient_body(tx: Transaction, organisation_id: int, mrn: str) -> dict[str, Any] | None:
    """The patient as the API's body (what the hospital may set), or None for a patient we do not have."""
    row = await tx.fetch_one(
        f"SELECT {_PATIENT_BODY} FROM patients WHERE organisation_id = ? AND mrn = ?", (organisation_id, mrn)
    )
    return None if row is None else _body(row)


async def patient_record(
    tx: Transaction, organisation_id: int, mrn: str
) -> tuple[int, int | None, dict[str, Any]] | None:
    """`find_patient` and `patient_body` in one read: the id, the record it was merged into, and the body."""
    row = await tx.fetch_one(
        f"SELECT id, merged_into, {_PATIENT_BODY} FROM patients WHERE organisation_id = ? AND mrn = ?",
        (organisation_id, mrn),
    )
    if row is None:
        return None
    merged_into = int(row["merged_into"]) if row["merged_into"] is not None else None
    return int(row["id"]), merged_into, _body(row)


def _body(row: dict[str, Any]) -> dict[str, Any]:
    lines = json.loads(row["address_lines"] or "[]")
    body = {
        "nhs_number": row["nhs_number"],
        "given_name": row["given_name"],
        "family_name": row["family_name"],
        "date_of_birth": str(row["date_of_birth"])[:10],
        "mobile": row["mobile"],
        "email": row["email"],
    }
    if row["postcode"]:
        body["postal_address"] = {"lines": lines or [row["postcode"]], "postcode": row["postcode"]}
    return body


async def appointment_body(tx: Transaction, organisation_id: int, ref: str) -> dict[str, Any] | None:
    """The appointment as the API's body, as the hospital holds it, or None for an appointment we do not have. An
    HL7 update names only what changes, so this is what the rest is taken from:
    - a hospital update held as a conflict (hub.rules.lifecycle) is the hospital's latest word: its facts;
    - a cancel the hub made (the patient's, an agent's) and the hospital has not taken in yet is the hub's, not the
      hospital's: the hospital still holds the booking, so an update naming no status (SIU^S13, S14) is about that
      booking and is held as a conflict, as the JSON API's is, rather than read as the hospital's own cancel."""
    row = await tx.fetch_one(
        "SELECT p.mrn, a.site_id, a.clinic, a.specialty, a.clinician, a.starts_at, a.duration_minutes, a.mode,"
        " a.status, a.hub_change, a.held_update, a.transport_booked, a.interpreter_booked FROM appointments a"
        " JOIN patients p ON p.id = a.patient_id WHERE a.organisation_id = ? AND a.ref = ?",
        (organisation_id, ref),
    )
    if row is None:
        return None
    facts = json.loads(row["held_update"]) if row["held_update"] else row
    status = facts["status"]
    if row["held_update"] is None and _hub_cancelled(row["hub_change"]):
        status = HospitalStatus.BOOKED
    site = await tx.fetch_one("SELECT code FROM sites WHERE id = ?", (facts["site_id"],))
    assert site is not None  # appointments.site_id references sites
    return {
        "patient_ref": row["mrn"],
        "site_code": site["code"],
        "clinic": facts["clinic"],
        "specialty": facts["specialty"],
        "clinician": facts["clinician"],
        "start": from_db(facts["starts_at"]).isoformat(),
        "duration_minutes": int(facts["duration_minutes"]),
        "mode": facts["mode"],
        "status": status,
        "transport_booked": bool(facts["transport_booked"]),
        "interpreter_booked": bool(facts["interpreter_booked"]),
    }


def _hub_cancelled(hub_change: str | None) -> bool:
    change = change_from(hub_change)
    return change is not None and change.kind == ChangeKind.CANCELLED
