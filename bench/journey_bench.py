"""The patient journey over real HTTP: python -m bench.journey_bench [--journeys 1000] [--concurrency 100] [--quick]
[--stack granian,uvicorn-uvloop,uvicorn]

Builds 10,000 patients and 50,000 appointments by bulk SQL in a fresh SQLite file, starts `python -m hub serve`
(one process, demo mode: codes go to the dev outbox) and, in the same run against the same file, the bare
Starlette + aiosqlite + Jinja page in bench/baseline_app.py, both on each server stack named by --stack (default:
the fastest installed, then every stack). Then:
  1. journeys, on the first stack: `concurrency` simulated patients at a time, each with its own cookies, open
     their link, submit their details, read their code from the dev outbox, submit it, list their appointments,
     open one, download its .ics and confirm it. Requests/second and p50/p95/p99 per step, measured at the client.
     Twice: first as people use it (each patient reads a page for --think seconds on average before the next step,
     and patients arrive spread over the first journey's length rather than all at the same instant), then at
     capacity (no reading time; then a request's mean latency is just the number of patients over the requests
     per second).
  2. list page: the same concurrency of signed-in patients reloading /appointments, against the baseline's list
     on the same stack; reported as a ratio per stack (rounds interleave every server, so all see the same machine).
The sign-in rate limits per client address (30 codes, 50 wrong guesses an hour) would stop a load test from one
address after a few journeys; this run raises them through HUB_CODES_PER_CLIENT_PER_HOUR and
HUB_GUESSES_PER_CLIENT_PER_HOUR. The load generator shares the machine with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bench.common import Process, cpu_seconds, emit, free_port, hub_cli, machine, serve_argv
from bench.import_bench import nhs_number
from bench.raw_http import Browser, Page, RawClient
from hub.clock import to_db
from hub.links import link_token
from hub.serve import STACKS, UVICORN, choose_stack
from hub.settings import load_settings

STEPS = (
    "open_link",
    "submit_details",
    "code_page",
    "read_code",
    "submit_code",
    "appointments",
    "appointment",
    "ics",
    "confirm",
    "confirmed_page",
)
THINKS_PER_JOURNEY = 5  # the pauses in journey() below
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_APPOINTMENT = re.compile(r'href="/appointments/(\d+)"')
SITES = (("RFH", "Royal Free Hospital"), ("BARNET", "Barnet Hospital"), ("CHASE", "Chase Farm Hospital"))


def mobile(n: int) -> str:
    return f"+447911{n:06d}"


def link_id(n: int) -> str:
    """Patient n's stable link id (random in the hub; numbered here so the bench can build each link)."""
    return f"{n + 1:032x}"


def patient_token(settings: Any, n: int) -> str:
    return link_token(settings, link_id(n))


def date_of_birth(n: int) -> str:
    return f"{1930 + n % 80}-{1 + n % 12:02d}-{1 + n % 28:02d}"


def seed(path: Path, *, patients: int, appointments: int, now: datetime) -> None:
    """Patients with their own mobile, and appointments spread over them, by bulk SQL (seconds, not minutes)."""
    conn = sqlite3.connect(path, isolation_level=None)
    stamp = to_db(now)
    nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO organisations (code, name, phone) VALUES ('RAL', 'Bench Trust', '020 7794 0500')")
    org = conn.execute("SELECT id FROM organisations WHERE code = 'RAL'").fetchone()[0]
    conn.executemany(
        "INSERT INTO sites (organisation_id, code, name, address, postcode) VALUES (?, ?, ?, 'Pond Street', 'NW3 2QG')",
        [(org, code, name) for code, name in SITES],
    )
    site_ids = [row[0] for row in conn.execute("SELECT id FROM sites ORDER BY id")]
    conn.executemany(
        "INSERT INTO patients (id, organisation_id, mrn, nhs_number, given_name, family_name, date_of_birth, mobile,"
        " verification_code, link_id, created_at, updated_at) VALUES (?, ?, ?, ?, 'Patient', ?, ?, ?, ?, ?, ?, ?)",
        (
            (n + 1, org, f"MRN{n:07d}", nhs_number(n), f"Number{n}", date_of_birth(n), mobile(n), f"V{n:06d}")
            + (link_id(n), stamp, stamp)
            for n in range(patients)
        ),
    )
    # Upcoming (2 to 60 days ahead, past the 24-hour cut-off for changes), in clinic hours.
    conn.executemany(
        "INSERT INTO appointments (organisation_id, ref, patient_id, site_id, clinic, specialty, clinician, starts_at,"
        " duration_minutes, mode, status, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'Cardiology outpatients', 'Cardiology', 'Dr A Example', ?, 30, 'in_person', 'booked',"
        " ?, ?)",
        (
            (
                org,
                f"A{n:08d}",
                n % patients + 1,
                site_ids[n % len(site_ids)],
                to_db(nine + timedelta(days=2 + n % 59, minutes=15 * (n % 32))),
                stamp,
                stamp,
            )
            for n in range(appointments)
        ),
    )
    # The bench reads codes from the dev outbox by recipient; the hub never does, so this index is the bench's own.
    conn.execute("CREATE INDEX bench_dev_messages_recipient ON dev_messages (recipient, id)")
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: Counter[str] = field(default_factory=Counter)
    requests: int = 0

    async def request(self, step: str, call: Awaitable[Page], expect: int) -> Page:
        began = time.perf_counter()
        response = await call
        self.latencies[step].append(time.perf_counter() - began)
        self.statuses[step][response.status_code] += 1
        self.requests += 1
        if response.status_code != expect:
            raise JourneyFailed(f"{step}: {response.status_code}")
        return response


