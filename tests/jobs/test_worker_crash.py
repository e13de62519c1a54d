"""Crash test: `python -m hub worker` processes SIGKILLed at random moments, and paused (SIGSTOP, then SIGCONT)
for longer than their lease, while the fake Notify misbehaves.

2,000 queued messages, 20% of sends answered with a fault, workers killed and restarted (two at once for most of
the run) until the outbox is empty; now and then a worker is paused instead, past its lease, while the other works
on, and then resumed. Then every message is sent, and Notify has each reference exactly once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from hub.clock import to_db
from hub.db import Database, connect
from hub.db.migrate import migrate
from hub.settings import ROOT
from tests import factories
from tests.conftest import SECRET
from tests.databases import own_database_url
from tests.fake_notify import FakeNotify, template_environ

MESSAGES = 2000
FAULTS = ("rate_limit", "server_error", "timeout", "slow", "drop_after_accept")
SEED = 20261121
DEADLINE = 300.0  # seconds; on an idle machine the run takes well under half of that (240 s on PostgreSQL at load 10)
LEASE = 4.0  # seconds: the least a claim holds with a 1 s Notify timeout (twice that, plus 2 s)
PAUSES = 6  # each for longer than the lease
PAUSE_CHANCE = 0.2
TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"


async def _queue_messages(db: Database) -> list[int]:
    await migrate(db)
    now = datetime.now(UTC)
    ids = []
    async with db.write() as tx:
        for i in range(MESSAGES):
            # Every patient their own number or address, so the per-number caps never bite.
            email = i % 5 == 0
            ids.append(
                await factories.create_message(
                    tx,
                    now=now,
                    channel="email" if email else "sms",
                    recipient=f"patient{i}@example.com" if email else f"+447700{i:06d}",
                    template_id=TEMPLATE,
                    personalisation={"n": i},
                )
            )
    return ids


class _Workers:
    """Worker processes in numbered slots, each with its own log file."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: dict[int, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}
        self.started = self.killed = self.paused = 0

    def start(self, slot: int) -> None:
        log = (self.logs / f"worker-{self.started:03d}.log").open("wb")
        command = [sys.executable, "-m", "hub", "worker"]
        self.running[slot] = (subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log), log)
        self.started += 1

    def wait_until_working(self, seconds: float = 30) -> None:
        """Until every worker has begun its first round: on a busy machine Python alone can take seconds to start,
        and a worker killed before it works tests nothing."""
        deadline = time.monotonic() + seconds
        for process, log in self.running.values():
            while b"housekeeping removed" not in Path(log.name).read_bytes():
                assert process.poll() is None, f"worker exited {process.returncode}: see {log.name}"
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)

    def pause(self, slot: int, seconds: float) -> None:
        """SIGSTOP for `seconds` (a VM stall, a long GC pause), then SIGCONT: it carries on where it stopped."""
        process, log = self.running[slot]
        process.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        process.send_signal(signal.SIGCONT)
        self.paused += 1
        assert process.poll() is None, f"worker exited {process.returncode}: see {log.name}"

    def kill(self, slot: int) -> None:
        process, log = self.running.pop(slot)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            self.killed += 1
        process.wait()
        log.close()
        assert process.returncode in (0, -signal.SIGKILL), f"worker exited {process.returncode}: see {log.name}"

    def stop_all(self) -> None:
        for slot in list(self.running):
            self.kill(slot)


@pytest.fixture
def fake() -> Iterator[FakeNotify]:
    # A "timeout" answers 0.2 s after the client (1 s) has given up.
    with FakeNotify(timeout_delay=1.2, slow_delay=0.3) as fake:
        yield fake


