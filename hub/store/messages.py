"""What we have sent a patient, as they see it on /messages. Security codes are left out: they are not news."""

from __future__ import annotations

import json

from hub.clock import format_date, from_db
from hub.db import Database, Row
from hub.vocabulary import CHANNEL_LABELS, MESSAGE_KIND_LABELS, MessageKind, MessageStatus


def _state(status: str, delivery: str | None) -> str:
    if delivery == "delivered":  # Notify's status
        return "Delivered"
    if status == MessageStatus.FAILED or (delivery or "").endswith("failure"):
        return "Not delivered"
    if status == MessageStatus.CANCELLED:
        return "Not sent (no longer needed)"
    if status == MessageStatus.EXPIRED:
        return "Not sent (expired)"
    return "Sent" if status == MessageStatus.SENT else "Waiting to be sent"


def _about(row: Row) -> str:
    """'A new appointment: Eye clinic, Monday 14 December 2026': which appointment, by the date the message gave
    (the appointment may have moved since), else its date now."""
    label = MESSAGE_KIND_LABELS.get(row["kind"], "About your appointments")
    if row["starts_at"] is None:
        return label
    try:
        said = json.loads(row["personalisation"] or "{}")
    except ValueError:
        said = {}
    day = said.get("date") if isinstance(said, dict) and said.get("date") else format_date(from_db(row["starts_at"]))
    what = row["clinic"] or row["specialty"]
    return f"{label}: {what + ', ' if what else ''}{day}"


async def list_messages_for_patient(db: Database, patient_id: int, *, limit: int = 100) -> list[Row]:
    rows = await db.fetch_all(
        "SELECT m.kind, m.channel, m.status, m.delivery_status, m.created_at, m.sent_at, m.personalisation,"
        " a.starts_at, a.clinic, a.specialty FROM outbox_messages m LEFT JOIN appointments a ON a.id = m.appointment_id"
        " WHERE m.patient_id = ? AND m.kind != ? ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
        (patient_id, MessageKind.SECURITY_CODE, limit),
    )
    return [
        {
            "about": _about(r),
            "channel": CHANNEL_LABELS.get(r["channel"], r["channel"]),
            "state": _state(r["status"], r["delivery_status"]),
            "at": from_db(r["sent_at"] or r["created_at"]),
        }
        for r in rows
    ]
