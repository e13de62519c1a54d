"""HL7 v2 listener throughput: python -m bench.hl7_bench [--messages 2000] [--connections 4] [--pipeline 1,20]
[--postgres URL]

Starts `python -m hub hl7` (one process) on a fresh SQLite file (and, given --postgres, on a fresh schema of that
server), and sends SIU^S12 messages over MLLP, each booking an appointment for a patient the hub has not seen (so
each creates a patient from PID, an appointment and its invitation). With `--pipeline 1` each connection waits for
its ACK before the next message, as most MLLP senders do; with N it keeps up to N messages sent ahead of their ACKs
(an engine that pipelines). Each value of --pipeline is a run of its own. Prints one JSON object: messages ACKed AA
per second, the ACK latency (from sending a message to its ACK), the listener's CPU time per message (from /proc,
which the machine's other jobs do not inflate as they do wall-clock time) and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
from hl7.mllp import open_hl7_connection

from bench.common import ROOT, SECRET, cpu_seconds, emit, free_port, machine
from bench.import_bench import nhs_number
from hub.db import connect
from hub.db.migrate import migrate
from tests.hl7_samples import SETTINGS, pid, read_ack, siu


def message(n: int) -> bytes:
    day = 1 + n % 28
    # Ofcom's drama range (07700 900000-900999) holds the only mobiles no one has: beyond it they are refused (AE).
    patient = pid(f"B{n:07d}", nhs=nhs_number(n), phones=f"07700 900{n % 1000:03d}^ORN^CP")
    text = siu(control_id=f"B{n}", ref=f"BENCH-{n}", start=f"202612{day:02d}{9 + n % 8:02d}00", patient=patient)
    return text.encode()


async def _prepare(url: str) -> None:
    db = await connect(url)
    try:
        await migrate(db)
        async with db.write() as tx:
            await tx.execute("INSERT INTO organisations (code, name, phone) VALUES ('RAL', 'Bench Trust', '')")
            await tx.execute("INSERT INTO sites (organisation_id, code, name) VALUES (1, 'RFH', 'Royal Free')")
    finally:
        await db.close()


async def _counts(url: str) -> dict[str, Any]:
    db = await connect(url)
    try:
        row = await db.fetch_one(
            "SELECT (SELECT COUNT(*) FROM patients) AS patients, (SELECT COUNT(*) FROM appointments) AS appointments,"
            " (SELECT COUNT(*) FROM outbox_messages) AS outbox_messages"
        )
        return dict(row or {})
    finally:
        await db.close()


def _environ(url: str, port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": SECRET,
        "HUB_HL7__PORT": str(port),
        **{"HUB_" + key.upper().replace(".", "__"): ",".join(value) for key, value in SETTINGS.items()},
    }


async def _ready(port: int) -> None:
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise SystemExit("python -m hub hl7 did not start listening")


async def _sender(port: int, numbers: list[int], ahead: int, latencies: list[float], codes: list[str]) -> None:
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    sent: list[float] = []
    room = asyncio.Semaphore(ahead)

    async def answers() -> None:
        for n in range(len(numbers)):
            codes.append(read_ack(await reader.readblock()).code)
            latencies.append(time.perf_counter() - sent[n])
            room.release()

    reading = asyncio.ensure_future(answers())
    try:
        for n in numbers:
            await room.acquire()
            sent.append(time.perf_counter())
            writer.writeblock(message(n))
            await writer.drain()
        await reading
    finally:
        reading.cancel()
        writer.close()
        await writer.wait_closed()


async def run(url: str, backend: str, messages: int, connections: int, ahead: int) -> dict[str, Any]:
    await _prepare(url)
    port = free_port()
    listener = subprocess.Popen(
        [sys.executable, "-m", "hub", "hl7", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=_environ(url, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _ready(port)
        latencies: list[float] = []
        codes: list[str] = []
        shares = [list(range(c, messages, connections)) for c in range(connections)]
        began = time.perf_counter()
        cpu = cpu_seconds(listener.pid)
        await asyncio.gather(*(_sender(port, share, ahead, latencies, codes) for share in shares))
        seconds = time.perf_counter() - began
        cpu = cpu_seconds(listener.pid) - cpu
    finally:
        listener.terminate()
        listener.wait(timeout=60)
    ordered = sorted(latencies)
    return {
        "backend": backend,
        "messages": messages,
        "connections": connections,
        "pipeline": ahead,
        "seconds": round(seconds, 3),
        "acked_aa": codes.count("AA"),
        "answers": {code: codes.count(code) for code in sorted(set(codes))},
        "messages_per_second": round(codes.count("AA") / seconds, 1),
        "ack_ms": {
            "p50": round(statistics.median(ordered) * 1000, 2),
            "p95": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
            "max": round(ordered[-1] * 1000, 2),
        },
        "listener_cpu_ms_per_message": round(cpu * 1000 / messages, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "database": await _counts(url),
    }


async def _postgres_schema(server: str) -> tuple[str, str]:
    schema = f"hl7bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    parts = urlsplit(server)
    query = "&".join(q for q in (parts.query, urlencode({"search_path": schema})) if q)
    return schema, urlunsplit(parts._replace(query=query))


async def _drop(server: str, schema: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    runs = []
    for n, ahead in enumerate(args.pipeline):
        url = f"sqlite:///{folder / f'hub{n}.sqlite3'}"
        runs.append(await run(url, "sqlite", args.messages, args.connections, ahead))
        if args.postgres:
            schema, url = await _postgres_schema(args.postgres)
            try:
                runs.append(await run(url, "postgresql", args.messages, args.connections, ahead))
            finally:
                await _drop(args.postgres, schema)
    return {
        "benchmark": "hl7_siu_s12_new_patients",
        "runs": runs,
        "sqlite_synchronous": "FULL",
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hl7_bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--pipeline",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 20],
        help="messages each connection sends ahead of their ACKs, a run for each (default 1,20)",
    )
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL; a schema is made and dropped")
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        result = asyncio.run(main_async(args, Path(folder)))
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
