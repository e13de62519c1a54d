"""SQLite: WAL, foreign keys, one writer in BEGIN IMMEDIATE; statements on the event loop, waits on threads.

A statement by index takes microseconds; sending it to a thread and back costs more than the statement (two
wake-ups and the GIL handed over twice), and, under load, a turn of a busy event loop each time. So:
- `fetch_one`/`fetch_all` run on the event loop on a read-only connection of their own, with a budget: SQLite
  stops a read that runs past it, or that finds the file locked, and the read is redone on a reader thread, where
  it may take as long as it needs while every other request goes on. `iterate` (long walks) runs on a thread.
- A write transaction's statements and its COMMIT run on the event loop too, so the write lock is held for the
  work itself, not for turns of a busy loop between statements. Waiting for another process's write lock runs on
  a thread.
- Group commit: a write that ends does not commit at once. The COMMIT runs once the event loop has run every task
  already waiting to run, and the writes those tasks make join the same transaction, each in a savepoint of its
  own (one that fails is rolled back alone). Every write still returns only once its COMMIT is done, so nothing is
  answered before it is on disk; under load, one disk flush serves many writes. A lone write costs one turn of the
  loop more.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from hub.db import IntegrityError, Params, Row
from hub.db.dialect import SQLITE

log = logging.getLogger(__name__)

# The WAL-reset bug can corrupt a database written by several connections or processes at once.
# Fixed in 3.51.3, and backported to 3.44.6 and 3.50.7.
_FIXED_IN = (3, 51, 3)
_BACKPORTS = ((3, 44, 6), (3, 50, 7))


def has_wal_reset_bug(version: tuple[int, ...]) -> bool:
    if version >= _FIXED_IN:
        return False
    return not any(version[:2] == fixed[:2] and version >= fixed for fixed in _BACKPORTS)


def warn_if_unsafe() -> None:
    if has_wal_reset_bug(sqlite3.sqlite_version_info):
        log.warning(
            "SQLite %s has the WAL-reset bug (fixed in 3.51.3, 3.50.7 and 3.44.6). Run one hub process at a "
            "time against this database, or use PostgreSQL, until Python is built with a fixed SQLite.",
            sqlite3.sqlite_version,
        )


# How long a read may hold the event loop before it is stopped and redone on a reader thread.
INLINE_BUDGET_SECONDS = 0.002
_CHECK_EVERY = 1000  # SQLite virtual-machine steps between looks at the clock
_REDO_ON_THREAD = {sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


class LoopReader:
    """A read-only connection used on the event loop's own thread, never waiting on a lock."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._deadline = 0.0
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA query_only=ON")
        conn.set_progress_handler(self._over_budget, _CHECK_EVERY)
        return conn

    def _over_budget(self) -> bool:
        return time.perf_counter() > self._deadline

    def fetch(self, sql: str, params: Params, *, one: bool) -> list[Row] | None:
        """The rows (the first only, if `one`), or None when the read must be redone on a reader thread (it ran
        too long, or found the file locked)."""
        self._deadline = time.perf_counter() + INLINE_BUDGET_SECONDS
        try:
            return _rows(self._conn, sql, params, one=one)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in _REDO_ON_THREAD:
                # Python 3.11's sqlite3 leaves a statement stopped this way marked in use: every later run of the
                # same SQL on this connection was prepared afresh (a list-page read 30 -> 75 us, for the
                # process's life). A new connection has a clean statement cache; this happens rarely.
                self._conn.close()
                self._conn = self._open()
                return None
            raise

    def close(self) -> None:
        self._conn.close()


def _rows(conn: sqlite3.Connection, sql: str, params: Params, *, one: bool) -> list[Row]:
    cursor = conn.execute(sql, tuple(params))
    rows = cursor.fetchmany(1) if one else cursor.fetchall()
    cursor.close()
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in rows]


