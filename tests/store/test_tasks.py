"""The booking centre's queue: what it lists and in what order, and claims that only one agent can win."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hub.rules.staff_scope import SYSTEM
from hub.rules.tasks import QueuePolicy
from hub.store.tasks import Filters, claim_next_task, claim_task, create_task, get_task, list_queue, release_task
from hub.vocabulary import TaskKind
from tests.harness import Harness
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio
QUEUE = QueuePolicy(sla_working_days=2, claim=timedelta(minutes=30), retry=timedelta(minutes=120), max_attempts=3)


async def _queue(hub: Harness, **filters: str) -> list[int]:
    rows = await list_queue(hub.db, scope=SYSTEM, filters=Filters(**filters), now=hub.clock.now(), policy=QUEUE)
    return [r["id"] for r in rows]


async def test_the_queue_is_open_tasks_oldest_first_and_tasks_waiting_for_a_retry_stay_out_of_sight(
    hub: Harness,
) -> None:
    patient = await hub.create_patient()
    now = hub.clock.now()
    newer = await hub.create_task(patient_id=patient, kind="cancel", created_at=now - timedelta(hours=1))
    older = await hub.create_task(patient_id=patient, kind="rebook", created_at=now - timedelta(days=3))
    await hub.create_task(patient_id=patient, status="closed")
    later = await hub.create_task(patient_id=patient, kind="inbound_text", not_before=now + timedelta(hours=1))
    assert await _queue(hub) == [older, newer]
    hub.clock.advance(hours=1)
    assert await _queue(hub) == [older, newer, later]


async def test_filters_narrow_the_queue_by_trust_site_specialty_and_kind(hub: Harness) -> None:
    patient = await hub.create_patient()
    cardiology = await hub.create_appointment(patient_id=patient, specialty="Cardiology")
    rebook = await hub.create_task(patient_id=patient, appointment_id=cardiology)
    text = await hub.create_task(patient_id=patient, kind="inbound_text")
    assert await _queue(hub) == [rebook, text]
    assert await _queue(hub, kind="inbound_text") == [text]
    assert await _queue(hub, site="RFH", specialty="Cardiology") == [rebook]
    assert await _queue(hub, specialty="Dermatology") == []
    assert await _queue(hub, organisation="RAL") == [rebook, text]
    assert await _queue(hub, organisation="XYZ") == []


def test_filters_from_a_query_keep_only_known_kinds_and_short_values() -> None:
    assert Filters.from_query({"kind": "rebook", "site": "R" * 50}) == Filters(kind="rebook", site="R" * 20)
    assert Filters.from_query({"kind": "drop table"}) == Filters()


async def test_of_many_agents_claiming_at_once_exactly_one_wins(hub: Harness) -> None:
    task_id = await hub.create_task(patient_id=await hub.create_patient())
    agents = [await hub.create_staff_user(username=f"agent{n}") for n in range(6)]
    now = hub.clock.now()
    wins = await asyncio.gather(
        *(claim_task(hub.db, task_id=task_id, staff_id=s, now=now, policy=QUEUE) for s in agents)
    )
    assert sum(wins) == 1
    [winner] = [s for s, won in zip(agents, wins, strict=True) if won]
    task = await get_task(hub.db, task_id, scope=SYSTEM, now=now, policy=QUEUE)
    assert task is not None and task["claimed_by"] == winner and task["held"]
    audit = await hub.db.fetch_all("SELECT actor_id, action FROM audit_events")
    assert audit == [{"actor_id": str(winner), "action": "task_claimed"}]


async def test_a_claim_lapses_and_can_be_released_only_by_its_holder(hub: Harness) -> None:
    task_id = await hub.create_task(patient_id=await hub.create_patient())
    alice, bob = await hub.create_staff_user(username="alice"), await hub.create_staff_user(username="bob")
    assert await claim_task(hub.db, task_id=task_id, staff_id=alice, now=hub.clock.now(), policy=QUEUE)
    assert not await release_task(hub.db, task_id=task_id, staff_id=bob, now=hub.clock.now())
    hub.clock.advance(minutes=29)
    assert not await claim_task(hub.db, task_id=task_id, staff_id=bob, now=hub.clock.now(), policy=QUEUE)
    hub.clock.advance(minutes=1)
    assert await claim_task(hub.db, task_id=task_id, staff_id=bob, now=hub.clock.now(), policy=QUEUE)
    assert await release_task(hub.db, task_id=task_id, staff_id=bob, now=hub.clock.now())
    task = await get_task(hub.db, task_id, scope=SYSTEM, now=hub.clock.now(), policy=QUEUE)
    assert task is not None and (task["status"], task["claimed_by"], task["held"]) == ("open", None, False)


async def test_a_closed_task_cannot_be_claimed(hub: Harness) -> None:
    task_id = await hub.create_task(patient_id=await hub.create_patient(), status="closed")
    staff = await hub.create_staff_user()
    assert not await claim_task(hub.db, task_id=task_id, staff_id=staff, now=hub.clock.now(), policy=QUEUE)


async def test_a_task_from_elsewhere_in_the_hub_keeps_its_source_and_a_reason_of_at_most_500_characters(
    hub: Harness,
) -> None:
    patient = await hub.create_patient()
    async with hub.db.write() as tx:
        await create_task(
            tx,
            kind=TaskKind.FAILED_NOTIFICATION,
            patient_id=patient,
            appointment_id=None,
            reason="x" * 600,
            now=hub.clock.now(),
            source_id=42,
        )
    [task] = await list_queue(hub.db, scope=SYSTEM, filters=Filters(), now=hub.clock.now(), policy=QUEUE)
    assert (task["kind"], task["reason"], task["status"], task["age"], task["sla"]) == (
        "failed_notification",
        "x" * 500,
        "open",
        0,
        "ok",
    )
    row = await hub.db.fetch_one("SELECT source_id FROM tasks")
    assert row == {"source_id": 42}


async def test_claiming_and_releasing_a_task_wait_for_no_patients_write(hub: Harness, backend: str) -> None:
    # Agents work the queue all day: a claim and a release are one conditional UPDATE each, so on PostgreSQL they
    # wait for no patient (SQLite has one writer at a time).
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    patient = await hub.create_patient()
    task_id = await hub.create_task(patient_id=patient)
    staff = await hub.create_staff_user()

    async def claim_and_release() -> bool:
        now = hub.clock.now()
        claimed = await claim_task(hub.db, task_id=task_id, staff_id=staff, now=now, policy=QUEUE)
        return claimed and await release_task(hub.db, task_id=task_id, staff_id=staff, now=now)

    async with held_write(hub.db, patient=patient, doing=touch_patient(patient)):
        assert await asyncio.wait_for(claim_and_release(), timeout=5)


async def test_claim_next_finds_a_waiting_task_behind_more_held_ones_than_it_reads_at_a_time(hub: Harness) -> None:
    """A busy booking centre: the 60 oldest call-backs are held by agents on the phone, the next one is waiting.
    "Claim the next call-back" must find it, not say there is none."""
    patient = await hub.create_patient()
    now = hub.clock.now()
    busy = await hub.create_staff_user(username="busy")
    for n in range(60):
        await hub.create_task(
            patient_id=patient, status="claimed", claimed_by=busy, created_at=now - timedelta(hours=2, minutes=n)
        )
    waiting = await hub.create_task(patient_id=patient, created_at=now - timedelta(hours=1))
    agent = await hub.create_staff_user(username="alice")
    claimed = await claim_next_task(hub.db, staff_id=agent, filters=Filters(), scope=SYSTEM, now=now, policy=QUEUE)
    assert claimed == waiting
