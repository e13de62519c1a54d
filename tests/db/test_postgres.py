"""PostgreSQL itself: advisory locks keep one ordinary writer at a time, outbox claims out of their way, and
writes about different patients out of each other's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.clock import FixedClock
from hub.db import Database, IntegrityError, Transaction, connect
from hub.db.migrate import migrate
from hub.db.postgres import LOCKS, PATIENT_LOCK_CLASS
from hub.store.events import record_event
from hub.vocabulary import EventKind
from tests.databases import POSTGRESQL, own_database_url, postgres_url
from tests.factories import create_organisation, create_patient

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pg() -> AsyncIterator[Database]:
    database = await connect(await postgres_url("pg", bare=True), pool_size=4)
    async with database.write() as tx:
        await tx.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT NOT NULL DEFAULT '')")
    yield database
    await database.close()


_HELD = (
    "SELECT (classid::bigint << 32) | objid::bigint AS key FROM pg_locks"
    " WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
)


async def _held(db: Database | Transaction) -> set[int]:
    """Advisory locks this connection holds (other test runs on the server take the same keys)."""
    return {int(r["key"]) for r in await db.fetch_all(_HELD)}


async def test_a_write_holds_its_advisory_lock_until_it_ends() -> None:
    one = await connect(await postgres_url("pg1", bare=True), pool_size=1)  # one connection: the same pid throughout
    try:
        async with one.write() as tx:
            assert await _held(tx) == {LOCKS["write"]}
        assert await _held(one) == set()
        async with one.write(lock="outbox") as tx:
            assert await _held(tx) == {LOCKS["outbox"]}
        assert await _held(one) == set()
    finally:
        await one.close()


async def test_a_server_that_outlives_a_test_takes_no_lock_the_tests_beside_it_wait_for(tmp_path: Path) -> None:
    """The browser tests' demo runs its worker for the rest of the run: its sweeps' ordinary writes must not queue
    in front of another test's writes (advisory locks belong to a database, not to a schema; a test holding the
    lock shared while the demo's worker waited for it outright once timed out in CI)."""
    server = await connect(await asyncio.to_thread(own_database_url, POSTGRESQL, tmp_path), pool_size=2)
    test = await connect(await postgres_url("pg", bare=True), pool_size=2)
    try:
        async with server.write():  # the demo's worker, in a sweep
            async with asyncio.timeout(5):
                async with test.write():  # a test's ordinary write at the same time
                    pass
    finally:
        await server.close()
        await test.close()


async def test_a_second_writer_waits_but_an_outbox_claim_does_not(pg: Database) -> None:
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with pg.write() as tx:
            await tx.execute("INSERT INTO t (id) VALUES (1)")
            first_in.set()
            await release.wait()

    async def write(lock: str, row: int) -> None:
        async with pg.write(lock=lock) as tx:
            await tx.execute("INSERT INTO t (id) VALUES (?)", (row,))

    holding = asyncio.create_task(hold())
    await first_in.wait()
    await asyncio.wait_for(write("outbox", 2), timeout=10)  # not behind the ordinary writer
    waiting = asyncio.create_task(write("write", 3))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # behind it
    release.set()
    await holding
    await asyncio.wait_for(waiting, timeout=10)
    assert [r["id"] for r in await pg.fetch_all("SELECT id FROM t ORDER BY id")] == [1, 2, 3]


async def test_execute_counts_rows_and_a_broken_constraint_is_an_integrity_error(pg: Database) -> None:
    async with pg.write() as tx:
        assert await tx.execute("INSERT INTO t (id) VALUES (1), (2), (3)") == 3
        assert await tx.execute("UPDATE t SET note = 'x' WHERE id > 1") == 2
        assert await tx.execute("SET LOCAL statement_timeout = 1000") == -1  # no row count to give
    with pytest.raises(IntegrityError, match="duplicate key"):
        async with pg.write() as tx:
            await tx.execute("INSERT INTO t (id) VALUES (1)")


async def test_reading_in_batches_sees_every_row_once(pg: Database) -> None:
    async with pg.write() as tx:
        await tx.execute("INSERT INTO t (id) SELECT generate_series(1, 1234)")
    assert [r["id"] async for r in pg.iterate("SELECT id FROM t ORDER BY id")] == list(range(1, 1235))


_PATIENT_LOCKS = (
    "SELECT objid::bigint AS patient FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
    " AND classid = ? AND pid = ANY(?::int[])"
)


async def _backend(tx: Transaction) -> int:
    row = await tx.fetch_one("SELECT pg_backend_pid() AS pid")
    assert row is not None
    return int(row["pid"])