async def _counts(db: Database) -> dict[str, int]:
    rows = await db.fetch_all("SELECT status, COUNT(*) AS n FROM outbox_messages GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def _hurry_backoffs(db: Database) -> None:
    async with db.write() as tx:
        await tx.execute(
            "UPDATE outbox_messages SET next_attempt_at = ? WHERE status = 'queued' AND next_attempt_at > ?",
            (to_db(datetime.now(UTC)),) * 2,
        )


@pytest.mark.timeout(DEADLINE + 60)
def test_killed_workers_lose_nothing_and_send_nothing_twice(tmp_path: Path, fake: FakeNotify, backend: str) -> None:
    url = own_database_url(backend, tmp_path)
    with asyncio.Runner() as runner:
        db = runner.run(connect(url, readers=1))
        try:
            _run(runner, db, url, tmp_path, fake)
        finally:
            runner.run(db.close())


def _run(runner: asyncio.Runner, db: Database, url: str, tmp_path: Path, fake: FakeNotify) -> None:
    ids = runner.run(_queue_messages(db))
    fake.set_fault_rate(0.2, kinds=FAULTS, seed=SEED)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=url,
        HUB_SECRET_KEY=SECRET,
        HUB_NOTIFY_API_KEY=fake.api_key,
        HUB_NOTIFY_BASE_URL=fake.url,
        HUB_NOTIFY__PER_MINUTE="1000000",
        HUB_NOTIFY__TIMEOUT_SECONDS="1",
        HUB_NOTIFY__MAX_ATTEMPTS="1000",  # nothing fails for good: every message must arrive
        HUB_NOTIFY__QUIET_START_HOUR="0",  # quiet hours off, whatever the time of day
        HUB_NOTIFY__QUIET_END_HOUR="0",
        HUB_WORKER__LEASE_SECONDS="3",
        HUB_WORKER__BATCH="25",
    )
    env.update(template_environ())
    workers = _Workers(env, tmp_path)
    rng = random.Random(SEED)
    began = time.monotonic()
    try:
        while True:
            counts = runner.run(_counts(db))
            if not counts.get("queued") and not counts.get("sending"):
                break
            assert time.monotonic() - began < DEADLINE, f"outbox not empty after {DEADLINE:.0f}s: {counts}"
            # Two workers at once until the last quarter, then one.
            wanted = 2 if counts.get("sent", 0) < MESSAGES * 3 // 4 else 1
            for slot in range(wanted):
                if slot not in workers.running:
                    workers.start(slot)
            workers.wait_until_working()
            # A random while, cut short once a random share of the work is done: as many kills on a machine (or a
            # database) that sends faster, where a while alone once made too few (19 in a run).
            until = time.monotonic() + rng.uniform(0.2, 1.5)
            enough = runner.run(_counts(db)).get("sent", 0) + rng.randint(25, 100)
            while time.monotonic() < until and runner.run(_counts(db)).get("sent", 0) < enough:
                time.sleep(0.05)
            if wanted == 2 and workers.paused < PAUSES and rng.random() < PAUSE_CHANCE:
                # Past its lease: the other worker takes its messages over, then it resumes mid-batch.
                workers.pause(rng.choice(sorted(workers.running)), LEASE + rng.uniform(0.5, 1.5))
            else:
                workers.kill(rng.choice(sorted(workers.running)))
            for slot in [s for s in workers.running if s >= wanted]:
                workers.kill(slot)
            # Backoff waits (10 s after a 429, 15 s and up after errors) compressed: what is under test is
            # what crashes and faults do, not how long the waits are.
            runner.run(_hurry_backoffs(db))
    finally:
        workers.stop_all()
    seconds = time.monotonic() - began
    fired = fake.fired_faults
    refused = fired.count("rate_limit") + fired.count("server_error")
    lookups = len(fake.arrivals) - len(fake.messages) - refused
    # Each of these sets check_first once: without crashes, the lookups would be exactly as many.
    doubtful = fired.count("timeout") + fired.count("drop_after_accept") + fired.count("server_error")
    print(
        f"{seconds:.0f}s, {workers.killed} kills, {workers.paused} pauses, {lookups} lookups,"
        f" {doubtful} sends in doubt from faults"
    )
    rows = [
        tuple(r.values())
        for r in runner.run(db.fetch_all("SELECT id, status, notify_id FROM outbox_messages ORDER BY id"))
    ]

    for reference, n in fake.count_by_reference().items():
        if n > 1:  # when Notify took each copy, to set against the workers' logs
            print("twice:", reference, [m.created_at.isoformat() for m in fake.by_reference(str(reference))])
    assert [(r[0], r[1]) for r in rows] == [(i, "sent") for i in ids]
    assert fake.count_by_reference() == {str(i): 1 for i in ids}
    notify_ids = {m.reference: m.id for m in fake.messages}
    assert all(notify_ids[str(r[0])] == r[2] for r in rows)
    assert set(fired) == set(FAULTS)
    assert workers.killed >= 20, f"only {workers.killed} kills"
    assert workers.paused >= 1, "no worker was paused"
    # More lookups than faults explain: workers died with messages in flight, and those were looked up too.
    assert lookups > doubtful
