"""The audit trail and the hospital-system event feed: written inside the transaction that made the change."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hub.clock import to_db
from hub.db import Transaction


async def record_audit(
    tx: Transaction,
    *,
    at: datetime,
    actor_type: str,
    actor_id: str | int,
    action: str,
    record_type: str,
    record_id: str | int,
    detail: str = "",
) -> None:
    """Who did what to which record. Never put message bodies, codes or contact details in `detail`."""
    await tx.execute(
        "INSERT INTO audit_events (at, actor_type, actor_id, action, record_type, record_id, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (to_db(at), actor_type, str(actor_id), action, record_type, str(record_id), detail),
    )


async def record_event(
    tx: Transaction,
    *,
    at: datetime,
    kind: str,
    organisation_id: int,
    patient_id: int | None,
    appointment_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """An action the hospital system reads back through GET /api/v1/events."""
    await tx.execute(
        "INSERT INTO events (kind, organisation_id, patient_id, appointment_id, data, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            kind,
            organisation_id,
            patient_id,
            appointment_id,
            json.dumps(data or {}, sort_keys=True),
            to_db(at),
        ),
    )
