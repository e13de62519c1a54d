"""Patients' stable links: which patient a link reaches, and rotating a patient's link.

Rotating gives the patient a new random link id and sets `link_rotated_at`: from then on the previous link id
and any old-style link (the signed patient id, issued before link ids) no longer reach them.
"""

from __future__ import annotations

from datetime import datetime

from hub.clock import to_db
from hub.db import Database, Transaction
from hub.links import LegacyLink, new_link_id
from hub.store.audit import record_audit
from hub.vocabulary import ActorType, AuditAction, RecordType


async def patient_for_link(db: Database | Transaction, link: str | LegacyLink) -> int | None:
    """The patient a read link reaches; None for an unknown link id or a rotated patient's old-style link."""
    if isinstance(link, LegacyLink):
        row = await db.fetch_one("SELECT id FROM patients WHERE id = ? AND link_rotated_at IS NULL", (link.patient_id,))
    else:
        row = await db.fetch_one("SELECT id FROM patients WHERE link_id = ?", (link,))
    return int(row["id"]) if row else None


async def rotate_patient_link(
    db: Database, *, patient_id: int, actor_type: ActorType, actor_id: str | int, now: datetime
) -> str | None:
    """A new link id for the patient (their earlier links stop working); None when there is no such patient."""
    link_id = new_link_id()
    async with db.write() as tx:
        row = await tx.fetch_one(
            "UPDATE patients SET link_id = ?, link_rotated_at = ? WHERE id = ? RETURNING id",
            (link_id, to_db(now), patient_id),
        )
        if row is None:
            return None
        await record_audit(
            tx,
            at=now,
            actor_type=actor_type,
            actor_id=actor_id,
            action=AuditAction.PATIENT_LINK_ROTATED,
            record_type=RecordType.PATIENT,
            record_id=patient_id,
        )
    return link_id
