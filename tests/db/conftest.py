"""A database of the test's backend for the tests of hub/db: empty (`db`) or migrated (`migrated`)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.clock import FixedClock
from hub.db import Database, connect
from hub.db.migrate import migrate
from tests.databases import database_url


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "hub0.sqlite3"


@pytest.fixture
async def url(backend: str, tmp_path: Path) -> str:
    return await database_url(backend, tmp_path / "data", 0, bare=True)


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = await connect(url, readers=2, busy_timeout_ms=1000)
    yield database
    await database.close()


@pytest.fixture
async def migrated(db: Database, clock: FixedClock) -> Database:
    await migrate(db, clock)
    return db
