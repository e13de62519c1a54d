from datetime import timedelta

import pytest

from hub.jobs.retention import claim_daily_job, purge_old_records
from hub.store.events import record_event
from hub.store.outbox import queue_message
from hub.vocabulary import Channel, EventKind, MessageKind
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def _count(hub: Harness, table: str) -> int:
    row = await hub.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def test_records_older_than_24_months_go_with_everything_that_hangs_off_them(hub: Harness) -> None:
    patient = await hub.create_patient()
    now = hub.clock.now()
    old = await hub.create_appointment(patient_id=patient, starts_at=now - timedelta(days=740), status="attended")
    kept = await hub.create_appointment(patient_id=patient, starts_at=now - timedelta(days=700), status="attended")
    await hub.create_letter(patient_id=patient, appointment_id=old)
    await hub.create_letter(patient_id=patient, appointment_id=kept)
    async with hub.db.write() as tx:
        for appointment in (old, kept):
            await queue_message(
                tx,
                at=now,
                kind=MessageKind.INVITATION,
                channel=Channel.SMS,
                recipient="+447700900001",
                template_id="",
                personalisation={},
                patient_id=patient,
                appointment_id=appointment,
            )
            await record_event(
                tx,
                at=now,
                kind=EventKind.APPOINTMENT_CONFIRMED,
                organisation_id=await hub.organisation_id(),
                patient_id=patient,
                appointment_id=appointment,
            )
            await tx.execute(
                "INSERT INTO scheduled_notices (appointment_id, kind, due_at) VALUES (?, 'reminder_1d', ?)",
                (appointment, "2030-01-01T00:00:00.000000Z"),
            )

    purged = await purge_old_records(hub.db, now=now)

    assert (purged.appointments, purged.letters, purged.messages) == (1, 1, 1)
    remaining = await hub.db.fetch_all("SELECT id FROM appointments")
    assert [r["id"] for r in remaining] == [kept]
    for table in ("letters", "outbox_messages", "events", "scheduled_notices"):
        assert await _count(hub, table) == 1, table


async def test_the_daily_job_runs_once_a_day_whichever_worker_asks(hub: Harness) -> None:
    assert await claim_daily_job(hub.db, "retention", now=hub.clock.now())
    assert not await claim_daily_job(hub.db, "retention", now=hub.clock.now())
    hub.clock.advance(hours=23, minutes=59)
    assert not await claim_daily_job(hub.db, "retention", now=hub.clock.now())
    hub.clock.advance(minutes=1)
    assert await claim_daily_job(hub.db, "retention", now=hub.clock.now())