async def test_writes_about_different_patients_hold_their_locks_at_the_same_time(pg: Database) -> None:
    both_in, both_checked = asyncio.Barrier(2), asyncio.Barrier(2)
    pids: list[int] = []

    async def patient_write(patient: int) -> None:
        async with pg.write(patient=patient) as tx:
            await tx.execute("INSERT INTO t (id) VALUES (?)", (patient,))
            pids.append(await _backend(tx))
            await asyncio.wait_for(both_in.wait(), timeout=10)  # each is inside while the other is
            held = await tx.fetch_all(_PATIENT_LOCKS, (PATIENT_LOCK_CLASS, pids))
            # Neither commits (and lets its lock go) until both have looked.
            await asyncio.wait_for(both_checked.wait(), timeout=10)
            assert {int(r["patient"]) for r in held} >= {101, 102}

    await asyncio.gather(patient_write(101), patient_write(102))
    assert [r["id"] for r in await pg.fetch_all("SELECT id FROM t ORDER BY id")] == [101, 102]


async def test_a_write_about_the_same_patient_or_an_ordinary_write_waits_for_a_patient_write(pg: Database) -> None:
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with pg.write(patient=7) as tx:
            await tx.execute("INSERT INTO t (id) VALUES (1)")
            inside.set()
            await release.wait()

    async def write(row: int, patient: int | None) -> None:
        async with pg.write(patient=patient) as tx:
            await tx.execute("INSERT INTO t (id) VALUES (?)", (row,))

    holding = asyncio.create_task(hold())
    try:
        await inside.wait()
        await asyncio.wait_for(write(2, 8), timeout=10)  # another patient: not behind it
        same, ordinary = asyncio.create_task(write(3, 7)), asyncio.create_task(write(4, None))
        await asyncio.sleep(0.3)
        assert not same.done() and not ordinary.done()
    finally:
        release.set()
    await asyncio.wait_for(asyncio.gather(holding, same, ordinary), timeout=10)
    assert [r["id"] for r in await pg.fetch_all("SELECT id FROM t ORDER BY id")] == [1, 2, 3, 4]


async def test_a_write_about_several_patients_holds_each_of_their_locks_and_no_other(pg: Database) -> None:
    """The reminder sweep locks a batch of patients at once: their own writes wait for it, nobody else's."""
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with pg.write(patients=[9, 7, 8]) as tx:
            await tx.execute("INSERT INTO t (id) VALUES (1)")
            inside.set()
            await release.wait()

    async def write(row: int, patient: int | None) -> None:
        async with pg.write(patient=patient) as tx:
            await tx.execute("INSERT INTO t (id) VALUES (?)", (row,))

    holding = asyncio.create_task(hold())
    try:
        await inside.wait()
        await asyncio.wait_for(write(2, 10), timeout=10)  # another patient: not behind it
        waiting = [asyncio.create_task(write(row, patient)) for row, patient in ((3, 7), (4, 9), (5, None))]
        await asyncio.sleep(0.3)
        assert [task.done() for task in waiting] == [False, False, False]
    finally:
        release.set()
    await asyncio.wait_for(asyncio.gather(holding, *waiting), timeout=10)
    assert [r["id"] for r in await pg.fetch_all("SELECT id FROM t ORDER BY id")] == [1, 2, 3, 4, 5]


async def test_writes_with_other_keys_run_at_the_same_time_and_one_with_the_same_key_waits(pg: Database) -> None:
    """Sign-ins lock the rate-limit counters they read by key: only those sharing a counter wait for each other."""
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with pg.write(keys=["code:a", "code:b"]) as tx:
            await tx.execute("INSERT INTO t (id) VALUES (1)")
            inside.set()
            await release.wait()

    async def write(row: int, keys: list[str] | None, later: tuple[str, ...] = ()) -> None:
        async with pg.write(keys=keys) as tx:
            await tx.hold_keys(later)
            await tx.execute("INSERT INTO t (id) VALUES (?)", (row,))

    holding = asyncio.create_task(hold())
    try:
        await inside.wait()
        await asyncio.wait_for(write(2, ["code:c"]), timeout=10)  # other keys: not behind it
        await asyncio.wait_for(write(3, [], later=("code:d",)), timeout=10)
        waiting = [
            asyncio.create_task(write(4, ["code:b"])),  # the same key, from the start
            asyncio.create_task(write(5, [], later=("code:c", "code:a"))),  # the same key, taken later
            asyncio.create_task(write(6, None)),  # an ordinary write
        ]
        await asyncio.sleep(0.3)
        assert [task.done() for task in waiting] == [False, False, False]
    finally:
        release.set()
    await asyncio.wait_for(asyncio.gather(holding, *waiting), timeout=10)
    assert [r["id"] for r in await pg.fetch_all("SELECT id FROM t ORDER BY id")] == [1, 2, 3, 4, 5, 6]


