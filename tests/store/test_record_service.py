"""The Record Service's lists, on both databases: who qualifies, claims, outcomes, resend."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from hub.db import connect
from hub.store.record_service import (
    claim_due_numbers,
    count_sent,
    mark_failed,
    mark_sent,
    queue_all_numbers,
    queue_new_numbers,
    request_resend,
)
from hub.vocabulary import RecordResource
from tests.harness import Harness
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio
ADULT_BY = date(2010, 11, 21)  # 16 on the test clock's day
APPOINTMENTS, DOCUMENTS = RecordResource.APPOINTMENTS, RecordResource.DOCUMENTS


async def _queued(hub: Harness, resource: RecordResource) -> list[str]:
    rows = await hub.db.fetch_all(
        "SELECT nhs_number FROM record_service_numbers WHERE resource = ? ORDER BY nhs_number", (resource,)
    )
    return [r["nhs_number"] for r in rows]


async def test_new_appointments_queue_their_patients_once(hub: Harness) -> None:
    adult = await hub.create_patient(nhs_number="9434765919")
    await hub.create_appointment(patient_id=adult)
    await hub.create_appointment(patient_id=adult)
    child = await hub.create_patient(nhs_number="9000000009", dob="2010-11-22")  # 16 tomorrow
    await hub.create_appointment(patient_id=child)
    excluded = await hub.create_patient(nhs_number="9876543210", nhs_app_excluded=True)
    await hub.create_appointment(patient_id=excluded)
    unknown = await hub.create_patient(nhs_number=None)
    await hub.create_appointment(patient_id=unknown)
    now = hub.clock.now()
    assert await queue_new_numbers(hub.db, resource=APPOINTMENTS, adult_born_by=ADULT_BY, now=now) == 1
    assert await queue_new_numbers(hub.db, resource=APPOINTMENTS, adult_born_by=ADULT_BY, now=now) == 0
    assert await _queued(hub, APPOINTMENTS) == ["9434765919"]
    assert await _queued(hub, DOCUMENTS) == []
    # The next day the child is 16: the daily pass finds them.
    tomorrow = date(2010, 11, 22)
    assert await queue_all_numbers(hub.db, resource=APPOINTMENTS, adult_born_by=tomorrow, now=now) == 1
    assert await _queued(hub, APPOINTMENTS) == ["9000000009", "9434765919"]


async def test_letters_make_the_documents_list(hub: Harness) -> None:
    patient = await hub.create_patient(nhs_number="9434765919")
    await hub.create_letter(patient_id=patient)
    assert await queue_new_numbers(hub.db, resource=DOCUMENTS, adult_born_by=ADULT_BY, now=hub.clock.now()) == 1
    assert await _queued(hub, DOCUMENTS) == ["9434765919"]


async def test_a_claim_holds_numbers_until_the_outcome(hub: Harness) -> None:
    for number in ("9434765919", "9000000009", "9876543210"):
        await hub.create_appointment(patient_id=await hub.create_patient(nhs_number=number))
    now, lease = hub.clock.now(), timedelta(minutes=2)
    await queue_all_numbers(hub.db, resource=APPOINTMENTS, adult_born_by=ADULT_BY, now=now)
    first = await claim_due_numbers(hub.db, resource=APPOINTMENTS, limit=2, now=now, lease=lease)
    second = await claim_due_numbers(hub.db, resource=APPOINTMENTS, limit=5, now=now, lease=lease)
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)
    await mark_sent(hub.db, resource=APPOINTMENTS, numbers=first, now=now)
    await mark_failed(
        hub.db, resource=APPOINTMENTS, numbers=second, retry_at=now + timedelta(minutes=1), error="503", now=now
    )
    assert await count_sent(hub.db, resource=APPOINTMENTS) == 2
    later = now + timedelta(minutes=1)
    assert await claim_due_numbers(hub.db, resource=APPOINTMENTS, limit=5, now=later, lease=lease) == second
    audit = await hub.db.fetch_all("SELECT action, detail FROM audit_events ORDER BY id")
    assert audit == [
        {"action": "record_service_sent", "detail": "2 numbers"},
        {"action": "record_service_failed", "detail": "1 numbers: 503"},
    ]


async def test_a_resend_puts_every_number_back(hub: Harness) -> None:
    await hub.create_appointment(patient_id=await hub.create_patient(nhs_number="9434765919"))
    now = hub.clock.now()
    await queue_all_numbers(hub.db, resource=APPOINTMENTS, adult_born_by=ADULT_BY, now=now)
    numbers = await claim_due_numbers(hub.db, resource=APPOINTMENTS, limit=10, now=now, lease=timedelta(minutes=2))
    await mark_sent(hub.db, resource=APPOINTMENTS, numbers=numbers, now=now)
    assert await claim_due_numbers(hub.db, resource=APPOINTMENTS, limit=10, now=now, lease=timedelta(0)) == []
    assert await request_resend(hub.db, actor="cli", now=now) == 1
    assert await claim_due_numbers(hub.db, resource=APPOINTMENTS, limit=10, now=now, lease=timedelta(0)) == numbers


async def test_the_daily_pass_waits_for_no_patients_write(hub: Harness, backend: str) -> None:
    # The pass reads every patient with an appointment: on PostgreSQL it locks its own list, not the hub, so a
    # patient acting meanwhile is not held up (SQLite has one writer at a time).
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    patient = await hub.create_patient(nhs_number="9434765919")
    await hub.create_appointment(patient_id=patient)
    async with held_write(hub.db, patient=patient, doing=touch_patient(patient)):
        everyone = queue_all_numbers(hub.db, resource=APPOINTMENTS, adult_born_by=ADULT_BY, now=hub.clock.now())
        assert await asyncio.wait_for(everyone, timeout=5) == 1
    assert await _queued(hub, APPOINTMENTS) == ["9434765919"]


async def test_two_workers_claiming_at_once_take_each_number_once(hub: Harness) -> None:
    # Each claim reads the due numbers and then holds them: the list's lock makes the two take turns.
    for n in range(6):
        patient = await hub.create_patient(nhs_number=f"94347659{n:02d}")
        await hub.create_appointment(patient_id=patient)
    await queue_new_numbers(hub.db, resource=APPOINTMENTS, adult_born_by=ADULT_BY, now=hub.clock.now())
    other = await connect(hub.settings.database_url)
    try:
        lease = timedelta(minutes=5)
        first, second = await asyncio.gather(
            claim_due_numbers(hub.db, resource=APPOINTMENTS, limit=4, now=hub.clock.now(), lease=lease),
            claim_due_numbers(other, resource=APPOINTMENTS, limit=4, now=hub.clock.now(), lease=lease),
        )
    finally:
        await other.close()
    assert sorted(first + second) == sorted(f"94347659{n:02d}" for n in range(6))
