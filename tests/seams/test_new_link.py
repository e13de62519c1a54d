"""Where "send a new link" meets the rest: the links the hub writes into messages (queued before the new link, or
written by an agent's outcome after it), a merged record's link, and the patient signed in when the link changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hub.links import read_link_token
from hub.rules.tasks import QueuePolicy
from hub.store.links import patient_for_link, send_new_link
from hub.store.patient_merge import merge_patients
from hub.store.task_outcomes import Outcome, record_outcome
from hub.store.tasks import claim_task
from hub.vocabulary import ActorType, TaskOutcome
from tests.harness import Harness

pytestmark = pytest.mark.anyio
QUEUE = QueuePolicy(sla_working_days=2, claim=timedelta(minutes=30), retry=timedelta(minutes=120), max_attempts=3)


async def _new_link(hub: Harness, patient_id: int) -> str:
    sent = await send_new_link(
        hub.db,
        patient_id=patient_id,
        actor_type=ActorType.AGENT,
        actor_id=7,
        settings=hub.settings,
        now=hub.clock.now(),
    )
    assert sent is not None
    return sent.link_id


async def _reaches(hub: Harness, link: str) -> int | None:
    read = read_link_token(hub.settings, link.rsplit("/p/", 1)[1])
    assert read is not None
    return await patient_for_link(hub.db, read)


async def test_the_email_an_agent_sends_a_patient_with_no_phone_carries_a_link_that_survives_a_new_link(
    hub: Harness,
) -> None:
    patient = await hub.create_patient(mobile=None, email="m@example.com", contact_preference="email")
    appointment = await hub.create_appointment(patient_id=patient, request_state="rebook_requested")
    task = await hub.create_task(patient_id=patient, appointment_id=appointment)
    staff = await hub.create_staff_user(username="alice")
    assert await claim_task(hub.db, task_id=task, staff_id=staff, now=hub.clock.now(), policy=QUEUE)
    await record_outcome(
        hub.db,
        task_id=task,
        staff_id=staff,
        outcome=Outcome(TaskOutcome.EMAILED),
        settings=hub.settings,
        policy=QUEUE,
        now=hub.clock.now(),
    )
    [row] = await hub.db.fetch_all("SELECT personalisation FROM outbox_messages WHERE kind = 'no_answer'")
    link = json.loads(row["personalisation"])["link"]
    assert link == await hub.patient_link(patient)  # the random link id, not the patient's sequential id
    await _new_link(hub, patient)
    assert await _reaches(hub, link) is None  # the old one is dead, as the admin was told


async def test_messages_queued_before_a_new_link_carry_the_new_one(hub: Harness) -> None:
    patient = await hub.create_patient()
    other = await hub.create_patient(mrn="OTHER", mobile="+447700900002")
    old = await hub.patient_link(patient)
    queued = await hub.create_message(patient_id=patient, personalisation={"link": old, "date": "1 December 2026"})
    sent = await hub.create_message(patient_id=patient, personalisation={"link": old}, sent=True)
    theirs = await hub.create_message(patient_id=other, personalisation={"link": await hub.patient_link(other)})
    await _new_link(hub, patient)
    new = await hub.patient_link(patient)
    said = {
        r["id"]: json.loads(r["personalisation"])
        for r in await hub.db.fetch_all("SELECT id, personalisation FROM outbox_messages")
    }
    assert said[queued] == {"link": new, "date": "1 December 2026"}
    assert said[sent] == {"link": old}  # what went, went: the record of it stays true
    assert said[theirs] == {"link": await hub.patient_link(other)}


async def test_a_new_link_for_a_merged_patient_retires_the_merged_record_link_too(hub: Harness) -> None:
    org = await hub.organisation_id("RAL")
    survivor = await hub.create_patient(mrn="KEEP", mobile="+447700900001")
    merged = await hub.create_patient(mrn="GONE", mobile="+447700900002")
    merged_link = await hub.patient_link(merged)
    async with hub.db.write() as tx:
        now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
        assert await merge_patients(
            tx, organisation_id=org, surviving_id=survivor, merged_id=merged, actor="hl7:PAS", now=now
        )
    assert await _reaches(hub, merged_link) == merged  # reaches the survivor through merged_into
    await _new_link(hub, survivor)
    # The patient's link may be in the wrong hands: every link of theirs stops, the merged record's as well.
    assert await _reaches(hub, merged_link) is None


async def test_a_new_link_signs_the_patient_out_everywhere(hub: Harness) -> None:
    """The new link is for a link in the wrong hands (a lost phone): a session on that phone ends with it."""
    patient = await hub.create_patient()
    response = await hub.sign_in()
    assert response.headers["location"] == "/appointments"
    assert (await hub.client.get("/appointments")).status_code == 200
    await _new_link(hub, patient)
    response = await hub.client.get("/appointments")
    assert response.status_code in (302, 303) and "/appointments" not in response.headers["location"]
