"""Bursts of dropped PostgreSQL connections (pg_terminate_backend, as in a fail-over or an operator's purge): the
worker carries on and sends every message once, and the web answers 503 with Retry-After, never 500.

Each burst terminates the worker's and the web's connections again and again, 40 in all, while the worker drains
the outbox and API calls keep coming; 20 bursts.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import asyncpg
import httpx
import pytest

from hub.app import create_app
from hub.db import connect
from hub.jobs.worker import send_policy, work
from hub.notify.dev import DevNotifier
from hub.notify.sender import drain_once
from hub.settings import load_settings
from tests.conftest import SECRET, MakeHub
from tests.databases import PG_URL
from tests.harness import Harness
from tests.pages import app_client

pytestmark = pytest.mark.anyio
BURSTS = 20
PER_BURST = 40
MESSAGES = 200
QUIET_OFF = {"notify.quiet_start_hour": 0, "notify.quiet_end_hour": 0}


async def _burst(admin: asyncpg.Connection, names: tuple[str, ...]) -> int:
    """Terminate the named clients' connections as they come back, until PER_BURST have gone (or a second)."""
    killed = 0
    deadline = time.monotonic() + 1
    while killed < PER_BURST and time.monotonic() < deadline:
        killed += await admin.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ANY($1::text[])",
            list(names),
        )
        await asyncio.sleep(0.005)
    return killed


async def _call_the_api(
    client: httpx.AsyncClient, key: str, stop: asyncio.Event, answers: list[httpx.Response]
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    while not stop.is_set():
        answers.append(await client.get("/api/v1/events", headers=headers))
        answers.append(await client.get("/healthz"))
        await asyncio.sleep(0.01)


async def _queue(hub: Harness, stop: asyncio.Event) -> None:
    for i in range(MESSAGES):
        if stop.is_set():
            return
        await hub.create_message(recipient=f"+447700{i:06d}", personalisation={"n": i})
        await asyncio.sleep(0.02)


async def _sent(hub: Harness) -> int:
    row = await hub.db.fetch_one("SELECT COUNT(*) AS n FROM outbox_messages WHERE status = 'sent'")
    return int(row["n"]) if row else 0


@pytest.mark.timeout(180)
async def test_the_worker_and_the_web_ride_out_bursts_of_dropped_connections(make_hub: MakeHub) -> None:
    hub = await make_hub(**QUIET_OFF)
    if hub.db.dialect != "postgresql":
        pytest.skip("terminating backends is PostgreSQL's")
    key = await hub.create_api_key()
    worker_name, web_name = f"worker_{secrets.token_hex(4)}", f"web_{secrets.token_hex(4)}"
    worker_db = await connect(f"{hub.database_url}&application_name={worker_name}", readers=1, pool_size=3)
    web_settings = load_settings(
        environ={},
        overrides={
            "database_url": f"{hub.database_url}&application_name={web_name}",
            "secret_key": SECRET,
            "allowed_hosts": ["testserver"],
        },
    )
    web = create_app(web_settings, clock=hub.clock, use_dev_outbox=True)
    stop_worker, stop_calls = asyncio.Event(), asyncio.Event()
    answers: list[httpx.Response] = []
    admin = await asyncpg.connect(PG_URL)
    async with web.router.lifespan_context(web), app_client(web, raise_app_exceptions=False) as client:
        worker = asyncio.create_task(
            work(worker_db, DevNotifier(hub.db, hub.clock), hub.settings, hub.clock, stop_worker)
        )
        queueing = asyncio.create_task(_queue(hub, stop_calls))
        calls = asyncio.create_task(_call_the_api(client, key, stop_calls, answers))
        try:
            killed = 0
            for _ in range(BURSTS):
                killed += await _burst(admin, (worker_name, web_name))
                await asyncio.sleep(0.1)
                assert not worker.done(), "the worker stopped"
            await queueing
            stop_calls.set()
            await calls
            deadline = time.monotonic() + 60
            while await _sent(hub) < MESSAGES:
                assert not worker.done(), "the worker stopped"
                assert time.monotonic() < deadline, f"{await _sent(hub)} of {MESSAGES} sent"
                await asyncio.sleep(0.1)
        finally:
            stop_calls.set()
            stop_worker.set()
            await asyncio.wait_for(worker, 30)
            await worker_db.close()
            await admin.close()
    refused = sum(r.status_code == 503 for r in answers)
    print(f"{killed} connections terminated, {len(answers)} calls, {refused} answered 503")
    assert killed >= BURSTS * 10
    statuses = {r.status_code for r in answers}
    assert statuses <= {200, 503}, statuses
    assert all(r.headers.get("retry-after") for r in answers if r.status_code == 503)
    sends = await hub.db.fetch_all("SELECT reference, COUNT(*) AS n FROM dev_messages GROUP BY reference")
    assert len(sends) == MESSAGES and {s["n"] for s in sends} == {1}


class _DropsTheWorkersConnections:
    """Notify answering while the worker's database connections are dropped: its results come back to a dead
    connection."""

    def __init__(self, inner: DevNotifier, admin: asyncpg.Connection, name: str) -> None:
        self._inner, self._admin, self._name = inner, admin, name
        self._one_at_a_time = asyncio.Lock()  # the messages go concurrently; the admin connection takes one query

    async def send(self, message: Any, *, start_by: float | None = None) -> str:
        notify_id = await self._inner.send(message, start_by=start_by)
        async with self._one_at_a_time:
            await self._admin.fetchval(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                self._name,
            )
        return notify_id

    async def find(self, reference: str) -> str | None:
        return await self._inner.find(reference)


async def test_results_that_come_back_to_a_dropped_connection_are_recorded_once_it_returns(make_hub: MakeHub) -> None:
    """Messages that went are recorded as sent as soon as the database answers again: not left 'sending' until
    their lease runs out (the clock here stands still, so they would stay so)."""
    hub = await make_hub(**QUIET_OFF)
    if hub.db.dialect != "postgresql":
        pytest.skip("terminating backends is PostgreSQL's")
    name = f"worker_{secrets.token_hex(4)}"
    worker_db = await connect(f"{hub.database_url}&application_name={name}", readers=1, pool_size=3)
    admin = await asyncpg.connect(PG_URL)
    try:
        for i in range(5):
            await hub.create_message(recipient=f"+447700{i:06d}", personalisation={"n": i})
        notifier = _DropsTheWorkersConnections(DevNotifier(hub.db, hub.clock), admin, name)
        sent = await drain_once(worker_db, notifier, hub.clock, policy=send_policy(hub.settings))
    finally:
        await worker_db.close()
        await admin.close()
    assert sent == 5
    statuses = await hub.db.fetch_all("SELECT status, claims FROM outbox_messages")
    assert [(s["status"], s["claims"]) for s in statuses] == [("sent", 1)] * 5
