"""The Wayfinder API under the NHS App's load: p50/p95 of GET /fhir/r4/Appointment and /DocumentReference.

10,000 patients with 10 appointments and 5 letters each, built by bulk SQL; `python -m hub serve` with the
Wayfinder API on, trusting a local token issuer and a local NHS login (the fakes the tests use, on real HTTP). Each
endpoint gets the standard's 25 requests a second, paced (a request starts every 40 ms whether or not the last has
answered), for a random patient each time, with a valid access token and that patient's NHS login ID token.
Target: p95 at most 40 ms, a tenth of the standard's 400 ms (WF-NFR-01).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import SECRET, Process, emit, free_port, hub_cli, machine, serve_argv
from bench.import_bench import nhs_number
from hub.clock import to_db
from tests.fake_aggregator import AUDIENCE, SCOPE, FakeAggregator
from tests.fake_nhs_login import NHS_APP_CLIENT, FakeNhsLogin

PDF = b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF\n"
KINDS = ("appointment_letter", "clinic_letter", "discharge_summary")


def date_of_birth(n: int) -> str:
    return f"{1930 + n % 70}-{1 + n % 12:02d}-{1 + n % 28:02d}"  # everyone 16 or over


def seed(path: Path, *, patients: int, appointments: int, letters: int, now: datetime) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    stamp = to_db(now)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO organisations (code, name, phone) VALUES ('RAL', 'Bench Trust', '020 7794 0500')")
    conn.execute(
        "INSERT INTO sites (organisation_id, code, name, address, postcode) VALUES (1, 'RFH', 'Royal Free Hospital',"
        " 'Pond Street', 'NW3 2QG')"
    )
    conn.executemany(
        "INSERT INTO patients (id, organisation_id, mrn, nhs_number, given_name, family_name, date_of_birth,"
        " verification_code, created_at, updated_at) VALUES (?, 1, ?, ?, 'Patient', ?, ?, 'V00000', ?, ?)",
        ((n + 1, f"MRN{n:07d}", nhs_number(n), f"Number{n}", date_of_birth(n), stamp, stamp) for n in range(patients)),
    )
    statuses = ("booked", "booked", "booked", "attended", "cancelled", "did_not_attend")
    conn.executemany(
        "INSERT INTO appointments (id, organisation_id, ref, patient_id, site_id, clinic, specialty, clinician,"
        " starts_at, duration_minutes, mode, status, request_state, created_at, updated_at)"
        " VALUES (?, 1, ?, ?, 1, 'Cardiology outpatients', 'Cardiology', 'Dr A Example', ?, 30, ?, ?, ?, ?, ?)",
        (
            (
                n + 1,
                f"A{n:08d}",
                n // appointments + 1,
                to_db(now + timedelta(days=(n % appointments) * 20 - 90)),
                ("in_person", "video", "telephone")[n % 3],
                statuses[n % len(statuses)],
                ("none", "confirmed", "rebook_requested")[n % 3],
                stamp,
                stamp,
            )
            for n in range(patients * appointments)
        ),
    )
    conn.executemany(
        "INSERT INTO letters (organisation_id, ref, patient_id, appointment_id, kind, title, content, size_bytes,"
        " created_at) VALUES (1, ?, ?, ?, ?, 'Your letter', ?, ?, ?)",
        (
            (f"L{n:08d}", n // letters + 1, (n // letters) * appointments + n % letters + 1, KINDS[n % 3], PDF)
            + (len(PDF), stamp)
            for n in range(patients * letters)
        ),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"count": len(ms), "p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "max": round(ms[-1], 1)}


async def paced(
    url: str, resource: str, tokens: list[tuple[str, str]], aggregator: FakeAggregator, *, rate: int, seconds: int
) -> dict[str, Any]:
    """`rate` requests a second for `seconds`, each for a patient picked at random."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    rng = random.Random(resource)
    access = aggregator.access_token(lifetime=3600)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one(n: int) -> None:
            number, id_token = rng.choice(tokens)
            headers = {
                "Authorization": f"Bearer {access}",
                "NHSD-ID-Token": id_token,
                "X-Correlation-ID": f"bench-{resource}-{n}",
            }
            began = time.perf_counter()
            response = await client.get(
                f"/fhir/r4/{resource}",
                params={"patient:identifier": f"https://fhir.nhs.uk/Id/nhs-number|{number}"},
                headers=headers,
            )
            latencies.append(time.perf_counter() - began)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        await one(-1)  # keys fetched and connections warm before the measured run
        latencies.clear()
        statuses.clear()
        started = time.perf_counter()
        running = []
        for n in range(rate * seconds):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            running.append(asyncio.create_task(one(n)))
        await asyncio.gather(*running)
        elapsed = time.perf_counter() - started
    return {
        **percentiles(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "requests_per_second": round(len(latencies) / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir_bench", description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--appointments", type=int, default=10, help="per patient")
    parser.add_argument("--letters", type=int, default=5, help="per patient")
    parser.add_argument("--rate", type=int, default=25, help="requests a second to each endpoint")
    parser.add_argument("--seconds", type=int, default=40, help="how long each endpoint is driven")
    parser.add_argument("--quick", action="store_true", help="2,000 patients, 10 seconds each")
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    args = parser.parse_args(argv)
    if args.quick:
        args.patients, args.seconds = 2000, 10
    with tempfile.TemporaryDirectory(prefix="hub-fhir-") as folder, FakeAggregator() as aggregator:
        with FakeNhsLogin() as nhs_login:
            db_path = Path(folder) / "hub.sqlite3"
            port = free_port()
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HUB_DATABASE_URL": f"sqlite:///{db_path}",
                "HUB_DEMO": "true",
                "HUB_SECRET_KEY": SECRET,
                "HUB_BASE_URL": f"http://127.0.0.1:{port}",
                "HUB_NHS_APP__ENABLED": "true",
                "HUB_NHS_APP__TOKEN_ISSUER": aggregator.issuer,
                "HUB_NHS_APP__TOKEN_JWKS_URL": aggregator.jwks_url,
                "HUB_NHS_APP__TOKEN_AUDIENCE": AUDIENCE,
                "HUB_NHS_APP__TOKEN_SCOPE": SCOPE,
                "HUB_NHS_APP__ID_TOKEN_AUDIENCE": NHS_APP_CLIENT,
                "HUB_NHS_LOGIN__ISSUER": nhs_login.issuer,
            }
            hub_cli(env, "migrate")
            began = time.perf_counter()
            seed(
                db_path,
                patients=args.patients,
                appointments=args.appointments,
                letters=args.letters,
                now=datetime.now(UTC),
            )
            build_seconds = time.perf_counter() - began
            chosen = random.Random(2).sample(range(args.patients), 500)
            tokens = [
                (
                    nhs_number(n),
                    nhs_login.id_token(
                        {
                            "sub": f"s{n}",
                            "nhs_number": nhs_number(n),
                            "birthdate": date_of_birth(n),
                            "identity_proofing_level": "P9",
                        }
                    ),
                )
                for n in chosen
            ]
            hub = Process(serve_argv(port), env)
            try:
                url = f"http://127.0.0.1:{port}"
                results = {
                    resource: asyncio.run(
                        paced(url, resource, tokens, aggregator, rate=args.rate, seconds=args.seconds)
                    )
                    for resource in ("Appointment", "DocumentReference")
                }
            finally:
                hub.stop()
    worst = max(r["p95"] for r in results.values())
    result = {
        "benchmark": "wayfinder_fhir",
        "transport": "HTTP/1.1 over loopback to one uvicorn process; httpx load generator on the same machine",
        "data": {
            "patients": args.patients,
            "appointments_per_patient": args.appointments,
            "letters_per_patient": args.letters,
            "build_seconds": round(build_seconds, 1),
        },
        "load": {"requests_per_second_each": args.rate, "seconds_each": args.seconds, "patients_asked_for": 500},
        "endpoints": results,
        "targets": {"p95_at_most_40ms": {"measured_worst_ms": worst, "pass": worst <= 40}},
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
