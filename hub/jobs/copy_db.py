"""Move a hub to another database: `python -m hub copy-db --from URL --to URL` (normally SQLite to PostgreSQL).

What it guarantees:
- The source is only read. It must have exactly the migrations this code has, so both sides have one schema.
- The target is migrated first and must hold nothing beyond what the migrations put there: a copy never merges
  into live data.
- Every table is copied in one target transaction, parents before children: a copy that fails leaves the target
  as it was. Rows are read in key order, a batch at a time, so memory stays flat however large a table is.
- Identity counters (PostgreSQL) are moved past the copied ids, so the next new row gets a new id.
- Afterwards every table is counted and checksummed on both sides (SHA-256 over its rows in key order, each value
  written the same way whichever database it came from), and any difference is reported.

Only table names and counts are ever printed: the rows are health data.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hub.db import Database, Row, Transaction, connect
from hub.db.dialect import BYTE_ORDER, RESTART_IDENTITY
from hub.db.migrate import migrate, migration_files

BATCH_ROWS = 500
_MAX_PARAMS = 30_000  # below both SQLite's (32,766) and PostgreSQL's (32,767) limit on parameters per statement
_UNCHANGED = "; the target was left unchanged"


class CopyError(Exception):
    """The copy was refused or could not be done; the message is for the operator and holds no row data."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    text_key: frozenset[str]
    parents: frozenset[str]
    identity: str | None


@dataclass(frozen=True)
class Summary:
    rows: int
    checksum: str


@dataclass(frozen=True)
class Check:
    table: str
    source: Summary
    target: Summary

    @property
    def same(self) -> bool:
        return self.source == self.target


def canonical(value: Any) -> bytes:
    """One value as the same bytes whether SQLite or PostgreSQL returned it: a type tag, a length, the text."""
    if value is None:
        tag, text = "n", ""
    elif isinstance(value, int):  # booleans too: both backends give them as 0/1
        tag, text = "i", str(int(value))
    elif isinstance(value, float):
        tag, text = "f", repr(value)
    elif isinstance(value, str):
        tag, text = "s", value
    elif isinstance(value, bytes | bytearray | memoryview):
        tag, text = "b", bytes(value).hex()
    else:
        raise TypeError(f"no canonical form for a {type(value).__name__}")
    return f"{tag}{len(text)}:{text}".encode()


def canonical_row(values: Sequence[Any]) -> bytes:
    return b"".join(canonical(v) for v in values) + b"\n"


def checksum(rows: Iterable[Sequence[Any]]) -> str:
    """SHA-256 over rows given in key order, each row's values in column order."""
    digest = hashlib.sha256()
    for values in rows:
        digest.update(canonical_row(values))
    return digest.hexdigest()


def copy_order(parents: dict[str, frozenset[str]]) -> list[str]:
    """Table names with every table after the tables its foreign keys point at; ties in name order."""
    order: list[str] = []
    while len(order) < len(parents):
        ready = sorted(name for name in parents if name not in order and parents[name] <= set(order))
        if not ready:
            stuck = ", ".join(sorted(set(parents) - set(order)))
            raise CopyError(f"the foreign keys between {stuck} form a cycle; there is no order to copy them in")
        order.extend(ready)
    return order


def _quote(name: str) -> str:
    return f'"{name}"'


def _select(table: Table, dialect: str) -> str:
    order = ", ".join(_quote(k) + (BYTE_ORDER[dialect] if k in table.text_key else "") for k in table.key)
    return f"SELECT {', '.join(map(_quote, table.columns))} FROM {_quote(table.name)} ORDER BY {order}"


