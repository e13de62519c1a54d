"""The outbound cursor: one claim at a time, leases that lapse, fencing that stops a worker whose claim was taken
over, and the placer and filler ids kept from the hospital's SIUs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.rules.hl7_outbound import Answer
from hub.store import hl7_outbound as store
from hub.store.events import record_event
from hub.vocabulary import EventKind
from tests.conftest import MakeHub
from tests.harness import Harness

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