async def test_a_patient_write_waits_for_an_ordinary_write() -> None:
    db = await connect(await postgres_url("pg_ordinary", bare=True), pool_size=3)
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.write():
            inside.set()
            await release.wait()

    async def patient_write() -> None:
        async with db.write(patient=9):
            pass

    try:
        holding = asyncio.create_task(hold())
        try:
            await inside.wait()
            waiting = asyncio.create_task(patient_write())
            await asyncio.sleep(0.3)
            assert not waiting.done()
        finally:
            release.set()
        await asyncio.wait_for(asyncio.gather(holding, waiting), timeout=10)
    finally:
        await db.close()


async def test_event_ids_commit_in_order_when_patients_write_at_the_same_time(clock: FixedClock) -> None:
    """A reader by cursor never sees an event while one with a lower id is still to commit."""
    db = await connect(await postgres_url("pg_events"), pool_size=4)
    try:
        await migrate(db, clock)
        async with db.write() as tx:
            org = await create_organisation(tx)
            first = await create_patient(tx, organisation_id=org, now=clock.now(), mobile="+447700900011")
            second = await create_patient(tx, organisation_id=org, now=clock.now(), mobile="+447700900012")
        recorded, release = asyncio.Event(), asyncio.Event()

        async def event_for(patient: int, *, wait: bool) -> int:
            async with db.write(patient=patient) as tx:
                event = await record_event(
                    tx, at=clock.now(), kind=EventKind.APPOINTMENT_CONFIRMED, organisation_id=org, patient_id=patient
                )
                if wait:
                    recorded.set()
                    await release.wait()
                return event

        earlier = asyncio.create_task(event_for(first, wait=True))
        try:
            await recorded.wait()
            later = asyncio.create_task(event_for(second, wait=False))
            await asyncio.sleep(0.3)
            assert not later.done(), "the second patient's event waits for the first's to commit"
            assert await db.fetch_all("SELECT id FROM events") == []
        finally:
            release.set()  # a failure above must not leave the first transaction open
        ids = await asyncio.wait_for(asyncio.gather(earlier, later), timeout=10)
        assert ids[0] < ids[1]
        assert [r["id"] for r in await db.fetch_all("SELECT id FROM events ORDER BY id")] == ids
    finally:
        await db.close()


async def test_a_write_cancelled_while_it_waits_for_a_lock_leaves_nothing_behind(
    pg: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # A write begins with its locks in the same round trip as BEGIN: cancelled there (a request timing out behind
    # another write of the same patient), it must still be rolled back and its connection left fit for the next.
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with pg.write(patient=1) as tx:
            await tx.execute("INSERT INTO t (id, note) VALUES (1, 'holder')")
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with pg.write(patient=1) as tx:
            await tx.execute("INSERT INTO t (id, note) VALUES (2, 'cancelled')")

    held = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), timeout=10)
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0.3)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await held

    together = asyncio.Barrier(4)  # four writes at once: every connection of the pool is used again

    async def write(patient: int) -> None:
        async with pg.write(patient=patient) as tx:
            await together.wait()
            await tx.execute("INSERT INTO t (id, note) VALUES (?, 'after')", (10 + patient,))

    await asyncio.wait_for(asyncio.gather(*(write(p) for p in (1, 2, 3, 4))), timeout=10)
    assert [r["id"] for r in await pg.fetch_all("SELECT id FROM t ORDER BY id")] == [1, 11, 12, 13, 14]
    assert not await _held(pg)
    # Rolled back by the write itself, not left open for the pool to find ("Resetting connection with an active
    # transaction", an error in the log for every request that timed out waiting).
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_write_that_raises_is_rolled_back_and_its_locks_let_go(pg: Database) -> None:
    with pytest.raises(RuntimeError, match="the handler failed"):
        async with pg.write(patient=5, keys=["k"]) as tx:
            await tx.execute("INSERT INTO t (id, note) VALUES (1, 'undone')")
            raise RuntimeError("the handler failed")
    with pytest.raises(IntegrityError):
        async with pg.write() as tx:
            await tx.execute("INSERT INTO t (id, note) VALUES (2, 'undone')")
            await tx.execute("INSERT INTO t (id, note) VALUES (2, 'twice')")
    async with asyncio.timeout(5), pg.write(patient=5, keys=["k"]) as tx:  # the locks are free again
        await tx.execute("INSERT INTO t (id, note) VALUES (3, 'kept')")
    assert [r["id"] for r in await pg.fetch_all("SELECT id FROM t")] == [3]
