"""Where "send a new link" meets the rest: the links the hub writes into messages (queued before the new link, or
written by an agent's outcome after it), a merged record's link, and the patient signed in when the link changed."""

from __future__ import annotations

import json
from collections.abc import Callable
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
from tests.staff_harness import set_up_staff

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
            tx,
            organisation_id=org,
            surviving_id=survivor,
            merged_id=merged,
            actor="hl7:PAS",
            now=now,
            templates=hub.settings.notify.templates,
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


async def test_an_agent_who_finds_a_merged_record_by_its_old_number_works_on_the_record_it_was_merged_into(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    """A patient quotes the hospital number on an old letter: the merged record. Stopping its texts, or sending it a
    link, would change an empty record and tell the agent it was done."""
    org = await hub.organisation_id("RAL")
    survivor = await hub.create_patient(mrn="KEEP", mobile="+447700900001")
    merged = await hub.create_patient(mrn="GONE", mobile="+447700900002")
    async with hub.db.write() as tx:
        await merge_patients(
            tx,
            organisation_id=org,
            surviving_id=survivor,
            merged_id=merged,
            actor="hl7:PAS",
            now=hub.clock.now(),
            templates=hub.settings.notify.templates,
        )
    await set_up_staff(hub, "erin", "admin", organisations=["RAL"])
    page = await hub.client.get("/staff/patients", params={"mrn": "GONE"})
    assert f'href="/staff/patients/{merged}"' in page.text
    response = await hub.client.get(f"/staff/patients/{merged}")
    assert response.status_code == 303 and response.headers["location"] == f"/staff/patients/{survivor}"
    response = await hub.client.get(f"/staff/patients/{merged}/new-link")
    assert response.status_code == 303 and response.headers["location"] == f"/staff/patients/{survivor}"
    for action in ("stop-texts", "send-link", "new-link"):
        response = await hub.post_form(f"/staff/patients/{merged}/{action}", {}, csrf_from="/staff")
        assert response.status_code == 303, action
        assert response.headers["location"].startswith(f"/staff/patients/{survivor}?done="), action
    row = await hub.db.fetch_one("SELECT sms_opted_out, link_rotated_at FROM patients WHERE id = ?", (survivor,))
    assert row is not None and row["sms_opted_out"] == 1 and row["link_rotated_at"] is not None
    # Another trust's agent is told nothing about the merge: not found, as any of that trust's records.
    other = new_browser(hub)
    await hub.organisation_id("RVR")
    await set_up_staff(other, "bob", "agent", organisations=["RVR"])
    assert (await other.client.get(f"/staff/patients/{merged}")).status_code == 404
    response = await other.post_form(f"/staff/patients/{merged}/stop-texts", {}, csrf_from="/staff")
    assert response.status_code == 404
