"""A worker paused (SIGSTOP: a VM stall, a long GC pause) past its lease never sends when it resumes.

Worker A (`python -m hub worker`) claims a message that must be looked up first, and is stopped while its look-up
is at Notify. Its lease runs out; worker B claims the message, finds nothing at Notify and sends it. A resumes with
its stale "not found", checks its claim before the send, finds it gone, and leaves the message alone.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.clock import Clock, from_db
from hub.db import Database, connect
from hub.db.migrate import migrate
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import SendPolicy, drain_once
from hub.settings import ROOT
from tests import factories
from tests.conftest import SECRET
from tests.databases import own_database_url
from tests.fake_notify import FakeNotify, Fault, template_environ

TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
TIMEOUT = 2  # seconds: the Notify client's, in both workers


@pytest.fixture
def fake() -> Iterator[FakeNotify]:
    with FakeNotify(faults_on_lookups=True) as fake:
        yield fake


def worker_environ(url: str, fake: FakeNotify, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=url,
        HUB_SECRET_KEY=SECRET,
        HUB_NOTIFY_API_KEY=fake.api_key,
        HUB_NOTIFY_BASE_URL=fake.url,
        HUB_NOTIFY__TIMEOUT_SECONDS=str(TIMEOUT),
        HUB_NOTIFY__QUIET_START_HOUR="0",  # quiet hours off, whatever the time of day
        HUB_NOTIFY__QUIET_END_HOUR="0",
        HUB_WORKER__LEASE_SECONDS="3",
        **extra,
    )
    env.update(template_environ())
    return env


async def _queue_doubtful(db: Database) -> int:
    await migrate(db)
    async with db.write() as tx:
        # An earlier attempt went unanswered: this one starts with a look-up by reference.
        return await factories.create_message(tx, now=datetime.now(UTC), template_id=TEMPLATE, check_first=True)


async def _until(db: Database, sql: str, seconds: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = await db.fetch_one(sql)
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing for {sql!r} within {seconds} s")


@pytest.mark.timeout(120)
def test_a_worker_paused_past_its_lease_never_sends(tmp_path: Path, fake: FakeNotify, backend: str) -> None:
    url = own_database_url(backend, tmp_path)
    with asyncio.Runner() as runner:
        db = runner.run(connect(url, readers=1))
        try:
            _run(runner, db, url, tmp_path, fake)
        finally:
            runner.run(db.close())


def _run(runner: asyncio.Runner, db: Database, url: str, tmp_path: Path, fake: FakeNotify) -> None:
    message = runner.run(_queue_doubtful(db))
    fake.inject(Fault("slow", seconds=1))  # A's look-up is at Notify for a second
    log = (tmp_path / "worker-a.log").open("wb")
    a = subprocess.Popen(
        [sys.executable, "-m", "hub", "worker"], cwd=ROOT, env=worker_environ(url, fake), stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while not fake.arrivals:
            assert time.monotonic() < deadline and a.poll() is None, "worker A made no look-up"
            time.sleep(0.01)
        a.send_signal(signal.SIGSTOP)
        claim = runner.run(_until(db, "SELECT claimed_until FROM outbox_messages WHERE status = 'sending'"))
        lapsed = from_db(str(claim["claimed_until"])) + timedelta(seconds=0.5)
        time.sleep(max(0.0, (lapsed - datetime.now(UTC)).total_seconds()))

        # Worker B: the lease has run out, so it looks the message up, finds nothing, and sends it.
        notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=TIMEOUT)
        policy = SendPolicy(quiet_start=0, quiet_end=0, request_timeout=timedelta(seconds=TIMEOUT))
        assert runner.run(drain_once(db, notifier, Clock(), policy=policy, rng=random.Random(1))) == 1
        [sent] = fake.by_reference(str(message))

        a.send_signal(signal.SIGCONT)  # A reads its look-up's "not found", 0.5 s or more past its lease
        time.sleep(3)
        assert a.poll() is None, f"worker A exited {a.returncode}"
    finally:
        if a.poll() is None:
            a.send_signal(signal.SIGCONT)
            a.terminate()
        a.wait(30)
        log.close()
    assert a.returncode == 0, (tmp_path / "worker-a.log").read_text()
    assert fake.count_by_reference() == {str(message): 1}
    row = runner.run(db.fetch_one("SELECT status, notify_id FROM outbox_messages WHERE id = ?", (message,)))
    assert row == {"status": "sent", "notify_id": sent.id}
    assert "lease lost before the send" in (tmp_path / "worker-a.log").read_text()
