"""The outbound cursor: one claim at a time, leases that lapse, fencing that stops a worker whose claim was taken
over, and the placer and filler ids kept from the hospital's SIUs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta

import pytest

from hub.clock import to_db
from hub.db import Transaction
from hub.rules.hl7_outbound import Answer
from hub.store import hl7_outbound as store
from hub.store.events import record_event
from hub.vocabulary import EventKind
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio
LEASE = timedelta(seconds=30)


async def _trust(make_hub: MakeHub) -> tuple[Harness, int]:
    hub = await make_hub()
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    org = await store.start_cursor(hub.db, "RAL")
    assert org is not None
    return hub, org


async def _confirmed(hub: Harness, org: int, ref: str) -> int:
    patient = await hub.create_patient(mrn=f"M-{ref}", mobile=None)
    appointment = await hub.create_appointment(patient_id=patient, ref=ref)
    async with hub.db.write() as tx:
        return await record_event(
            tx,
            at=hub.clock.now(),
            kind=EventKind.APPOINTMENT_CONFIRMED,
            organisation_id=org,
            patient_id=patient,
            appointment_id=appointment,
        )


async def test_one_claim_at_a_time_until_its_lease_runs_out(make_hub: MakeHub) -> None:
    hub, org = await _trust(make_hub)
    now = hub.clock.now()
    first = await store.claim_cursor(hub.db, org, now=now, lease=LEASE)
    assert first is not None and first[1:] == (0, 0)
    assert await store.claim_cursor(hub.db, org, now=now + LEASE / 2, lease=LEASE) is None
    second = await store.claim_cursor(hub.db, org, now=now + LEASE * 2, lease=LEASE)
    assert second is not None and second[0] == first[0] + 1
    assert not await store.holds(hub.db, org, first[0], until=now + LEASE * 2)
    assert await store.holds(hub.db, org, second[0], until=now + LEASE * 2)


async def test_a_worker_whose_claim_was_taken_over_records_nothing(make_hub: MakeHub) -> None:
    hub, org = await _trust(make_hub)
    now = hub.clock.now()
    assert not await store.has_work(hub.db, org, now=now)
    event_id = await _confirmed(hub, org, "A1")
    assert await store.has_work(hub.db, org, now=now)
    stale = await store.claim_cursor(hub.db, org, now=now, lease=LEASE)
    fresh = await store.claim_cursor(hub.db, org, now=now + LEASE * 2, lease=LEASE)
    assert stale is not None and fresh is not None
    ((_, event),) = await store.next_events(hub.db, org, after=0, limit=10, locations={})
    assert event is not None and event.id == event_id and event.appointment_ref == "A1"

    async def record(token: int) -> bool:
        return await store.record_answer(
            hub.db,
            org,
            token,
            event=event,
            control_id="HUBE1",
            message_type="SRM^S03",
            answer=Answer("AA", ""),
            attempts=1,
            now=now,
            lease=LEASE,
        )

    assert not await store.has_work(hub.db, org, now=now + LEASE * 2)  # held
    assert not await record(stale[0])
    await store.record_failure(hub.db, org, stale[0], error="TimeoutError", retry_at=now + LEASE * 9)
    assert await hub.db.fetch_all("SELECT event_id FROM hl7_deliveries") == []
    row = await hub.db.fetch_one("SELECT attempts, next_attempt_at FROM hl7_outbound")
    assert row == {"attempts": 0, "next_attempt_at": None}

    assert await record(fresh[0])
    # Recorded once: the same event cannot be recorded again, even by the claim holder.
    assert not await record(fresh[0])
    rows = await hub.db.fetch_all("SELECT event_id, ack_code FROM hl7_deliveries")
    assert rows == [{"event_id": event_id, "ack_code": "AA"}]


async def test_placer_and_filler_ids_are_kept_and_a_message_without_one_keeps_it(make_hub: MakeHub) -> None:
    hub, org = await _trust(make_hub)
    async with hub.db.write() as tx:
        await store.remember_ids(tx, org, "A1", placer_id="P1^RFH", filler_id="A1^RFH")
    async with hub.db.write() as tx:
        await store.remember_ids(tx, org, "A1", placer_id="", filler_id="A1^PAS")
    rows = await hub.db.fetch_all("SELECT ref, placer_id, filler_id FROM hl7_appointment_ids")
    assert rows == [{"ref": "A1", "placer_id": "P1^RFH", "filler_id": "A1^PAS"}]


async def test_the_cursor_starts_after_the_newest_event_and_is_made_once(make_hub: MakeHub) -> None:
    hub = await make_hub()
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    assert await store.start_cursor(hub.db, "NOPE") is None
    org = await hub.organisation_id("RAL")
    newest = await _confirmed(hub, org, "A1")
    assert await store.start_cursor(hub.db, "RAL") == org
    await _confirmed(hub, org, "A2")
    assert await store.start_cursor(hub.db, "RAL") == org
    row = await hub.db.fetch_one("SELECT last_event_id FROM hl7_outbound")
    assert row == {"last_event_id": newest}


async def _claim_while(hub: Harness, org: int, now: datetime, in_flight: str, params: tuple[object, ...]) -> object:
    """A claim made while another writer's UPDATE of the cursor (`in_flight`) is made and not yet committed: it
    waits for that row, and answers once the other commits."""

    def other(tx: Transaction) -> Awaitable[int]:
        return tx.execute(in_flight, params)

    async with held_write(hub.db, keys=(), doing=other):
        claiming = asyncio.create_task(store.claim_cursor(hub.db, org, now=now, lease=LEASE))
        await asyncio.sleep(0.3)
        assert not claiming.done()  # waiting for the other's row
    return await asyncio.wait_for(claiming, timeout=10)


async def test_a_claim_taken_while_another_was_being_made_gets_nothing(make_hub: MakeHub) -> None:
    # Another worker's claim is in flight when this one reads the cursor: once it commits, this claim's UPDATE finds
    # the count moved and takes nothing, rather than sharing its token.
    hub, org = await _trust(make_hub)
    now = hub.clock.now()
    other_claims = "UPDATE hl7_outbound SET claims = claims + 1, claimed_until = ? WHERE organisation_id = ?"
    assert await _claim_while(hub, org, now, other_claims, (to_db(now + LEASE), org)) is None
    assert await hub.db.fetch_one("SELECT claims FROM hl7_outbound") == {"claims": 1}


async def test_sending_to_the_pas_waits_for_no_patients_write(make_hub: MakeHub, backend: str) -> None:
    # Each confirmation's event is answered by the PAS while other patients act: on PostgreSQL the cursor's writes
    # take no lock of the whole hub (SQLite has one writer at a time).
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    hub, org = await _trust(make_hub)
    await _confirmed(hub, org, "A1")
    ((_, event),) = await store.next_events(hub.db, org, after=0, limit=10, locations={})
    assert event is not None
    someone_else = await hub.create_patient(mrn="M-other", mobile=None)

    async def send() -> bool:
        claimed = await store.claim_cursor(hub.db, org, now=hub.clock.now(), lease=LEASE)
        assert claimed is not None
        return await store.record_answer(
            hub.db,
            org,
            claimed[0],
            event=event,
            control_id="HUBE1",
            message_type="SRM^S03",
            answer=Answer("AE", "no such slot"),
            attempts=1,
            now=hub.clock.now(),
            lease=LEASE,
        )

    async with held_write(hub.db, patient=someone_else, doing=touch_patient(someone_else)):
        assert await asyncio.wait_for(send(), timeout=5)
    assert await hub.db.fetch_all("SELECT ack_code FROM hl7_deliveries") == [{"ack_code": "AE"}]
    assert len(await hub.db.fetch_all("SELECT id FROM tasks WHERE kind = 'hl7_refused'")) == 1


async def test_a_claim_never_takes_over_a_lease_renewed_since_its_read(make_hub: MakeHub) -> None:
    # The holder's lease had just lapsed when another worker read the cursor; the holder, still at work, records
    # the PAS's answer (cursor moved on, lease renewed) before the other's claim is written: the claim takes nothing,
    # where it would have started again from the old cursor and sent the answered event twice.
    hub, org = await _trust(make_hub)
    event_id = await _confirmed(hub, org, "A1")
    now = hub.clock.now()
    holder_claim = await store.claim_cursor(hub.db, org, now=now - LEASE * 2, lease=LEASE)  # lapsed by now
    assert holder_claim is not None
    holder_records = "UPDATE hl7_outbound SET last_event_id = ?, claimed_until = ? WHERE organisation_id = ?"
    assert await _claim_while(hub, org, now, holder_records, (event_id, to_db(now + LEASE), org)) is None
    assert await store.holds(hub.db, org, holder_claim[0], until=now)
