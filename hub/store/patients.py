"""Queries on patients."""

from __future__ import annotations

from datetime import date, datetime

from hub.clock import to_db
from hub.db import Database, Row, Transaction
from hub.rules.contacts import Contact
from hub.settings import NotifyTemplates
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.rerouting import reroute_waiting, switch_waiting
from hub.vocabulary import ActorType, AuditAction, Channel, EventKind, RecordType

PATIENT_COLUMNS = (
    "id, organisation_id, mrn, nhs_number, given_name, family_name, date_of_birth, mobile, email,"
    " address_lines, postcode, contact_preference, paperless, opted_out, verification_code, link_id"
)


async def get_patient(db: Database | Transaction, patient_id: int) -> Row | None:
    return await db.fetch_one(f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id = ?", (patient_id,))


async def find_patients_by_contact(
    tx: Transaction, contact: Contact, date_of_birth: date, *, only_patient_id: int | None = None
) -> list[Row]:
    column = "mobile" if contact.kind == "mobile" else "email"
    sql = f"SELECT id, mobile, email FROM patients WHERE {column} = ? AND date_of_birth = ?"
    params: list[object] = [contact.value, date_of_birth.isoformat()]
    if only_patient_id is not None:
        # A merged record's stable link reaches the record it was merged into.
        sql += " AND id = COALESCE((SELECT merged_into FROM patients WHERE id = ?), ?)"
        params += [only_patient_id, only_patient_id]
    return await tx.fetch_all(sql + " ORDER BY id", params)


async def update_preferences(
    db: Database,
    patient_id: int,
    *,
    contact_preference: str,
    paperless: bool,
    opted_out: bool,
    templates: NotifyTemplates,
    at: datetime,
) -> bool:
    """Returns whether anything changed. Audited and told to the hospital system. No more texts and emails: those
    waiting to go are posted instead (or, with nowhere to post them, withdrawn), as after a STOP."""
    async with db.write(patient=patient_id) as tx:  # the patient's own row
        row = await tx.fetch_one(
            "SELECT organisation_id, contact_preference, paperless, opted_out FROM patients WHERE id = ?",
            (patient_id,),
        )
        if row is None:
            return False
        new = {
            "contact_preference": contact_preference,
            "paperless": int(paperless),
            "opted_out": int(opted_out),
        }
        changed = {key: value for key, value in new.items() if row[key] != value}
        if not changed:
            return False
        await tx.execute(
            "UPDATE patients SET contact_preference = ?, paperless = ?, opted_out = ?, updated_at = ? WHERE id = ?",
            (contact_preference, int(paperless), int(opted_out), to_db(at), patient_id),
        )
        detail = ",".join(sorted(changed))
        await record_audit(
            tx,
            at=at,
            actor_type=ActorType.PATIENT,
            actor_id=patient_id,
            action=AuditAction.PREFERENCES_CHANGED,
            record_type=RecordType.PATIENT,
            record_id=patient_id,
            detail=detail,
        )
        await record_event(
            tx,
            at=at,
            kind=EventKind.PATIENT_PREFERENCES_CHANGED,
            organisation_id=row["organisation_id"],
            patient_id=patient_id,
            data={key: bool(v) if key != "contact_preference" else v for key, v in new.items()},
        )
        if "contact_preference" in changed and not opted_out:
            await switch_waiting(
                tx,
                patient_id,
                Channel(contact_preference),
                templates=templates,
                now=at,
                actor=str(patient_id),
                actor_type=ActorType.PATIENT,
            )
        if "opted_out" in changed and opted_out:
            for channel in (Channel.SMS, Channel.EMAIL):
                await reroute_waiting(
                    tx,
                    patient_id,
                    channel,
                    templates=templates,
                    now=at,
                    why="digital messages opted out",
                    actor=str(patient_id),
                    actor_type=ActorType.PATIENT,
                )
    return True
