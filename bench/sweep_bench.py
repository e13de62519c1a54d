"""Reminder and escalation sweep at scale: python -m bench.sweep_bench [--sizes 10000,100000,1000000] [--due 1000]

For each size, builds a fresh SQLite hub by bulk SQL (INSERT ... SELECT over a recursive CTE): that many booked
appointments, each with its two pre-appointment reminders still in the future, and `due` escalation reminders
already due on appointments spread through the table. Then:
  - times hub.store.reminders.run_sweep over the due set (batches of 500, as the worker does) and a sweep with
    nothing due; time per due item;
  - records EXPLAIN QUERY PLAN for every distinct statement the sweep ran, and flags any full-table scan;
  - re-arms the due set and runs `python -m hub worker --once` (demo mode: the dev outbox) in a subprocess,
    reading its peak RSS from wait4().
Prints one JSON object. The 1,000,000 build takes a minute or two; --quick runs 10,000 and 100,000 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, emit, hub_cli, machine
from hub.clock import to_db
from hub.db import Database, Params, Row, connect
from hub.settings import load_settings
from hub.store.reminders import DUE_NOTICES_SQL, run_sweep

BATCH = 500  # hub.jobs.worker.SWEEP_BATCH
PATIENTS_PER_APPOINTMENT = 5


def build(path: Path, *, appointments: int, due: int, now: datetime) -> None:
    patients = max(1, appointments // PATIENTS_PER_APPOINTMENT)
    stamp = to_db(now)
    day = now.replace(hour=9, minute=0, second=0, microsecond=0).strftime("%Y-%m-%d %H:%M:%S")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO organisations (code, name) VALUES ('RAL', 'Bench Trust')")
    conn.execute("INSERT INTO sites (organisation_id, code, name) VALUES (1, 'RFH', 'Royal Free Hospital')")
    conn.execute(
        "INSERT INTO patients (id, organisation_id, mrn, given_name, family_name, date_of_birth, mobile,"
        " verification_code, link_id, created_at, updated_at)"
        " WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < ?)"
        " SELECT n + 1, 1, 'MRN' || n, 'Patient', 'Number' || n, '1950-01-01', printf('+447911%06d', n % 1000000),"
        " printf('V%06d', n), printf('%032x', n + 1), ?, ? FROM c",  # link ids as bench/journey_bench.py numbers them
        (patients - 1, stamp, stamp),
    )
    # Starts 9 to 68 days ahead, so both reminders (7 days and 1 day before) are still in the future.
    conn.execute(
        "INSERT INTO appointments (id, organisation_id, ref, patient_id, site_id, clinic, starts_at, duration_minutes,"
        " mode, status, created_at, updated_at)"
        " WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < ?)"
        " SELECT n + 1, 1, 'A' || n, n % ? + 1, 1, 'Cardiology outpatients',"
        " strftime('%Y-%m-%dT%H:%M:%S.000000Z', ?, '+' || (9 + n % 60) || ' days',"
        " '+' || (15 * (n % 32)) || ' minutes'),"
        " 30, 'in_person', 'booked', ?, ? FROM c",
        (appointments - 1, patients, day, stamp, stamp),
    )
    for kind, days in (("reminder_7d", 7), ("reminder_1d", 1)):
        conn.execute(
            "INSERT INTO scheduled_notices (appointment_id, kind, due_at)"
            " SELECT id, ?, strftime('%Y-%m-%dT%H:%M:%S.000000Z', starts_at, ?) FROM appointments",
            (kind, f"-{days} days"),
        )
    # The due set: escalation reminder 1 on `due` appointments spread evenly through the table.
    step = max(1, appointments // due)
    conn.executemany(
        "INSERT INTO scheduled_notices (appointment_id, kind, due_at) VALUES (?, 'escalation_reminder_1', ?)",
        [(1 + i * step, to_db(now - timedelta(hours=1, seconds=i))) for i in range(due)],
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


class TracingDb:
    """Passes everything to the real database and remembers each distinct statement with its first parameters."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.statements: dict[str, Params] = {}

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        self.statements.setdefault(sql, params)
        return await self.db.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        self.statements.setdefault(sql, params)
        return await self.db.fetch_all(sql, params)

    @asynccontextmanager
    async def write(self, **locks: Any) -> AsyncIterator[Any]:
        async with self.db.write(**locks) as tx:
            yield _TracingTx(tx, self.statements)


class _TracingTx:
    def __init__(self, tx: Any, statements: dict[str, Params]) -> None:
        self.tx = tx
        self.statements = statements

    async def execute(self, sql: str, params: Params = ()) -> int:
        self.statements.setdefault(sql, params)
        return int(await self.tx.execute(sql, params))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        self.statements.setdefault(sql, params)
        return await self.tx.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        self.statements.setdefault(sql, params)
        return await self.tx.fetch_all(sql, params)


