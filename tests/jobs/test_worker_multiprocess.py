"""Several hub processes on one PostgreSQL database: the release step, then two web and three worker processes.

While three `python -m hub worker` processes send 5,000 queued messages under a shared per-minute limit that
binds (the run needs two minutes' worth), patients sign in on one web process and carry on, and sign out, on the
other. Then Notify has every message exactly once, never more than the limit in any 60 s, and more than one worker
did the sending.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest

from hub.clock import to_db
from hub.db import Database, connect
from hub.settings import ROOT
from hub.store.outbox import queue_message
from hub.vocabulary import Channel, MessageKind
from tests.conftest import SECRET
from tests.databases import postgres_url
from tests.fake_notify import FakeNotifyProcess, RemoteFakeNotify, template_environ

pytestmark = pytest.mark.anyio

MESSAGES = 5000
PER_MINUTE = 2500  # half the messages: the limit has to hold the workers back for a minute
WEB_PROCESSES = 2
WORKER_PROCESSES = 3
DEADLINE = 200.0  # seconds for the outbox to empty; about 80 are needed
START_SECONDS = 30.0
STOP_SECONDS = 15.0
CODE_SECONDS = 15.0
BULK_TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
CODE_TEMPLATE = "5b0c2f4e-8a1d-4c3b-9e57-2d6f1a0b7c94"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# claimed_by is a token per batch, cleared once the message is sent, and workers log no counts: so the test
# notes, in the database itself, which process's connection marked each bulk message sent. Every process
# connects with its own application_name (asyncpg passes unknown URL parameters to the server as settings).
_SENT_BY = """
CREATE TABLE test_sent_by (message_id BIGINT NOT NULL, process TEXT NOT NULL);
CREATE FUNCTION test_note_sent_by() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_sent_by (message_id, process) VALUES (NEW.id, current_setting('application_name'));
    RETURN NULL;
END
$$;
CREATE TRIGGER test_sent_by AFTER UPDATE OF status ON outbox_messages FOR EACH ROW
    WHEN (OLD.status = 'sending' AND NEW.status = 'sent' AND NEW.lane = 'bulk')
    EXECUTE FUNCTION test_note_sent_by();
"""


@dataclass(frozen=True)
class _Patient:
    given_name: str
    family_name: str
    mobile: str  # as stored, E.164
    typed: str  # as the patient types it
    dob: str
    clinic: str

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


PATIENTS = (
    _Patient("Margaret", "Jones", "+447700900101", "07700 900101", "1948-03-14", "Cardiology outpatients"),
    _Patient("Tom", "Brown", "+447700900102", "07700 900102", "1990-07-02", "Dermatology outpatients"),
    _Patient("Priya", "Shah", "+447700900103", "07700 900103", "1975-11-30", "Fracture clinic"),
)


class _Processes:
    """Hub processes by name, each writing stdout and stderr to its own log file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}
        self.exit_codes: dict[str, int] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "hub", *args]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.running[name] = (process, log)

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, (p, _) in self.running.items() if p.poll() is not None}

    def stop_all(self) -> dict[str, int]:
        """SIGTERM to every process, then SIGKILL to any still running after STOP_SECONDS."""
        for process, _ in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for name, (process, log) in list(self.running.items()):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
            self.exit_codes[name] = process.returncode
            del self.running[name]
        return self.exit_codes

    def tails(self, lines: int = 30) -> str:
        out = []
        for log in sorted(self.folder.glob("*.log")):
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()
            out += [f"--- {log.name} (exit {self.exit_codes.get(log.stem, 'still running')})", *text[-lines:]]
        return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(database_url: str, fake: RemoteFakeNotify) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=database_url,
        HUB_SECRET_KEY=SECRET,
        HUB_NOTIFY_API_KEY=fake.api_key,
        HUB_NOTIFY_BASE_URL=fake.url,
        HUB_NOTIFY__PER_MINUTE=str(PER_MINUTE),
        HUB_NOTIFY__QUIET_START_HOUR="0",  # quiet hours off, whatever the time of day
        HUB_NOTIFY__QUIET_END_HOUR="0",
    )
    env.update(template_environ(security_code_sms=CODE_TEMPLATE))
    return env


