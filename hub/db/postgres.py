"""PostgreSQL through an asyncpg pool, for several web and worker processes on one database.

Ordinary writes keep SQLite's guarantee: one write transaction at a time across every process, taken with a
transaction-scoped advisory lock. The console's, the integration API's sites and slots, HL7 merges and the worker's
housekeeping lean on it (they read then write rows shared by many patients). Outbox claims take their own lock
instead, so that workers claiming messages never wait behind patients' writes, and claim rows with FOR UPDATE SKIP
LOCKED so that they never wait for, or take, a row another transaction holds. (Only a dead worker's messages, put
back before a claim under their patients' locks, wait: hub.notify.claims.)

The writes a crowd of patients makes at once (signing in, their own appointments, their sessions) lock only what
they share: they take the ordinary lock *shared* (so they still wait for an ordinary write, and it for them) and
then their own advisory locks, so that such writes about different patients run at the same time:
- `write(patient=id)`: a lock of that patient's own (a patient's action on their own appointment, their session);
  `write(patients=ids)`: each of those patients' locks, in order (the reminder sweep, a batch of patients at once);
- `write(keys=[...])` and `Transaction.hold_keys`: a lock per key (a rate-limit counter, a sign-in attempt), taken
  in sorted order in one statement; `keys=()` opens such a write with no key yet;
- `write(keys=())` with no key at all: writes whose every statement is a conditional UPDATE of their own rows, or
  an upsert (a sent message's result, fenced by its claim; a channel's hold);
- a row changed by a conditional UPDATE is locked by PostgreSQL itself until commit (of two such updates, the
  second waits and then sees the first's change);
- an event takes the "events" lock before its id is given out and keeps it to commit, so event ids still commit in
  order and a reader by cursor cannot skip one.
Deadlocks are avoided by order: a transaction takes the shared lock, then its patient's or its keys' locks, then at
most one more group of keys (sorted, at once), then the events lock last.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from hub.db import IntegrityError, Params, Row
from hub.db.dialect import POSTGRESQL, from_server, numbered, to_server

log = logging.getLogger(__name__)

# Advisory lock keys (any 64-bit numbers no other application on the database uses).
LOCKS = {"write": 0x4855_4200_0001, "outbox": 0x4855_4200_0002, "events": 0x4855_4200_0003}
# A patient's lock: the two-integer form of advisory lock (a key space apart from the one-number form above).
PATIENT_LOCK_CLASS = 0x4855_0000
# A key's lock (a counter, an attempt): the two-integer form too, in a class of its own.
KEY_LOCK_CLASS = 0x4856_0000


def _row(record: asyncpg.Record) -> Row:
    return {key: from_server(value) for key, value in record.items()}


def patient_lock(patient_id: int) -> tuple[int, int]:
    """The two integers of a patient's advisory lock (ids past 2**31 move to the next class)."""
    return PATIENT_LOCK_CLASS + (patient_id >> 31), patient_id & 0x7FFF_FFFF


def key_lock(key: str) -> tuple[int, int]:
    """The two integers of a key's advisory lock: 31 bits of its hash (two keys that collide only wait for each
    other, which is never wrong)."""
    return KEY_LOCK_CLASS, int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest()) & 0x7FFF_FFFF


def _locking(pairs: list[tuple[int, int]], *, shared: bool) -> str:
    """One statement taking the ordinary lock shared (when `shared`) and then each pair's lock, in this order. The
    keys are the hub's own integers, written out, so that the statement goes in the same round trip as BEGIN."""
    calls = [f"pg_advisory_xact_lock_shared({int(LOCKS['write'])})"] if shared else []
    calls += [f"pg_advisory_xact_lock({int(first)}, {int(second)})" for first, second in pairs]
    return "SELECT " + ", ".join(calls)


@asynccontextmanager
async def _transaction(conn: asyncpg.Connection, opening: str) -> AsyncIterator[None]:
    """A transaction begun together with its first statement (its advisory locks) in one round trip, rather than
    asyncpg's BEGIN and then the statement: a sign-in makes eight write transactions, each a round trip fewer.
    Committed when the block ends, rolled back whole when it raises (cancelled included), as asyncpg's own
    transaction does; a rollback that cannot be sent is left to the pool, which rolls back or closes the
    connection on release."""
    try:
        await conn.execute(f"BEGIN; {opening}")  # no arguments: the simple protocol, both statements at once
        yield
    except BaseException:
        if not conn.is_closed():  # even when not yet known to be in one: a cancelled BEGIN may not have answered
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