# sites and organisations hold a handful of rows (aliases s and o in the hub's joins): the planner may scan them.
_SMALL_TABLES = {"sites", "s", "organisations", "o"}


def _full_scans(plan: list[str]) -> list[str]:
    """Any SCAN of a table that grows with the data (with or without an index, a SCAN walks all of it)."""
    return [line for line in plan if line.startswith("SCAN") and line.split()[1] not in _SMALL_TABLES]


async def explain(db: Database, statements: dict[str, Params]) -> list[dict[str, Any]]:
    out = []
    for sql, params in statements.items():
        rows = await db.fetch_all("EXPLAIN QUERY PLAN " + sql, params)
        plan = [str(r["detail"]) for r in rows]
        out.append({"sql": " ".join(sql.split()), "plan": plan, "full_scans": _full_scans(plan)})
    return out


async def sweep_all(db: Any, settings: Any, now: datetime) -> tuple[int, float]:
    began = time.perf_counter()
    handled = 0
    while True:
        n = await run_sweep(db, settings=settings, now=now, limit=BATCH)
        handled += n
        if n < BATCH:
            break
    return handled, time.perf_counter() - began


async def measure(path: Path, settings: Any, *, now: datetime, due: int, idle_repeats: int) -> dict[str, Any]:
    db = await connect(f"sqlite:///{path}")
    try:
        tracing = TracingDb(db)
        handled, seconds = await sweep_all(tracing, settings, now)
        plans = await explain(db, {DUE_NOTICES_SQL: (to_db(now), BATCH), **tracing.statements})
        idle = []
        for _ in range(idle_repeats):
            _, s = await sweep_all(db, settings, now)
            idle.append(s)
        queued = await db.fetch_one("SELECT COUNT(*) AS n FROM outbox_messages")
        # Re-arm the due set for the worker subprocess: the same work again, from a clean outbox.
        async with db.write() as tx:
            await tx.execute(
                "UPDATE scheduled_notices SET done_at = NULL, outcome = '' WHERE kind = 'escalation_reminder_1'"
            )
            await tx.execute("DELETE FROM outbox_messages")
    finally:
        await db.close()
    return {
        "due": due,
        "handled": handled,
        "messages_queued": int(queued["n"]) if queued else 0,
        "sweep_seconds": round(seconds, 4),
        "ms_per_due_item": round(seconds * 1000 / max(handled, 1), 3),
        "idle_sweep_ms": round(statistics.median(idle) * 1000, 3),
        "query_plans": plans,
        "full_scans": sorted({line for p in plans for line in p["full_scans"]}),
    }


def worker_peak(env: dict[str, str]) -> dict[str, Any]:
    """`python -m hub worker --once` on the re-armed due set; peak RSS of that process alone, from wait4()."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "hub", "worker", "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"python -m hub worker --once exited with {process.returncode}")
    return {"seconds": round(time.perf_counter() - began, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_bench", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="appointment counts, comma-separated")
    parser.add_argument("--due", type=int, default=1000, help="notices due at each size")
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 appointments only")
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    now = datetime.now(UTC)
    runs = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="hub-sweep-") as folder:
            path = Path(folder) / "hub.sqlite3"
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HUB_DATABASE_URL": f"sqlite:///{path}",
                "HUB_DEMO": "true",
            }
            hub_cli(env, "migrate")
            began = time.perf_counter()
            build(path, appointments=size, due=args.due, now=now)
            built = time.perf_counter() - began
            settings = load_settings(environ=env)
            run = asyncio.run(measure(path, settings, now=now, due=args.due, idle_repeats=5))
            run["worker_once"] = worker_peak(env)
            notices = sqlite3.connect(path).execute("SELECT COUNT(*) FROM scheduled_notices").fetchone()[0]
            runs.append(
                {
                    "appointments": size,
                    "scheduled_notices": notices,
                    "build_seconds": round(built, 1),
                    "database_mb": round(path.stat().st_size / 2**20, 1),
                    **run,
                }
            )
            print(
                f"{size}: sweep {run['sweep_seconds']}s, {run['ms_per_due_item']} ms/item, worker"
                f" {run['worker_once']['peak_rss_mb']} MB",
                file=sys.stderr,
            )
    first, last = runs[0], runs[-1]
    ratio = round(last["sweep_seconds"] / first["sweep_seconds"], 2)
    peak = max(r["worker_once"]["peak_rss_mb"] for r in runs)
    result = {
        "benchmark": "reminder_sweep",
        "runs": runs,
        "targets": {
            "largest_within_2x_of_smallest": {
                "sizes": [first["appointments"], last["appointments"]],
                "ratio": ratio,
                "pass": ratio <= 2.0,
            },
            "queries_use_indexes": {
                "full_scans": sorted({s for r in runs for s in r["full_scans"]}),
                "pass": not any(r["full_scans"] for r in runs),
            },
            "worker_peak_rss_under_150mb": {"measured_mb": peak, "pass": peak < 150},
        },
        "sqlite_synchronous": "FULL",
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
