"""Database access: one interface, two backends (SQLite for one machine, PostgreSQL for several).

SQL is written once with `?` placeholders and portable types; `hub.db.dialect` holds the differences.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hub.settings import Settings

Row = dict[str, Any]
Params = Sequence[Any]


class IntegrityError(Exception):
    """A constraint refused a write (unique, foreign key, check), whichever the backend."""


class Transaction(Protocol):
    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def hold(self, lock: str) -> None:
        """Take the named lock until the transaction ends, where writers can run at the same time (a
        transaction about one patient on PostgreSQL); where this transaction is the only writer, nothing."""
        ...

    async def hold_keys(self, keys: Iterable[str]) -> None:
        """Take the keys' locks (sorted, at once) until the transaction ends, where writers can run at the same
        time; where this transaction is the only writer, nothing. At most once per transaction, after its
        opening locks, so that no two transactions wait for each other."""
        ...


class Database(Protocol):
    dialect: str

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...
    def write(
        self,
        *,
        lock: str = "write",
        patient: int | None = None,
        patients: Iterable[int] | None = None,
        keys: Iterable[str] | None = None,
    ) -> AbstractAsyncContextManager[Transaction]:
        """One transaction, whole or not at all. Writers holding the same lock run one at a time, across
        processes; "write" is every ordinary write, "outbox" is claiming messages to send. `patient`: the
        transaction changes that patient's rows only (besides appending audit, events and messages), so on
        PostgreSQL it waits only for writes about the same patient and for ordinary writes, not for writes about
        other patients; `patients`: the same for several patients at once. `keys`: the transaction locks what it
        shares with other writers itself, by these keys (and `hold_keys` later) and by conditional UPDATEs of its
        rows, so on PostgreSQL it waits only for those and for ordinary writes (`keys=()`: no key yet). On SQLite
        every write is alone whatever it asks (writes that end in one turn of the event loop share a COMMIT, each
        in a savepoint). Leaving the block means committed."""
        ...

    def iterate(self, sql: str, params: Params = ()) -> AsyncIterator[Row]: ...
    async def close(self) -> None: ...


async def connect(url: str, *, readers: int = 4, busy_timeout_ms: int = 5000, pool_size: int = 10) -> Database:
    """sqlite:///path (one writer and `readers` read connections) or postgresql://... (a pool of `pool_size`)."""
    if url.startswith("sqlite:///"):
        from hub.db.sqlite import SQLiteDatabase

        return await SQLiteDatabase.open(
            url.removeprefix("sqlite:///"), readers=readers, busy_timeout_ms=busy_timeout_ms
        )
    if url.startswith(("postgresql://", "postgres://")):
        from hub.db.postgres import PostgresDatabase

        return await PostgresDatabase.open(url, size=pool_size)
    raise ValueError("database URL must start with sqlite:/// or postgresql://")


async def open_database(settings: Settings, *, readers: int | None = None) -> Database:
    """The database the settings name, with the connection settings for its kind."""
    return await connect(
        settings.database_url,
        readers=readers or settings.sqlite_readers,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        pool_size=settings.postgres_pool_size,
    )