def _named(env: dict[str, str], name: str) -> dict[str, str]:
    url = env["HUB_DATABASE_URL"]
    return {**env, "HUB_DATABASE_URL": f"{url}{'&' if '?' in url else '?'}application_name={name}"}


async def _seed(db: Database) -> None:
    """An organisation, a site, and each patient with one appointment a month ahead (no notices planned)."""
    now = datetime.now(UTC)
    stamp = to_db(now)
    async with db.write() as tx:
        org = await tx.fetch_one(
            "INSERT INTO organisations (code, name, phone) VALUES ('RAL', 'Test Trust', '020 7000 0000') RETURNING id"
        )
        assert org is not None
        site = await tx.fetch_one(
            "INSERT INTO sites (organisation_id, code, name, address, postcode, latitude, longitude, directions,"
            " parking, phone) VALUES (?, 'RFH', 'Royal Free Hospital', 'Pond Street, London', 'NW3 2QG', 51.5533,"
            " -0.1652, 'Walk.', 'Car park.', '020 7794 0500') RETURNING id",
            (org["id"],),
        )
        assert site is not None
        for n, p in enumerate(PATIENTS, start=1):
            patient = await tx.fetch_one(
                "INSERT INTO patients (organisation_id, mrn, given_name, family_name, date_of_birth, mobile,"
                " verification_code, contact_preference, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'sms', ?, ?) RETURNING id",
                (org["id"], f"MRN{n:05d}", p.given_name, p.family_name, p.dob, p.mobile, f"UVC{n:03d}", stamp, stamp),
            )
            assert patient is not None
            await tx.execute(
                "INSERT INTO appointments (organisation_id, ref, patient_id, site_id, clinic, specialty, clinician,"
                " starts_at, duration_minutes, mode, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, '', 'Dr A Example', ?, 30, 'in_person', 'booked', ?, ?)",
                (
                    org["id"],
                    f"A{n:05d}",
                    patient["id"],
                    site["id"],
                    p.clinic,
                    to_db(now + timedelta(days=30)),
                    stamp,
                    stamp,
                ),
            )


async def _queue_messages(db: Database) -> list[int]:
    """MESSAGES bulk texts in one transaction, each to its own number so the per-number caps never bite."""
    now = datetime.now(UTC)
    ids = []
    async with db.write() as tx:
        for i in range(MESSAGES):
            ids.append(
                await queue_message(
                    tx,
                    at=now,
                    kind=MessageKind.INVITATION,
                    channel=Channel.SMS,
                    recipient=f"+447700{i:06d}",
                    template_id=BULK_TEMPLATE,
                    personalisation={"n": i},
                    patient_id=None,
                )
            )
    return ids


async def _bulk_statuses(db: Database) -> dict[str, int]:
    rows = await db.fetch_all("SELECT status, COUNT(*) AS n FROM outbox_messages WHERE lane = 'bulk' GROUP BY status")
    return {r["status"]: int(r["n"]) for r in rows}


async def _wait_healthy(base_urls: list[str], processes: _Processes) -> None:
    deadline = time.monotonic() + START_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        for url in base_urls:
            while True:
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert not processes.exited(), f"a process stopped while starting: {processes.exited()}"
                assert time.monotonic() < deadline, f"{url} did not come up in {START_SECONDS:.0f}s"
                await asyncio.sleep(0.1)


def _csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def _read_code(db: Database, fake: RemoteFakeNotify, patient: _Patient) -> str:
    """The code in the newest security code text to the patient, from what the fake Notify received."""
    deadline = time.monotonic() + CODE_SECONDS
    while True:
        # Sent just after the answer to the details goes back: wait for the outbox to say it went.
        row = await db.fetch_one(
            "SELECT id, status FROM outbox_messages WHERE kind = 'security_code' AND recipient = ?"
            " ORDER BY id DESC LIMIT 1",
            (patient.mobile,),
        )
        if row is not None and row["status"] not in ("queued", "sending"):
            break
        assert time.monotonic() < deadline, f"no security code went to {patient.name}"
        await asyncio.sleep(0.1)
    assert row["status"] == "sent", f"the security code was not sent: {row['status']}"
    (message,) = fake.by_reference(str(row["id"]))
    assert (message.recipient, message.template_id) == (patient.mobile, CODE_TEMPLATE)
    return str(message.personalisation["code"])


