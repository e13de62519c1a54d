"""API upsert throughput over real HTTP: python -m bench.api_bench [--requests 2000] [--concurrency 8]

Starts `python -m hub serve` on a fresh SQLite file, PUTs a site and the patients, then times PUT appointments:
first every one new (each queues an invitation), then the same bodies again (the unchanged path), then each with a
new time (each queues a changed notice). Prints one JSON object with requests/second and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import SECRET, Process, emit, free_port, hub_cli, machine, serve_argv
from bench.import_bench import nhs_number
from tests.fake_notify import template_environ


def patient(n: int) -> dict[str, Any]:
    return {
        "nhs_number": nhs_number(n),
        "given_name": "Patient",
        "family_name": f"Number{n}",
        "date_of_birth": "1950-01-01",
        "mobile": f"07700 900{n % 1000:03d}",
    }


def appointment(n: int, patients: int, start: datetime) -> dict[str, Any]:
    return {
        "patient_ref": f"MRN{n % patients:06d}",
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "start": (start + timedelta(days=1 + n % 60, minutes=15 * (n % 32))).isoformat(timespec="seconds"),
        "duration_minutes": 30,
    }


async def timed_puts(
    client: httpx.AsyncClient, requests: list[tuple[str, dict[str, Any]]], concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            path, body = queue.get_nowait()
            began = time.perf_counter()
            response = await client.put(path, json=body)
            latencies.append(time.perf_counter() - began)
            statuses[response.status_code] += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - began
    ms = sorted(x * 1000 for x in latencies)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "requests": len(requests),
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(requests) / seconds, 1),
        "latency_ms": {
            "p50": round(cuts[49], 2),
            "p95": round(cuts[94], 2),
            "p99": round(cuts[98], 2),
            "max": round(ms[-1], 2),
        },
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
    }


async def bench(url: str, key: str, *, requests: int, patients: int, concurrency: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    start = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        response = await client.put("/api/v1/sites/RFH", json={"name": "Royal Free Hospital", "postcode": "NW3 2QG"})
        response.raise_for_status()
        phases = {
            "put_patient_new": [(f"/api/v1/patients/MRN{n:06d}", patient(n)) for n in range(patients)],
            "put_appointment_new": [
                (f"/api/v1/appointments/A{n:06d}", appointment(n, patients, start)) for n in range(requests)
            ],
        }
        phases["put_appointment_unchanged"] = phases["put_appointment_new"]
        phases["put_appointment_new_time"] = [
            (f"/api/v1/appointments/A{n:06d}", appointment(n, patients, start + timedelta(days=1)))
            for n in range(requests)
        ]
        results = {}
        for name, batch in phases.items():
            results[name] = await timed_puts(client, batch, concurrency)
            print(f"{name}: {results[name]['requests_per_second']} requests/s", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="appointments PUT in each timed phase")
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HUB_DATABASE_URL": f"sqlite:///{folder}/hub.sqlite3",
            "HUB_SECRET_KEY": SECRET,
            "HUB_NOTIFY_API_KEY": "bench",
            "HUB_BASE_URL": url,
            **template_environ(),
        }
        hub_cli(env, "migrate")
        hub_cli(env, "create-organisation", "--code", "RAL", "--name", "Bench Trust")
        key = hub_cli(env, "create-api-key", "--org", "RAL", "--name", "bench").strip().splitlines()[-1]
        server = Process(serve_argv(port), env)
        try:
            phases = asyncio.run(
                bench(url, key, requests=args.requests, patients=args.patients, concurrency=args.concurrency)
            )
        finally:
            server.stop()
    result = {
        "benchmark": "api_upsert",
        "transport": "HTTP/1.1 over loopback to one uvicorn process",
        "concurrency": args.concurrency,
        "phases": phases,
        "sqlite_synchronous": "FULL",
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
