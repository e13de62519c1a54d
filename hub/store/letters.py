"""Queries on letters: PDFs attached to a patient or an appointment."""

from __future__ import annotations

from datetime import datetime

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.feed import Applied, source_hash
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.feed import MERGED
from hub.store.reminders import stop_escalation
from hub.vocabulary import ActorType, AuditAction, EventKind, RecordType

_COLUMNS = "id, organisation_id, appointment_id, kind, title, size_bytes, created_at, first_viewed_at"


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


async def open_letter(
    db: Database, *, patient_id: int, letter_id: int, at: datetime, record_view: bool = True
) -> tuple[Row, bytes] | None:
    """The letter and its PDF; the first view is recorded (it stops escalation to post) when `record_view`."""
    row = await db.fetch_one(
        f"SELECT {_COLUMNS}, content FROM letters WHERE id = ? AND patient_id = ?", (letter_id, patient_id)
    )
    if row is None:
        return None
    content = bytes(row.pop("content"))
    if row["first_viewed_at"] is None and record_view:
        async with db.write(patient=patient_id) as tx:  # the patient's own letter and appointment
            first = await tx.execute(
                # Still theirs: the hospital may have given the letter to another patient since it was read.
                "UPDATE letters SET first_viewed_at = ? WHERE id = ? AND patient_id = ? AND first_viewed_at IS NULL",
                (to_db(at), letter_id, patient_id),
            )
            if first:
                if row["appointment_id"] is not None:
                    await stop_escalation(tx, appointment_id=row["appointment_id"], now=at)
                await record_audit(
                    tx,
                    at=at,
                    actor_type=ActorType.PATIENT,
                    actor_id=patient_id,
                    action=AuditAction.LETTER_VIEWED,
                    record_type=RecordType.LETTER,
                    record_id=letter_id,
                )
                await record_event(
                    tx,
                    at=at,
                    kind=EventKind.LETTER_VIEWED,
                    organisation_id=row["organisation_id"],
                    patient_id=patient_id,
                    appointment_id=row["appointment_id"],
                    data={"letter_id": letter_id},
                )
    return _shaped(row), content


async def upsert_letter(
    tx: Transaction,
    *,
    organisation_id: int,
    ref: str,
    patient_ref: str | None,
    appointment_ref: str | None,
    kind: str,
    title: str,
    content: bytes,
    actor: str,
    now: datetime,
    replaces: str | None = None,
) -> Applied:
    """A PDF for a patient, or for one of their appointments. `replaces`: the letter it replaces (HL7 MDM^T10), filed
    from now on under `ref`; the number it had is kept (`replaced_letter_refs`): a later record naming it as its own
    is refused, naming the letter's number now (found, it would put back the version replaced; not found, it made a
    second letter), and a later T10 naming it as the one it replaces replaces the letter it became. A changed PDF (or
    one given to another patient or appointment) counts as unread and unseen again: in the NHS App too."""
    patient_id: int | None = None
    appointment_id: int | None = None
    errors = []
    if appointment_ref:
        found = await tx.fetch_one(
            "SELECT id, patient_id FROM appointments WHERE organisation_id = ? AND ref = ?",
            (organisation_id, appointment_ref),
        )
        if found is None:
            errors.append({"field": "appointment_ref", "message": "no appointment with this reference"})
        else:
            appointment_id, patient_id = int(found["id"]), int(found["patient_id"])
    if patient_ref:
        found = await tx.fetch_one(
            "SELECT id, merged_into FROM patients WHERE organisation_id = ? AND mrn = ?", (organisation_id, patient_ref)
        )
        if found is None:
            errors.append({"field": "patient_ref", "message": "no patient with this reference"})
        elif found["merged_into"] is not None:
            errors.append(MERGED)
        elif patient_id is not None and patient_id != found["id"]:
            errors.append({"field": "patient_ref", "message": "is not the appointment's patient"})
        else:
            patient_id = int(found["id"])
    if not errors and patient_id is None:
        errors.append({"field": "appointment_ref", "message": "give appointment_ref or patient_ref"})
    if errors or patient_id is None:
        return Applied("rejected", errors=tuple(errors))
    fingerprint = source_hash(
        {
            "patient": patient_id,
            "appointment": appointment_id,
            "kind": kind,
            "title": title,
            "content": source_hash({"pdf": content.hex()}),
        }
    )
    row = await tx.fetch_one(
        "SELECT id, ref, source_hash FROM letters WHERE organisation_id = ? AND ref = ?", (organisation_id, ref)
    )
    if row is None:
        became = await _renamed_letter(tx, organisation_id, ref)
        if became is not None:
            message = f"document {ref} was replaced by {became['ref']} (an MDM T10): send {became['ref']}"
            return Applied("rejected", errors=({"field": "letter_ref", "message": message},))
    if row is None and replaces:
        row = await tx.fetch_one(
            "SELECT id, ref, NULL AS source_hash FROM letters WHERE organisation_id = ? AND ref = ?",
            (organisation_id, replaces),
        ) or await _renamed_letter(tx, organisation_id, replaces)
    if row is not None and row["source_hash"] == fingerprint:
        return Applied("unchanged", row["id"])
    detail = ""
    if row is None:
        created = await tx.fetch_one(
            "INSERT INTO letters (organisation_id, ref, patient_id, appointment_id, kind, title, content, size_bytes,"
            " created_at, source_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                organisation_id,
                ref,
                patient_id,
                appointment_id,
                kind,
                title,
                content,
                len(content),
                to_db(now),
                fingerprint,
            ),
        )
        assert created is not None
        applied, action = Applied("created", int(created["id"])), AuditAction.LETTER_CREATED
    else:
        await tx.execute(
            "UPDATE letters SET ref = ?, patient_id = ?, appointment_id = ?, kind = ?, title = ?, content = ?,"
            " size_bytes = ?, source_hash = ?, first_viewed_at = NULL, seen_at = NULL WHERE id = ?",
            (ref, patient_id, appointment_id, kind, title, content, len(content), fingerprint, row["id"]),
        )
        if row["ref"] != ref:
            await tx.execute(
                "INSERT INTO replaced_letter_refs (organisation_id, ref, letter_id, replaced_at) VALUES (?, ?, ?, ?)",
                (organisation_id, row["ref"], row["id"], to_db(now)),
            )
            detail = f"document {row['ref']} replaced by {ref}"
        applied, action = Applied("updated", int(row["id"])), AuditAction.LETTER_UPDATED
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.API_KEY,
        actor_id=actor,
        action=action,
        record_type=RecordType.LETTER,
        record_id=str(applied.record_id),
        detail=detail,
    )
    return applied


async def _renamed_letter(tx: Database | Transaction, organisation_id: int, ref: str) -> Row | None:
    """The letter a document number was filed under before a T10 replaced it (its id, its number now, its patient);
    None when the number was never replaced."""
    return await tx.fetch_one(
        "SELECT l.id, l.ref, l.patient_id, NULL AS source_hash FROM replaced_letter_refs r"
        " JOIN letters l ON l.id = r.letter_id WHERE r.organisation_id = ? AND r.ref = ?",
        (organisation_id, ref),
    )