class JourneyFailed(Exception):
    pass


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in seconds)
    if len(ms) < 2:
        return {"count": len(ms)}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "count": len(ms),
        "p50": round(cuts[49], 1),
        "p95": round(cuts[94], 1),
        "p99": round(cuts[98], 1),
        "max": round(ms[-1], 1),
    }


def _csrf(response: Page) -> str:
    found = _CSRF.search(response.text)
    if not found:
        raise JourneyFailed(f"no CSRF token on {response.path}")
    return found.group(1)


async def read_code(outbox: aiosqlite.Connection, recipient: str, after: int) -> str:
    """The code the hub 'sent' (the dev outbox keeps personalisation, code included, in demo mode only)."""
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        async with outbox.execute(
            "SELECT personalisation FROM dev_messages WHERE recipient = ? AND id > ? ORDER BY id DESC LIMIT 1",
            (recipient, after),
        ) as cursor:
            row = await cursor.fetchone()
        if row:
            return str(json.loads(row[0])["code"])
        await asyncio.sleep(0.01)
    raise JourneyFailed("read_code: no code in the dev outbox after 30 s")


async def no_pause() -> None:
    return None


async def journey(
    client: Browser,
    stats: Stats,
    outbox: aiosqlite.Connection,
    *,
    n: int,
    token: str,
    last_id: int,
    think: Callable[[], Awaitable[None]] = no_pause,
) -> None:
    page = await stats.request("open_link", client.get(f"/p/{token}"), 200)
    await think()
    year, month, day = date_of_birth(n).split("-")
    form = {
        "csrf_token": _csrf(page),
        "link": token,
        "contact": "0" + mobile(n).removeprefix("+44"),
        "dob-day": day.lstrip("0"),
        "dob-month": month.lstrip("0"),
        "dob-year": year,
    }
    await stats.request("submit_details", client.post("/sign-in", data=form), 303)
    page = await stats.request("code_page", client.get("/sign-in/code"), 200)
    began = time.perf_counter()
    code = await read_code(outbox, mobile(n), last_id)
    stats.latencies["read_code"].append(time.perf_counter() - began)
    await think()  # reading the text and typing the code
    signed_in = await stats.request(
        "submit_code", client.post("/sign-in/code", data={"csrf_token": _csrf(page), "code": code}), 303
    )
    if signed_in.headers.get("location") != "/appointments":
        raise JourneyFailed(f"submit_code: went to {signed_in.headers.get('location')}")
    page = await stats.request("appointments", client.get("/appointments"), 200)
    ids = _APPOINTMENT.findall(page.text)
    if not ids:
        raise JourneyFailed("appointments: none listed")
    appointment_id = ids[0]
    await think()
    page = await stats.request("appointment", client.get(f"/appointments/{appointment_id}"), 200)
    await think()
    await stats.request("ics", client.get(f"/appointments/{appointment_id}.ics"), 200)
    await think()
    done = await stats.request(
        "confirm", client.post(f"/appointments/{appointment_id}/confirm", data={"csrf_token": _csrf(page)}), 303
    )
    location = done.headers.get("location", "")
    if "done=confirmed" not in location:
        raise JourneyFailed(f"confirm: went to {location}")
    await stats.request("confirmed_page", client.get(location), 200)


