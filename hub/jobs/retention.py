"""The daily retention job: appointments, letters and messages older than 24 months are removed.

The audit trail stays (it holds no personal data). Run by whichever worker claims it first each day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.clock import to_db
from hub.db import Database
from hub.rules.appointments import past_horizon
from hub.vocabulary import TaskStatus

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Purged:
    appointments: int
    letters: int
    messages: int


async def claim_daily_job(db: Database, name: str, *, now: datetime) -> bool:
    async with db.write() as tx:
        won = await tx.execute(
            "UPDATE job_runs SET last_run_at = ? WHERE name = ? AND last_run_at <= ?",
            (to_db(now), name, to_db(now - _DAY)),
        )
    return won == 1


async def purge_old_records(db: Database, *, now: datetime, months: int = 24) -> Purged:
    cut = to_db(past_horizon(now, months))
    old = "SELECT id FROM appointments WHERE starts_at < ?"
    async with db.write() as tx:
        # Children first: the foreign keys stand guard over every step.
        await tx.execute(f"DELETE FROM scheduled_notices WHERE appointment_id IN ({old})", (cut,))
        await tx.execute(
            f"DELETE FROM tasks WHERE appointment_id IN ({old}) OR (status = ? AND created_at < ?)",
            (cut, TaskStatus.CLOSED, cut),
        )
        messages = await tx.execute(
            f"DELETE FROM outbox_messages WHERE appointment_id IN ({old}) OR created_at < ?"
            " OR pdf_letter_id IN (SELECT id FROM letters WHERE created_at < ?"
            f" OR appointment_id IN ({old}))",
            (cut, cut, cut, cut),
        )
        await tx.execute(f"DELETE FROM events WHERE appointment_id IN ({old}) OR created_at < ?", (cut, cut))
        # Self-service and earlier-slot offers: what they kept of an old appointment, and the hospital's slots
        # that have passed (a slot's own record; one still named by what stays is kept).
        old_slot = "SELECT id FROM slots WHERE starts_at < ?"
        await tx.execute(f"DELETE FROM earlier_requests WHERE appointment_id IN ({old})", (cut,))
        await tx.execute(
            f"DELETE FROM slot_offers WHERE appointment_id IN ({old}) OR slot_id IN ({old_slot})", (cut, cut)
        )
        await tx.execute(f"DELETE FROM slot_moves WHERE appointment_id IN ({old})", (cut,))
        await tx.execute(f"UPDATE slots SET appointment_id = NULL WHERE appointment_id IN ({old})", (cut,))
        await tx.execute(
            "DELETE FROM slots WHERE starts_at < ? AND NOT EXISTS (SELECT 1 FROM slot_moves m"
            " WHERE m.from_slot_id = slots.id OR m.to_slot_id = slots.id)",
            (cut,),
        )
        letters = await tx.execute(f"DELETE FROM letters WHERE appointment_id IN ({old}) OR created_at < ?", (cut, cut))
        appointments = await tx.execute("DELETE FROM appointments WHERE starts_at < ?", (cut,))
        messages += await tx.execute("DELETE FROM inbound_messages WHERE received_at < ?", (cut,))
        await tx.execute("DELETE FROM dev_messages WHERE created_at < ?", (cut,))
        # The HL7 listener's answers: a resend is days late, never years (the message times still order what is left).
        await tx.execute("DELETE FROM hl7_messages WHERE received_at < ?", (cut,))
        await tx.execute("DELETE FROM hl7_deliveries WHERE answered_at < ?", (cut,))
        await tx.execute(
            "DELETE FROM hl7_appointment_ids WHERE NOT EXISTS (SELECT 1 FROM appointments a"
            " WHERE a.organisation_id = hl7_appointment_ids.organisation_id AND a.ref = hl7_appointment_ids.ref)"
        )
    return Purged(appointments, letters, messages)
