"""Sign-in timing, matched or not: python -m bench.signin_timing_bench [--requests 300] [--notify dev|fake]

F8 of the security assessment: POST /sign-in with details that match a patient was ~0.3 ms slower at the median
than a wrong date of birth or an unknown contact, and the gap was larger on the next request on the same
keep-alive connection (the code is sent after the answer, in the same request cycle). This starts
`python -m hub serve` on a fresh SQLite file and, over one keep-alive connection, interleaves the three kinds of
request; after each POST it sends GET /healthz on the same connection. It prints the medians (and 90th
percentiles) of both, in milliseconds, per kind.

`--notify dev` (the default): demo mode, codes go to the dev outbox (a database write, where a miss's decoy makes
a read). `--notify fake`: as in production, through the real Notify client to the fake Notify in a process of its
own (tests/fake_notify.py), where a code's send and a decoy's look-up are each one HTTP request.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import Process, emit, free_port, hub_cli, machine, serve_argv
from bench.journey_bench import date_of_birth, mobile, seed
from tests.fake_notify import FakeNotifyProcess, template_environ

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
KINDS = ("match", "wrong_dob", "unknown")
CODE_TEMPLATE = "5b0c2f4e-8a1d-4c3b-9e57-2d6f1a0b7c94"


def _details(kind: str, n: int) -> tuple[str, str]:
    if kind == "match":
        return mobile(n), date_of_birth(n)
    if kind == "wrong_dob":
        return mobile(n), "1999-09-09" if date_of_birth(n) != "1999-09-09" else "1998-08-08"
    return f"+447922{n:06d}", date_of_birth(n)


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 3),
    }


def run(url: str, requests: int) -> dict[str, Any]:
    timings: dict[str, dict[str, list[float]]] = {k: {"sign_in": [], "next_request": []} for k in KINDS}
    with httpx.Client(base_url=url, follow_redirects=False) as client:
        token_match = _CSRF.search(client.get("/").text)
        assert token_match is not None
        csrf = token_match.group(1)
        for _ in range(20):  # warm up: templates compiled, connections open
            client.get("/healthz")
        for n in range(requests):
            for kind in KINDS:
                contact, born = _details(kind, n)
                year, month, day = born.split("-")
                form = {"csrf_token": csrf, "contact": contact, "dob-day": day, "dob-month": month, "dob-year": year}
                began = time.perf_counter()
                response = client.post("/sign-in", data=form)
                middle = time.perf_counter()
                client.get("/healthz")
                ended = time.perf_counter()
                assert response.status_code == 303, response.text[:300]
                timings[kind]["sign_in"].append(middle - began)
                timings[kind]["next_request"].append(ended - middle)
    kinds = {kind: {step: _ms(values) for step, values in steps.items()} for kind, steps in timings.items()}
    gaps = {
        f"{step}_median_gap_ms": round(
            kinds["match"][step]["median_ms"]
            - min(kinds["wrong_dob"][step]["median_ms"], kinds["unknown"][step]["median_ms"]),
            3,
        )
        for step in ("sign_in", "next_request")
    }
    return {**kinds, **gaps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signin_timing_bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind")
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    parser.add_argument("--notify", choices=("dev", "fake"), default="dev", help="where codes go (see above)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-signin-timing-") as folder, contextlib.ExitStack() as stack:
        db_path = Path(folder) / "hub.sqlite3"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HUB_DATABASE_URL": f"sqlite:///{db_path}",
            "HUB_DEMO": "true",
            "HUB_BASE_URL": url,
            "HUB_CODES_PER_CLIENT_PER_HOUR": "1000000000",
            "HUB_CODES_PER_IDENTITY_PER_HOUR": "1000000000",
            "HUB_CODES_PER_CONTACT_PER_HOUR": "1000000000",
        }
        if args.notify == "fake":
            fake = stack.enter_context(FakeNotifyProcess())
            env |= {
                "HUB_DEMO": "false",
                "HUB_SECRET_KEY": "signin-timing-bench-secret-0123456789abcdefghijklmnop",
                "HUB_NOTIFY_API_KEY": fake.api_key,
                "HUB_NOTIFY_BASE_URL": fake.url,
                **template_environ(security_code_sms=CODE_TEMPLATE),
            }
        hub_cli(env, "migrate")
        seed(db_path, patients=args.requests, appointments=args.requests, now=datetime.now(UTC))
        server = Process(serve_argv(port), env)
        try:
            result = run(url, args.requests)
        finally:
            server.stop()
    emit(
        {
            "benchmark": "signin_timing",
            "machine": machine(),
            "requests_per_kind": args.requests,
            "notify": args.notify,
            **result,
        },
        args.output,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
