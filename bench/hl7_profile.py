"""Where an HL7 message's time goes, on a shared machine: python -m bench.hl7_profile [--messages 500] [--postgres URL]
[--cprofile N]

In one process, no sockets: the listener's Receiver on a fresh SQLite file (and, given --postgres, a fresh schema),
fed the same SIU^S12s as bench/hl7_bench.py (a new patient each) one at a time, each awaited as a sender waiting for
its ACK would. Reports CPU time per message (`time.process_time()`, which a busy machine's other jobs do not
inflate the way they do wall-clock time), SQL statements and commits per message, and with --cprofile the N
functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import SECRET, emit, machine
from bench.hl7_bench import _drop, _postgres_schema, _prepare, message
from hub.clock import Clock
from hub.db import Database, connect
from hub.jobs.hl7_listener import make_receiver
from hub.settings import load_settings
from tests.hl7_samples import SETTINGS, read_ack


class _Counts:
    """Every statement the database ran, by its first word (COMMIT counted apart), from the driver's own hooks."""

    def __init__(self) -> None:
        self.words: Counter[str] = Counter()

    def __call__(self, sql: str) -> None:
        word = sql.lstrip().split(None, 1)[0].upper().rstrip(";") if sql.strip() else "?"
        self.words[word] += 1


def _watch(db: Database, counts: _Counts) -> None:
    if db.dialect == "sqlite":
        db._writer.conn.set_trace_callback(counts)  # type: ignore[attr-defined]
        db._loop_reader._conn.set_trace_callback(counts)  # type: ignore[attr-defined]
        return
    pool = db._pool  # type: ignore[attr-defined]

    def logged(record: Any) -> None:
        counts(record.query)

    for holder in pool._holders:
        if holder._con is not None:
            holder._con.add_query_logger(logged)


async def run(url: str, backend: str, messages: int, top: int) -> dict[str, Any]:
    await _prepare(url)
    environ = {"HUB_DATABASE_URL": url, "HUB_SECRET_KEY": SECRET}
    overrides = {key: list(value) for key, value in SETTINGS.items()}
    settings = load_settings(environ=environ, overrides=overrides)
    db = await connect(url, pool_size=2)
    try:
        receiver = await make_receiver(db, settings, Clock())
        blocks = [message(n) for n in range(messages)]
        for block in blocks[:10]:  # warm: imports, statement caches, the pool's connections
            await receiver.receive(block)
        counts = _Counts()
        _watch(db, counts)
        profiler = cProfile.Profile() if top else None
        codes: Counter[str] = Counter()
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for block in blocks[10:]:
            codes[read_ack((await receiver.receive(block)).encode()).code] += 1
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await db.close()
    measured = messages - 10
    result: dict[str, Any] = {
        "backend": backend,
        "messages": measured,
        "codes": dict(codes),
        "cpu_ms_per_message": round(cpu * 1000 / measured, 3),
        "wall_ms_per_message": round(wall * 1000 / measured, 3),
        "statements_per_message": round(sum(counts.words.values()) / measured, 2),
        "commits_per_message": round(counts.words["COMMIT"] / measured, 3),
        "statements_by_kind": {k: round(v / measured, 2) for k, v in counts.words.most_common()},
    }
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
        result["profile"] = out.getvalue()
    return result


async def main_async(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    runs = [await run(f"sqlite:///{folder / 'hub.sqlite3'}", "sqlite", args.messages, args.cprofile)]
    if args.postgres:
        schema, url = await _postgres_schema(args.postgres)
        try:
            runs.append(await run(url, "postgresql", args.messages, args.cprofile))
        finally:
            await _drop(args.postgres, schema)
    return {
        "benchmark": "hl7_siu_s12_profile",
        "runs": runs,
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hl7_profile", description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL; a schema is made and dropped")
    parser.add_argument("--cprofile", type=int, default=0, help="print the N costliest functions (cumulative)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        result = asyncio.run(main_async(args, Path(folder)))
    profiles = [run.pop("profile", "") for run in result["runs"]]
    emit(result, args.output)
    for text in profiles:
        if text:
            print(text, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
