from datetime import UTC, datetime, timedelta

import pytest

from hub.clock import to_db
from hub.jobs.retention import claim_daily_job, purge_old_records
from hub.store.events import record_event
from hub.vocabulary import EventKind
from tests import factories
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
    # Each letter with a number a T10 replaced, each message a posted copy to go as the hub's own letter.
    await hub.create_letter(patient_id=patient, appointment_id=old, replaced_refs=["DOC-1"])
    await hub.create_letter(patient_id=patient, appointment_id=kept, replaced_refs=["DOC-2"])
    for appointment in (old, kept):
        await hub.create_message(patient_id=patient, appointment_id=appointment, template_id="", templated=True)
        async with hub.db.write() as tx:
            await record_event(
                tx,
                at=now,
                kind=EventKind.APPOINTMENT_CONFIRMED,
                organisation_id=await hub.organisation_id(),
                patient_id=patient,
                appointment_id=appointment,
            )
        await hub.create_scheduled_notice(appointment_id=appointment, due_at=datetime(2030, 1, 1, tzinfo=UTC))

    purged = await purge_old_records(hub.db, now=now)

    assert (purged.appointments, purged.letters, purged.messages) == (1, 1, 1)
    remaining = await hub.db.fetch_all("SELECT id FROM appointments")
    assert [r["id"] for r in remaining] == [kept]
    for table in (
        "letters",
        "replaced_letter_refs",
        "outbox_messages",
        "templated_letters",
        "events",
        "scheduled_notices",
    ):
        assert await _count(hub, table) == 1, table


async def test_the_daily_job_runs_once_a_day_whichever_worker_asks(hub: Harness) -> None:
    assert await claim_daily_job(hub.db, "retention", now=hub.clock.now())
    assert not await claim_daily_job(hub.db, "retention", now=hub.clock.now())
    hub.clock.advance(hours=23, minutes=59)
    assert not await claim_daily_job(hub.db, "retention", now=hub.clock.now())
    hub.clock.advance(minutes=1)
    assert await claim_daily_job(hub.db, "retention", now=hub.clock.now())


async def test_an_old_appointment_that_held_a_slot_goes_with_its_moves_offers_and_requests(hub: Harness) -> None:
    # Before, its slot (and its slot moves, offers and earlier requests) still pointed at it: the database refused
    # the whole purge, every day, and the worker stopped on it.
    patient = await hub.create_patient()
    now = hub.clock.now()
    when = now - timedelta(days=740)
    old = await hub.create_appointment(patient_id=patient, starts_at=when, status="attended")
    kept = await hub.create_appointment(patient_id=patient, starts_at=now + timedelta(days=7))
    held = await hub.create_slot(starts_at=when, status="busy", appointment_id=old, ref="HELD")
    earlier = await hub.create_slot(starts_at=when - timedelta(days=3), status="free", ref="EARLIER")
    future = await hub.create_slot(starts_at=now + timedelta(days=3), status="free", ref="FUTURE")
    async with hub.db.write() as tx:
        await factories.create_slot_move(
            tx,
            appointment_id=old,
            from_slot_id=earlier,
            to_slot_id=held,
            previous_start=when,
            at=when,
            actor_id=str(patient),
        )
        # An agent's rebook to a time typed in: out of HELD into no slot.
        await factories.create_slot_move(
            tx,
            appointment_id=old,
            from_slot_id=held,
            to_slot_id=None,
            previous_start=when,
            at=when,
            actor_type="agent",
            how="agent",
        )
        for appointment, slot in ((old, earlier), (kept, future)):
            await tx.execute(
                "INSERT INTO slot_offers (slot_id, appointment_id, patient_id, batch, status, offered_at, expires_at)"
                " VALUES (?, ?, ?, 1, 'declined', ?, ?)",
                (slot, appointment, patient, to_db(when), to_db(when)),
            )
        for appointment in (old, kept):
            await tx.execute(
                "INSERT INTO earlier_requests (appointment_id, patient_id, created_at) VALUES (?, ?, ?)",
                (appointment, patient, to_db(when)),
            )
    purged = await purge_old_records(hub.db, now=now)
    assert purged.appointments == 1
    assert [r["id"] for r in await hub.db.fetch_all("SELECT id FROM appointments")] == [kept]
    # The hospital's past slots go with them; the future one, and everything about the appointment kept, stay.
    assert [r["ref"] for r in await hub.db.fetch_all("SELECT ref FROM slots ORDER BY id")] == ["FUTURE"]
    assert await _count(hub, "slot_moves") == 0
    assert [r["appointment_id"] for r in await hub.db.fetch_all("SELECT appointment_id FROM slot_offers")] == [kept]
    assert [r["appointment_id"] for r in await hub.db.fetch_all("SELECT appointment_id FROM earlier_requests")] == [
        kept
    ]