async def run_journeys(
    port: int, db_path: Path, *, patients: list[int], concurrency: int, secret_settings: Any, think: float = 0.0
) -> tuple[dict[str, Any], list[tuple[Browser, int]]]:
    """`think`: mean seconds a patient spends on a page before the next step (exponential; 0: none at all)."""
    rng = random.Random(7)

    async def pause() -> None:
        if think:
            await asyncio.sleep(rng.expovariate(1 / think))

    stats = Stats()
    signed_in: list[tuple[Browser, int]] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in patients:
        queue.put_nowait(n)
    outbox = await aiosqlite.connect(db_path)
    async with outbox.execute("SELECT COALESCE(MAX(id), 0) FROM dev_messages") as cursor:
        row = await cursor.fetchone()
    last_id = int(row[0]) if row else 0

    async def patient_worker() -> None:
        if think:
            # Patients arrive spread over one journey's reading time, not all in the same instant.
            await asyncio.sleep(rng.uniform(0, think * THINKS_PER_JOURNEY))
        while not queue.empty():
            n = queue.get_nowait()
            # A fresh browser per patient: its own cookie jar and connection.
            client = Browser(port)
            try:
                await journey(
                    client,
                    stats,
                    outbox,
                    n=n,
                    token=patient_token(secret_settings, n),
                    last_id=last_id,
                    think=pause,
                )
                signed_in.append((client, n + 1))
            except (JourneyFailed, OSError, asyncio.IncompleteReadError) as exc:
                client.close()
                stats.failures[str(exc)[:80] or type(exc).__name__] += 1

    began = time.perf_counter()
    await asyncio.gather(*(patient_worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - began
    await outbox.close()
    http_steps = [s for s in STEPS if s != "read_code"]
    result = {
        "journeys": len(patients),
        "completed": len(signed_in),
        "failures": dict(stats.failures),
        "concurrency": concurrency,
        "mean_think_seconds": think,
        "seconds": round(seconds, 2),
        "http_requests": stats.requests,
        "requests_per_second": round(stats.requests / seconds, 1),
        "journeys_per_second": round(len(signed_in) / seconds, 2),
        "steps_ms": {step: percentiles(stats.latencies[step]) for step in STEPS},
        "worst_http_step_p95_ms": max(
            (percentiles(stats.latencies[s]).get("p95", 0.0) for s in http_steps), default=0.0
        ),
        "statuses": {step: {str(k): v for k, v in sorted(stats.statuses[step].items())} for step in http_steps},
    }
    return result, signed_in


async def hammer(clients: list[RawClient], *, requests: int) -> dict[str, Any]:
    """Closed loop: each client asks again as soon as it has its answer, until `requests` have been made."""
    latencies: list[float] = []
    bad = 0
    remaining = requests

    async def worker(client: RawClient) -> None:
        nonlocal remaining, bad
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            status, body = await client.get()
            latencies.append(time.perf_counter() - began)
            if status != 200 or not body:
                bad += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    seconds = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "bad": bad,
        "requests_per_second": round(len(latencies) / seconds, 1),
        "latency_ms": percentiles(latencies),
    }


async def compare_list_pages(
    signed_in: list[tuple[Browser, int]],
    *,
    ports: dict[str, tuple[int, int]],
    pids: dict[tuple[str, str], int],
    concurrency: int,
    requests: int,
    rounds: int,
) -> dict[str, Any]:
    """`ports`: for each server stack, the hub's and the baseline's port; `pids`: each server's process by (stack,
    "hub" or "bare"). Rounds interleave every server. Besides requests a second, each round reads the server's
    CPU time from /proc: on a machine busy with other work, CPU per request moves less than throughput does."""
    clients: dict[tuple[str, str], list[RawClient]] = {}
    for stack, (hub_port, baseline_port) in ports.items():
        ours, bare = [], []
        for browser, patient_id in signed_in[:concurrency]:
            # Sessions live in the database: the same cookie is signed in on every hub process.
            cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
            ours.append(RawClient(hub_port, "/appointments", cookie))
            bare.append(RawClient(baseline_port, f"/patients/{patient_id}/appointments"))
        clients[(stack, "hub")], clients[(stack, "bare")] = ours, bare
    for group in clients.values():  # warm every server: connections open, templates compiled, and check the pages
        for client in group:
            status, _ = await client.get()
            if status != 200:
                raise SystemExit(f"list page warm-up: {status}")
    measured: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for _ in range(rounds):
        for key, group in clients.items():
            before = cpu_seconds(pids[key])
            done = await hammer(group, requests=requests)
            done["server_cpu_ms_per_request"] = round((cpu_seconds(pids[key]) - before) * 1000 / done["requests"], 3)
            measured[key].append(done)
    for group in clients.values():
        for client in group:
            client.close()
    for browser, _ in signed_in:
        browser.close()
    result: dict[str, Any] = {
        "concurrency": min(concurrency, len(signed_in)),
        "requests_per_round": requests,
        "client": "raw asyncio HTTP/1.1 keep-alive, Accept-Encoding: gzip (the hub compresses; the baseline does not)",
        "stacks": {},
    }
    for stack in ports:
        hub_rounds, bare_rounds = measured[(stack, "hub")], measured[(stack, "bare")]
        hub_rps = statistics.median(r["requests_per_second"] for r in hub_rounds)
        bare_rps = statistics.median(r["requests_per_second"] for r in bare_rounds)
        result["stacks"][stack] = {
            "hub_appointments_page": {"median_requests_per_second": hub_rps, "rounds": hub_rounds},
            "bare_starlette_baseline": {"median_requests_per_second": bare_rps, "rounds": bare_rounds},
            "ratio": round(hub_rps / bare_rps, 3),
            "cpu_ratio": cpu_ratio(bare_rounds, hub_rounds),
            # The baseline's own rounds vary more than the hub's (its reads cross to aiosqlite's thread and back):
            # the hub's median against the baseline's best round is the cautious reading.
            "ratio_to_fastest_baseline_round": round(hub_rps / max(r["requests_per_second"] for r in bare_rounds), 3),
        }
    return result


def cpu_ratio(bare_rounds: list[dict[str, Any]], hub_rounds: list[dict[str, Any]]) -> float | None:
    """What the ratio would be were both bound by their own CPU alone: the baseline's CPU per request over the
    hub's (medians of the rounds). None when either median is zero: /proc counts CPU in ticks of 10 ms, so a short
    round (a test's 50 requests) can read as none at all."""
    bare = statistics.median(r["server_cpu_ms_per_request"] for r in bare_rounds)
    hub = statistics.median(r["server_cpu_ms_per_request"] for r in hub_rounds)
    return round(bare / hub, 3) if bare and hub else None


def _stacks(text: str) -> list[str]:
    """The stacks named (auto: the fastest installed), each once, in order."""
    chosen: list[str] = []
    for name in text.split(","):
        stack = choose_stack(name.strip())
        if stack not in chosen:
            chosen.append(stack)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.journey_bench", description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000, help="patients in the data set")
    parser.add_argument("--appointments", type=int, default=50_000, help="appointments in the data set")
    parser.add_argument("--journeys", type=int, default=1000, help="patients who sign in and confirm")
    parser.add_argument("--concurrency", type=int, default=100, help="simulated patients at once")
    parser.add_argument("--list-requests", type=int, default=3000, help="list-page requests per round and server")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of the list-page comparison (medians compared)"
    )
    parser.add_argument("--think", type=float, default=2.0, help="mean seconds a patient reads each page")
    parser.add_argument("--think-journeys", type=int, default=400, help="journeys in the run with reading time")
    parser.add_argument(
        "--stack",
        default=",".join(["auto", *STACKS]),
        help="HTTP server stacks, comma-separated (auto: the fastest installed); the journeys run on the first, the"
        " list page is compared on each, hub and baseline on the same stack",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 patients, 200 journeys, 50 at once")
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    args = parser.parse_args(argv)
    if args.quick:
        args.patients, args.appointments, args.journeys = 2000, 10_000, 200
        args.concurrency, args.list_requests, args.rounds, args.think_journeys = 50, 1000, 3, 100
    if args.journeys + args.think_journeys > args.patients:
        parser.error("--journeys cannot exceed --patients (each patient signs in once)")
    with tempfile.TemporaryDirectory(prefix="hub-journey-") as folder:
        db_path = Path(folder) / "hub.sqlite3"
        port, baseline_port = free_port(), free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HUB_DATABASE_URL": f"sqlite:///{db_path}",
            "HUB_DEMO": "true",
            "HUB_BASE_URL": url,
            "HUB_CODES_PER_CLIENT_PER_HOUR": "1000000000",
            "HUB_GUESSES_PER_CLIENT_PER_HOUR": "1000000000",
        }
        hub_cli(env, "migrate")
        began = time.perf_counter()
        seed(db_path, patients=args.patients, appointments=args.appointments, now=datetime.now(UTC))
        build_seconds = time.perf_counter() - began
        print(
            f"built {args.patients} patients, {args.appointments} appointments in {build_seconds:.1f}s",
            file=sys.stderr,
        )
        settings = load_settings(environ=env)
        stacks = _stacks(args.stack)
        ports = {stack: (free_port(), free_port()) for stack in stacks}
        port = ports[stacks[0]][0]
        with ExitStack() as servers:
            # Every server at once, so the list-page rounds interleave them all; only one is driven at a time.
            pids: dict[tuple[str, str], int] = {}
            for stack, (hub_port, baseline_port) in ports.items():
                hub = Process(serve_argv(hub_port), env | {"HUB_HTTP_SERVER": stack})
                servers.callback(hub.stop)
                baseline_argv = ["--db", str(db_path), "--port", str(baseline_port), "--stack", stack]
                bare = Process([sys.executable, "-m", "bench.baseline_app", *baseline_argv], env)
                servers.callback(bare.stop)
                pids[(stack, "hub")], pids[(stack, "bare")] = hub.process.pid, bare.process.pid
            chosen = random.Random(1).sample(range(args.patients), args.journeys + args.think_journeys)

            async def both() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
                # People: each reads a page for a while before the next step, as patients do.
                people, _ = await run_journeys(
                    port,
                    db_path,
                    patients=chosen[args.journeys :],
                    concurrency=args.concurrency,
                    secret_settings=settings,
                    think=args.think,
                )
                print(f"people: worst step p95 {people['worst_http_step_p95_ms']} ms", file=sys.stderr)
                # Capacity: no reading time at all, each simulated patient asking again at once.
                journeys, signed_in = await run_journeys(
                    port,
                    db_path,
                    patients=chosen[: args.journeys],
                    concurrency=args.concurrency,
                    secret_settings=settings,
                )
                print(f"journeys: {journeys['requests_per_second']} requests/s", file=sys.stderr)
                if not signed_in:
                    raise SystemExit(f"no journey completed: {journeys['failures']}")
                pages = await compare_list_pages(
                    signed_in,
                    ports=ports,
                    pids=pids,
                    concurrency=args.concurrency,
                    requests=args.list_requests,
                    rounds=args.rounds,
                )
                for stack, measured in pages["stacks"].items():
                    print(
                        f"list page on {stack}: {measured['ratio']} of the baseline (CPU: {measured['cpu_ratio']})",
                        file=sys.stderr,
                    )
                return people, journeys, pages

            people, journeys, pages = asyncio.run(both())
    worst_p95 = people["worst_http_step_p95_ms"]
    main_stack = pages["stacks"][stacks[0]]
    hub_rps = main_stack["hub_appointments_page"]["median_requests_per_second"]
    today = pages["stacks"].get(UVICORN, {}).get("hub_appointments_page", {}).get("median_requests_per_second")
    result = {
        "benchmark": "patient_journey",
        "transport": "HTTP/1.1 over loopback, one server process per app and stack; load generator on the same machine",
        "journeys_on": stacks[0],
        "data": {
            "patients": args.patients,
            "appointments": args.appointments,
            "build_seconds": round(build_seconds, 1),
        },
        "settings_changed_for_the_run": {
            "HUB_CODES_PER_CLIENT_PER_HOUR": env["HUB_CODES_PER_CLIENT_PER_HOUR"],
            "HUB_GUESSES_PER_CLIENT_PER_HOUR": env["HUB_GUESSES_PER_CLIENT_PER_HOUR"],
            "why": "every simulated patient comes from 127.0.0.1; the per-address limits would stop the run",
        },
        "journey_with_reading_time": people,
        "journey_at_capacity": journeys,
        "list_page_vs_bare_starlette": pages,
        "targets": {
            "list_page_at_least_0.6_of_baseline_on_the_same_stack": {
                "stack": stacks[0],
                "measured": main_stack["ratio"],
                "pass": main_stack["ratio"] >= 0.6,
                "against_the_fastest_baseline_round": main_stack["ratio_to_fastest_baseline_round"],
            },
            "list_page_at_least_1.25_times_uvicorn_h11": {
                "measured": round(hub_rps / today, 3) if today else None,
                "pass": bool(today) and hub_rps >= 1.25 * today,
            },
            "every_step_p95_under_100ms": {
                "measured_worst_ms": worst_p95,
                "pass": worst_p95 < 100,
                "at": f"{people['concurrency']} patients at once, each reading a page {args.think} s on average",
                "with_no_reading_time_ms": journeys["worst_http_step_p95_ms"],
            },
            "nhs_app_400ms_p95_and_25_rps": {
                "pass": worst_p95 < 400 and journeys["requests_per_second"] >= 25,
            },
        },
        "sqlite_synchronous": "FULL",
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
