"""A booking-centre agent's outcome meeting what the patient and the hospital did to the appointment meanwhile."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest

from hub.rules.appointments import ActionPolicy
from hub.store.appointments import cancel_appointment, confirm_appointment, request_rebook
from hub.vocabulary import CancelMode
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.notify_callbacks import CALLBACKS, MOBILE, post, text
from tests.seams.conftest import rows
from tests.seams.test_api_hl7 import BODY
from tests.seams.test_conflict_after_move import moved_then_held
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)


async def _claim_and_record(hub: Harness, task_id: int, data: dict[str, str]) -> str:
    claimed = await hub.post_form(f"/staff/tasks/{task_id}/claim", {}, csrf_from="/staff/sign-in")
    assert claimed.headers["location"] == f"/staff/tasks/{task_id}"
    response = await hub.post_form(f"/staff/tasks/{task_id}/outcome", data, csrf_from="/staff/sign-in")
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def test_a_cancel_request_closed_after_it_superseded_a_rebook_request_leaves_no_request_nobody_works(
    hub: Harness,
) -> None:
    """Confirmed, then asked to rebook, then asked to cancel instead (the rebook task closes, superseded): an agent
    closing the cancel request with a note must not bring back "rebook requested" with no task to answer it."""
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, starts_at=hub.clock.now() + timedelta(days=10))
    now = hub.clock.now()
    assert (
        await confirm_appointment(hub.db, patient_id=patient, appointment_id=appointment, now=now, policy=POLICY)
    ).done
    assert (
        await request_rebook(
            hub.db,
            patient_id=patient,
            appointment_id=appointment,
            reason="Away",
            preferred_times="",
            now=now,
            policy=POLICY,
        )
    ).done
    assert (
        await cancel_appointment(
            hub.db, patient_id=patient, appointment_id=appointment, reason="Better", details="", now=now, policy=POLICY
        )
    ).done
    tasks = await hub.db.fetch_all("SELECT id, kind, status FROM tasks ORDER BY id")
    assert [(t["kind"], t["status"]) for t in tasks] == [("rebook", "closed"), ("cancel", "open")]
    await set_up_staff(hub)
    done = await _claim_and_record(hub, tasks[1]["id"], {"outcome": "closed", "note": "Wants to keep it after all"})
    assert done == "/staff?done=closed"
    row = await hub.db.fetch_one("SELECT request_state FROM appointments WHERE id = ?", (appointment,))
    assert row == {"request_state": "confirmed"}
    assert await hub.db.fetch_all("SELECT id FROM tasks WHERE status != 'closed'") == []


async def test_a_patient_who_chose_no_texts_or_emails_is_not_emailed_by_an_agent(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    """No phone number, an email address, and the patient said no texts or emails: the agent is not offered the
    email asking them to ring us (it would go anyway), and posting it is refused, with nothing queued."""
    email = "margaret@example.com"
    patient = await hub.create_patient(mobile=None, email=email, contact_preference="email")
    appointment = await hub.create_appointment(patient_id=patient, starts_at=hub.clock.now() + timedelta(days=10))
    await hub.sign_in(contact=email)
    saved = await hub.post_form("/preferences", {"contact_preference": "email", "paper": "yes", "digital": "no"})
    assert saved.status_code == 303
    done = await request_rebook(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="Away",
        preferred_times="",
        now=hub.clock.now(),
        policy=POLICY,
    )
    assert done.done
    [task] = await hub.db.fetch_all("SELECT id FROM tasks")
    agent = new_browser(hub)
    await set_up_staff(agent)
    claimed = await agent.post_form(f"/staff/tasks/{task['id']}/claim", {}, csrf_from="/staff/sign-in")
    assert claimed.headers["location"] == f"/staff/tasks/{task['id']}"
    assert "Email the patient to ring us" not in (await agent.client.get(f"/staff/tasks/{task['id']}")).text
    before = await hub.db.fetch_all("SELECT id FROM outbox_messages ORDER BY id")
    refused = await agent.post_form(
        f"/staff/tasks/{task['id']}/outcome", {"outcome": "emailed"}, csrf_from="/staff/sign-in"
    )
    assert refused.status_code == 400
    assert await hub.db.fetch_all("SELECT id FROM outbox_messages ORDER BY id") == before
    assert await hub.db.fetch_one("SELECT status FROM tasks WHERE id = ?", (task["id"],)) == {"status": "claimed"}


async def test_the_hospital_hears_that_a_request_closed_by_emailing_the_patient_is_withdrawn(hub: Harness) -> None:
    """It was told of the patient's request to cancel: closing it by emailing a patient with no phone number
    withdraws the request as a note does, and the hospital reads that in its feed as it does a note's."""
    email = "david.patel@example.com"
    patient = await hub.create_patient(mobile=None, email=email, contact_preference="email")
    appointment = await hub.create_appointment(patient_id=patient, starts_at=hub.clock.now() + timedelta(days=10))
    done = await cancel_appointment(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="Better",
        details="",
        now=hub.clock.now(),
        policy=POLICY,
    )
    assert done.done
    [task] = await hub.db.fetch_all("SELECT id FROM tasks")
    await set_up_staff(hub)
    assert await _claim_and_record(hub, task["id"], {"outcome": "emailed"}) == "/staff?done=emailed"
    row = await hub.db.fetch_one("SELECT request_state FROM appointments WHERE id = ?", (appointment,))
    assert row == {"request_state": "none"}  # the request to cancel is withdrawn
    [message] = await hub.db.fetch_all("SELECT id FROM outbox_messages WHERE kind = 'no_answer'")
    key = await hub.create_api_key()
    feed = await hub.client.get("/api/v1/events", headers={"Authorization": f"Bearer {key}"})
    assert feed.status_code == 200, feed.text
    told = [(e["kind"], e["appointment_ref"], e["data"]) for e in feed.json()["events"]]
    ref = told[0][1]
    assert told == [
        ("appointment.cancel_requested", ref, {"appointment_ref": ref, "reason": "Better", "details": ""}),
        ("callback.closed", ref, {"appointment_ref": ref, "task_id": task["id"], "message_id": message["id"]}),
    ]


