"""The HL7 listener's answers, and what the PAS answered to the events sent to it, are kept as long as everything
else: 24 months."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.clock import to_db
from hub.jobs.retention import purge_old_records
from hub.rules.hl7_outbound import Answer
from hub.store import hl7_outbound as outbound
from hub.store.events import record_event
from hub.store.hl7 import get_answer, record_answer
from hub.vocabulary import EventKind
from tests.conftest import MakeHub

pytestmark = pytest.mark.anyio


async def test_answers_older_than_24_months_are_removed(make_hub: MakeHub) -> None:
    hub = await make_hub()
    now = hub.clock.now()
    async with hub.db.write() as tx:
        for control_id, age in (("OLD", timedelta(days=740)), ("NEW", timedelta(days=700))):
            await record_answer(
                tx,
                facility="PAS",
                control_id=control_id,
                message_type="SIU^S12",
                code="AA",
                ack=control_id,
                now=now - age,
            )
    await purge_old_records(hub.db, now=now)
    async with hub.db.write() as tx:
        assert (await get_answer(tx, "PAS", "OLD"), await get_answer(tx, "PAS", "NEW")) == (None, "NEW")


async def test_outbound_deliveries_older_than_24_months_and_ids_of_removed_appointments_go(make_hub: MakeHub) -> None:
    hub = await make_hub()
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    org = await outbound.start_cursor(hub.db, "RAL")
    assert org is not None
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, ref="A1")
    now = hub.clock.now()
    for age in (timedelta(days=740), timedelta(days=700)):
        async with hub.db.write() as tx:
            await record_event(
                tx,
                at=now - age,
                kind=EventKind.APPOINTMENT_CONFIRMED,
                organisation_id=org,
                patient_id=patient,
                appointment_id=appointment,
            )
        claim = await outbound.claim_cursor(hub.db, org, now=now - age, lease=timedelta(seconds=30))
        assert claim is not None
        ((_, event),) = await outbound.next_events(hub.db, org, after=claim[1], limit=1, locations={})
        assert event is not None
        assert await outbound.record_answer(
            hub.db,
            org,
            claim[0],
            event=event,
            control_id=f"HUBE{event.id}",
            message_type="SRM^S03",
            answer=Answer("AA", ""),
            attempts=1,
            now=now - age,
            lease=timedelta(seconds=30),
        )
        await outbound.release(hub.db, org, claim[0])
    old = await hub.create_appointment(patient_id=patient, ref="OLD", starts_at=now - timedelta(days=800))
    assert old
    async with hub.db.write() as tx:  # the PAS's ids of an appointment removed go with it
        for ref in ("A1", "OLD"):
            await outbound.remember_ids(tx, org, ref, placer_id=f"P-{ref}", filler_id=f"F-{ref}")
    await purge_old_records(hub.db, now=now)
    rows = await hub.db.fetch_all("SELECT answered_at FROM hl7_deliveries")
    assert [r["answered_at"] for r in rows] == [to_db(now - timedelta(days=700))]
    ids = await hub.db.fetch_all("SELECT ref FROM hl7_appointment_ids")
    assert ids == [{"ref": "A1"}]
