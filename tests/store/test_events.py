"""The events the hospital's system reads back: written in the change's transaction, read oldest first by cursor,
one trust at a time."""

from __future__ import annotations

import pytest

from hub.store.events import list_events, record_event
from hub.vocabulary import EventKind
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_events_are_read_oldest_first_after_a_cursor_one_trust_at_a_time(hub: Harness) -> None:
    ral = await hub.organisation_id()
    rvr = await hub.create_organisation(code="RVR", name="Other Trust")
    patient = await hub.create_patient(mrn="MRN1")
    appointment = await hub.create_appointment(patient_id=patient, ref="A1")
    async with hub.db.write() as tx:
        for n in range(3):
            await record_event(
                tx,
                at=hub.clock.now(),
                kind=EventKind.APPOINTMENT_CONFIRMED,
                organisation_id=ral,
                patient_id=patient,
                appointment_id=appointment,
                data={"n": n},
            )
        await record_event(tx, at=hub.clock.now(), kind=EventKind.LETTER_VIEWED, organisation_id=rvr, patient_id=None)
    async with hub.db.write() as tx:
        everything = await list_events(tx, organisation_id=ral, after=0, limit=100)
        first_two = await list_events(tx, organisation_id=ral, after=0, limit=2)
        rest = await list_events(tx, organisation_id=ral, after=int(first_two[-1]["id"]), limit=100)
        theirs = await list_events(tx, organisation_id=rvr, after=0, limit=100)
    assert [e["data"] for e in everything] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert first_two + rest == everything
    assert everything[0] == {
        "id": everything[0]["id"],
        "kind": "appointment.confirmed",
        "occurred_at": "2026-11-21T10:00:00Z",
        "patient_ref": "MRN1",
        "appointment_ref": "A1",
        "data": {"n": 0},
    }
    assert [(e["kind"], e["patient_ref"], e["appointment_ref"], e["data"]) for e in theirs] == [
        ("letter.viewed", None, None, {})
    ]
