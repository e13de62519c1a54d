"""Crash test of outbound HL7: `python -m hub worker` processes SIGKILLed mid-send, again and again, while the fake
PAS answers slowly and drops connections (before and after applying a message). Then every event has reached the
PAS, each applied once (the PAS drops a repeated control id, as a real one does), in event order."""

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

import pytest

from hub.db import Database, connect
from hub.db.migrate import migrate
from hub.settings import ROOT
from hub.store.events import record_event
from hub.store.hl7_outbound import start_cursor
from hub.vocabulary import EventKind
from tests import factories
from tests.conftest import SECRET
from tests.databases import own_database_url
from tests.fake_notify import FakeNotify, template_environ
from tests.fake_pas import FakePas

APPOINTMENTS = 8
KINDS = (
    EventKind.APPOINTMENT_CONFIRMED,
    EventKind.APPOINTMENT_REBOOK_REQUESTED,
    EventKind.APPOINTMENT_REBOOK_UPDATED,
    EventKind.TASK_REBOOKED,
    EventKind.APPOINTMENT_CANCEL_REQUESTED,
)
SEED = 20261129
KILLS = 6
DEADLINE = 180.0


async def _events(db: Database) -> list[int]:
    """Five events for each of eight appointments, interleaved as patients act at once."""
    await migrate(db)
    now = datetime.now(UTC)
    async with db.write() as tx:
        org = await factories.create_organisation(tx)
        site = await factories.create_site(tx, organisation_id=org)
        appointments = []
        for n in range(APPOINTMENTS):
            patient = await factories.create_patient(tx, organisation_id=org, now=now, mrn=f"RF{n:07d}")
            appointments.append(
                (
                    patient,
                    await factories.create_appointment(
                        tx, organisation_id=org, site_id=site, patient_id=patient, now=now, ref=f"APT-{n}"
                    ),
                )
            )
    assert await start_cursor(db, "RAL") == org
    ids = []
    async with db.write() as tx:
        for kind in KINDS:
            for patient, appointment in appointments:
                data = {"start": "2026-12-20T09:30:00+00:00"} if kind == EventKind.TASK_REBOOKED else {}
                ids.append(
                    await record_event(
                        tx,
                        at=now,
                        kind=kind,
                        organisation_id=org,
                        patient_id=patient,
                        appointment_id=appointment,
                        data=data,
                    )
                )
    return ids


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    with FakeNotify() as fake:
        yield fake


async def _cursor(db: Database) -> int:
    row = await db.fetch_one("SELECT last_event_id FROM hl7_outbound")
    return int(row["last_event_id"]) if row else 0


@pytest.mark.timeout(DEADLINE + 60)
def test_killed_workers_deliver_every_event_once_in_order(tmp_path: Path, notify: FakeNotify, backend: str) -> None:
    url = own_database_url(backend, tmp_path)
    rng = random.Random(SEED)
    # Slow answers (the worker is often killed between the PAS applying a message and the ACK arriving), and one
    # exchange in eight dropped.
    with FakePas(drop_rate=0.12, seed=SEED, delay=0.15).running() as pas, asyncio.Runner() as runner:
        db = runner.run(connect(url, readers=1))
        try:
            ids = runner.run(_events(db))
            env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
            env.update(
                HUB_DATABASE_URL=url,
                HUB_SECRET_KEY=SECRET,
                HUB_NOTIFY_API_KEY=notify.api_key,
                HUB_NOTIFY_BASE_URL=notify.url,
                HUB_WORKER__LEASE_SECONDS="1",  # the claim holds 2 x timeout + 2 s = 4 s
                HUB_HL7__LOCATIONS="RAL:RFH-OPD=RFH",
                HUB_HL7__OUTBOUND__ENABLED="true",
                HUB_HL7__OUTBOUND__ORGANISATION="RAL",
                HUB_HL7__OUTBOUND__HOST="127.0.0.1",
                HUB_HL7__OUTBOUND__PORT=str(pas.port),
                HUB_HL7__OUTBOUND__RECEIVING_FACILITY="RFH_PAS",
                HUB_HL7__OUTBOUND__TIMEOUT_SECONDS="1",
                HUB_HL7__OUTBOUND__RETRY_FIRST_SECONDS="1",
                HUB_HL7__OUTBOUND__RETRY_MAX_SECONDS="1",
            )
            env.update(template_environ())
            began = time.monotonic()
            kills = started = 0
            while runner.run(_cursor(db)) < ids[-1]:
                assert time.monotonic() - began < DEADLINE, f"{len(set(pas.applied))} of {len(ids)} after {DEADLINE}s"
                log = (tmp_path / f"worker-{started}.log").open("wb")
                command = [sys.executable, "-m", "hub", "worker"]
                process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
                started += 1
                if kills < KILLS:
                    # Killed once it has had an event or two answered, mid-way through the next.
                    seen = len(pas.arrivals)
                    while len(pas.arrivals) < seen + rng.randint(1, 3) and time.monotonic() - began < DEADLINE:
                        assert process.poll() is None, f"worker exited {process.returncode}: see {log.name}"
                        time.sleep(0.01)
                    time.sleep(rng.uniform(0.0, 0.15))
                    process.send_signal(signal.SIGKILL)
                    kills += 1
                else:
                    while runner.run(_cursor(db)) < ids[-1] and time.monotonic() - began < DEADLINE:
                        assert process.poll() is None, f"worker exited {process.returncode}: see {log.name}"
                        time.sleep(0.1)
                    process.send_signal(signal.SIGTERM)
                process.wait(30)
                log.close()
            deliveries = runner.run(db.fetch_all("SELECT event_id, ack_code FROM hl7_deliveries ORDER BY event_id"))
        finally:
            runner.run(db.close())
        controls = [f"HUBE{i}" for i in ids]
        print(f"{time.monotonic() - began:.0f}s, {kills} kills, {len(pas.arrivals)} sends for {len(ids)} events")
        # Each event reached the PAS and was applied once, in event order (so in order per appointment too).
        assert pas.applied == controls
        assert set(pas.arrivals) == set(controls)
        assert len(pas.arrivals) > len(controls), "no resend: the test did not catch a send in doubt"
        assert [(d["event_id"], d["ack_code"]) for d in deliveries] == [(i, "AA") for i in ids]
        assert kills == KILLS
