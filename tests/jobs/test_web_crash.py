"""A web process SIGKILLed just after answering sign-ins (issue 15): `python -m hub serve` issues security codes over
real HTTP and sends them to a fake Notify after each answer; it is killed while some sends are still in flight.
Then `python -m hub worker` runs, and within a bounded time every security code is sent, failed or expired; the
stranded ones are expired, not sent again, and no code reaches Notify twice.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

import httpx
import pytest

from hub.db import Database, connect
from hub.db.migrate import migrate
from hub.settings import ROOT
from tests import factories
from tests.conftest import SECRET
from tests.databases import own_database_url
from tests.fake_notify import FakeNotify, Fault, template_environ

CODE_LIFETIME = 2  # seconds: the worker expires stranded codes after this
START_SECONDS = 30.0
SETTLE_SECONDS = 15.0  # the bound: every code row sent, failed or expired this long after the worker starts
CODE_TEMPLATE = "5b0c2f4e-8a1d-4c3b-9e57-2d6f1a0b7c94"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Sent before the kill, each waited for: a code that goes, one Notify refuses, one that goes.
SETTLED = (None, "server_error", None)
# Then three sign-ins in a row whose sends Notify holds for longer than the test: in flight when the web dies.
IN_FLIGHT = 3
PATIENTS = [(f"+4477009002{n:02d}", f"07700 9002{n:02d}", f"19{50 + n}-0{n + 1}-1{n}") for n in range(6)]


@pytest.fixture
def fake() -> Iterator[FakeNotify]:
    with FakeNotify(slow_delay=60) as fake:
        yield fake


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(db: Database) -> None:
    await migrate(db)
    now = datetime.now(UTC)
    async with db.write() as tx:
        org = await factories.create_organisation(tx)
        for n, (mobile, _, dob) in enumerate(PATIENTS):
            await factories.create_patient(tx, organisation_id=org, now=now, mobile=mobile, dob=dob, mrn=f"MRN{n}")


async def _codes(db: Database) -> list[dict[str, object]]:
    return await db.fetch_all(
        "SELECT id, recipient, status FROM outbox_messages WHERE kind = 'security_code' ORDER BY id"
    )


class _Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        command = [sys.executable, "-m", "hub", *args]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        return self.process.returncode

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


def _sign_in(client: httpx.Client, typed: str, dob: str) -> None:
    match = _CSRF.search(client.get("/").text)
    assert match, "no CSRF token on the start page"
    born = date.fromisoformat(dob)
    form = {"csrf_token": match.group(1), "contact": typed, "dob-day": str(born.day)}
    form |= {"dob-month": str(born.month), "dob-year": str(born.year)}
    response = client.post("/sign-in", data=form)
    assert (response.status_code, response.headers.get("location")) == (303, "/sign-in/code"), response.text[:300]


@pytest.mark.timeout(120)
def test_codes_a_killed_web_process_left_unsent_end_expired(tmp_path: Path, fake: FakeNotify, backend: str) -> None:
    url = own_database_url(backend, tmp_path)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=url,
        HUB_SECRET_KEY=SECRET,
        HUB_BASE_URL=f"http://127.0.0.1:{port}",
        HUB_HTTP_SERVER="uvicorn",  # one process that runs the app itself: the one SIGKILL reaches
        HUB_NOTIFY_API_KEY=fake.api_key,
        HUB_NOTIFY_BASE_URL=fake.url,
        HUB_NOTIFY__QUIET_START_HOUR="0",  # quiet hours off, whatever the time of day
        HUB_NOTIFY__QUIET_END_HOUR="0",
        HUB_CODE_LIFETIME_SECONDS=str(CODE_LIFETIME),
    )
    env.update(template_environ(security_code_sms=CODE_TEMPLATE))
    with asyncio.Runner() as runner:
        db = runner.run(connect(url, readers=1))
        try:
            runner.run(_seed(db))
            _run(runner, db, env, port, tmp_path, fake)
        finally:
            runner.run(db.close())


def _run(runner: asyncio.Runner, db: Database, env: dict[str, str], port: int, folder: Path, fake: FakeNotify) -> None:
    web = _Process(["serve", "--host", "127.0.0.1", "--port", str(port)], env, folder / "web.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert web.process.poll() is None and time.monotonic() < deadline, web.tail()
                time.sleep(0.1)
            fake.inject(*SETTLED)
            for n, (_, typed, dob) in enumerate(PATIENTS[: len(SETTLED)]):
                _sign_in(client, typed, dob)
                while runner.run(_codes(db))[n]["status"] in ("queued", "sending"):
                    assert time.monotonic() < deadline + SETTLE_SECONDS, web.tail()
                    time.sleep(0.05)
            fake.inject(*[Fault("slow")] * IN_FLIGHT)
            for _, typed, dob in PATIENTS[len(SETTLED) :]:
                _sign_in(client, typed, dob)
        assert web.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        web.stop(signal.SIGKILL)
    stranded = [r["id"] for r in runner.run(_codes(db)) if r["status"] in ("queued", "sending")]
    assert len(stranded) == IN_FLIGHT, runner.run(_codes(db))

    worker = _Process(["worker"], env, folder / "worker.log")
    began = time.monotonic()
    try:
        while any(r["status"] in ("queued", "sending") for r in runner.run(_codes(db))):
            assert worker.process.poll() is None, worker.tail()
            assert time.monotonic() - began < SETTLE_SECONDS, (runner.run(_codes(db)), worker.tail())
            time.sleep(0.1)
    finally:
        worker.stop()

    codes = runner.run(_codes(db))
    assert [r["recipient"] for r in codes] == [mobile for mobile, _, _ in PATIENTS]
    assert [r["status"] for r in codes] == ["sent", "failed", "sent"] + ["expired"] * IN_FLIGHT
    assert [r["id"] for r in codes if r["status"] == "expired"] == stranded
    # Notify had each code it took once; the worker sent none of the stranded ones again.
    assert all(n == 1 for n in fake.count_by_reference().values())
    assert {m.reference for m in fake.messages} <= {str(r["id"]) for r in codes if r["status"] != "failed"}
    assert {str(codes[0]["id"]), str(codes[2]["id"])} <= {m.reference for m in fake.messages}
