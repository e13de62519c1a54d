"""Queries on outbox_messages."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hub.clock import to_db
from hub.db import Transaction


async def queue_message(
    tx: Transaction,
    *,
    at: datetime,
    kind: str,
    channel: str,
    recipient: str,
    template_id: str,
    personalisation: dict[str, Any],
    patient_id: int | None,
    appointment_id: int | None = None,
    lane: str = "bulk",
) -> int:
    row = await tx.fetch_one(
        "INSERT INTO outbox_messages (kind, lane, channel, patient_id, appointment_id, recipient, template_id,"
        " personalisation, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            kind,
            lane,
            channel,
            patient_id,
            appointment_id,
            recipient,
            template_id,
            json.dumps(personalisation, sort_keys=True),
            to_db(at),
            to_db(at),
        ),
    )
    assert row is not None
    return int(row["id"])
