"""Where this round's patient-side features meet: the "changed on ... It was on ..." notice beside earlier-slot offers,
merges, a reinstated appointment and the night the clocks go back; calendar files after a move; decoy sign-ins beside
the "not received" resend and its limits; messages naming an appointment after a merge."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from hub.store.links import send_new_link
from hub.store.offers import run_offers, set_earlier_request
from hub.store.patient_merge import merge_patients
from hub.store.task_outcomes import Outcome, record_outcome
from hub.store.tasks import claim_task
from hub.vocabulary import ActorType, TaskOutcome
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.pas import PATIENT
from tests.seams.conftest import EARLIER, rows
from tests.seams.test_api_hl7 import BODY, api
from tests.seams.test_api_offers import moved_by_offer
from tests.staff_harness import set_up_staff
from tests.web.staff.test_queue import QUEUE
from tests.web.staff.test_queue import _claim as claim
from tests.web.staff.test_queue import _outcome as outcome

pytestmark = pytest.mark.anyio
DEC14 = datetime(2026, 12, 14, 10, 0, tzinfo=UTC)


def text_of(page_text: str) -> str:
    return " ".join(page_text.split())


async def put(hub: Harness, key: str, ref: str, **body: object) -> None:
    payload = {"patient_ref": "MRN1", "site_code": "RFH", "duration_minutes": 30, **body}
    answer = await hub.client.put(
        f"/api/v1/appointments/{ref}", json=payload, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200, answer.text


async def test_an_earlier_slot_taken_says_you_moved_it_and_the_calendar_replaces_its_copy(trust: Harness) -> None:
    _, appointment, _ = await moved_by_offer(trust)
    await trust.sign_in()
    text = text_of((await trust.get_page(f"/appointments/{appointment}")).text)
    assert "You changed this appointment on Saturday 21 November 2026." in text
    assert "It was on Monday 14 December 2026 at 9:30am." in text
    ics = (await trust.client.get(f"/appointments/{appointment}.ics")).text
    assert "SEQUENCE:1" in ics and "20261128T093000" in ics and "20261214" not in ics


async def test_a_cancelled_then_reinstated_appointment_at_its_own_time_has_no_changed_notice(hub: Harness) -> None:
    patient = await hub.create_patient(mrn="MRN1")
    appointment = await hub.create_appointment(patient_id=patient, ref="A1", starts_at=DEC14)
    key = await hub.create_api_key()
    await put(hub, key, "A1", start=DEC14.isoformat(), status="cancelled")
    await put(hub, key, "A1", start=DEC14.isoformat(), status="booked")
    await hub.sign_in()
    text = text_of((await hub.get_page(f"/appointments/{appointment}")).text)
    assert "changed this appointment" not in text
    assert await rows(hub, "SELECT status FROM appointments") == [{"status": "booked"}]


async def test_reinstated_at_a_new_time_the_notice_names_the_time_before(hub: Harness) -> None:
    patient = await hub.create_patient(mrn="MRN1")
    appointment = await hub.create_appointment(patient_id=patient, ref="A1", starts_at=DEC14)
    key = await hub.create_api_key()
    await put(hub, key, "A1", start=DEC14.isoformat(), status="cancelled")
    await put(hub, key, "A1", start="2026-12-16T15:00:00+00:00", status="booked")
    await hub.sign_in()
    text = text_of((await hub.get_page(f"/appointments/{appointment}")).text)
    assert "The hospital changed this appointment on Saturday 21 November 2026." in text
    assert "It was on Monday 14 December 2026 at 10am." in text


async def test_moved_within_the_repeated_hour_the_notice_tells_the_two_times_apart(hub: Harness) -> None:
    hub.clock.set(datetime(2026, 10, 20, 10, 0, tzinfo=UTC))
    patient = await hub.create_patient(mrn="MRN1")
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 1:30am BST, then the clocks go back at 2am
    appointment = await hub.create_appointment(patient_id=patient, ref="A1", starts_at=first)
    key = await hub.create_api_key()
    await put(hub, key, "A1", start="2026-10-25T01:30:00+00:00")  # 1:30am GMT, an hour later
    await hub.sign_in()
    text = text_of((await hub.get_page(f"/appointments/{appointment}")).text)
    assert "Sunday 25 October 2026 at 1:30am GMT" in text
    assert "It was on Sunday 25 October 2026 at 1:30am BST." in text


async def test_after_a_merge_the_survivor_sees_the_merged_records_move_and_its_messages(hub: Harness) -> None:
    survivor = await hub.create_patient(mrn="MRN1")
    merged = await hub.create_patient(mrn="MRN2", mobile="+447700900002")
    appointment = await hub.create_appointment(patient_id=merged, ref="A2", starts_at=DEC14)
    key = await hub.create_api_key()
    await put(hub, key, "A2", patient_ref="MRN2", start="2026-12-16T15:00:00+00:00")
    assert await rows(hub, "SELECT COUNT(*) AS n FROM outbox_messages WHERE patient_id = ?", (merged,)) != [{"n": 0}]
    async with hub.db.write() as tx:
        assert await merge_patients(
            tx,
            organisation_id=await hub.organisation_id(),
            surviving_id=survivor,
            merged_id=merged,
            actor="pas",
            now=hub.clock.now(),
            templates=hub.settings.notify.templates,
        )
    await hub.sign_in()
    text = text_of((await hub.get_page(f"/appointments/{appointment}")).text)
    assert "The hospital changed this appointment on Saturday 21 November 2026." in text
    messages = text_of((await hub.get_page("/messages")).text)
    assert "A change to your appointment: Wednesday 16 December 2026" in messages


async def test_a_decoy_can_be_resent_as_often_as_a_match_and_nothing_is_left_to_see(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    await hub.create_patient(mobile="+447700900001", dob="1948-03-14")
    answers: dict[str, list[int]] = {}
    for name, details in {"match": ("07700 900001", "1948-03-14"), "miss": ("07700 900999", "1948-03-14")}.items():
        browser = new_browser(hub)
        first = await browser.submit_details(*details)
        answers[name] = [first.status_code]
        for _ in range(5):
            resent = await browser.post_form("/sign-in/resend", {}, csrf_from="/sign-in/code")
            answers[name].append(resent.status_code)
        hub.clock.advance(hours=1, seconds=1)  # the client's own cap is shared by both browsers
    assert answers["miss"] == answers["match"] == [303, 303, 303, 303, 303, 429]
    # The miss's decoys are gone; nothing became a failed message or a task an agent would see.
    assert await rows(hub, "SELECT COUNT(*) AS n FROM outbox_messages WHERE patient_id IS NULL") == [{"n": 0}]
    assert await rows(hub, "SELECT COUNT(*) AS n FROM tasks") == [{"n": 0}]
    assert await rows(hub, "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'sign_in_unmatched'") == [{"n": 5}]


async def test_a_message_held_overnight_goes_with_the_link_given_since_not_the_rotated_one(hub: Harness) -> None:
    patient = await hub.create_patient(mrn="MRN1")
    await hub.create_appointment(patient_id=patient, ref="A1", starts_at=DEC14)
    key = await hub.create_api_key()
    hub.clock.set(datetime(2026, 11, 21, 21, 0, tzinfo=UTC))  # 9pm: quiet hours hold the message back
    await put(hub, key, "A1", start="2026-12-16T15:00:00+00:00")
    old = await hub.patient_link(patient)
    assert await hub.send_queued() == 0
    assert await send_new_link(
        hub.db, patient_id=patient, actor_type=ActorType.AGENT, actor_id=1, settings=hub.settings, now=hub.clock.now()
    )
    new = await hub.patient_link(patient)
    hub.clock.set(datetime(2026, 11, 22, 8, 30, tzinfo=UTC))
    await hub.send_queued()
    sent = await rows(hub, "SELECT kind, personalisation FROM dev_messages WHERE kind = 'changed'")
    assert len(sent) == 1
    assert json.loads(sent[0]["personalisation"])["link"] == new != old


async def test_an_offer_no_longer_earlier_after_the_hospital_moved_the_appointment_is_gone(trust: Harness) -> None:
    pas = await api(trust)
    assert (await pas.put(f"patients/{BODY['patient_ref']}", PATIENT)).status_code == 201
    assert (await pas.put("appointments/APT-1001", BODY)).status_code == 201
    [appt] = await rows(trust, "SELECT id, patient_id FROM appointments")
    assert await set_earlier_request(
        trust.db, patient_id=appt["patient_id"], appointment_id=appt["id"], wanted=True, now=trust.clock.now()
    )
    await trust.create_slot(starts_at=EARLIER, ref="FREED", clinician="Dr Anita Patel")
    assert (await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())).offered == 1
    [offer] = await rows(trust, "SELECT id FROM slot_offers")
    # The hospital brings the appointment forward, before the offered slot (28 November).
    assert (await pas.put("appointments/APT-1001", {**BODY, "start": "2026-11-24T09:30:00+00:00"})).status_code == 200
    await trust.sign_in()
    assert f"/offers/{offer['id']}" not in (await trust.get_page("/appointments")).text
    assert "This earlier appointment has gone" in (await trust.get_page(f"/offers/{offer['id']}")).text
    taken = await trust.post_form(f"/offers/{offer['id']}", {"answer": "accept"}, csrf_from="/sign-out")
    assert taken.status_code in (303, 409), taken.text
    assert await rows(trust, "SELECT starts_at FROM appointments") == [{"starts_at": "2026-11-24T09:30:00.000000Z"}]
    assert await rows(trust, "SELECT status FROM slots") == [{"status": "free"}]


async def test_the_booking_teams_email_carries_the_patients_link_not_an_old_style_one(make_hub: MakeHub) -> None:
    hub = await make_hub(**{"notify.templates.no_answer_email": "tpl-no-answer-email"})
    patient = await hub.create_patient(mobile=None, email="david.patel@example.com", contact_preference="email")
    appointment = await hub.create_appointment(patient_id=patient)
    task = await hub.create_task(patient_id=patient, appointment_id=appointment)
    await send_new_link(  # the link was rotated once, say after a lost phone: old-style links reach no one
        hub.db, patient_id=patient, actor_type=ActorType.AGENT, actor_id=1, settings=hub.settings, now=hub.clock.now()
    )
    await set_up_staff(hub)
    await claim(hub, task)
    assert await outcome(hub, task, {"outcome": "emailed"}) == "/staff?done=emailed"
    [sent] = await rows(hub, "SELECT personalisation FROM outbox_messages WHERE kind = 'no_answer'")
    link = json.loads(sent["personalisation"])["link"]
    assert link == await hub.patient_link(patient)


async def test_a_new_link_and_the_booking_teams_email_are_sent_not_left_to_expire_like_a_code(
    make_hub: MakeHub,
) -> None:
    hub = await make_hub(**{"notify.templates.no_answer_email": "tpl-no-answer-email"})
    linked = await hub.create_patient(mrn="MRN1")
    emailed = await hub.create_patient(mrn="MRN2", mobile=None, email="david.patel@example.com")
    task = await hub.create_task(patient_id=emailed, appointment_id=await hub.create_appointment(patient_id=emailed))
    assert await send_new_link(
        hub.db, patient_id=linked, actor_type=ActorType.AGENT, actor_id=1, settings=hub.settings, now=hub.clock.now()
    )
    await set_up_staff(hub)
    await claim(hub, task)
    assert await outcome(hub, task, {"outcome": "emailed"}) == "/staff?done=emailed"
    for _ in range(2):  # the worker's rounds, the second after a code would have expired
        await hub.send_queued()
        hub.clock.advance(minutes=3)
    assert await rows(hub, "SELECT kind, status FROM outbox_messages ORDER BY id") == [
        {"kind": "patient_link", "status": "sent"},
        {"kind": "no_answer", "status": "sent"},
    ]
    assert sorted(r["kind"] for r in await rows(hub, "SELECT kind FROM dev_messages")) == ["no_answer", "patient_link"]


async def test_the_hospitals_version_accepted_by_an_agent_frees_the_slot_the_patient_had_taken(trust: Harness) -> None:
    pas, appointment, slot = await moved_by_offer(trust)
    assert (await pas.put("appointments/APT-1001", {**BODY, "status": "cancelled"})).status_code == 200
    [task] = await rows(trust, "SELECT id FROM tasks WHERE kind = 'conflict'")
    staff = await trust.create_staff_user()
    now = trust.clock.now()
    assert await claim_task(trust.db, task_id=task["id"], staff_id=staff, now=now, policy=QUEUE)
    accepted = Outcome(TaskOutcome.ACCEPTED_HOSPITAL)
    await record_outcome(
        trust.db, task_id=task["id"], staff_id=staff, outcome=accepted, settings=trust.settings, policy=QUEUE, now=now
    )
    assert await rows(trust, "SELECT status, starts_at FROM appointments") == [
        {"status": "cancelled", "starts_at": "2026-12-14T09:30:00.000000Z"}  # the hospital's record
    ]
    # The slot was the patient's move, which the hospital's version does not have: free again, to be offered.
    assert await rows(trust, "SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "free", "appointment_id": None}
    ]
    await trust.sign_in()
    text = text_of((await trust.get_page(f"/appointments/{appointment}")).text)
    assert "This appointment has been cancelled." in text and "changed this appointment" not in text


async def test_the_messages_page_names_a_new_link_for_what_it_is(hub: Harness) -> None:
    patient = await hub.create_patient()
    assert await send_new_link(
        hub.db, patient_id=patient, actor_type=ActorType.AGENT, actor_id=1, settings=hub.settings, now=hub.clock.now()
    )
    await hub.send_queued()
    await hub.sign_in()
    assert "Your link to your appointments" in text_of((await hub.get_page("/messages")).text)
