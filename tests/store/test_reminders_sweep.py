"""The reminder sweep's cost and concurrency: it reads only due notices, through the partial index, at most its
limit at a time, and two sweeps at once never queue a notice twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.clock import to_db
from hub.db import Database, Transaction, connect
from hub.store.reminders import DUE_NOTICES_SQL, run_sweep
from tests.harness import Harness
from tests.holding import held_write, touch_patient

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


async def test_two_workers_sweeping_a_backlog_at_once_queue_each_notice_once_and_finish_it(hub: Harness) -> None:
    # Twelve patients' reminders, due at once (a morning's wave): two workers sweep as the worker does, again and
    # again while a sweep finds its whole limit due. Their reads overlap (each reads before the other's writes are
    # done), each notice is taken by one of them, and neither stops while notices are left.
    for _ in range(12):
        await _due_notices(hub, due=25, future=5)
    other: Database = await connect(hub.settings.database_url)

    async def worker(db: Database) -> int:
        rounds = 1
        while await run_sweep(db, settings=hub.settings, now=hub.clock.now(), limit=120) == 120:
            rounds += 1
        return rounds

    try:
        await asyncio.gather(worker(hub.db), worker(other))
    finally:
        await other.close()
    pending = await hub.db.fetch_one(
        "SELECT COUNT(*) AS n FROM scheduled_notices WHERE done_at IS NULL AND due_at <= ?", (to_db(hub.clock.now()),)
    )
    assert pending == {"n": 0}
    reminders = await messages(hub, "appointment_reminder")
    outcomes = await hub.db.fetch_all("SELECT outcome FROM scheduled_notices WHERE done_at IS NOT NULL")
    assert sorted(o["outcome"] for o in outcomes) == sorted(f"queued {m['id']}" for m in reminders)
    assert len(reminders) == 12 * 25


async def test_a_sweep_that_finds_some_notices_taken_still_reports_its_whole_read(hub: Harness) -> None:
    # The worker sweeps again while a sweep finds its whole limit due. Another worker took some of what this one
    # read while it waited for the patient: it still reports all it read, so that both go on with the backlog
    # rather than each stopping at its share.
    appointment_id = await _due_notices(hub, due=10, future=0)

    def other_worker_takes_four(tx: Transaction) -> Awaitable[int]:  # holding the patient, as a sweep's chunk does
        return tx.execute(
            "UPDATE scheduled_notices SET done_at = ?, outcome = 'skip:other' WHERE id IN"
            " (SELECT id FROM scheduled_notices WHERE done_at IS NULL ORDER BY id LIMIT 4)",
            (to_db(hub.clock.now()),),
        )

    async with held_write(hub.db, patient=await _patient_of(hub, appointment_id), doing=other_worker_takes_four):
        sweeping = asyncio.create_task(run_sweep(hub.db, settings=hub.settings, now=hub.clock.now(), limit=10))
        await asyncio.sleep(0.3)
        assert not sweeping.done()
    assert await asyncio.wait_for(sweeping, timeout=10) == 10
    assert len(await messages(hub, "appointment_reminder")) == 6


async def _patient_of(hub: Harness, appointment_id: int) -> int:
    row = await hub.db.fetch_one("SELECT patient_id FROM appointments WHERE id = ?", (appointment_id,))
    assert row is not None
    return int(row["patient_id"])


async def test_the_sweep_waits_for_no_other_patients_write(hub: Harness, backend: str) -> None:
    # On PostgreSQL a sweep of reminders locks only the patients it writes for: another patient's confirm or
    # sign-in, open meanwhile, holds it up not at all (SQLite has one writer at a time).
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    await _due_notices(hub, due=3, future=0)
    someone_else = await hub.create_patient()
    async with held_write(hub.db, patient=someone_else, doing=touch_patient(someone_else)):
        assert await asyncio.wait_for(sweep(hub), timeout=5) == 3
    assert len(await messages(hub, "appointment_reminder")) == 3


async def test_a_cancel_committed_while_the_sweep_waits_for_the_patient_stops_the_reminder(hub: Harness) -> None:
    # The seam of the two: the sweep read the reminder as due, then waited for the patient's own write, which
    # cancelled the appointment. It acts on what it finds once it has the patient: nothing goes.
    appointment_id = await _due_notices(hub, due=1, future=0)

    def cancel(tx: Transaction) -> Awaitable[int]:
        return tx.execute("UPDATE appointments SET status = 'cancelled' WHERE id = ?", (appointment_id,))

    async with held_write(hub.db, patient=await _patient_of(hub, appointment_id), doing=cancel):
        sweeping = asyncio.create_task(sweep(hub))
        await asyncio.sleep(0.3)
        assert not sweeping.done()  # waiting for the patient
    assert await asyncio.wait_for(sweeping, timeout=10) == 1
    assert await messages(hub, "appointment_reminder") == []
    [notice] = await hub.db.fetch_all("SELECT outcome FROM scheduled_notices WHERE done_at IS NOT NULL")
    assert notice["outcome"].startswith("skip:")


async def test_a_notice_whose_appointment_moved_to_another_patient_is_left_for_the_next_sweep(hub: Harness) -> None:
    # The sweep locks the patient it read; when the appointment is another patient's by the time it has the lock,
    # it leaves the notice due rather than act for a patient whose lock it does not hold.
    appointment_id = await _due_notices(hub, due=1, future=0)
    first_patient, other_patient = await _patient_of(hub, appointment_id), await hub.create_patient()

    def move(tx: Transaction) -> Awaitable[int]:  # as a merge does (HL7 A40)
        return tx.execute("UPDATE appointments SET patient_id = ? WHERE id = ?", (other_patient, appointment_id))

    async with held_write(hub.db, patient=first_patient, doing=move):
        sweeping = asyncio.create_task(sweep(hub))  # reads the notice as the first patient's, then waits for them
        await asyncio.sleep(0.3)
        assert not sweeping.done()
    await asyncio.wait_for(sweeping, timeout=10)
    assert await messages(hub) == []
    [notice] = await hub.db.fetch_all("SELECT done_at FROM scheduled_notices WHERE due_at <= ?", (to_db(T0),))
    assert notice["done_at"] is None  # still due
    assert await sweep(hub) == 1  # the next sweep reads the new patient and acts
    [reminder] = await messages(hub, "appointment_reminder")
    assert reminder["patient_id"] == other_patient
