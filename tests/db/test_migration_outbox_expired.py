"""Migration 0013: outbox messages may be 'expired'; every message, column and index the table had is kept, on both
backends, and on a database that had the later migrations already (0013 came after them)."""

from pathlib import Path

import pytest

from hub.clock import FixedClock
from hub.db import Database
from hub.db.migrate import migration_files, statements
from tests import factories
from tests.databases import hand_migrated_url

pytestmark = pytest.mark.anyio


@pytest.fixture
async def url(backend: str, tmp_path: Path) -> str:
    return await hand_migrated_url(backend, tmp_path, "outbox_expired")


async def _indexes(db: Database) -> set[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox_messages' AND sql IS NOT NULL"
    else:
        sql = (
            "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'outbox_messages'"
            " AND schemaname = current_schema()"
        )
    return {r["name"] for r in await db.fetch_all(sql)}


async def _run(db: Database, path: Path) -> None:
    async with db.write() as tx:
        for sql in statements(path.read_text(), db.dialect):
            await tx.execute(sql)


async def test_expired_is_allowed_and_the_outbox_is_kept_whole(db: Database, clock: FixedClock) -> None:
    files = migration_files()
    [expired] = [path for version, path in files if version == 13]
    for _, path in files:
        if path != expired:
            await _run(db, path)
    now = clock.now()
    async with db.write() as tx:
        ids = [
            await factories.create_message(tx, now=now, status="sent", notify_id="n1", attempts=1, sent_at=now),
            await factories.create_message(tx, now=now, kind="security_code", lane="immediate", status="sending"),
            await factories.create_message(tx, now=now, status="cancelled", urgent=True, check_first=True),
        ]
        await tx.execute("UPDATE outbox_messages SET claims = 3, claimed_by = 'w', error = 'e' WHERE id = ?", (ids[1],))
    before = await db.fetch_all("SELECT * FROM outbox_messages ORDER BY id")
    indexes = await _indexes(db)
    with pytest.raises(Exception, match="check|CHECK"):
        async with db.write() as tx:
            await factories.create_message(tx, now=now, status="expired")

    await _run(db, expired)

    assert await db.fetch_all("SELECT * FROM outbox_messages ORDER BY id") == before
    assert await _indexes(db) == indexes and "outbox_open_codes" in indexes
    async with db.write() as tx:
        await tx.execute("UPDATE outbox_messages SET status = 'expired' WHERE id = ?", (ids[1],))
        assert await factories.create_message(tx, now=now) > ids[-1]  # ids go on after the last
    with pytest.raises(Exception, match="check|CHECK"):
        async with db.write() as tx:
            await factories.create_message(tx, now=now, status="lost")
