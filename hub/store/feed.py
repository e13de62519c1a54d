"""Applying the hospital system's records: upserts keyed by the hospital's own references.

The same record twice changes nothing and sends nothing: each row keeps a hash of what was last sent.
A change of appointment queues its notice in the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Transaction
from hub.rules.feed import appointment_change, new_verification_code, source_hash
from hub.settings import Settings
from hub.store.audit import record_audit
from hub.store.outbox import MESSAGE_PATIENT_COLUMNS
from hub.store.reminders import announce_change
from hub.vocabulary import ActorType, AuditAction, ContactPreference, MessageKind, RecordType, RequestState


@dataclass(frozen=True)
class Applied:
    outcome: str  # created | updated | unchanged | rejected | forbidden
    record_id: int | None = None
    errors: tuple[dict[str, str], ...] = ()
    notice: MessageKind | None = None


async def _audit(
    tx: Transaction, *, actor: str, action: AuditAction, record_type: RecordType, ref: str, detail: str, now: datetime
) -> None:
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.API_KEY,
        actor_id=actor,
        action=action,
        record_type=record_type,
        record_id=ref,
        detail=detail,
    )


async def upsert_site(
    tx: Transaction, *, organisation_id: int, code: str, values: dict[str, Any], actor: str, now: datetime
) -> Applied:
    fingerprint = source_hash(values)
    row = await tx.fetch_one("SELECT id, organisation_id, source_hash FROM sites WHERE code = ?", (code,))
    if row is not None and row["organisation_id"] != organisation_id:
        return Applied("forbidden", errors=({"field": "site_code", "message": "belongs to another organisation"},))
    if row is not None and row["source_hash"] == fingerprint:
        return Applied("unchanged", row["id"])
    columns = ("name", "address", "postcode", "latitude", "longitude", "directions", "parking", "phone")
    params = [
        values[c] if values[c] is not None else ("" if c not in ("latitude", "longitude") else None) for c in columns
    ]
    if row is None:
        created = await tx.fetch_one(
            f"INSERT INTO sites (organisation_id, code, {', '.join(columns)}, source_hash)"
            f" VALUES (?, ?, {', '.join('?' for _ in columns)}, ?) RETURNING id",
            (organisation_id, code, *params, fingerprint),
        )
        assert created is not None
        applied, action = Applied("created", int(created["id"])), AuditAction.SITE_CREATED
    else:
        await tx.execute(
            f"UPDATE sites SET {', '.join(f'{c} = ?' for c in columns)}, source_hash = ? WHERE id = ?",
            (*params, fingerprint, row["id"]),
        )
        applied, action = Applied("updated", int(row["id"])), AuditAction.SITE_UPDATED
    await _audit(tx, actor=actor, action=action, record_type=RecordType.SITE, ref=code, detail="", now=now)
    return applied


async def upsert_patient(
    tx: Transaction, *, organisation_id: int, ref: str, values: dict[str, Any], actor: str, now: datetime
) -> Applied:
    stored = {**values, "date_of_birth": values["date_of_birth"].isoformat()}
    fingerprint = source_hash(stored)
    row = await tx.fetch_one(
        "SELECT id, source_hash, contact_preference FROM patients WHERE organisation_id = ? AND mrn = ?",
        (organisation_id, ref),
    )
    if row is not None and row["source_hash"] == fingerprint:
        return Applied("unchanged", row["id"])
    # The patient's own choice (made on /preferences) stands unless the hospital sends one.
    preference = stored["contact_preference"] or (row["contact_preference"] if row else None)
    if preference is None or (preference == ContactPreference.SMS and not stored["mobile"]):
        preference = ContactPreference.SMS if stored["mobile"] else ContactPreference.EMAIL
    params = (
        stored["nhs_number"],
        stored["given_name"],
        stored["family_name"],
        stored["date_of_birth"],
        stored["mobile"],
        stored["email"],
        json.dumps(stored["address_lines"]),
        stored["postcode"],
        preference,
        fingerprint,
        to_db(now),
    )
    if row is None:
        created = await tx.fetch_one(
            "INSERT INTO patients (nhs_number, given_name, family_name, date_of_birth, mobile, email, address_lines,"
            " postcode, contact_preference, source_hash, updated_at, organisation_id, mrn, verification_code,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (*params, organisation_id, ref, new_verification_code(), to_db(now)),
        )
        assert created is not None
        applied, action = Applied("created", int(created["id"])), AuditAction.PATIENT_CREATED
    else:
        await tx.execute(
            "UPDATE patients SET nhs_number = ?, given_name = ?, family_name = ?, date_of_birth = ?, mobile = ?,"
            " email = ?, address_lines = ?, postcode = ?, contact_preference = ?, source_hash = ?, updated_at = ?"
            " WHERE id = ?",
            (*params, row["id"]),
        )
        applied, action = Applied("updated", int(row["id"])), AuditAction.PATIENT_UPDATED
    await _audit(
        tx,
        actor=actor,
        action=action,
        record_type=RecordType.PATIENT,
        ref=str(applied.record_id),
        detail="",
        now=now,
    )
    return applied


async def upsert_appointment(
    tx: Transaction,
    *,
    organisation_id: int,
    ref: str,
    values: dict[str, Any],
    actor: str,
    now: datetime,
    settings: Settings,
) -> Applied:
    fingerprint = source_hash(values)
    patient = await tx.fetch_one(
        f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE organisation_id = ? AND mrn = ?",
        (organisation_id, values["patient_ref"]),
    )
    site = await tx.fetch_one(
        "SELECT id, name FROM sites WHERE organisation_id = ? AND code = ?", (organisation_id, values["site_code"])
    )
    errors = []
    if patient is None:
        errors.append({"field": "patient_ref", "message": "no patient with this reference: PUT the patient first"})
    if site is None:
        errors.append({"field": "site_code", "message": "no site with this code in your organisation"})
    if patient is None or site is None:
        return Applied("rejected", errors=tuple(errors))
    row = await tx.fetch_one(
        "SELECT id, patient_id, site_id, starts_at, mode, status, source_hash FROM appointments"
        " WHERE organisation_id = ? AND ref = ?",
        (organisation_id, ref),
    )
    if row is not None and row["source_hash"] == fingerprint:
        return Applied("unchanged", row["id"])
    after = {"start": values["start"], "site_id": site["id"], "mode": values["mode"], "status": values["status"]}
    before = None
    if row is not None:
        if row["patient_id"] != patient["id"]:
            return Applied(
                "rejected",
                errors=(
                    {
                        "field": "patient_ref",
                        "message": "cannot move an appointment to another patient: cancel it and book a new one",
                    },
                ),
            )
        before = {
            "start": from_db(row["starts_at"]),
            "site_id": row["site_id"],
            "mode": row["mode"],
            "status": row["status"],
        }
    change = appointment_change(before, after, now=now)
    params = (
        site["id"],
        values["clinic"] or "",
        values["specialty"] or "",
        values["clinician"] or "",
        to_db(values["start"]),
        values["duration_minutes"],
        values["mode"],
        int(values["transport_booked"]),
        int(values["interpreter_booked"]),
        values["status"],
        fingerprint,
        to_db(now),
    )
    if row is None:
        created = await tx.fetch_one(
            "INSERT INTO appointments (site_id, clinic, specialty, clinician, starts_at, duration_minutes, mode,"
            " transport_booked, interpreter_booked, status, source_hash, updated_at, organisation_id, ref,"
            " patient_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (*params, organisation_id, ref, patient["id"], to_db(now)),
        )
        assert created is not None
        appointment_id, outcome, action = int(created["id"]), "created", AuditAction.APPOINTMENT_CREATED
    else:
        appointment_id, outcome, action = int(row["id"]), "updated", AuditAction.APPOINTMENT_UPDATED
        moved = before is not None and (before["start"] != after["start"] or before["site_id"] != after["site_id"])
        await tx.execute(
            "UPDATE appointments SET site_id = ?, clinic = ?, specialty = ?, clinician = ?, starts_at = ?,"
            " duration_minutes = ?, mode = ?, transport_booked = ?, interpreter_booked = ?, status = ?,"
            " source_hash = ?, updated_at = ?, sequence = sequence + ?,"
            # A new time from the hospital answers the patient's request to rebook.
            " request_state = CASE WHEN ? = 1 AND request_state = ? THEN ? ELSE request_state END WHERE id = ?",
            (
                *params,
                int(change.bump_sequence),
                int(moved),
                RequestState.REBOOK_REQUESTED,
                RequestState.NONE,
                appointment_id,
            ),
        )
    await announce_change(
        tx,
        settings=settings,
        notice=change.notice,
        status=values["status"],
        patient=patient,
        appointment_id=appointment_id,
        starts_at=values["start"],
        site_name=site["name"],
        clinic=values["clinic"] or "",
        now=now,
    )
    await _audit(
        tx,
        actor=actor,
        action=action,
        record_type=RecordType.APPOINTMENT,
        ref=str(appointment_id),
        detail=f"notice {change.notice}" if change.notice else "",
        now=now,
    )
    return Applied(outcome, appointment_id, notice=change.notice)