class _Tx:
    def __init__(self, db: PostgresDatabase, conn: asyncpg.Connection, *, alone: bool = True) -> None:
        self._db = db
        self._conn = conn
        self._alone = alone  # holds the ordinary write lock outright: no other ordinary writer runs

    async def hold(self, lock: str) -> None:
        if not self._alone:
            await self._conn.execute("SELECT pg_advisory_xact_lock($1)", LOCKS[lock])

    async def hold_keys(self, keys: Iterable[str]) -> None:
        if not self._alone:
            pairs = sorted({key_lock(key) for key in keys})
            if pairs:
                await self._conn.execute(_locking(pairs, shared=False))

    async def _args(self, sql: str, params: Params) -> tuple[str, list[Any]]:
        return await self._db.prepared(self._conn, sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        query, args = await self._args(sql, params)
        with _integrity():
            status = await self._conn.execute(query, *args)
        # "UPDATE 3", "INSERT 0 1", "DELETE 0": the last word is the number of rows.
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else -1

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        query, args = await self._args(sql, params)
        with _integrity():
            record = await self._conn.fetchrow(query, *args)
        return _row(record) if record is not None else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        query, args = await self._args(sql, params)
        with _integrity():
            records = await self._conn.fetch(query, *args)
        return [_row(r) for r in records]


class _integrity:
    """A broken constraint raised as hub.db.IntegrityError, as on SQLite."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            raise IntegrityError(str(exc)) from exc


async def _keep_session(conn: asyncpg.Connection) -> None:
    """On release the pool still ends any transaction left open and drops listeners; this skips only the round trip
    of asyncpg's reset query (advisory locks, cursors, LISTEN, settings), since the hub leaves none of those on a
    session: its advisory locks and cursors are the transaction's, and it neither listens nor sets anything. That
    query was a round trip after every read: 6% of the hub's CPU in a profile of a burst of sign-ins.
    `tests/db/test_session_state.py` refuses any SQL in hub/ or migrations/ that would outlive its transaction."""


class PostgresDatabase:
    dialect = POSTGRESQL

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._types: dict[str, tuple[str, ...]] = {}

    @classmethod
    async def open(cls, url: str, *, size: int) -> PostgresDatabase:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=size, command_timeout=60, reset=_keep_session)
        return cls(pool)

    async def prepared(self, conn: asyncpg.Connection, sql: str, params: Params) -> tuple[str, list[Any]]:
        """The statement with numbered placeholders, and its parameters in the types the server expects."""
        query = numbered(sql)
        if not params:
            return query, []
        types = self._types.get(query)
        if types is None:
            statement = await conn.prepare(query)
            types = tuple(t.name for t in statement.get_parameters())
            if len(self._types) > 4096:
                self._types.clear()
            self._types[query] = types
        return query, to_server(params, types)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._pool.acquire() as conn:
            return await _Tx(self, conn).fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._pool.acquire() as conn:
            return await _Tx(self, conn).fetch_all(sql, params)

    async def iterate(self, sql: str, params: Params = ()) -> AsyncIterator[Row]:
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            query, args = await self.prepared(conn, sql, params)
            async for record in conn.cursor(query, *args, prefetch=500):
                yield _row(record)

    @asynccontextmanager
    async def write(
        self,
        *,
        lock: str = "write",
        patient: int | None = None,
        patients: Iterable[int] | None = None,
        keys: Iterable[str] | None = None,
    ) -> AsyncIterator[_Tx]:
        """One transaction, committed or rolled back whole, holding the named advisory lock until it ends; for a
        write about one patient or with its own keys, the ordinary lock shared and those locks (see above)."""
        async with self._pool.acquire() as conn:
            if patient is None and patients is None and keys is None:
                async with _transaction(conn, f"SELECT pg_advisory_xact_lock({int(LOCKS[lock])})"):
                    yield _Tx(self, conn)
                return
            if lock != "write":
                raise ValueError("a write with locks of its own is an ordinary write")
            own = sorted({patient_lock(p) for p in [*([patient] if patient is not None else []), *(patients or ())]})
            async with _transaction(conn, _locking(own + sorted({key_lock(key) for key in keys or ()}), shared=True)):
                yield _Tx(self, conn, alone=False)

    async def close(self) -> None:
        await self._pool.close()