class LoopWriter:
    """The one write connection, shared by the event loop (statements) and a thread (waits), never at once: the
    database's write lock lets one transaction in at a time, and a wait on a thread is always seen to its end."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._busy_timeout_ms = int(busy_timeout_ms)
        self.conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        self.conn.execute("PRAGMA journal_mode=WAL").fetchall()
        self.conn.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed patient action or message survives a power cut, not only a crash.
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA busy_timeout=0")  # on the loop, never wait: a wait goes to a thread

    async def begin(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            try:
                await self._on_thread(self._begin_waiting)  # another process is writing
            except asyncio.CancelledError:
                self.rollback()
                raise

    def _begin_waiting(self) -> None:
        self.conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        finally:
            self.conn.execute("PRAGMA busy_timeout=0")

    def commit(self) -> None:
        # On the loop, disk flush and all: measured here a flush takes 0.04 ms, and a commit sent to a thread
        # waited a turn of the busy loop with the write lock held, so under load writes queued behind it (write
        # steps at p95 0.2-0.5 s while reads took 1 ms). A disk whose flush takes milliseconds wants PostgreSQL.
        try:
            self.conn.execute("COMMIT")
        finally:
            self.rollback()  # only when the COMMIT failed: the transaction is not left open

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @staticmethod
    async def _on_thread(call: Callable[[], object]) -> None:
        job = asyncio.ensure_future(asyncio.to_thread(call))
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            # The request went away; the thread has not. Let it finish before anyone else uses the connection.
            await asyncio.wait([job])
            raise

    def close(self) -> None:
        self.conn.close()


class _WriteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def hold(self, lock: str) -> None:
        return None  # one writer at a time: every lock is already held

    async def hold_keys(self, keys: Iterable[str]) -> None:
        return None

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return self._conn.execute(sql, tuple(params)).rowcount
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = self._fetch(sql, params, one=True)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return self._fetch(sql, params, one=False)

    def _fetch(self, sql: str, params: Params, *, one: bool) -> list[Row]:
        try:
            return _rows(self._conn, sql, params, one=one)
        except sqlite3.IntegrityError as exc:  # an INSERT ... RETURNING
            raise IntegrityError(str(exc)) from exc


# At most this many writes share one commit: the first of them waits for the rest.
_GROUP_LIMIT = 64


@dataclass
class _Group:
    """One transaction holding the writes that ended in one turn of the event loop; `done` when committed."""

    done: asyncio.Future[None]
    writes: int = 0


class SQLiteDatabase:
    dialect = SQLITE

    def __init__(self, writer: LoopWriter, readers: list[aiosqlite.Connection], loop_reader: LoopReader) -> None:
        self._writer = writer
        self._loop_reader = loop_reader
        self._write_lock = asyncio.Lock()
        self._group: _Group | None = None  # the open transaction that ended writes are waiting to see committed
        self._all_readers = readers
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for conn in readers:
            self._readers.put_nowait(conn)

    @classmethod
    async def open(cls, path: str, *, readers: int, busy_timeout_ms: int) -> SQLiteDatabase:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # aiosqlite logs every statement with its parameters at DEBUG: contact details, and the dev outbox's codes.
        logging.getLogger("aiosqlite").setLevel(logging.INFO)
        writer = LoopWriter(path, busy_timeout_ms)
        pool = [await _connect(path, busy_timeout_ms) for _ in range(readers)]
        return cls(writer, pool, LoopReader(path))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._fetch(sql, params, one=True)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._fetch(sql, params, one=False)

    async def _fetch(self, sql: str, params: Params, *, one: bool) -> list[Row]:
        rows = self._loop_reader.fetch(sql, params, one=one)
        if rows is not None:
            return rows
        # Too long for the loop, or the file was locked: one trip to a reader thread (execute, fetch, close there).
        conn = await self._readers.get()
        try:
            found = await conn.execute_fetchall(sql, tuple(params))
        finally:
            self._readers.put_nowait(conn)
        return [dict(row) for row in itertools.islice(found, 1 if one else None)]

    async def iterate(self, sql: str, params: Params = ()) -> AsyncIterator[Row]:
        conn = await self._readers.get()
        try:
            async with conn.execute(sql, tuple(params)) as cursor:
                async for row in cursor:
                    yield dict(row)
        finally:
            self._readers.put_nowait(conn)

    @asynccontextmanager
    async def write(
        self,
        *,
        lock: str = "write",
        patient: int | None = None,
        patients: Iterable[int] | None = None,
        keys: Iterable[str] | None = None,
    ) -> AsyncIterator[_WriteTx]:
        """Every write goes through here: one writer, BEGIN IMMEDIATE, committed (in a group, see above) or rolled
        back whole; it returns once committed. SQLite has one writer at a time whatever the lock, so `lock`,
        `patient`, `patients` and `keys` change nothing here."""
        # Statements no longer wait on a thread, so nothing else would run between one caller's transactions: a
        # loop of writes (a sweep, a poller) would hold every other request up. Each transaction first lets others in.
        await asyncio.sleep(0)
        async with self._write_lock:
            group = self._group
            joined = group is not None
            if group is None:
                await self._writer.begin()
                group = self._group = _Group(asyncio.get_running_loop().create_future())
            else:
                self._writer.conn.execute("SAVEPOINT hub_write")
            try:
                yield _WriteTx(self._writer.conn)
                if joined:
                    self._writer.conn.execute("RELEASE hub_write")
            except BaseException:
                if joined and self._rolled_back_alone():
                    self._commit_soon(group)
                else:  # the group's first write (nothing else in the transaction), or SQLite ended it: all fail
                    self._abandon(group)
                raise
            group.writes += 1
            if group.writes >= _GROUP_LIMIT:
                self._commit(group)
            else:
                self._commit_soon(group)
        # Shielded: a request that goes away must not cancel the commit the group's other writes wait for.
        await asyncio.shield(group.done)

    def _rolled_back_alone(self) -> bool:
        """One write of a group undone, the others kept; False when SQLite already ended the whole transaction (a
        full disk, an I/O error)."""
        conn = self._writer.conn
        if not conn.in_transaction:
            return False
        try:
            conn.execute("ROLLBACK TO hub_write")
            conn.execute("RELEASE hub_write")
        except sqlite3.Error:
            return False
        return True

    def _abandon(self, group: _Group) -> None:
        self._group = None
        self._writer.rollback()
        if group.writes:
            group.done.set_exception(sqlite3.OperationalError("the transaction was rolled back"))
        else:
            group.done.set_result(None)

    def _commit_soon(self, group: _Group) -> None:
        """After the tasks already waiting to run: their writes join the group."""
        asyncio.get_running_loop().call_soon(self._commit_if_idle, group)

    def _commit_if_idle(self, group: _Group) -> None:
        # A write that holds the lock has yielded mid-transaction (a read on a thread, a wait): it commits the group
        # itself when it ends.
        if self._group is group and not self._write_lock.locked():
            self._commit(group)

    def _commit(self, group: _Group) -> None:
        self._group = None
        try:
            self._writer.commit()
        except BaseException as exc:
            group.done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            group.done.set_result(None)

    @asynccontextmanager
    async def write_without_foreign_keys(self) -> AsyncIterator[_WriteTx]:
        """A write with foreign keys off until its end, for schema changes (the migrations): SQLite rebuilds a
        table by copying it, dropping the old one and renaming the copy, and with the keys on, dropping a table
        others point at fails or deletes through their ON DELETE CASCADE. Every key is checked before the commit:
        a row left pointing nowhere refuses the whole transaction."""
        await asyncio.sleep(0)
        async with self._write_lock:
            if self._group is not None:  # PRAGMA foreign_keys changes nothing inside a transaction
                self._commit(self._group)
            conn = self._writer.conn
            conn.execute("PRAGMA foreign_keys=OFF")  # outside a transaction: within one it changes nothing
            try:
                await self._writer.begin()
                try:
                    yield _WriteTx(conn)
                    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        tables = ", ".join(sorted({str(row[0]) for row in broken}))
                        raise IntegrityError(f"rows point at rows that do not exist, in {tables}")
                except BaseException:
                    self._writer.rollback()
                    raise
                self._writer.commit()
            finally:
                conn.execute("PRAGMA foreign_keys=ON")

    async def close(self) -> None:
        async with self._write_lock:
            if self._group is not None:
                self._commit(self._group)
        self._loop_reader.close()
        self._writer.close()
        for conn in self._all_readers:
            await conn.close()


async def _connect(path: str, busy_timeout_ms: int) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    await _pragma(conn, "PRAGMA foreign_keys=ON")
    await _pragma(conn, f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # FULL: a committed patient action or message survives a power cut, not only a crash.
    await _pragma(conn, "PRAGMA synchronous=FULL")
    return conn


async def _pragma(conn: aiosqlite.Connection, sql: str) -> None:
    # A PRAGMA that returns a row holds a lock until its cursor is read and closed: execute_fetchall does both,
    # in one trip to aiosqlite's thread.
    await conn.execute_fetchall(sql)