def _form_fields(page: str, outcome: str) -> dict[str, str]:
    """The hidden fields of the page's form for this outcome, as the agent's browser would send them."""
    for form in re.findall(r"<form .*?</form>", page, flags=re.S):
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
        if fields.get("outcome") == outcome:
            fields.pop("csrf_token", None)
            return fields
    raise AssertionError(f"no {outcome} form on the page")


async def test_accepting_the_hospitals_version_takes_the_one_the_agent_saw_not_a_newer_one(trust: Harness) -> None:
    """The agent reads the held update (the old time again) and accepts it; meanwhile the hospital sent another, a
    cancellation of that old time, held in its place. Accepting what the page showed must not cancel the
    appointment: the agent is asked to look again, and nothing changes until they accept what they have seen."""
    pas, appointment = await moved_then_held(trust)
    [task] = await rows(trust, "SELECT id FROM tasks WHERE kind = 'conflict'")
    await set_up_staff(trust)
    assert (await trust.post_form(f"/staff/tasks/{task['id']}/claim", {}, csrf_from="/staff")).status_code == 303
    seen = _form_fields((await trust.client.get(f"/staff/tasks/{task['id']}")).text, "accepted_hospital")
    assert (await pas.put("appointments/APT-1001", {**BODY, "status": "cancelled"})).status_code == 200
    stale = await trust.post_form(f"/staff/tasks/{task['id']}/outcome", seen, csrf_from=f"/staff/tasks/{task['id']}")
    assert stale.status_code == 400, stale.text
    assert "The hospital has sent another update" in stale.text
    assert await rows(trust, "SELECT status FROM appointments") == [{"status": "booked"}]
    assert await rows(trust, "SELECT status FROM tasks WHERE id = ?", (task["id"],)) == [{"status": "claimed"}]
    again = _form_fields(stale.text, "accepted_hospital")
    accepted = await trust.post_form(
        f"/staff/tasks/{task['id']}/outcome", again, csrf_from=f"/staff/tasks/{task['id']}"
    )
    assert accepted.status_code == 303, accepted.text
    assert await rows(trust, "SELECT status FROM appointments WHERE id = ?", (appointment["id"],)) == [
        {"status": "cancelled"}
    ]


