"""Database access: one interface, an SQLite backend now (PostgreSQL joins it through the same interface).

SQL is written once with `?` placeholders and portable types; `hub.db.dialect` holds the differences.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = dict[str, Any]
Params = Sequence[Any]


class Transaction(Protocol):
    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...


class Database(Protocol):
    dialect: str

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...
    def write(self) -> AbstractAsyncContextManager[Transaction]: ...
    def iterate(self, sql: str, params: Params = ()) -> AsyncIterator[Row]: ...
    async def close(self) -> None: ...


async def connect(url: str, *, readers: int = 4, busy_timeout_ms: int = 5000) -> Database:
    if url.startswith("sqlite:///"):
        from hub.db.sqlite import SQLiteDatabase

        return await SQLiteDatabase.open(
            url.removeprefix("sqlite:///"), readers=readers, busy_timeout_ms=busy_timeout_ms
        )
    raise ValueError("only sqlite:/// databases are supported by this build")
