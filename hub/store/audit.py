"""The audit trail: who did what to which record, written inside the transaction that made the change."""

from __future__ import annotations

from datetime import datetime

from hub.clock import to_db
from hub.db import Transaction
from hub.vocabulary import ActorType, AuditAction, RecordType


async def record_audit(
    tx: Transaction,
    *,
    at: datetime,
    actor_type: ActorType,
    actor_id: str | int,
    action: AuditAction,
    record_type: RecordType,
    record_id: str | int,
    detail: str = "",
) -> None:
    """Never put message bodies, codes or contact details in `detail`."""
    await tx.execute(
        "INSERT INTO audit_events (at, actor_type, actor_id, action, record_type, record_id, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (to_db(at), actor_type, str(actor_id), action, record_type, str(record_id), detail),
    )
