"""Where a list page's time goes, on a shared machine: python -m bench.list_profile [--requests 2000] [--cprofile N]
[--appointments-each 5] [--layers]

In one process, no sockets: the hub's ASGI app (middleware and all, as `serve` builds it) on a fresh SQLite file
seeded as bench/journey_bench.py seeds it, called directly with `GET /appointments` for signed-in patients (each
with a session cookie and an anonymous-id cookie, `Accept-Encoding: gzip`), one request at a time. Reports CPU
time per request (`time.process_time()`, which other work on a busy machine does not inflate the way it does
wall-clock time), SQL statements per request, and with --cprofile the N functions with the most cumulative time.
The baseline's page (bench/baseline_app.py) is measured the same way, in the same process, for the CPU ratio
without any HTTP server in it. --layers also times the app with its outer middleware taken off one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import SECRET, emit, hub_cli, machine
from bench.journey_bench import seed
from hub.clock import Clock
from hub.settings import load_settings
from hub.store.sessions import create_session

Message = dict[str, Any]


async def call(app: Any, path: str, cookie: str, owner: Any = None) -> tuple[int, bytes]:
    """One GET through the app, as an HTTP server would hand it over; `owner`: the Starlette app when `app` is a
    layer inside it."""
    headers = [(b"host", b"127.0.0.1"), (b"accept-encoding", b"gzip"), (b"user-agent", b"bench")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    if owner is not None:
        scope["app"] = owner
    status = 0
    body = bytearray()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)


class _Counts:
    def __init__(self) -> None:
        self.total = 0

    def __call__(self, sql: str) -> None:
        self.total += 1


async def _measure(
    app: Any,
    targets: list[tuple[str, str]],
    requests: int,
    profiler: cProfile.Profile | None = None,
    owner: Any = None,
) -> tuple[float, float]:
    for path, cookie in targets[:50]:  # warm: templates compiled, caches filled
        status, _ = await call(app, path, cookie, owner)
        if status != 200:
            raise SystemExit(f"{path}: {status}")
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for n in range(requests):
        path, cookie = targets[n % len(targets)]
        await call(app, path, cookie, owner)
    if profiler:
        profiler.disable()
    return (time.process_time() - cpu) * 1000 / requests, (time.perf_counter() - wall) * 1000 / requests


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from bench.baseline_app import create_app as create_baseline
    from hub.app import create_app

    db_path = folder / "hub.sqlite3"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HUB_DATABASE_URL": f"sqlite:///{db_path}",
        "HUB_DEMO": "true",
        "HUB_SECRET_KEY": SECRET,
        "HUB_BASE_URL": "http://127.0.0.1:8000",
    }
    hub_cli(env, "migrate")
    patients = 2000
    seed(db_path, patients=patients, appointments=patients * args.appointments_each, now=datetime.now(UTC))
    settings = load_settings(environ=env)
    app = create_app(settings)
    baseline = create_baseline(str(db_path))
    result: dict[str, Any] = {"requests": args.requests, "appointments_per_patient": args.appointments_each}
    async with app.router.lifespan_context(app), baseline.router.lifespan_context(baseline):
        hub = app.state.hub
        ids = list(range(1, 201))
        tokens = []
        async with hub.db.write() as tx:
            for patient_id in ids:
                tokens.append(
                    await create_session(tx, secret=settings.secret_key, patient_id=patient_id, at=Clock().now())
                )
        anon = "a" * 32
        ours = [("/appointments", f"hub_session={token}; hub_anon={anon}") for token in tokens]
        bare = [(f"/patients/{patient_id}/appointments", "") for patient_id in ids]
        status, body = await call(app, *ours[0])
        result["page_bytes_gzip"] = len(body)
        counts = _Counts()
        hub.db._loop_reader._conn.set_trace_callback(counts)
        hub.db._writer.conn.set_trace_callback(counts)
        profiler = cProfile.Profile() if args.cprofile else None
        # Alternate the two, so both see the same machine.
        hub_runs, bare_runs = [], []
        for _ in range(args.rounds):
            hub_runs.append(await _measure(app, ours, args.requests))
            bare_runs.append(await _measure(baseline, bare, args.requests))
        statements = counts.total / (args.rounds * (args.requests + 50))
        hub_cpu = sorted(r[0] for r in hub_runs)[len(hub_runs) // 2]
        bare_cpu = sorted(r[0] for r in bare_runs)[len(bare_runs) // 2]
        result |= {
            "hub_cpu_ms_per_request": round(hub_cpu, 4),
            "hub_rounds_cpu_ms": [round(r[0], 4) for r in hub_runs],
            "baseline_cpu_ms_per_request": round(bare_cpu, 4),
            "baseline_rounds_cpu_ms": [round(r[0], 4) for r in bare_runs],
            "cpu_ratio_without_server": round(bare_cpu / hub_cpu, 3),
            "statements_per_request": round(statements, 2),
        }
        if args.layers:
            result["layers_cpu_ms"] = await _layers(app, ours, args.requests)
        if profiler:
            await _measure(app, ours, args.requests, profiler)
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(args.cprofile)
            stats.sort_stats("tottime").print_stats(args.cprofile)
            result["profile"] = out.getvalue()
    return result


async def _layers(app: Any, targets: list[tuple[str, str]], requests: int) -> dict[str, float]:
    """The app's CPU per request entered at each layer of its middleware stack, outermost first."""
    found: dict[str, float] = {}
    layer = app.middleware_stack
    while layer is not None:
        found[type(layer).__name__] = round((await _measure(layer, targets, requests, owner=app))[0], 4)
        layer = getattr(layer, "app", None)
        if type(layer).__name__ == "Router":
            found["Router"] = round((await _measure(layer, targets, requests, owner=app))[0], 4)
            break
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.list_profile", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the hub's and the baseline's interleaved")
    parser.add_argument(
        "--appointments-each", type=int, default=5, help="appointments per patient (the journey bench: 5)"
    )
    parser.add_argument("--layers", action="store_true", help="CPU per request entered at each middleware layer")
    parser.add_argument("--cprofile", type=int, default=0, help="print the N costliest functions")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-list-") as folder:
        result = asyncio.run(run(args, Path(folder)))
    profile = result.pop("profile", "")
    result |= {
        "machine": machine(),
        "load_average": os.getloadavg(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    emit(result, args.output)
    if profile:
        print(profile, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
