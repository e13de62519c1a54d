"""Fresh databases for tests, on SQLite and on PostgreSQL.

Every database-touching test runs once per backend. SQLite gets a new file per database. PostgreSQL gets a
schema of its own per database a test asks for (the first, second, ... of a test), created and migrated once
per test run and emptied before each test that uses it; the run's schemas are dropped at the end. A server that
outlives one test (the browser tests' demo, with its worker) gets a database of its own instead: the hub's
advisory locks are the database's, not a schema's, and its worker's sweeps would otherwise hold up the writes of
whatever test runs beside it.

PostgreSQL is the server in HUB_TEST_DATABASE_URL (`make test` sets it when one answers on 127.0.0.1:5432). Without
it the PostgreSQL cases are skipped, so a laptop without PostgreSQL can still run the suite; CI always has it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from hub.db.migrate import migration_files, statements

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
BACKENDS = [SQLITE, POSTGRESQL]
PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "")
_RUN = f"hubtest_{os.getpid()}_{secrets.token_hex(3)}"
_made: set[str] = set()
_databases: set[str] = set()
_own = itertools.count()
_SEED_ROWS = [
    statement
    for _, path in migration_files()
    for statement in statements(path.read_text(encoding="utf-8"), POSTGRESQL)
    if statement.upper().startswith("INSERT") and "SELECT" not in statement.upper()  # not data moved by a rebuild
]


def with_search_path(url: str, schema: str) -> str:
    """The server URL with every connection's search_path set to `schema` (asyncpg passes it to the server)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"search_path": schema})) if q)
    return urlunsplit(parts._replace(query=query))


async def postgres_url(n: int | str, *, bare: bool = False) -> str:
    """The URL of this run's n-th schema, empty: created on first use, its tables emptied after that.
    `bare`: no tables at all, not even migrations (for tests of the migrations)."""
    if not PG_URL:
        pytest.skip("HUB_TEST_DATABASE_URL is not set (make test sets it when PostgreSQL answers)")
    schema = f"{_RUN}_{n}"
    conn = await asyncpg.connect(PG_URL)
    try:
        if bare and schema in _made:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            _made.discard(schema)
        if schema in _made:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename != 'schema_migrations'", schema
            )
            if tables:
                names = ", ".join(f'"{schema}"."{t["tablename"]}"' for t in tables)
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
                # Back to the state just after migrating: the rows the migrations themselves insert.
                await conn.execute(f'SET search_path = "{schema}"')
                for statement in _SEED_ROWS:
                    await conn.execute(statement)
        else:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            _made.add(schema)
    finally:
        await conn.close()
    return with_search_path(PG_URL, schema)


async def database_url(backend: str, folder: Path, n: int, *, bare: bool = False) -> str:
    if backend == POSTGRESQL:
        return await postgres_url(n, bare=bare)
    return f"sqlite:///{folder}/hub{n}.sqlite3"


async def hand_migrated_url(backend: str, folder: Path, name: str) -> str:
    """A bare database of the test's own, for a test that migrates by hand: it leaves no record of the versions
    that a database other tests share would need."""
    if backend == POSTGRESQL:
        return await postgres_url(name, bare=True)
    return f"sqlite:///{folder}/{name}.sqlite3"


def own_database_url(backend: str, folder: Path) -> str:
    """A database nothing else uses, not even its advisory locks, for a server that outlives one test (callable
    with or without a loop)."""
    if backend == SQLITE:
        return f"sqlite:///{folder}/hub.sqlite3"
    if not PG_URL:
        pytest.skip("HUB_TEST_DATABASE_URL is not set (make test sets it when PostgreSQL answers)")
    name = f"{_RUN}_own{next(_own)}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create()).result()
    _databases.add(name)
    return urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))


def drop_schemas() -> None:
    """The run's schemas and databases, dropped (a server still connected to its database is disconnected)."""
    if not _made and not _databases:
        return

    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            for schema in sorted(_made):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            for name in sorted(_databases):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())
    _made.clear()
    _databases.clear()
