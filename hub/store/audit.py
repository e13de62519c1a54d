"""The audit trail: who did what to which record, written inside the transaction that made the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.clock import to_db
from hub.db import Database, Transaction
from hub.vocabulary import ActorType, AuditAction, RecordType


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the audit trail."""

    type: ActorType
    id: str | int


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


async def record_staff_read(
    db: Database,
    *,
    at: datetime,
    staff_id: int,
    action: AuditAction,
    record_type: RecordType,
    record_id: str | int,
    detail: str = "",
) -> None:
    """A staff member saw patient data (a search, a record, a task, an export) or the audit trail itself."""
    async with db.write() as tx:
        await record_audit(
            tx,
            at=at,
            actor_type=ActorType.AGENT,
            actor_id=staff_id,
            action=action,
            record_type=record_type,
            record_id=record_id,
            detail=detail,
        )


async def audit_message(
    tx: Transaction,
    now: datetime,
    action: AuditAction,
    message_id: int,
    detail: str,
    *,
    actor: str,
    actor_type: ActorType = ActorType.SYSTEM,
) -> None:
    """An audit row about one outbox message (withdrawn, rerouted, failed, sent another way)."""
    await record_audit(
        tx,
        at=now,
        actor_type=actor_type,
        actor_id=actor,
        action=action,
        record_type=RecordType.MESSAGE,
        record_id=message_id,
        detail=detail,
    )
