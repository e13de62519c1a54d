"""The audit trail: who did what to which record, written in the transaction that made the change."""

from __future__ import annotations

import pytest

from hub.store.audit import record_audit
from hub.vocabulary import ActorType, AuditAction, RecordType
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_an_audit_entry_records_who_did_what_to_which_record(hub: Harness) -> None:
    async with hub.db.write() as tx:
        await record_audit(
            tx,
            at=hub.clock.now(),
            actor_type=ActorType.AGENT,
            actor_id=7,
            action=AuditAction.TASK_CLAIMED,
            record_type=RecordType.TASK,
            record_id=12,
        )
    [row] = await hub.db.fetch_all(
        "SELECT at, actor_type, actor_id, action, record_type, record_id, detail FROM audit_events"
    )
    assert row == {
        "at": "2026-11-21T10:00:00.000000Z",
        "actor_type": "agent",
        "actor_id": "7",
        "action": "task_claimed",
        "record_type": "task",
        "record_id": "12",
        "detail": "",
    }