async def _sign_in(client: httpx.AsyncClient, db: Database, fake: RemoteFakeNotify, patient: _Patient) -> str:
    """Details, then the code from Notify, on the client's web process. Returns the session cookie."""
    born = date.fromisoformat(patient.dob)
    response = await client.post(
        "/sign-in",
        data={
            "csrf_token": _csrf((await client.get("/")).text),
            "contact": patient.typed,
            "dob-day": str(born.day),
            "dob-month": str(born.month),
            "dob-year": str(born.year),
        },
    )
    assert (response.status_code, response.headers.get("location")) == (303, "/sign-in/code"), response.text
    code = await _read_code(db, fake, patient)
    token = _csrf((await client.get("/sign-in/code")).text)
    response = await client.post("/sign-in/code", data={"csrf_token": token, "code": code})
    assert (response.status_code, response.headers.get("location")) == (303, "/appointments"), response.text
    session = response.cookies.get("hub_session")
    assert session
    return session


async def _shows_appointments_of(client: httpx.AsyncClient, patient: _Patient) -> None:
    page = await client.get("/appointments")
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    assert patient.name in page.text
    assert patient.clinic in page.text
    others = [p.clinic for p in PATIENTS if p != patient and p.clinic in page.text]
    assert not others, f"{patient.name} sees other patients' appointments"


async def _is_signed_out(client: httpx.AsyncClient) -> None:
    page = await client.get("/appointments")
    assert (page.status_code, page.headers.get("location")) == (303, "/")


async def _sign_in_across_web_processes(db: Database, fake: RemoteFakeNotify, web: list[str]) -> None:
    """A session made on one web process works on the other, both ways; sign-out on one ends it on both."""
    first, second, _ = PATIENTS
    clients: list[httpx.AsyncClient] = []

    def browser(base_url: str, session: str | None = None) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=base_url, timeout=30, cookies={"hub_session": session} if session else {})
        clients.append(client)
        return client

    try:
        first_on_1 = browser(web[0])
        first_on_2 = browser(web[1], await _sign_in(first_on_1, db, fake, first))
        await _shows_appointments_of(first_on_1, first)
        await _shows_appointments_of(first_on_2, first)

        second_on_2 = browser(web[1])
        second_on_1 = browser(web[0], await _sign_in(second_on_2, db, fake, second))
        await _shows_appointments_of(second_on_1, second)
        await _shows_appointments_of(second_on_2, second)

        token = _csrf((await first_on_2.get("/sign-out")).text)
        response = await first_on_2.post("/sign-out", data={"csrf_token": token})
        assert (response.status_code, response.headers.get("location")) == (303, "/?signed_out=yes")
        await _is_signed_out(first_on_1)
        await _is_signed_out(first_on_2)
        await _shows_appointments_of(second_on_1, second)
    finally:
        for client in clients:
            await client.aclose()


async def _wait_until_sent(db: Database, processes: _Processes, began: float) -> float:
    """Seconds from `began` until every bulk message is sent."""
    while True:
        statuses = await _bulk_statuses(db)
        if statuses == {"sent": MESSAGES}:
            return time.monotonic() - began
        assert not processes.exited(), f"a process stopped: {processes.exited()}"
        assert not statuses.get("failed"), f"messages failed: {statuses}"
        assert time.monotonic() - began < DEADLINE, f"outbox not empty after {DEADLINE:.0f}s: {statuses}"
        await asyncio.sleep(0.5)


def _densest(times: list[float], seconds: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times)), default=0)


