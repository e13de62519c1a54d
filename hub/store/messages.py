"""What we have sent a patient, as they see it on /messages. Security codes are left out: they are not news."""

from __future__ import annotations

from hub.clock import from_db
from hub.db import Database, Row

ABOUT = {
    "invitation": "A new appointment",
    "invitation_post": "Your appointment letter, by post",
    "invitation_reminder": "A reminder to read your appointment letter",
    "appointment_reminder": "A reminder of your appointment",
    "changed": "A change to your appointment",
    "cancelled": "A cancelled appointment",
    "sms_opt_out_confirmation": "Texts stopped",
    "sms_opt_in_confirmation": "Texts started again",
}
CHANNELS = {"sms": "Text message", "email": "Email", "letter": "Letter"}


def _state(status: str, delivery: str | None) -> str:
    if delivery == "delivered":
        return "Delivered"
    if status == "failed" or (delivery or "").endswith("failure"):
        return "Not delivered"
    if status == "cancelled":
        return "Not sent (no longer needed)"
    return "Sent" if status == "sent" else "Waiting to be sent"


async def list_messages_for_patient(db: Database, patient_id: int, *, limit: int = 100) -> list[Row]:
    rows = await db.fetch_all(
        "SELECT kind, channel, status, delivery_status, created_at, sent_at FROM outbox_messages"
        " WHERE patient_id = ? AND kind != 'security_code' ORDER BY created_at DESC, id DESC LIMIT ?",
        (patient_id, limit),
    )
    return [
        {
            "about": ABOUT.get(r["kind"], "About your appointments"),
            "channel": CHANNELS.get(r["channel"], r["channel"]),
            "state": _state(r["status"], r["delivery_status"]),
            "at": from_db(r["sent_at"] or r["created_at"]),
        }
        for r in rows
    ]
