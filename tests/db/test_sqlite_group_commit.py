"""Group commit on SQLite: writes that end in one turn of the event loop share one COMMIT (one disk flush), each
in a savepoint of its own, and every write returns only once its COMMIT is done."""

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub.db import Database
from hub.db.sqlite import SQLiteDatabase

pytestmark = [pytest.mark.anyio, pytest.mark.sqlite_only]


@contextmanager
def commits(db: Database) -> Iterator[list[str]]:
    """The COMMITs the writer's connection runs (SQLite's own trace of the statements it is given)."""
    assert isinstance(db, SQLiteDatabase)
    seen: list[str] = []
    db._writer.conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    try:
        yield seen
    finally:
        db._writer.conn.set_trace_callback(None)


async def add(db: Database, code: str, *, fail: bool = False) -> None:
    async with db.write() as tx:
        await tx.execute("INSERT INTO organisations (code, name) VALUES (?, 'Trust')", (code,))
        if fail:
            raise ValueError("refused after its INSERT")


def committed(db_path: Path) -> list[str]:
    """What another connection (another process) sees: only what is committed."""
    other = sqlite3.connect(db_path)
    try:
        return [row[0] for row in other.execute("SELECT code FROM organisations ORDER BY code")]
    finally:
        other.close()


async def test_writes_ending_in_one_turn_of_the_loop_share_one_commit(migrated: Database, db_path: Path) -> None:
    codes = [f"R{n:02}" for n in range(10)]
    with commits(migrated) as seen:
        await asyncio.gather(*(add(migrated, code) for code in codes))
    assert seen == ["COMMIT"]  # one flush for ten writes: before, ten
    assert committed(db_path) == codes


async def test_a_group_is_bounded_and_a_lone_write_commits_alone(migrated: Database, db_path: Path) -> None:
    with commits(migrated) as seen:
        await asyncio.gather(*(add(migrated, f"R{n:03}") for n in range(100)))
    assert seen == ["COMMIT", "COMMIT"]  # at most 64 writes wait on one commit
    with commits(migrated) as seen:
        await add(migrated, "RZZ")
    assert seen == ["COMMIT"]
    assert len(committed(db_path)) == 101


async def test_a_write_returns_only_once_its_commit_is_done(migrated: Database, db_path: Path) -> None:
    async def add_then_look(code: str) -> list[str]:
        await add(migrated, code)
        return committed(db_path)  # straight after the write returns, before anything else runs

    first, second = await asyncio.gather(add_then_look("RAA"), add_then_look("RBB"))
    assert first == second == ["RAA", "RBB"]


async def test_a_failed_write_in_a_group_is_undone_alone(migrated: Database, db_path: Path) -> None:
    results = await asyncio.gather(
        add(migrated, "RAA"), add(migrated, "RBB", fail=True), add(migrated, "RCC"), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert committed(db_path) == ["RAA", "RCC"]
    # The first write of a group failing: nothing else was in its transaction.
    first_failed = await asyncio.gather(add(migrated, "RDD", fail=True), add(migrated, "REE"), return_exceptions=True)
    assert isinstance(first_failed[0], ValueError) and first_failed[1] is None
    assert committed(db_path) == ["RAA", "RCC", "REE"]


async def test_a_write_waiting_mid_transaction_holds_the_commit_until_it_ends(
    migrated: Database, db_path: Path
) -> None:
    order: list[str] = []
    release = asyncio.Event()

    async def slow() -> None:
        async with migrated.write() as tx:
            await tx.execute("INSERT INTO organisations (code, name) VALUES ('RSL', 'Trust')")
            await release.wait()  # as a write waiting on a reader thread would
        order.append("slow returned")

    async def quick() -> None:
        await add(migrated, "RQK")
        order.append("quick returned")

    with commits(migrated) as seen:
        tasks = [asyncio.create_task(quick()), asyncio.create_task(slow())]
        for _ in range(5):
            await asyncio.sleep(0)
        assert order == [] and committed(db_path) == []  # the quick write's commit waits for the slow one
        release.set()
        await asyncio.gather(*tasks)
    assert seen == ["COMMIT"]
    assert committed(db_path) == ["RQK", "RSL"]


async def test_a_request_gone_while_its_group_commits_leaves_the_others_their_commit(
    migrated: Database, db_path: Path
) -> None:
    first = asyncio.create_task(add(migrated, "RAA"))
    second = asyncio.create_task(add(migrated, "RBB"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    first.cancel()  # the patient closed the page while the group was being committed
    await asyncio.gather(first, second, return_exceptions=True)
    assert second.exception() is None
    assert committed(db_path) == ["RAA", "RBB"]  # what the first did was done; it is durable all the same


async def test_a_commit_that_fails_fails_every_write_of_its_group(migrated: Database, db_path: Path) -> None:
    # A deferred foreign key is checked at COMMIT (the hub's schema has none; disk errors fail a COMMIT the same way).
    async with migrated.write() as tx:
        await tx.execute(
            "CREATE TABLE test_deferred (organisation_id INTEGER REFERENCES organisations (id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )

    async def dangling() -> None:
        async with migrated.write() as tx:
            await tx.execute("INSERT INTO test_deferred (organisation_id) VALUES (999)")

    results = await asyncio.gather(add(migrated, "RAA"), dangling(), return_exceptions=True)
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert committed(db_path) == []  # nothing half-done
    await add(migrated, "RBB")  # the writer is free and out of any transaction
    assert committed(db_path) == ["RBB"]