async def test_an_agent_answering_a_text_from_a_patient_can_read_it(make_hub: MakeHub) -> None:
    """A text other than STOP or START is kept for the booking centre: its call-back must show what the patient
    wrote, or the agent rings them not knowing why."""
    hub = await make_hub(**CALLBACKS)
    await hub.create_patient(mobile=MOBILE)
    received = await post(hub, "inbound", text("Can I come in the afternoon instead? Pick up kids at 9"))
    assert received.status_code == 200, received.text
    [task] = await hub.db.fetch_all("SELECT id FROM tasks WHERE kind = 'inbound_text'")
    await set_up_staff(hub)
    page = await hub.get_page(f"/staff/tasks/{task['id']}")
    assert "Can I come in the afternoon instead? Pick up kids at 9" in page.text


async def test_claiming_a_call_back_the_hospital_answered_meanwhile_says_why_it_closed(hub: Harness) -> None:
    """The agent opens a rebook request; before they press Claim, the hospital cancels the appointment (the task
    closes by itself). They are shown why, not told another agent has it."""
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, starts_at=hub.clock.now() + timedelta(days=10))
    done = await request_rebook(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="Away",
        preferred_times="",
        now=hub.clock.now(),
        policy=POLICY,
    )
    assert done.done
    [task] = await hub.db.fetch_all("SELECT id FROM tasks")
    await set_up_staff(hub)
    await hub.get_page(f"/staff/tasks/{task['id']}")
    key = await hub.create_api_key()
    [row] = await hub.db.fetch_all("SELECT a.ref, p.mrn FROM appointments a JOIN patients p ON p.id = a.patient_id")
    cancelled = await hub.client.put(
        f"/api/v1/appointments/{row['ref']}",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "patient_ref": row["mrn"],
            "site_code": "RFH",
            "clinic": "Cardiology outpatients",
            "specialty": "Cardiology",
            "start": (hub.clock.now() + timedelta(days=10)).isoformat(),
            "duration_minutes": 30,
            "mode": "in_person",
            "status": "cancelled",
        },
    )
    assert cancelled.status_code == 200, cancelled.text
    claimed = await hub.post_form(f"/staff/tasks/{task['id']}/claim", {}, csrf_from="/staff/sign-in")
    assert claimed.headers["location"] == f"/staff/tasks/{task['id']}"
    page = await hub.get_page(claimed.headers["location"])
    assert "This call-back is closed: The hospital cancelled the appointment." in page.text


async def test_releasing_a_call_back_another_agent_took_after_the_claim_lapsed_does_not_say_it_was_released(
    make_hub: MakeHub, new_browser: Callable[..., Harness]
) -> None:
    hub = await make_hub(**{"staff.claim_minutes": 10})
    patient = await hub.create_patient()
    task = await hub.create_task(patient_id=patient)
    bob = new_browser(hub)
    await set_up_staff(hub, "alice")
    await set_up_staff(bob, "bob")
    assert (await hub.post_form(f"/staff/tasks/{task}/claim", {}, csrf_from="/staff/sign-in")).status_code == 303
    hub.clock.advance(minutes=10)  # alice's claim lapses; bob takes the call-back
    claimed = await bob.post_form(f"/staff/tasks/{task}/claim", {}, csrf_from="/staff/sign-in")
    assert claimed.headers["location"] == f"/staff/tasks/{task}"
    released = await hub.post_form(f"/staff/tasks/{task}/release", {}, csrf_from="/staff/sign-in")
    assert released.headers["location"] == "/staff?done=lapsed"
    assert "Claimed by bob" in (await hub.client.get("/staff")).text
