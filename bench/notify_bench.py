"""Notify send rate: python -m bench.notify_bench [--messages 10000] [--per-minute 3000] [--workers 2]

Queues N messages in a fresh SQLite hub, starts a fake GOV.UK Notify (no faults, but refusing requests beyond the
limit with 429 as Notify does) and `python -m hub worker` processes, and runs until every message is sent. From the
times the fake saw each request it reports, as one JSON object:
  - max_in_any_60s_window: the most requests (accepted, and all) in any rolling 60 s; must not exceed the limit;
  - sustained_rate_per_minute: (count - 1) / (last - first) * 60 over the whole run;
  - steady_state_rate_per_minute: the same over whole limits' worth of messages (the first per_minute * k, for the
    largest k that leaves some over), leaving out the last part, where running out of messages, not the limit, is
    what holds the rate; must be at least 95% of the limit.
The full run (10,000 at 3,000 a minute) takes over three minutes; --messages 2000 --per-minute 1200 is the quick one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, SECRET, emit, machine
from hub.db import connect
from hub.db.migrate import migrate
from hub.store.outbox import queue_message
from hub.vocabulary import Channel, MessageKind
from tests.fake_notify import FakeNotify, template_environ

TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
WINDOW = 60.0
REQUIRED_RATIO = 0.95


async def queue_messages(path: Path, count: int) -> None:
    db = await connect(f"sqlite:///{path}")
    try:
        await migrate(db)
        now = datetime.now(UTC)
        async with db.write() as tx:
            for i in range(count):
                await queue_message(
                    tx,
                    at=now,
                    kind=MessageKind.INVITATION,
                    channel=Channel.SMS,
                    recipient=f"+447700{i:06d}",  # one each: the per-number caps are not what is measured
                    template_id=TEMPLATE,
                    personalisation={"n": i},
                    patient_id=None,
                )
    finally:
        await db.close()


def rate_per_minute(times: list[float]) -> float | None:
    if len(times) < 2 or times[-1] == times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0]) * 60


def steady_state(times: list[float], per_minute: int) -> float | None:
    """Whole limits' worth: per_minute * k messages from the first arrival to the arrival of the next one."""
    blocks = (len(times) - 1) // per_minute
    if blocks < 1:
        return None
    end = blocks * per_minute
    return end / (times[end] - times[0]) * 60


def timeline(times: list[float], step: float = 10.0) -> list[int]:
    """Accepted messages in each `step` seconds from the first: shows the shape (bursts and waits)."""
    if not times:
        return []
    counts = [0] * (int((times[-1] - times[0]) // step) + 1)
    for t in times:
        counts[int((t - times[0]) // step)] += 1
    return counts


def fail(folder: Path, reason: str) -> None:
    """Stop with the end of each worker's log: the temporary folder goes with the run."""
    for log in sorted(folder.glob("worker-*.log")):
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        print(f"--- {log.name}", *lines[-20:], sep="\n", file=sys.stderr)
    raise SystemExit(reason)


def run(messages: int, per_minute: int, workers: int, batch: int, folder: Path, limit_seconds: float) -> dict[str, Any]:
    database = folder / "hub.sqlite3"
    asyncio.run(queue_messages(database, messages))
    with FakeNotify(rate_limit=per_minute) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATABASE_URL=f"sqlite:///{database}",
            HUB_SECRET_KEY=SECRET,
            HUB_NOTIFY_API_KEY=fake.api_key,
            HUB_NOTIFY_BASE_URL=fake.url,
            HUB_NOTIFY__PER_MINUTE=str(per_minute),
            HUB_NOTIFY__QUIET_START_HOUR="0",  # quiet hours off, whatever the time of day
            HUB_NOTIFY__QUIET_END_HOUR="0",
            HUB_WORKER__BATCH=str(batch),
        )
        env.update(template_environ())
        logs = [(folder / f"worker-{n}.log").open("wb") for n in range(workers)]
        began = time.monotonic()
        processes = [
            subprocess.Popen([sys.executable, "-m", "hub", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log)
            for log in logs
        ]
        db = sqlite3.connect(database, timeout=30)
        try:
            while True:
                (left,) = db.execute("SELECT COUNT(*) FROM outbox_messages WHERE status != 'sent'").fetchone()
                if not left:
                    break
                if any(p.poll() is not None for p in processes):
                    fail(folder, "a worker stopped")
                if time.monotonic() - began > limit_seconds:
                    fail(folder, f"{left} messages still unsent after {limit_seconds:.0f}s")
                time.sleep(0.5)
            seconds = time.monotonic() - began
            statuses = dict(db.execute("SELECT status, COUNT(*) FROM outbox_messages GROUP BY status").fetchall())
        finally:
            db.close()
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process, log in zip(processes, logs, strict=True):
                process.wait(timeout=30)
                log.close()
        arrivals = fake.arrivals
        window = fake.max_in_window(WINDOW)
        duplicates = sum(n - 1 for n in fake.count_by_reference().values())
    accepted = [t for t, ok in arrivals if ok]
    sustained = rate_per_minute(accepted)
    steady = steady_state(accepted, per_minute)
    return {
        "benchmark": "notify_send_rate",
        "messages": messages,
        "per_minute_limit": per_minute,
        "workers": workers,
        "batch": batch,
        "statuses": statuses,
        "requests": len(arrivals),
        "refused_with_429": len(arrivals) - len(accepted),
        "duplicates": duplicates,
        "max_in_any_60s_window": {"accepted": window.accepted, "requests": window.requests},
        "sustained_rate_per_minute": round(sustained, 1) if sustained else None,
        "sustained_ratio": round(sustained / per_minute, 4) if sustained else None,
        "steady_state_rate_per_minute": round(steady, 1) if steady else None,
        "steady_state_ratio": round(steady / per_minute, 4) if steady else None,
        "first_to_last_seconds": round(accepted[-1] - accepted[0], 2) if accepted else None,
        "total_seconds": round(seconds, 2),
        "accepted_per_10s": timeline(accepted),
        "checks": {
            "max_window_within_limit": window.requests <= per_minute,
            "sustained_at_least_95_percent": (steady or sustained or 0) >= REQUIRED_RATIO * per_minute,
            "every_message_sent_once": statuses == {"sent": messages} and duplicates == 0,
        },
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.notify_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--per-minute", type=int, default=3000, help="the Notify limit (HUB_NOTIFY__PER_MINUTE)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes run at once")
    parser.add_argument("--batch", type=int, default=25, help="messages one worker sends at once (HUB_WORKER__BATCH)")
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/ is ignored by git)")
    args = parser.parse_args(argv)
    # Enough for every whole minute the limit imposes, plus generous time to send.
    limit_seconds = 120 + 65 * (args.messages / args.per_minute)
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        result = run(args.messages, args.per_minute, args.workers, args.batch, Path(folder), limit_seconds)
    emit(result, args.output)
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
