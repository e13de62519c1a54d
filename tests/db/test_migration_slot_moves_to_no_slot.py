"""Migration 0022: a slot move may go to no slot (to_slot_id NULL); every move, column and index the table had is
kept, on both backends, and on a database that had any later migrations already."""

from datetime import datetime, timedelta
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
    return await hand_migrated_url(backend, tmp_path, "slot_moves_to_no_slot")


async def _indexes(db: Database) -> set[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'slot_moves' AND sql IS NOT NULL"
    else:
        sql = (
            "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'slot_moves' AND schemaname = current_schema()"
        )
    return {r["name"] for r in await db.fetch_all(sql)}


async def _run(db: Database, path: Path) -> None:
    async with db.write() as tx:
        for sql in statements(path.read_text(), db.dialect):
            await tx.execute(sql)


async def two_moves(db: Database, now: datetime, *, then: str) -> tuple[int, int, int, list[int]]:
    """An appointment moved into one slot and then out of it (`then`: into the second slot, or into none): the
    appointment, the two slots, the two moves."""
    async with db.write() as tx:
        organisation = await factories.create_organisation(tx)
        site = await factories.create_site(tx, organisation_id=organisation)
        patient = await factories.create_patient(tx, organisation_id=organisation, now=now)
        appointment = await factories.create_appointment(
            tx, organisation_id=organisation, site_id=site, patient_id=patient, now=now
        )
        first, second = [
            await factories.create_slot(
                tx, organisation_id=organisation, site_id=site, now=now, starts_at=now + timedelta(days=d)
            )
            for d in (3, 4)
        ]
        moves = [
            await factories.create_slot_move(
                tx, appointment_id=appointment, to_slot_id=first, previous_start=now + timedelta(days=10), at=now
            ),
            await factories.create_slot_move(
                tx,
                appointment_id=appointment,
                from_slot_id=first,
                to_slot_id=second if then == "second" else None,
                previous_start=now + timedelta(days=3),
                at=now,
                actor_type="agent",
                actor_id="7",
                how="agent",
            ),
        ]
    return appointment, first, second, moves


async def test_a_move_to_no_slot_is_allowed_and_the_moves_are_kept_whole(db: Database, clock: FixedClock) -> None:
    files = migration_files()
    [to_no_slot] = [path for version, path in files if version == 22]
    for version, path in files:
        # 0026 rebuilds the same table on SQLite from 0022's result (to_slot_id already nullable): it follows 0022.
        if path != to_no_slot and version != 26:
            await _run(db, path)
    now = clock.now()
    appointment, first, second, moves = await two_moves(db, now, then="second")
    before = await db.fetch_all("SELECT * FROM slot_moves ORDER BY id")
    indexes = await _indexes(db)
    with pytest.raises(Exception, match="(?i)not.null"):
        async with db.write() as tx:
            await factories.create_slot_move(
                tx, appointment_id=appointment, from_slot_id=second, to_slot_id=None, previous_start=now, at=now
            )

    await _run(db, to_no_slot)

    assert await db.fetch_all("SELECT * FROM slot_moves ORDER BY id") == before
    assert await _indexes(db) == indexes and "slot_moves_appointment" in indexes
    async with db.write() as tx:
        out = await factories.create_slot_move(
            tx, appointment_id=appointment, from_slot_id=second, to_slot_id=None, previous_start=now, at=now
        )
    assert out > moves[-1]  # ids go on after the last
    with pytest.raises(Exception, match="(?i)check"):
        async with db.write() as tx:
            await factories.create_slot_move(
                tx, appointment_id=appointment, to_slot_id=first, previous_start=now, at=now, how="teleport"
            )
