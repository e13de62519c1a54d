"""The reminder sweep's cost and concurrency: it reads only due notices, through the partial index, at most its
limit at a time, and two sweeps at once never queue a notice twice."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.clock import to_db
from hub.db import Database, connect
from hub.store.reminders import DUE_NOTICES_SQL, run_sweep
from tests.harness import Harness

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)  # the clock fixture's start


async def messages(hub: Harness, *kinds: str) -> list[dict[str, Any]]:
    sql, params = "SELECT * FROM outbox_messages WHERE lane = 'bulk'", list(kinds)
    if kinds:
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
    found = await hub.db.fetch_all(sql + " ORDER BY id", params)
    for row in found:
        row["personalisation"] = json.loads(row["personalisation"])
    return found


async def sweep(hub: Harness) -> int:
    return await run_sweep(hub.db, settings=hub.settings, now=hub.clock.now())


async def _due_notices(hub: Harness, *, due: int, future: int) -> int:
    patient_id = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient_id, starts_at=T0 + timedelta(days=60))
    for count, due_at in ((future, T0 + timedelta(days=30)), (due, T0 - timedelta(minutes=1))):
        await hub.create_scheduled_notice(appointment_id=appointment_id, due_at=due_at, count=count)
    return appointment_id


async def test_the_sweep_reads_due_notices_through_the_partial_index(hub: Harness) -> None:
    if hub.db.dialect == "postgresql":
        # The table is tiny here, so the planner would rightly scan it; with scans priced out, the plan shows
        # that the partial index serves this query (its WHERE matches the index's).
        async with hub.db.write() as tx:
            await tx.execute("SET LOCAL enable_seqscan = off")
            plan = await tx.fetch_all("EXPLAIN " + DUE_NOTICES_SQL, (to_db(T0), 500))
        details = " | ".join(row["QUERY PLAN"] for row in plan)
        assert "scheduled_notices_due" in details, details
        assert "Sort" not in details, details  # the index gives the order too
        return
    plan = await hub.db.fetch_all("EXPLAIN QUERY PLAN " + DUE_NOTICES_SQL, (to_db(T0), 500))
    details = " | ".join(row["detail"] for row in plan)
    assert "USING INDEX scheduled_notices_due" in details, details
    assert "SCAN scheduled_notices" not in details.replace("USING INDEX", ""), details
    assert "TEMP B-TREE" not in details, details  # the index gives the order too


async def test_one_sweep_handles_only_the_due_notices(hub: Harness) -> None:
    await _due_notices(hub, due=10, future=5000)
    assert await sweep(hub) == 10
    assert len(await messages(hub, "appointment_reminder")) == 10
    pending = await hub.db.fetch_one("SELECT COUNT(*) AS n FROM scheduled_notices WHERE done_at IS NULL")
    assert pending == {"n": 5000}
    assert await sweep(hub) == 0


async def test_the_sweep_takes_at_most_its_limit(hub: Harness) -> None:
    await _due_notices(hub, due=10, future=0)
    handled = [await run_sweep(hub.db, settings=hub.settings, now=hub.clock.now(), limit=4) for _ in range(4)]
    assert handled == [4, 4, 2, 0]


async def test_two_sweeps_at_once_never_queue_a_notice_twice(hub: Harness) -> None:
    await _due_notices(hub, due=60, future=100)
    other: Database = await connect(hub.settings.database_url)

    async def sweep_until_done(db: Database) -> int:
        total = 0
        while n := await run_sweep(db, settings=hub.settings, now=hub.clock.now(), limit=7):
            total += n
            await asyncio.sleep(0.02)  # a worker's pause between rounds: lets the other one in
        return total

    try:
        mine, theirs = await asyncio.gather(sweep_until_done(hub.db), sweep_until_done(other))
    finally:
        await other.close()
    assert mine + theirs == 60
    assert mine and theirs  # they really did take turns
    reminders = await messages(hub, "appointment_reminder")
    assert len(reminders) == 60
    outcomes = await hub.db.fetch_all("SELECT outcome FROM scheduled_notices WHERE done_at IS NOT NULL")
    assert sorted(o["outcome"] for o in outcomes) == sorted(f"queued {m['id']}" for m in reminders)
