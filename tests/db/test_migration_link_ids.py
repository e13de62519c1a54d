"""Migration 0010: patients already in the database get a random, unique link id, on both backends."""

import re
from pathlib import Path

import pytest

from hub.clock import FixedClock, to_db
from hub.db import Database
from hub.db.migrate import migration_files, statements
from tests import factories
from tests.databases import hand_migrated_url

pytestmark = pytest.mark.anyio


@pytest.fixture
async def url(backend: str, tmp_path: Path) -> str:
    return await hand_migrated_url(backend, tmp_path, "link_ids")


async def test_existing_patients_get_distinct_random_link_ids(db: Database, clock: FixedClock) -> None:
    files = migration_files()
    [link_ids] = [path for version, path in files if version == 10]
    for _, path in files:
        if path != link_ids:
            async with db.write() as tx:
                for sql in statements(path.read_text(), db.dialect):
                    await tx.execute(sql)
    async with db.write() as tx:
        organisation = await factories.create_organisation(tx)
        for n in range(5):
            now = to_db(clock.now())
            await factories.insert(
                tx,
                "patients",
                {
                    "organisation_id": organisation,
                    "mrn": f"MRN{n}",
                    "given_name": "Ann",
                    "family_name": "Lee",
                    "date_of_birth": "1950-01-01",
                    "verification_code": "AB12CD",
                    "created_at": now,
                    "updated_at": now,
                },
            )
    async with db.write() as tx:
        for sql in statements(link_ids.read_text(), db.dialect):
            await tx.execute(sql)

    rows = await db.fetch_all("SELECT id, link_id, link_rotated_at FROM patients ORDER BY id")
    assert len(rows) == 5
    assert all(re.fullmatch("[0-9a-f]{32}", r["link_id"]) and r["link_rotated_at"] is None for r in rows)
    assert len({r["link_id"] for r in rows}) == 5
