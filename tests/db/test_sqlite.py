"""SQLite itself: WAL, full sync, reads on the loop that hand long ones to a thread, one writer across processes."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hub.db import Database
from hub.db.sqlite import LoopReader, has_wal_reset_bug

pytestmark = pytest.mark.anyio


@pytest.mark.sqlite_only
async def test_sqlite_writes_with_foreign_keys_and_full_sync(migrated: Database) -> None:
    async with migrated.write() as tx:
        for pragma in ("foreign_keys", "synchronous"):
            row = await tx.fetch_one(f"PRAGMA {pragma}")
            assert row is not None
            assert list(row.values()) == [{"foreign_keys": 1, "synchronous": 2}[pragma]], pragma  # 2 is FULL


@pytest.mark.sqlite_only
async def test_a_long_read_goes_to_a_reader_thread_and_the_loop_goes_on(migrated: Database) -> None:
    # Reads start on the event loop; one that outruns its budget is stopped and redone on a reader thread.
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    running = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    row = await migrated.fetch_one(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) SELECT count(*) AS c FROM n"
    )
    done.set()
    await running
    assert row == {"c": 2_000_000}
    # Had the read held the loop (it takes hundreds of milliseconds), the ticker could not have run meanwhile.
    assert ticks > 20


def test_a_read_on_the_loop_that_finds_the_file_locked_is_handed_back(tmp_path: Path) -> None:
    # In WAL mode readers are almost never locked out (a crashed process's recovery, an exclusive lock); a
    # rollback-journal file under an exclusive lock shows what the loop's reader does then: it does not wait.
    path = str(tmp_path / "locked.sqlite3")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("INSERT INTO t VALUES (1)")
    reader = LoopReader(path)
    try:
        assert reader.fetch("SELECT x FROM t", (), one=False) == [{"x": 1}]
        holder.execute("BEGIN EXCLUSIVE")
        assert reader.fetch("SELECT x FROM t", (), one=False) is None  # redo it on a reader thread
        holder.execute("COMMIT")
        assert reader.fetch("SELECT x FROM t", (), one=True) == [{"x": 1}]
    finally:
        reader.close()
        holder.close()


def test_a_statement_stopped_over_budget_is_prepared_once_again_not_at_every_run(tmp_path: Path) -> None:
    # Python 3.11's sqlite3 left a statement that SQLite stopped (over budget, or locked out) marked in use, so
    # every later run of the same SQL on the loop's connection prepared it afresh: a list-page read went from 30
    # to 75 microseconds for the rest of the process's life. sqlite_stmt shows the cached statement's runs.
    path = str(tmp_path / "budget.sqlite3")
    reader = LoopReader(path)
    numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT i FROM n"
    try:
        # Stopped while its rows are read (the first comes at once): redo it on a reader thread.
        assert reader.fetch(numbers, (3_000_000,), one=False) is None
        for _ in range(5):
            assert reader.fetch(numbers, (3,), one=False) == [{"i": 1}, {"i": 2}, {"i": 3}]
        runs = reader.fetch("SELECT run FROM sqlite_stmt WHERE sql = ?", (numbers,), one=False)
        assert runs is not None and max(row["run"] for row in runs) >= 5  # one statement, run again and again
    finally:
        reader.close()


@pytest.mark.sqlite_only
async def test_reads_on_the_loop_cannot_write(migrated: Database) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await migrated.fetch_one("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust') RETURNING id")
    assert await migrated.fetch_all("SELECT code FROM organisations") == []


@pytest.mark.sqlite_only
async def test_wal_mode_is_on_for_the_file(migrated: Database, db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


@pytest.mark.sqlite_only
async def test_a_write_waits_for_another_processs_lock_off_the_loop(migrated: Database, db_path: Path) -> None:
    other = sqlite3.connect(db_path, isolation_level=None)  # as another hub process would
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO organisations (code, name) VALUES ('RVR', 'Other trust')")
    ticks = 0

    async def write() -> None:
        async with migrated.write() as tx:
            await tx.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust')")

    writing = asyncio.create_task(write())
    for _ in range(30):  # the loop goes on while the write waits for the lock
        await asyncio.sleep(0.005)
        ticks += 1
    assert not writing.done()
    other.execute("COMMIT")
    other.close()
    await writing
    assert ticks == 30
    rows = await migrated.fetch_all("SELECT code FROM organisations ORDER BY code")
    assert rows == [{"code": "RAL"}, {"code": "RVR"}]


@pytest.mark.sqlite_only
async def test_a_write_abandoned_while_waiting_for_the_lock_leaves_the_writer_free(
    migrated: Database, db_path: Path
) -> None:
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with migrated.write() as tx:
            await tx.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Trust')")

    waiting = asyncio.create_task(write())
    await asyncio.sleep(0.05)
    waiting.cancel()  # the patient closed the page
    await asyncio.sleep(0.05)
    other.execute("COMMIT")
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    async with migrated.write() as tx:  # no transaction was left open on the writer
        await tx.execute("INSERT INTO organisations (code, name) VALUES ('RVR', 'Other trust')")
    assert await migrated.fetch_all("SELECT code FROM organisations") == [{"code": "RVR"}]


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ((3, 40, 1), True),
        ((3, 44, 5), True),
        ((3, 44, 6), False),
        ((3, 45, 0), True),
        ((3, 50, 6), True),
        ((3, 50, 7), False),
        ((3, 51, 2), True),
        ((3, 51, 3), False),
        ((3, 52, 0), False),
        ((4, 0, 0), False),
    ],
)
def test_wal_reset_bug_versions(version: tuple[int, int, int], affected: bool) -> None:
    assert has_wal_reset_bug(version) is affected
