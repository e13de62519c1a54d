"""Two records of one patient merged by the hospital (HL7 ADT^A40): the surviving record takes the other's
appointments, letters, messages, tasks and earlier-appointment requests and offers; the merged record's sessions end
and it keeps nothing a sign-in or the NHS App could find, but its stable link reaches the surviving record. Audited,
and an event for the hospital."""

from __future__ import annotations

from datetime import datetime

from hub.clock import to_db
from hub.db import Row, Transaction
from hub.settings import NotifyTemplates
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.lifecycle import reassign_appointments
from hub.store.nhs_app import set_nhs_app_excluded
from hub.store.rerouting import readdress_waiting
from hub.store.sessions import end_patient_sessions
from hub.store.signin import withdraw_pending_codes
from hub.vocabulary import ActorType, AuditAction, EventKind, RecordType

# Every other table that names a patient, besides appointments (moved through the lifecycle's store).
_TAKEN_OVER = (
    "letters",
    "tasks",
    "outbox_messages",
    "inbound_messages",
    "events",
    "earlier_requests",
    "slot_offers",
)


async def merge_patients(
    tx: Transaction,
    *,
    organisation_id: int,
    surviving_id: int,
    merged_id: int,
    actor: str,
    now: datetime,
    templates: NotifyTemplates,
) -> bool:
    """Whether anything was merged (not when the record is the same, or was merged before)."""
    merged = await tx.fetch_one(
        f"SELECT id, mrn, merged_into, nhs_number, {_CHOICES} FROM patients WHERE id = ? AND organisation_id = ?",
        (merged_id, organisation_id),
    )
    if surviving_id == merged_id or merged is None or merged["merged_into"] is not None:
        return False
    await _keep_choices(tx, surviving_id, merged, actor=actor, now=now)
    await reassign_appointments(tx, from_patient=merged_id, to_patient=surviving_id)
    for table in _TAKEN_OVER:
        await tx.execute(f"UPDATE {table} SET patient_id = ? WHERE patient_id = ?", (surviving_id, merged_id))
    await withdraw_pending_codes(tx, merged_id)
    await tx.execute(
        "UPDATE code_challenges SET link_patient_id = ? WHERE link_patient_id = ?", (surviving_id, merged_id)
    )
    # Its texts and emails waiting to go (held overnight, say) were addressed to the merged record's mobile and
    # email, which it no longer has: they go to the surviving record's, or by its choices.
    await readdress_waiting(tx, surviving_id, templates=templates, now=now, actor=actor, actor_type=ActorType.API_KEY)
    await end_patient_sessions(tx, patient_id=merged_id, at=now)
    # The NHS App and NHS login find a patient by NHS number: a survivor without one (a temporary registration
    # the PAS kept) takes the merged record's, or the patient's appointments vanish from the app.
    await tx.execute(
        "UPDATE patients SET nhs_number = ? WHERE id = ? AND (nhs_number IS NULL OR nhs_number = '')",
        (merged["nhs_number"], surviving_id),
    )
    await tx.execute(
        "UPDATE patients SET merged_into = ?, mobile = NULL, email = NULL, nhs_number = NULL, updated_at = ?"
        " WHERE id = ?",
        (surviving_id, to_db(now), merged_id),
    )
    # Records merged into this one before now point at the survivor too: one step always reaches it.
    await tx.execute("UPDATE patients SET merged_into = ? WHERE merged_into = ?", (surviving_id, merged_id))
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.API_KEY,
        actor_id=actor,
        action=AuditAction.PATIENT_MERGED,
        record_type=RecordType.PATIENT,
        record_id=str(surviving_id),
        detail=f"merged patient {merged_id}",
    )
    await record_event(
        tx,
        at=now,
        kind=EventKind.PATIENT_MERGED,
        organisation_id=organisation_id,
        patient_id=surviving_id,
        data={"merged_mrn": merged["mrn"]},
    )
    return True


_CHOICES = "mobile, email, opted_out, sms_opted_out, email_opted_out, paperless, nhs_app_excluded"


async def _keep_choices(tx: Transaction, surviving_id: int, merged: Row, *, actor: str, now: datetime) -> None:
    """How the patient asked to be contacted, on either record, holds on the one kept: the stricter of each (no texts
    and emails, paper letters as well). A STOP, or the hospital's stop of emails, was of a number or an address: it
    holds where the survivor has that same one. The trust's keeping either record out of the NHS App keeps the
    survivor out: its appointments and letters are the other's now. What changes on the survivor is audited, each
    choice by name, as the hospital's act (the merge was)."""
    kept = await tx.fetch_one(f"SELECT {_CHOICES} FROM patients WHERE id = ?", (surviving_id,))
    assert kept is not None
    choices = {
        "opted_out": kept["opted_out"] or merged["opted_out"],
        "paperless": kept["paperless"] and merged["paperless"],
        "sms_opted_out": kept["sms_opted_out"] or (merged["sms_opted_out"] and kept["mobile"] == merged["mobile"]),
        "email_opted_out": kept["email_opted_out"] or (merged["email_opted_out"] and kept["email"] == merged["email"]),
    }
    if merged["nhs_app_excluded"] and not kept["nhs_app_excluded"]:
        await set_nhs_app_excluded(tx, patient_id=surviving_id, excluded=True, actor=actor, now=now)
    changed = [column for column, value in choices.items() if bool(kept[column]) != bool(value)]
    if not changed:
        return
    await tx.execute(
        "UPDATE patients SET opted_out = ?, paperless = ?, sms_opted_out = ?, email_opted_out = ?, updated_at = ?"
        " WHERE id = ?",
        (*(int(bool(value)) for value in choices.values()), to_db(now), surviving_id),
    )
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.API_KEY,
        actor_id=actor,
        action=AuditAction.PATIENT_OPT_OUT_SET,
        record_type=RecordType.PATIENT,
        record_id=str(surviving_id),
        detail=f"kept from merged patient {merged['id']}: "
        + ", ".join(f"{c} {'on' if choices[c] else 'off'}" for c in changed),
    )