async def test_web_and_worker_processes_share_one_postgres_database(tmp_path: Path) -> None:
    url = await postgres_url(7, bare=True)
    processes = _Processes(tmp_path)
    # The fake refuses anything beyond the limit: codes (sent at once by the web processes) and bulk messages
    # (claimed by the workers) share it, bulk keeping a little of each minute free for codes.
    with FakeNotifyProcess(args=["--rate-limit", str(PER_MINUTE)]) as fake:
        env = _env(url, fake)
        try:
            migrated = subprocess.run(
                [sys.executable, "-m", "hub", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
            )
            assert migrated.returncode == 0, migrated.stderr
            assert migrated.stdout.startswith("Applied migrations:"), migrated.stdout
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(_SENT_BY)
            finally:
                await conn.close()
            db = await connect(url)
            try:
                await _seed(db)
                web = []
                for n in range(1, WEB_PROCESSES + 1):
                    port = _free_port()
                    processes.start(f"web-{n}", ["serve", "--port", str(port)], _named(env, f"web-{n}"))
                    web.append(f"http://127.0.0.1:{port}")
                workers = [f"worker-{n}" for n in range(1, WORKER_PROCESSES + 1)]
                for name in workers:
                    processes.start(name, ["worker"], _named(env, name))
                await _wait_healthy(web, processes)

                began = time.monotonic()
                ids = await _queue_messages(db)
                await _sign_in_across_web_processes(db, fake, web)
                during = await _bulk_statuses(db)
                seconds = await _wait_until_sent(db, processes, began)

                rows = await db.fetch_all("SELECT id, notify_id FROM outbox_messages WHERE lane = 'bulk'")
                sent_by = await db.fetch_all("SELECT message_id, process FROM test_sent_by")
            finally:
                await db.close()
            exit_codes = processes.stop_all()

            messages = fake.messages
            references = {str(i) for i in ids}
            bulk = [m for m in messages if m.reference in references]
            codes = len([m for m in messages if m.template_id == CODE_TEMPLATE])
            arrived = sorted(m.created_at.timestamp() for m in bulk)
            window = fake.max_in_window(60)
            whole = fake.max_in_window(10**9)
            spread = Counter(r["process"] for r in sent_by)
            print(
                f"\n{MESSAGES} queued and sent in {seconds:.0f}s ({arrived[-1] - arrived[0]:.0f}s first to last"
                f" at Notify); max in any 60s: {_densest(arrived, 60)} bulk, {window.requests} requests in all"
                f" (limit {PER_MINUTE}, {codes} codes); per worker: {dict(sorted(spread.items()))}"
            )

            assert during.get("sent", 0) < MESSAGES, "the sign-ins were meant to happen while the workers sent"
            # uvicorn shuts down gracefully on SIGTERM, then raises the signal again on itself.
            clean = {name: (0, -signal.SIGTERM) if name.startswith("web") else (0,) for name in exit_codes}
            assert all(code in clean[name] for name, code in exit_codes.items()), f"unclean stop: {exit_codes}"
            # Exactly once: every reference reached Notify once, and the outbox has Notify's id for each.
            assert Counter(m.reference for m in bulk) == dict.fromkeys(references, 1)
            assert {r["id"]: r["notify_id"] for r in rows} == {int(m.reference or 0): m.id for m in bulk}
            assert (len(messages), codes) == (MESSAGES + 2, 2)  # and the two sign-ins' codes
            # Every request to Notify was a send it accepted: no 429 refusals, and no lookups (nothing in doubt).
            assert whole == (len(messages), len(messages))
            assert _densest(arrived, 60) <= PER_MINUTE
            assert window.requests <= PER_MINUTE
            assert arrived[-1] - arrived[0] >= 60, "the limit should have made the sending take over a minute"
            # Work was shared: each message marked sent once, only by workers, and by more than one of them.
            assert sorted(r["message_id"] for r in sent_by) == sorted(ids)
            assert set(spread) <= set(workers), spread
            assert len(spread) >= 2, spread
        except BaseException:
            processes.stop_all()
            print(processes.tails(), file=sys.stderr)
            raise
        finally:
            processes.stop_all()
