"""What agents look up: patients by NHS number, hospital number or name and date of birth; a patient's record;
the audit log. And the two things an agent does to a patient: stop texts, resend their link."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Database, Row
from hub.rules.staff_scope import Scope
from hub.settings import NotifyTemplates, Settings
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.links import queue_link
from hub.store.rerouting import reroute_waiting
from hub.store.staff_scope import audit_scoped, scoped
from hub.vocabulary import ActorType, AuditAction, Channel, EventKind, RecordType

_PATIENT = (
    "p.id, p.mrn, p.nhs_number, p.given_name, p.family_name, p.date_of_birth, p.mobile, p.email, p.postcode,"
    " p.contact_preference, p.opted_out, p.sms_opted_out, p.paperless, o.code AS organisation_code,"
    " o.name AS organisation_name"
)
_FROM = " FROM patients p JOIN organisations o ON o.id = p.organisation_id"
# Audit entries with the names of the staff in them: "erin (admin)", not "agent 2".
_AUDIT = (
    "SELECT e.id, e.at, e.actor_type, e.actor_id, e.action, e.record_type, e.record_id, e.detail,"
    " u.username AS actor_name, u.role AS actor_role, r.username AS record_name FROM audit_events e"
    " LEFT JOIN staff_users u ON e.actor_type = 'agent' AND CAST(u.id AS TEXT) = e.actor_id"
    " LEFT JOIN staff_users r ON e.record_type = 'staff' AND CAST(r.id AS TEXT) = e.record_id"
)


SEARCH_LIMIT = 50


async def find_patients(
    db: Database,
    *,
    scope: Scope,
    nhs_number: str = "",
    mrn: str = "",
    family_name: str = "",
    date_of_birth: str = "",
) -> list[Row]:
    """At most SEARCH_LIMIT + 1 patients: one more than are shown, to tell the agent the list is cut short."""
    # Both sides folded by the database: SQLite folds ASCII letters only, so Python's folding would miss "Ó Briain".
    if nhs_number:
        where, params = "p.nhs_number = ?", [nhs_number]
    elif mrn:
        where, params = "UPPER(p.mrn) = UPPER(?)", [mrn]
    elif family_name and date_of_birth:
        where, params = "LOWER(p.family_name) = LOWER(?) AND p.date_of_birth = ?", [family_name, date_of_birth]
    else:
        return []
    in_scope, scope_params = scoped(scope, "p.organisation_id")
    sql = f"SELECT {_PATIENT}{_FROM} WHERE {where}{in_scope} ORDER BY p.family_name, p.id LIMIT ?"
    return await db.fetch_all(sql, (*params, *scope_params, SEARCH_LIMIT + 1))


async def survivor_of(db: Database, patient_id: int) -> int | None:
    """The record this one was merged into (HL7 A40), or None: an agent who finds the merged record by its old
    hospital number works on the survivor, which holds everything the patient has."""
    row = await db.fetch_one("SELECT merged_into FROM patients WHERE id = ?", (patient_id,))
    return int(row["merged_into"]) if row and row["merged_into"] is not None else None


async def get_patient_record(db: Database, patient_id: int, *, scope: Scope) -> dict[str, Any] | None:
    in_scope, scope_params = scoped(scope, "p.organisation_id")
    patient = await db.fetch_one(f"SELECT {_PATIENT}{_FROM} WHERE p.id = ?{in_scope}", (patient_id, *scope_params))
    if patient is None:
        return None
    appointments = await db.fetch_all(
        "SELECT a.id, a.ref, a.starts_at, a.clinic, a.specialty, a.clinician, a.status, a.request_state, a.sequence,"
        " s.name AS site_name FROM appointments a JOIN sites s ON s.id = a.site_id WHERE a.patient_id = ?"
        " ORDER BY a.starts_at DESC",
        (patient_id,),
    )
    for a in appointments:
        a["starts_at"] = from_db(a["starts_at"])
    tasks = await db.fetch_all(
        "SELECT id, kind, status, outcome, attempts, created_at, reason, preferred_times FROM tasks"
        " WHERE patient_id = ? ORDER BY created_at DESC",
        (patient_id,),
    )
    messages = await db.fetch_all(
        "SELECT id, kind, channel, status, delivery_status, created_at, sent_at FROM outbox_messages"
        " WHERE patient_id = ? ORDER BY id DESC LIMIT 100",
        (patient_id,),
    )
    letters = await db.fetch_all("SELECT id FROM letters WHERE patient_id = ?", (patient_id,))
    # Everything done to the patient and to what is theirs: agents' work on their tasks and their opening of
    # letters included, not only in the admin's audit log.
    records = {
        RecordType.PATIENT: [str(patient_id)],
        RecordType.APPOINTMENT: [str(a["id"]) for a in appointments],
        RecordType.TASK: [str(t["id"]) for t in tasks],
        "callback_task": [str(t["id"]) for t in tasks],  # entries written before tasks were called tasks
        RecordType.LETTER: [str(letter["id"]) for letter in letters],
    }
    where = " OR ".join(
        f"(e.record_type = ? AND e.record_id IN ({', '.join('?' for _ in ids)}))" for ids in records.values() if ids
    )
    params = [value for kind, ids in records.items() if ids for value in (kind, *ids)]
    audit = await db.fetch_all(f"{_AUDIT} WHERE {where} ORDER BY e.id DESC LIMIT 200", params)
    for row in (*tasks, *messages, *audit):
        for key in ("created_at", "sent_at", "at"):
            if row.get(key):
                row[key] = from_db(row[key])
    return {"patient": patient, "appointments": appointments, "tasks": tasks, "messages": messages, "audit": audit}


async def opt_out_of_texts(
    db: Database, *, patient_id: int, staff_id: int, scope: Scope, templates: NotifyTemplates, now: datetime
) -> bool:
    """False when there is no such patient (in the staff member's trusts). Texts already stopped stay so, with
    nothing recorded twice. Texts waiting to go go another way instead, as after a STOP."""
    in_scope, scope_params = scoped(scope, "organisation_id")
    async with db.write() as tx:
        patient = await tx.fetch_one(
            f"SELECT organisation_id, sms_opted_out FROM patients WHERE id = ?{in_scope}", (patient_id, *scope_params)
        )
        if patient is None:
            return False
        if patient["sms_opted_out"]:
            return True
        await tx.execute("UPDATE patients SET sms_opted_out = 1, updated_at = ? WHERE id = ?", (to_db(now), patient_id))
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.AGENT,
            actor_id=staff_id,
            action=AuditAction.SMS_OPTED_OUT,
            record_type=RecordType.PATIENT,
            record_id=patient_id,
        )
        # The hospital's own systems text patients too: they hear of it as of a STOP sent by text.
        await record_event(
            tx,
            at=now,
            kind=EventKind.PATIENT_SMS_OPTED_OUT,
            organisation_id=patient["organisation_id"],
            patient_id=patient_id,
            data={"by": "booking_centre"},
        )
        await reroute_waiting(
            tx,
            patient_id,
            Channel.SMS,
            templates=templates,
            now=now,
            why="sms opted out by booking centre",
            actor=str(staff_id),
            actor_type=ActorType.AGENT,
        )
    return True


async def resend_link(
    db: Database, *, patient_id: int, staff_id: int, scope: Scope, settings: Settings, now: datetime
) -> bool | None:
    """Queues the patient's stable link by their usual channel; False when we have no way to reach them, None
    when there is no such patient (in the staff member's trusts)."""
    in_scope, scope_params = scoped(scope, "organisation_id")
    async with db.write() as tx:
        patient = await tx.fetch_one(
            "SELECT id, mobile, email, contact_preference, opted_out, sms_opted_out, paperless, link_id FROM patients"
            f" WHERE id = ?{in_scope}",
            (patient_id, *scope_params),
        )
        if patient is None:
            return None
        if (
            await queue_link(tx, patient, patient_id=patient_id, link_id=patient["link_id"], settings=settings, now=now)
            is None
        ):
            return False
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.AGENT,
            actor_id=staff_id,
            action=AuditAction.LINK_RESENT,
            record_type=RecordType.PATIENT,
            record_id=patient_id,
        )
    return True


async def list_audit(
    db: Database,
    *,
    scope: Scope,
    actor_type: str = "",
    actor_id: str = "",
    action: str = "",
    record_type: str = "",
    record_id: str = "",
    limit: int = 200,
) -> list[Row]:
    in_scope, scope_params = audit_scoped(scope)
    sql = f"{_AUDIT} WHERE 1 = 1{in_scope}"
    params: list[Any] = list(scope_params)
    for column, value in (
        ("actor_type", actor_type),
        ("actor_id", actor_id),
        ("action", action),
        ("record_type", record_type),
        ("record_id", record_id),
    ):
        if value:
            sql += f" AND e.{column} = ?"
            params.append(value[:100])
    rows = await db.fetch_all(sql + " ORDER BY e.id DESC LIMIT ?", (*params, limit))
    for row in rows:
        row["at"] = from_db(row["at"])
    return rows
