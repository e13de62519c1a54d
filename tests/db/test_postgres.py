"""PostgreSQL itself: advisory locks keep one ordinary writer at a time, and outbox claims out of their way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hub.db import Database, IntegrityError, Transaction, connect
from hub.db.postgres import LOCKS
from tests.databases import postgres_url

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
