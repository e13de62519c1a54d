"""Numbered SQL files in migrations/, applied in order, each recorded in schema_migrations.

A number left free when the files were numbered may be filled later, so an upgraded hub can apply a file after
higher numbers than its own: every file must work whichever of the others have run. On SQLite each file runs with
foreign keys off and checked before its commit, as SQLite's way of rebuilding a table asks (a table others point at
can then be dropped and made again without deleting through their ON DELETE CASCADE).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from hub.clock import Clock, to_db
from hub.db import Database, Transaction
from hub.db.dialect import TYPES
from hub.db.sqlite import SQLiteDatabase

MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(folder: Path = MIGRATIONS) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name not of the form 0001_name.sql: {path.name}")
        found.append((int(match.group(1)), path))
    return found


def statements(sql: str, dialect: str) -> list[str]:
    for marker, replacement in TYPES[dialect].items():
        sql = sql.replace("{" + marker + "}", replacement)
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _transaction(db: Database) -> AbstractAsyncContextManager[Transaction]:
    if isinstance(db, SQLiteDatabase):
        return db.write_without_foreign_keys()
    return db.write()


class MigrationMismatch(Exception):
    """The database applied a migration under this number with another file: it is not this code's schema."""


async def migrate(db: Database, clock: Clock | None = None, *, leave_out: Collection[int] = ()) -> list[int]:
    """Apply what is missing; safe to run from several processes at once. Returns the versions applied.
    `leave_out`: versions not to apply (yet), as a hub numbered before they were written."""
    clock = clock or Clock()
    applied: list[int] = []
    async with db.write() as tx:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
    for version, path in migration_files():
        if version in leave_out:
            continue
        async with _transaction(db) as tx:
            done = await tx.fetch_one("SELECT name FROM schema_migrations WHERE version = ?", (version,))
            if done and done["name"] != path.name:
                # Skipping it would leave this code's change out, unseen, and run what follows on the wrong schema.
                raise MigrationMismatch(
                    f"migration {version} was applied as {done['name']}, but this code's is {path.name}: the database"
                    " was migrated by other code (restore it from a backup, or migrate it with the code that made it)"
                )
            if done:
                continue
            for statement in statements(path.read_text(encoding="utf-8"), db.dialect):
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, path.name, to_db(clock.now())),
            )
            applied.append(version)
    return applied
