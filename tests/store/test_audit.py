"""The audit trail and the events the hospital reads back: written in the change's transaction, read by cursor."""

from __future__ import annotations

import pytest

from hub.store.audit import list_events, record_audit, record_event
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_an_audit_entry_records_who_did_what_to_which_record(hub: Harness) -> None:
    async with hub.db.write() as tx:
        await record_audit(
            tx,
            at=hub.clock.now(),
            actor_type="agent",
            actor_id=7,
            action="task_claimed",
            record_type="callback_task",
            record_id=12,
        )
    [row] = await hub.db.fetch_all(
        "SELECT at, actor_type, actor_id, action, record_type, record_id, detail FROM audit_events"
    )
    assert row == {
        "at": "2026-11-21T10:00:00.000000Z",
        "actor_type": "agent",
        "actor_id": "7",
        "action": "task_claimed",
        "record_type": "callback_task",
        "record_id": "12",
        "detail": "",
    }


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
                kind="appointment.confirmed",
                organisation_id=ral,
                patient_id=patient,
                appointment_id=appointment,
                data={"n": n},
            )
        await record_event(tx, at=hub.clock.now(), kind="letter.viewed", organisation_id=rvr, patient_id=None)
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
