"""Applying the hospital system's records: upserts keyed by the hospital's own references.

The same record twice changes nothing and sends nothing: each row keeps a hash of what was last sent.
A change of appointment queues its notice in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from hub.clock import to_db
from hub.db import Row, Transaction
from hub.links import new_link_id
from hub.rules.appointments import Facts
from hub.rules.feed import Applied, new_verification_code, source_hash
from hub.rules.lifecycle import hospital_update
from hub.settings import Settings
from hub.store.audit import Actor, record_audit
from hub.store.events import record_event
from hub.store.lifecycle import New, apply_transition, load_appointment_by_ref
from hub.store.outbox import MESSAGE_PATIENT_COLUMNS
from hub.store.receipts import keep_number_stopped
from hub.store.rerouting import readdress_waiting, reroute_waiting
from hub.store.signin import withdraw_pending_codes
from hub.vocabulary import ActorType, AuditAction, Channel, ContactPreference, EventKind, RecordType

# A record the hospital merged into another (HL7 ADT^A40) holds nothing more: updates go to the surviving record.
MERGED = {
    "field": "patient_ref",
    "message": "was merged into another patient's record (HL7 ADT^A40): use the surviving record's reference",
}


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
    # Codes are the trust's own: another trust's site of the same code is none of this key's business.
    row = await tx.fetch_one(
        "SELECT id, source_hash FROM sites WHERE organisation_id = ? AND code = ?", (organisation_id, code)
    )
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


async def put_site_map(
    tx: Transaction, *, organisation_id: int, code: str, content: bytes, media_type: str, actor: str, now: datetime
) -> Applied:
    """The site's downloadable map, replacing the one before; the site must exist and be this trust's."""
    row = await tx.fetch_one("SELECT id FROM sites WHERE organisation_id = ? AND code = ?", (organisation_id, code))
    if row is None:
        return Applied("rejected", errors=({"field": "site_code", "message": "no such site: PUT the site first"},))
    fingerprint = hashlib.sha256(media_type.encode() + b"\0" + content).hexdigest()
    old = await tx.fetch_one("SELECT content_hash FROM site_maps WHERE site_id = ?", (row["id"],))
    if old is not None and old["content_hash"] == fingerprint:
        return Applied("unchanged", row["id"])
    await tx.execute("DELETE FROM site_maps WHERE site_id = ?", (row["id"],))
    await tx.execute(
        "INSERT INTO site_maps (site_id, media_type, content, content_hash, updated_at) VALUES (?, ?, ?, ?, ?)",
        (row["id"], media_type, content, fingerprint, to_db(now)),
    )
    await _audit(
        tx, actor=actor, action=AuditAction.SITE_UPDATED, record_type=RecordType.SITE, ref=code, detail="map", now=now
    )
    return Applied("created" if old is None else "updated", row["id"])


async def upsert_patient(
    tx: Transaction,
    *,
    organisation_id: int,
    ref: str,
    values: dict[str, Any],
    actor: str,
    now: datetime,
    settings: Settings | None = None,
) -> Applied:
    stored = {**values, "date_of_birth": values["date_of_birth"].isoformat()}
    fingerprint = source_hash(stored)
    row = await tx.fetch_one(
        "SELECT id, source_hash, contact_preference, merged_into, mobile, email FROM patients"
        " WHERE organisation_id = ? AND mrn = ?",
        (organisation_id, ref),
    )
    if row is not None and row["merged_into"] is not None:
        return Applied("rejected", errors=(MERGED,))
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
        written = await tx.fetch_one(
            "INSERT INTO patients (nhs_number, given_name, family_name, date_of_birth, mobile, email, address_lines,"
            " postcode, contact_preference, source_hash, updated_at, organisation_id, mrn, verification_code,"
            " created_at, link_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" RETURNING id, {_CHOICES}",
            (*params, organisation_id, ref, new_verification_code(), to_db(now), new_link_id()),
        )
        action = AuditAction.PATIENT_CREATED
    else:
        written = await tx.fetch_one(
            "UPDATE patients SET nhs_number = ?, given_name = ?, family_name = ?, date_of_birth = ?, mobile = ?,"
            " email = ?, address_lines = ?, postcode = ?, contact_preference = ?, source_hash = ?, updated_at = ?"
            f" WHERE id = ? RETURNING id, {_CHOICES}",
            (*params, row["id"]),
        )
        action = AuditAction.PATIENT_UPDATED
    assert written is not None
    applied = Applied("created" if row is None else "updated", int(written["id"]))
    await _audit(
        tx,
        actor=actor,
        action=action,
        record_type=RecordType.PATIENT,
        ref=str(applied.record_id),
        detail="",
        now=now,
    )
    assert applied.record_id is not None
    await _contact_choices(tx, written, organisation_id, values, actor=actor, now=now, settings=settings)
    moved = row is not None and (row["mobile"], row["email"]) != (stored["mobile"], stored["email"])
    if (row is None or row["mobile"] != stored["mobile"]) and stored["mobile"]:
        await keep_number_stopped(
            tx, patient_id=applied.record_id, organisation_id=organisation_id, mobile=stored["mobile"], now=now
        )
    if moved:
        await withdraw_pending_codes(tx, applied.record_id)
    if moved and settings is not None:
        # Messages waiting to go (held overnight, or to try again) go to the mobile and email on record now.
        await readdress_waiting(
            tx,
            applied.record_id,
            templates=settings.notify.templates,
            now=now,
            actor=actor,
            actor_type=ActorType.API_KEY,
        )
    return applied


# The patient's contact choices as they stand, returned by the write (the hospital's fields leave them as they are).
_CHOICES = "sms_opted_out, email_opted_out, paperless, hospital_choices"


# What the hospital may set of how the patient is contacted, and what the hospital hears of it (as when the patient
# texts STOP or an agent stops texts): the flag, and the events when it is set and when it is cleared.
_OPT_OUTS = {
    "sms": ("sms_opted_out", EventKind.PATIENT_SMS_OPTED_OUT, EventKind.PATIENT_SMS_OPTED_IN, Channel.SMS),
    "email": ("email_opted_out", EventKind.PATIENT_EMAILS_OPTED_OUT, EventKind.PATIENT_EMAILS_OPTED_IN, Channel.EMAIL),
}


async def _contact_choices(
    tx: Transaction,
    row: Row,
    organisation_id: int,
    values: dict[str, Any],
    *,
    actor: str,
    now: datetime,
    settings: Settings | None,
) -> None:
    """`contact_opt_out` and `paper_letters`, when the hospital sent them and they differ from what it sent last
    time: a change of the hospital's mind is applied, a resend of the same choice never undoes the patient's own
    (a STOP by text, paper chosen online). What it leaves out stays as it is. `row`: the patient's id and _CHOICES."""
    patient_id = int(row["id"])
    sent = {
        **values.get("contact_opt_out", {}),
        **({"paper": values["paper_letters"]} if "paper_letters" in values else {}),
    }
    before = json.loads(row["hospital_choices"])
    fresh = {choice: value for choice, value in sent.items() if before.get(choice) != value}
    if not fresh:
        return
    await tx.execute(
        "UPDATE patients SET hospital_choices = ? WHERE id = ?", (json.dumps({**before, **sent}), patient_id)
    )
    changed: list[str] = []
    for channel, stopped in fresh.items():
        if channel == "paper":
            continue
        column, out, back, by = _OPT_OUTS[channel]
        if bool(row[column]) == stopped:
            continue
        await tx.execute(
            f"UPDATE patients SET {column} = ?, updated_at = ? WHERE id = ?", (int(stopped), to_db(now), patient_id)
        )
        await record_event(
            tx,
            at=now,
            kind=out if stopped else back,
            organisation_id=organisation_id,
            patient_id=patient_id,
            data={"by": "hospital"},
        )
        if stopped and settings is not None:
            # Messages already waiting to go that way go another way instead.
            await reroute_waiting(
                tx,
                patient_id,
                by,
                templates=settings.notify.templates,
                now=now,
                why=f"{channel} opted out by hospital",
                actor=actor,
                actor_type=ActorType.API_KEY,
            )
        changed.append(f"{channel} {'off' if stopped else 'on'}")
    paper = fresh.get("paper")
    if paper is not None and bool(row["paperless"]) == paper:
        await tx.execute(
            "UPDATE patients SET paperless = ?, updated_at = ? WHERE id = ?", (int(not paper), to_db(now), patient_id)
        )
        await record_event(
            tx,
            at=now,
            kind=EventKind.PATIENT_PREFERENCES_CHANGED,
            organisation_id=organisation_id,
            patient_id=patient_id,
            data={"paperless": not paper, "by": "hospital"},
        )
        changed.append(f"paper {'on' if paper else 'off'}")
    if changed:
        await _audit(
            tx,
            actor=actor,
            action=AuditAction.PATIENT_OPT_OUT_SET,
            record_type=RecordType.PATIENT,
            ref=str(patient_id),
            detail=", ".join(changed),
            now=now,
        )