def _count(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


@contextmanager
def _failing_as(what: str, note: str = "") -> Iterator[None]:
    """Any other error as a CopyError naming the step. Only the error's kind is kept: a database's message can
    quote the row that broke it."""
    try:
        yield
    except CopyError:
        raise
    except Exception as exc:
        raise CopyError(f"{what} failed ({type(exc).__name__}){note}") from exc


@asynccontextmanager
async def _reading(db: Database, sql: str) -> AsyncIterator[AsyncIterator[Row]]:
    """db.iterate, closed even when the reader stops early (on PostgreSQL it holds a pooled connection)."""
    rows = db.iterate(sql)
    try:
        yield rows
    finally:
        await cast(AsyncGenerator[Row, None], rows).aclose()


async def hub_schema() -> tuple[list[Table], dict[str, Summary]]:
    """The tables this code's migrations build, in copy order, and what a freshly migrated database holds in each.
    Read from a scratch SQLite database migrated here, so it is the same whichever databases are copied."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = await connect(f"sqlite:///{folder}/scratch.sqlite3", readers=1)
        try:
            await migrate(scratch)
            rows = await scratch.fetch_all(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " AND name != 'schema_migrations'"
            )
            tables = {r["name"]: await _describe(scratch, r["name"]) for r in rows}
            ordered = [tables[name] for name in copy_order({n: t.parents for n, t in tables.items()})]
            fresh = {table.name: await summarise(scratch, table) for table in ordered}
        finally:
            await scratch.close()
    return ordered, fresh


async def _describe(db: Database, name: str) -> Table:
    columns = await db.fetch_all("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", (name,))
    key = sorted((c for c in columns if c["pk"]), key=lambda c: c["pk"])
    if not key:
        raise CopyError(f"table {name} has no primary key, so its rows have no order to copy and compare in")
    parents = await db.fetch_all('SELECT DISTINCT "table" AS parent FROM pragma_foreign_key_list(?)', (name,))
    # {id} in the migrations: INTEGER PRIMARY KEY on SQLite, an identity column on PostgreSQL.
    identity = key[0]["name"] if len(key) == 1 and key[0]["type"].upper() == "INTEGER" else None
    return Table(
        name=name,
        columns=tuple(c["name"] for c in columns),
        key=tuple(c["name"] for c in key),
        text_key=frozenset(c["name"] for c in key if c["type"].upper() == "TEXT"),
        parents=frozenset(p["parent"] for p in parents) - {name},
        identity=identity,
    )


async def summarise(db: Database, table: Table) -> Summary:
    digest = hashlib.sha256()
    rows = 0
    async with _reading(db, _select(table, db.dialect)) as records:
        async for record in records:
            digest.update(canonical_row([record[c] for c in table.columns]))
            rows += 1
    return Summary(rows, digest.hexdigest())


async def verify(source: Database, target: Database, tables: list[Table] | None = None) -> list[Check]:
    """Row count and checksum of every hub table, on both sides."""
    if tables is None:
        tables, _ = await hub_schema()
    return [Check(t.name, await summarise(source, t), await summarise(target, t)) for t in tables]


async def _open(url: str, role: str) -> Database:
    if role == "source" and url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        # Opening a missing SQLite file would create it, and the source is never written.
        raise CopyError(f"the source database file {url.removeprefix('sqlite:///')} does not exist")
    try:
        return await connect(url, readers=2, pool_size=2)
    except Exception as exc:
        raise CopyError(f"cannot open the {role} database: {exc}") from exc


async def _migrations(db: Database, role: str) -> list[tuple[int, str]]:
    with _failing_as(f"reading schema_migrations in the {role}", " (is it a hub database?)"):
        rows = await db.fetch_all("SELECT version, name FROM schema_migrations ORDER BY version")
    return [(r["version"], r["name"]) for r in rows]


def _migrations_problem(have: list[tuple[int, str]], role: str) -> str | None:
    expected = [(version, path.name) for version, path in migration_files()]
    if have == expected:
        return None
    unknown = [name for version, name in have if (version, name) not in expected]
    missing = [name for version, name in expected if (version, name) not in have]
    if unknown:
        return f"the {role} has migrations this code does not know ({', '.join(unknown)})"
    return f"the {role} lacks migrations {', '.join(missing)}: run `python -m hub migrate` against it first"


async def _refuse_live_data(tx: Transaction, dialect: str, tables: list[Table], fresh: dict[str, Summary]) -> None:
    live = []
    for table in tables:
        row = await tx.fetch_one(f"SELECT COUNT(*) AS n FROM {_quote(table.name)}")
        count = int(row["n"]) if row else 0
        seeded = fresh[table.name]
        if count == seeded.rows == 0:
            continue
        # Rows a migration inserted (job_runs) are not live data, as long as nothing has changed them.
        if count == seeded.rows:
            rows = await tx.fetch_all(_select(table, dialect))
            if checksum([r[c] for c in table.columns] for r in rows) == seeded.checksum:
                continue
        live.append(f"{table.name} ({_count(count)})")
    if live:
        raise CopyError(f"the target already holds data in {', '.join(live)}; copy only into an empty database")


async def _copy_table(source: Database, tx: Transaction, table: Table) -> None:
    per_batch = max(1, min(BATCH_ROWS, _MAX_PARAMS // len(table.columns)))
    batch: list[list[Any]] = []
    async with _reading(source, _select(table, source.dialect)) as records:
        async for record in records:
            batch.append([record[c] for c in table.columns])
            if len(batch) == per_batch:
                await _insert_rows(tx, table, batch)
                batch = []
    if batch:
        await _insert_rows(tx, table, batch)


async def _insert_rows(tx: Transaction, table: Table, rows: list[list[Any]]) -> None:
    """One multi-row INSERT, written with `?` like all the hub's SQL."""
    columns = ", ".join(map(_quote, table.columns))
    values = ", ".join(["(" + ", ".join("?" * len(table.columns)) + ")"] * len(rows))
    await tx.execute(f"INSERT INTO {_quote(table.name)} ({columns}) VALUES {values}", [v for row in rows for v in row])


async def _copy(source: Database, target: Database, tables: list[Table], fresh: dict[str, Summary]) -> None:
    async with target.write() as tx:
        await _refuse_live_data(tx, target.dialect, tables, fresh)
        for table in reversed(tables):
            if fresh[table.name].rows:  # what the migrations seeded; the source has its own rows for these
                await tx.execute(f"DELETE FROM {_quote(table.name)}")
        for table in tables:
            with _failing_as(f"copying {table.name}", _UNCHANGED):
                await _copy_table(source, tx, table)
        restart = RESTART_IDENTITY[target.dialect]
        for table in tables:
            if restart and table.identity:
                with _failing_as(f"moving the id counter of {table.name}", _UNCHANGED):
                    await tx.fetch_one(restart.format(table=table.name, column=table.identity))


def _line(check: Check) -> str:
    if check.same:
        status = "ok"
    elif check.source.rows != check.target.rows:
        status = f"DIFFERENT (target has {_count(check.target.rows)})"
    else:
        status = "DIFFERENT"
    return f"{check.table:<28} {check.source.rows:>10}  {status}"


async def copy_db(source_url: str, target_url: str, *, echo: Callable[[str], None] = print) -> bool:
    """Copy, then verify; True when every table matches. Raises CopyError when refused or when the copy fails."""
    if source_url == target_url:
        raise CopyError("--from and --to name the same database")
    tables, fresh = await hub_schema()
    source = await _open(source_url, "source")
    try:
        problem = _migrations_problem(await _migrations(source, "source"), "source")
        if problem:
            raise CopyError(problem)
        target = await _open(target_url, "target")
        try:
            with _failing_as("migrating the target"):
                await migrate(target)
            problem = _migrations_problem(await _migrations(target, "target"), "target")
            if problem:
                raise CopyError(problem)
            with _failing_as("the copy", _UNCHANGED):
                await _copy(source, target, tables, fresh)
            echo(f"Copied {len(tables)} tables from {source.dialect} to {target.dialect}; comparing them")
            with _failing_as("verifying the copy", "; the target holds the copy, unverified: do not switch to it"):
                checks = await verify(source, target, tables)
        finally:
            await target.close()
    finally:
        await source.close()
    echo(f"{'table':<28} {'rows':>10}  check")
    for check in checks:
        echo(_line(check))
    different = [c.table for c in checks if not c.same]
    if different:
        echo(
            f"DIFFERENT: {len(different)} of {len(checks)} tables do not match the source ({', '.join(different)})."
            " Do not switch to the target."
        )
        return False
    total = sum(c.source.rows for c in checks)
    echo(f"Verified: {len(checks)} tables, {_count(total)}, the target matches the source.")
    return True
