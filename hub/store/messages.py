"""What we have sent a patient, as they see it on /messages. Security codes are left out: they are not news."""

from __future__ import annotations

from hub.clock import from_db
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


async def list_messages_for_patient(db: Database, patient_id: int, *, limit: int = 100) -> list[Row]:
    rows = await db.fetch_all(
        "SELECT kind, channel, status, delivery_status, created_at, sent_at FROM outbox_messages"
        " WHERE patient_id = ? AND kind != ? ORDER BY created_at DESC, id DESC LIMIT ?",
        (patient_id, MessageKind.SECURITY_CODE, limit),
    )
    return [
        {
            "about": MESSAGE_KIND_LABELS.get(r["kind"], "About your appointments"),
            "channel": CHANNEL_LABELS.get(r["channel"], r["channel"]),
            "state": _state(r["status"], r["delivery_status"]),
            "at": from_db(r["sent_at"] or r["created_at"]),
        }
        for r in rows
    ]
