"""The Database interface (hub/db/__init__.py) on both backends: writes whole or not at all, one at a time, alike."""

import asyncio

import pytest

from hub.db import Database, IntegrityError, connect

pytestmark = pytest.mark.anyio


async def test_foreign_keys_are_enforced(migrated: Database) -> None:
    async with migrated.write() as tx:
        org = await tx.fetch_one("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust') RETURNING id")
        assert org is not None
        site = await tx.fetch_one(
            "INSERT INTO sites (organisation_id, code, name) VALUES (?, 'RFH', 'Royal Free') RETURNING id",
            (org["id"],),
        )
        assert site is not None
    with pytest.raises(IntegrityError, match="(?i)foreign key"):
        async with migrated.write() as tx:
            await tx.execute(
                "INSERT INTO appointments (organisation_id, ref, patient_id, site_id, starts_at, duration_minutes,"
                " mode, status, created_at, updated_at)"
                " VALUES (?, 'A1', 999, ?, '2026-12-01T09:00:00.000000Z', 30, 'in_person', 'booked', 'x', 'x')",
                (org["id"], site["id"]),
            )
    assert await migrated.fetch_all("SELECT id FROM appointments") == []


async def test_a_failed_write_rolls_back_whole(migrated: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with migrated.write() as tx:
            await tx.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust')")
            await tx.execute("INSERT INTO organisations (code, name) VALUES ('RVR', 'Other trust')")
            assert await tx.fetch_one("SELECT COUNT(*) AS n FROM organisations") == {"n": 2}
            raise Boom
    assert await migrated.fetch_all("SELECT code FROM organisations") == []

    # The writer is free again and a good transaction commits.
    async with migrated.write() as tx:
        await tx.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust')")
    assert await migrated.fetch_all("SELECT code FROM organisations") == [{"code": "RAL"}]


async def test_a_failing_statement_rolls_back_earlier_ones(migrated: Database) -> None:
    with pytest.raises(IntegrityError):
        async with migrated.write() as tx:
            await tx.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust')")
            await tx.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Same code')")
    assert await migrated.fetch_all("SELECT code FROM organisations") == []


async def test_readers_do_not_see_a_write_until_it_commits(migrated: Database) -> None:
    async with migrated.write() as tx:
        await tx.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust')")
        assert await migrated.fetch_all("SELECT code FROM organisations") == []
    assert await migrated.fetch_all("SELECT code FROM organisations") == [{"code": "RAL"}]


async def test_concurrent_writes_are_serialised(migrated: Database) -> None:
    async with migrated.write() as tx:
        await tx.execute("INSERT INTO organisations (code, name, phone) VALUES ('RAL', 'Trust', '0')")

    async def increment() -> None:
        async with migrated.write() as tx:
            row = await tx.fetch_one("SELECT phone FROM organisations WHERE code = 'RAL'")
            assert row is not None
            await tx.execute("UPDATE organisations SET phone = ? WHERE code = 'RAL'", (str(int(row["phone"]) + 1),))

    await asyncio.gather(*(increment() for _ in range(20)))
    assert await migrated.fetch_one("SELECT phone FROM organisations") == {"phone": "20"}


async def test_writes_from_two_processes_are_serialised(migrated: Database, url: str) -> None:
    """Two connection sets stand for two processes: each read-then-write still sees the other's commit."""
    other = await connect(url, readers=2)
    try:
        async with migrated.write() as tx:
            await tx.execute("INSERT INTO organisations (code, name, phone) VALUES ('RAL', 'Trust', '0')")

        async def increment(db: Database) -> None:
            async with db.write() as tx:
                row = await tx.fetch_one("SELECT phone FROM organisations WHERE code = 'RAL'")
                assert row is not None
                await asyncio.sleep(0.001)
                await tx.execute("UPDATE organisations SET phone = ? WHERE code = 'RAL'", (str(int(row["phone"]) + 1),))

        await asyncio.gather(*(increment(db) for _ in range(10) for db in (migrated, other)))
        assert await other.fetch_one("SELECT phone FROM organisations") == {"phone": "20"}
    finally:
        await other.close()


async def test_results_look_the_same_on_both_backends(migrated: Database) -> None:
    async with migrated.write() as tx:
        await tx.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust'), ('RVR', 'Other')")
        # A parameter the server types as text, given as a number, is stored as SQLite would store it.
        assert await tx.execute("UPDATE organisations SET phone = ? WHERE code = ?", (12345, "RAL")) == 1
    row = await migrated.fetch_one(
        "SELECT COUNT(*) AS n, SUM(id) AS total, MAX(phone) AS phone,"
        " EXISTS (SELECT 1 FROM organisations WHERE code = ?) AS found FROM organisations",
        ("RAL",),
    )
    assert row == {"n": 2, "total": 3, "phone": "12345", "found": 1}
    assert [r async for r in migrated.iterate("SELECT code FROM organisations ORDER BY code")] == [
        {"code": "RAL"},
        {"code": "RVR"},
    ]


async def test_unknown_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="sqlite"):
        await connect("mysql://localhost/hub")
