"""Migration 0008: staff accounts that exist when it runs keep what they saw (README, "Booking-centre console"):
on a hub of one trust they become members of it; on a hub of several (or none) they are hub-wide until assigned."""

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
    return await hand_migrated_url(backend, tmp_path, "staff_organisations")


async def _migrate_with(db: Database, clock: FixedClock, trusts: list[str]) -> list[dict[str, object]]:
    files = migration_files()
    [scoping] = [path for version, path in files if version == 8]
    for _, path in files:
        if path != scoping:
            async with db.write() as tx:
                for sql in statements(path.read_text(), db.dialect):
                    await tx.execute(sql)
    async with db.write() as tx:
        for code in trusts:
            await factories.create_organisation(tx, code=code)
        for name, role in (("agent1", "agent"), ("erin", "admin")):
            await factories.create_staff_user(tx, now=clock.now(), username=name, role=role)
    async with db.write() as tx:
        for sql in statements(scoping.read_text(), db.dialect):
            await tx.execute(sql)
    rows = await db.fetch_all("SELECT id, username, hub_wide FROM staff_users ORDER BY username")
    for row in rows:
        found = await db.fetch_all(
            "SELECT o.code FROM staff_organisations m JOIN organisations o ON o.id = m.organisation_id"
            " WHERE m.staff_id = ? ORDER BY o.code",
            (row["id"],),
        )
        row["codes"] = [r["code"] for r in found]
    return [{k: r[k] for k in ("username", "hub_wide", "codes")} for r in rows]


async def test_on_a_hub_of_one_trust_existing_staff_become_its_members(db: Database, clock: FixedClock) -> None:
    assert await _migrate_with(db, clock, ["RAL"]) == [
        {"username": "agent1", "hub_wide": 0, "codes": ["RAL"]},
        {"username": "erin", "hub_wide": 0, "codes": ["RAL"]},
    ]


async def test_on_a_hub_of_several_trusts_existing_staff_are_hub_wide(db: Database, clock: FixedClock) -> None:
    assert await _migrate_with(db, clock, ["RAL", "RVR"]) == [
        {"username": "agent1", "hub_wide": 1, "codes": []},
        {"username": "erin", "hub_wide": 1, "codes": []},
    ]


async def test_new_accounts_are_not_hub_wide(db: Database, clock: FixedClock) -> None:
    await _migrate_with(db, clock, ["RAL"])
    async with db.write() as tx:
        await factories.create_staff_user(tx, now=clock.now(), username="new1")
    row = await db.fetch_one("SELECT hub_wide FROM staff_users WHERE username = 'new1'")
    assert row is not None and row["hub_wide"] == 0
