"""Another writer's transaction in flight, for tests of what waits for what: `held_write(db, patient=7)` opens a
write with those locks (as `Database.write` takes them), runs `doing` in it, and keeps it open, uncommitted, until
the `async with` block ends; then it commits. On PostgreSQL only the writes that share a lock with it wait; on
SQLite every other write does (one writer at a time)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from hub.db import Database, Transaction


@asynccontextmanager
async def held_write(
    db: Database, *, doing: Callable[[Transaction], Awaitable[Any]] | None = None, **locks: Any
) -> AsyncIterator[None]:
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.write(**locks) as tx:
            if doing is not None:
                await doing(tx)
            inside.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(inside.wait(), timeout=10)
    try:
        yield
    finally:
        release.set()
        await holder


def touch_patient(patient_id: int) -> Callable[[Transaction], Awaitable[Any]]:
    """A patient's own write in flight: their row changed (as a confirm or a change of contact details changes it)."""
    return lambda tx: tx.execute("UPDATE patients SET given_name = given_name WHERE id = ?", (patient_id,))