async def upsert_appointment(
    tx: Transaction,
    *,
    organisation_id: int,
    ref: str,
    values: dict[str, Any],
    actor: str,
    now: datetime,
    settings: Settings,
    names_time: bool = True,
) -> Applied:
    """The hospital's record of an appointment, through the lifecycle: a change the hub made and told the hospital
    about is never undone by an update that does not reflect it yet (that update is held as a conflict).
    `names_time`: False when the hospital sent no time and `values["start"]` is the hub's own (HL7 without timing)."""
    fingerprint = source_hash(values)
    # Read once with what a message to the patient needs: the lifecycle takes these rows rather than read them again.
    patient = await tx.fetch_one(
        f"SELECT merged_into, {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE organisation_id = ? AND mrn = ?",
        (organisation_id, values["patient_ref"]),
    )
    if patient is not None and patient["merged_into"] is not None:
        return Applied("rejected", errors=(MERGED,))
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
    current = await load_appointment_by_ref(tx, organisation_id, ref)
    if current is not None:
        if current.source_hash == fingerprint:
            return Applied("unchanged", current.id)
        if current.patient_id != patient["id"]:
            message = "cannot move an appointment to another patient: cancel it and book a new one"
            return Applied("rejected", errors=({"field": "patient_ref", "message": message},))
    update = Facts(
        starts_at=values["start"],
        site_id=int(site["id"]),
        clinic=values["clinic"] or "",
        specialty=values["specialty"] or "",
        clinician=values["clinician"] or "",
        duration_minutes=values["duration_minutes"],
        mode=values["mode"],
        transport_booked=bool(values["transport_booked"]),
        interpreter_booked=bool(values["interpreter_booked"]),
        status=values["status"],
    )
    transition = hospital_update(
        current.state if current else None,
        update,
        now=now,
        acknowledged_event=values.get("acknowledged_event"),
        names_time=names_time,
    )
    target = current or New(organisation_id, ref, int(patient["id"]))
    appointment_id = await apply_transition(
        tx,
        target,
        transition,
        actor=Actor(ActorType.API_KEY, actor),
        now=now,
        settings=settings,
        source_hash=fingerprint,
        patient=patient,
        site=site,
    )
    if not transition.changed:
        # Different words for the same facts (a field's spelling): remember them, so the next resend is unchanged.
        await tx.execute("UPDATE appointments SET source_hash = ? WHERE id = ?", (fingerprint, appointment_id))
        return Applied("unchanged", appointment_id)
    return Applied("created" if current is None else "updated", appointment_id, notice=transition.notice)
