"""The worker waits out a database that is briefly out of reach, and then carries on where it was.

PostgreSQL: every connection the worker holds is terminated by the server (as in a restart or fail-over), and
for two seconds its statements time out (the write locks held elsewhere, statement_timeout 200 ms).
SQLite: another process holds the write lock past the busy timeout ("database is locked").
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from hub.db import Database, connect
from hub.db.dialect import is_transient
from hub.db.postgres import LOCKS
from hub.jobs.worker import work
from hub.notify.dev import DevNotifier
from tests import factories
from tests.conftest import MakeHub
from tests.databases import PG_URL
from tests.harness import Harness

pytestmark = pytest.mark.anyio
QUIET_OFF = {"notify.quiet_start_hour": 0, "notify.quiet_end_hour": 0}


async def _queue(db: Database, hub: Harness, n: int, first: int = 0) -> None:
    async with db.write() as tx:
        for i in range(first, first + n):
            await factories.create_message(
                tx, now=hub.clock.now(), recipient=f"+447700{i:06d}", personalisation={"n": i}
            )


async def _sent(db: Database) -> int:
    row = await db.fetch_one("SELECT COUNT(*) AS n FROM outbox_messages WHERE status = 'sent'")
    return int(row["n"]) if row else 0


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    async def check() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(check(), seconds)


async def _cut_off(hub: Harness, name: str) -> None:
    """Make the database unreachable for the worker for about two seconds."""
    if hub.db.dialect == "postgresql":
        admin = await asyncpg.connect(PG_URL)
        try:
            killed = await admin.fetchval(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", name
            )
            assert killed >= 1
            for key in LOCKS.values():
                await admin.execute("SELECT pg_advisory_lock($1)", key)
            await asyncio.sleep(2)
        finally:
            await admin.close()  # and with it the locks
        return
    holder = sqlite3.connect(hub.path, isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    await asyncio.sleep(2)
    holder.execute("ROLLBACK")
    holder.close()


async def test_the_worker_waits_out_an_unreachable_database(
    make_hub: MakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await make_hub(sqlite_busy_timeout_ms=100, **QUIET_OFF)
    name = f"worker_{secrets.token_hex(4)}"
    url = hub.database_url
    if hub.db.dialect == "postgresql":
        url += f"&application_name={name}&statement_timeout=200"
    db = await connect(url, readers=1, busy_timeout_ms=100, pool_size=2)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="hub.jobs.worker")
    task = asyncio.create_task(work(db, DevNotifier(hub.db, hub.clock), hub.settings, hub.clock, stop))
    try:
        await _queue(hub.db, hub, 20)
        await _until(lambda: _done(hub.db, 20))
        await _cut_off(hub, name)
        await _queue(hub.db, hub, 20, first=20)
        await _until(lambda: _done(hub.db, 40), seconds=40)
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await db.close()
    assert "database unavailable" in caplog.text
    messages = await hub.db.fetch_all("SELECT reference, COUNT(*) AS n FROM dev_messages GROUP BY reference")
    assert len(messages) == 40 and {m["n"] for m in messages} == {1}


async def _done(db: Database, n: int) -> bool:
    return await _sent(db) == n


def test_which_failures_are_worth_waiting_for() -> None:
    assert is_transient(ConnectionResetError())
    assert is_transient(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert is_transient(asyncpg.exceptions.DeadlockDetectedError("deadlock"))
    assert is_transient(asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"))
    assert is_transient(asyncpg.InterfaceError("cannot perform operation: another operation is in progress"))
    # asyncpg's protocol state when the server dropped the connection mid-statement.
    assert is_transient(
        asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
    )
    assert not is_transient(asyncpg.exceptions.InternalClientError("unexpected data type of composite type attribute"))
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert is_transient(sqlite3.OperationalError("database is busy"))
    assert not is_transient(sqlite3.OperationalError("no such table: outbox_messages"))
    assert not is_transient(asyncpg.exceptions.UndefinedColumnError("no such column"))
    assert not is_transient(ValueError("a bug"))
