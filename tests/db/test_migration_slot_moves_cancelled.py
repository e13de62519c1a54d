"""Migration 0026: a slot move may be a cancel's (how 'cancelled'); every move, column and index the table had is
kept, on both backends, and the check still turns away anything else."""

from pathlib import Path

import pytest

from hub.clock import FixedClock
from hub.db import Database
from hub.db.migrate import migration_files
from tests import factories
from tests.databases import hand_migrated_url
from tests.db.test_migration_slot_moves_to_no_slot import _indexes, _run, two_moves

pytestmark = pytest.mark.anyio


@pytest.fixture
async def url(backend: str, tmp_path: Path) -> str:
    return await hand_migrated_url(backend, tmp_path, "slot_moves_cancelled")


async def test_a_cancels_move_is_allowed_and_the_moves_are_kept_whole(db: Database, clock: FixedClock) -> None:
    files = migration_files()
    [cancelled] = [path for version, path in files if version == 26]
    for _, path in files:
        if path != cancelled:
            await _run(db, path)
    now = clock.now()
    appointment, first, second, moves = await two_moves(db, now, then="none")
    before = await db.fetch_all("SELECT * FROM slot_moves ORDER BY id")
    indexes = await _indexes(db)
    with pytest.raises(Exception, match="(?i)check"):
        async with db.write() as tx:
            await factories.create_slot_move(
                tx,
                appointment_id=appointment,
                from_slot_id=second,
                to_slot_id=None,
                previous_start=now,
                at=now,
                how="cancelled",
            )

    await _run(db, cancelled)

    assert await db.fetch_all("SELECT * FROM slot_moves ORDER BY id") == before
    assert await _indexes(db) == indexes and "slot_moves_appointment" in indexes
    async with db.write() as tx:
        out = await factories.create_slot_move(
            tx,
            appointment_id=appointment,
            from_slot_id=second,
            to_slot_id=None,
            previous_start=now,
            at=now,
            how="cancelled",
        )
    assert out > moves[-1]  # ids go on after the last
    with pytest.raises(Exception, match="(?i)check"):
        async with db.write() as tx:
            await factories.create_slot_move(
                tx, appointment_id=appointment, to_slot_id=first, previous_start=now, at=now, how="teleport"
            )
