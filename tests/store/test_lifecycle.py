"""Two writers, one appointment: the hospital's feed, the patient and the booking centre all change appointments
through one lifecycle. Each numbered case of issue 13 is a test here, driven as the hospital (the real API), the
patient (the real pages) and an agent (the store's outcome recorder) would drive it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hub.jobs.worker import send_policy
from hub.notify.sender import claim_batch
from hub.rules.tasks import QueuePolicy
from hub.store.lifecycle import load_appointment
from hub.store.receipts import Receipt, apply_receipt
from hub.store.reminders import run_sweep
from hub.store.task_outcomes import NotHeld, Outcome, record_outcome
from hub.store.tasks import claim_task
from hub.vocabulary import TaskOutcome
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.pas import Pas, messages, pas_for, set_patient

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
QUEUE = QueuePolicy(sla_working_days=2, claim=timedelta(minutes=30), retry=timedelta(hours=2), max_attempts=3)


async def rows(hub: Harness, sql: str, *params: Any) -> list[dict[str, Any]]:
    return await hub.db.fetch_all(sql, params)


async def state(hub: Harness, ref: str = "A1") -> dict[str, Any]:
    row = await hub.db.fetch_one(
        "SELECT id, status, request_state, starts_at, clinic, clinician, site_id, sequence, hub_change, held_update"
        " FROM appointments WHERE ref = ?",
        (ref,),
    )
    assert row is not None
    return row


async def tasks(hub: Harness) -> list[dict[str, Any]]:
    return await rows(hub, "SELECT id, kind, status, outcome, claimed_by FROM tasks ORDER BY id")


async def event_kinds(hub: Harness) -> list[str]:
    return [r["kind"] for r in await rows(hub, "SELECT kind FROM events ORDER BY id")]


async def patient_post(hub: Harness, path: str, data: dict[str, str] | None = None) -> httpx.Response:
    # The rebook and cancel pages have their forms; confirming is a button on the appointment's page.
    page = path if path.endswith(("/rebook", "/cancel")) else path.rsplit("/", 1)[0]
    return await hub.post_form(path, data or {}, csrf_from=page)


async def agent(hub: Harness, name: str = "alice") -> int:
    return await hub.create_staff_user(username=name)


async def outcome(hub: Harness, task_id: int, staff_id: int, chosen: Outcome) -> str:
    assert await claim_task(hub.db, task_id=task_id, staff_id=staff_id, now=hub.clock.now(), policy=QUEUE)
    return await record_outcome(
        hub.db,
        task_id=task_id,
        staff_id=staff_id,
        outcome=chosen,
        settings=hub.settings,
        policy=QUEUE,
        now=hub.clock.now(),
    )


async def booked(make_hub: MakeHub, **settings: Any) -> tuple[Harness, Pas, int]:
    hub = await make_hub(**settings)
    pas = await pas_for(hub)
    appointment_id = await pas.book(start=T0 + 20 * DAY, expect="invitation", clinician="Dr A")
    await hub.send_queued()
    return hub, pas, appointment_id


# 1. A change the hub made is never silently undone by the hospital's next routine update


async def test_a_routine_update_after_an_immediate_cancel_is_held_not_applied(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub, cancel_mode="immediate")
    await hub.sign_in()
    done = await patient_post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})
    assert done.headers["location"] == f"/appointments/{appointment_id}?done=cancelled"
    told = await rows(hub, "SELECT id FROM events WHERE kind = 'appointment.cancelled_by_patient'")
    sent_before = len(await messages(hub))

    # The hospital's next routine update still says booked, with a new clinician's name.
    await pas.book(start=T0 + 20 * DAY, clinician="Dr New")
    row = await state(hub)
    assert (row["status"], row["request_state"], row["clinician"]) == ("cancelled", "cancel_requested", "Dr A")
    assert len(await messages(hub)) == sent_before  # no fresh invitation
    page = (await hub.client.get(f"/appointments/{appointment_id}")).text
    assert "This appointment has been cancelled." in page
    [conflict] = [t for t in await tasks(hub) if t["kind"] == "conflict"]
    assert conflict["status"] == "open"
    [event] = await rows(hub, "SELECT data FROM events WHERE kind = 'appointment.conflict'")
    data = json.loads(event["data"])
    assert (data["hub_change"], data["hub"]["status"], data["hospital"]["status"]) == (
        "cancelled",
        "cancelled",
        "booked",
    )
    assert data["hospital"]["clinician"] == "Dr New"

    # The same update again changes nothing; one reflecting the cancel settles it, quietly.
    await pas.book(start=T0 + 20 * DAY, clinician="Dr New")
    assert (await event_kinds(hub)).count("appointment.conflict") == 1
    await pas.book(start=T0 + 20 * DAY, clinician="Dr New", status="cancelled")
    row = await state(hub)
    assert (row["status"], row["hub_change"], row["held_update"], row["clinician"]) == (
        "cancelled",
        None,
        None,
        "Dr New",
    )
    assert [t["outcome"] for t in await tasks(hub) if t["kind"] == "conflict"] == ["settled"]
    assert len(await messages(hub)) == sent_before  # she knew: no cancellation message
    assert told  # the hospital was told of the cancel in the first place


async def test_an_agents_rebook_is_not_moved_back_by_the_hospitals_old_time(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    assert (await pas.put("sites/BARNET", {"name": "Barnet Hospital", "postcode": "EN5 3DJ"})).status_code == 201
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "Away", "preferred_times": "Jan"})
    [rebook] = await tasks(hub)
    staff = await agent(hub)
    new_time = datetime(2027, 1, 12, 10, 0, tzinfo=UTC)
    result = await outcome(
        hub, rebook["id"], staff, Outcome(TaskOutcome.REBOOKED, starts_at=new_time, site_code="BARNET")
    )
    assert result == "closed"
    await hub.send_queued()
    sent_before = len(await messages(hub))

    # The hospital's next update: its old time and site, a renamed clinic.
    await pas.book(start=T0 + 20 * DAY, clinic="Renamed clinic")
    row = await state(hub)
    assert row["starts_at"] == "2027-01-12T10:00:00.000000Z" and row["clinic"] == "Cardiology outpatients"
    assert len(await messages(hub)) == sent_before  # no "changed" text back to the old time
    assert [t["kind"] for t in await tasks(hub) if t["status"] == "open"] == ["conflict"]
    assert "appointment.conflict" in await event_kinds(hub)

    # The hospital catches up: the hub's time and site, with its own clinic name. Settled, nothing sent.
    await pas.book(start=new_time, site_code="BARNET", clinic="Renamed clinic")
    row = await state(hub)
    assert (row["starts_at"], row["clinic"], row["hub_change"]) == (
        "2027-01-12T10:00:00.000000Z",
        "Renamed clinic",
        None,
    )
    assert len(await messages(hub)) == sent_before
    assert [t["outcome"] for t in await tasks(hub) if t["kind"] == "conflict"] == ["settled"]


async def test_the_hospital_settles_a_change_by_acknowledging_its_event(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    patient = await hub.db.fetch_one("SELECT id FROM patients")
    assert patient is not None
    await hub.create_task(patient_id=patient["id"], appointment_id=appointment_id, kind="cancel")
    [task] = await tasks(hub)
    await outcome(hub, task["id"], await agent(hub), Outcome(TaskOutcome.CANCELLED))
    [told] = await rows(hub, "SELECT id FROM events WHERE kind = 'callback.cancelled'")
    # The hospital turned the cancel down: it sends the appointment booked, acknowledging the hub's event.
    await pas.book(start=T0 + 20 * DAY, acknowledged_event=int(told["id"]))
    row = await state(hub)
    assert (row["status"], row["hub_change"]) == ("booked", None)
    assert [m["kind"] for m in await messages(hub)][-1] == "invitation"  # booked again: she is told


async def test_an_agent_accepts_the_hospitals_version_of_a_conflict(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub, cancel_mode="immediate")
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})
    await pas.book(start=T0 + 21 * DAY, clinician="Dr A")
    [conflict] = [t for t in await tasks(hub) if t["kind"] == "conflict"]
    staff = await agent(hub)
    assert await outcome(hub, conflict["id"], staff, Outcome(TaskOutcome.ACCEPTED_HOSPITAL)) == "closed"
    row = await state(hub)
    assert (row["status"], row["starts_at"], row["hub_change"], row["held_update"]) == (
        "booked",
        "2026-12-12T10:00:00.000000Z",
        None,
        None,
    )
    assert [m["kind"] for m in await messages(hub)][-1] == "invitation"
    assert (await event_kinds(hub))[-1] == "appointment.conflict_resolved"
    assert [t["outcome"] for t in await tasks(hub) if t["kind"] == "conflict"] == ["accepted_hospital"]


# 2. A move clears a confirmation and re-plans the reminders


async def test_a_hospital_move_clears_the_confirmation_and_the_7_day_reminder_goes(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/confirm")
    assert (await state(hub))["request_state"] == "confirmed"
    new_start = T0 + 30 * DAY
    await pas.book(start=new_start, expect="changed")
    assert (await state(hub))["request_state"] == "none"
    assert "You confirmed you will attend" not in (await hub.client.get(f"/appointments/{appointment_id}")).text
    assert [m["kind"] for m in await messages(hub)].count("changed") == 1
    hub.clock.set(new_start - 7 * DAY + timedelta(minutes=1))
    await run_sweep(hub.db, settings=hub.settings, now=hub.clock.now())
    assert [m["kind"] for m in await messages(hub)][-1] == "appointment_reminder"  # not skipped as confirmed


# 3. Tasks answered by the hospital close, and the agent holding one sees why


async def test_a_hospital_cancel_closes_a_claimed_cancel_request_and_says_why(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})
    [task] = await tasks(hub)
    staff = await agent(hub)
    assert await claim_task(hub.db, task_id=task["id"], staff_id=staff, now=hub.clock.now(), policy=QUEUE)
    await pas.book(start=T0 + 20 * DAY, status="cancelled", expect="cancelled")
    [task] = await tasks(hub)
    assert (task["status"], task["outcome"]) == ("closed", "cancelled_by_hospital")
    with pytest.raises(NotHeld):
        await record_outcome(
            hub.db,
            task_id=task["id"],
            staff_id=staff,
            outcome=Outcome(TaskOutcome.CANCELLED),
            settings=hub.settings,
            policy=QUEUE,
            now=hub.clock.now(),
        )
    assert [m["kind"] for m in await messages(hub)].count("cancelled") == 1


async def test_a_new_time_from_the_hospital_answers_a_rebook_request(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "Away"})
    await pas.book(start=T0 + 25 * DAY, expect="changed")
    [task] = await tasks(hub)
    assert (task["status"], task["outcome"]) == ("closed", "moved_by_hospital")
    assert (await state(hub))["request_state"] == "none"
    staff = await agent(hub)
    assert not await claim_task(hub.db, task_id=task["id"], staff_id=staff, now=hub.clock.now(), policy=QUEUE)


# 4. Closing a request returns the patient's request state to what it was


async def test_closing_a_rebook_request_keeps_the_earlier_confirmation(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/confirm")
    await patient_post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "Maybe"})
    assert (await state(hub))["request_state"] == "rebook_requested"
    [task] = await tasks(hub)
    await outcome(hub, task["id"], await agent(hub), Outcome(TaskOutcome.CLOSED, note="Changed her mind"))
    assert (await state(hub))["request_state"] == "confirmed"


async def test_the_no_answer_letter_closes_the_request_and_the_state_goes_back(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "Away"})
    [task] = await tasks(hub)
    staff = await agent(hub)
    for _ in range(2):
        assert await outcome(hub, task["id"], staff, Outcome(TaskOutcome.NO_ANSWER)) == "retry"
        hub.clock.advance(hours=2)
    assert await outcome(hub, task["id"], staff, Outcome(TaskOutcome.NO_ANSWER)) == "letter"
    assert (await state(hub))["request_state"] == "none"
    assert [m["kind"] for m in await messages(hub)][-1] == "no_answer"


async def test_a_withdrawn_cancel_request_brings_the_reminders_back(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})
    live = "SELECT kind FROM scheduled_notices WHERE appointment_id = ? AND done_at IS NULL AND kind LIKE 'reminder_%'"
    assert await rows(hub, live, appointment_id) == []
    [task] = await tasks(hub)
    await outcome(hub, task["id"], await agent(hub), Outcome(TaskOutcome.CLOSED, note="She will come after all"))
    assert (await state(hub))["request_state"] == "none"
    assert {r["kind"] for r in await rows(hub, live, appointment_id)} == {"reminder_7d", "reminder_1d"}


# 5. A failed reminder text never falls back to a channel with no template


async def test_a_failed_reminder_text_with_no_email_fails_for_good_rather_than_post_nothing(make_hub: MakeHub) -> None:
    hub = await make_hub()
    pas = await pas_for(hub, email=None)
    appointment_id = await pas.book(start=T0 + 20 * DAY)
    await hub.send_queued()
    hub.clock.advance(hours=24, minutes=1)
    await run_sweep(hub.db, settings=hub.settings, now=hub.clock.now())
    await hub.send_queued()
    [reminder] = await messages(hub, "invitation_reminder")
    async with hub.db.write() as tx:
        receipt = Receipt(reminder["notify_id"], str(reminder["id"]), "permanent-failure")
        await apply_receipt(tx, receipt, settings=hub.settings, now=hub.clock.now())
    assert [m["kind"] for m in await messages(hub)] == ["invitation", "invitation_reminder"]  # no letter with ""
    kinds = await event_kinds(hub)
    assert "notification.failed" in kinds and "notification.failed_over" not in kinds
    assert [t["kind"] for t in await tasks(hub)] == ["failed_notification"]
    assert appointment_id


# 6. Nothing is posted to a patient with no postal address


async def test_no_letter_goes_to_a_patient_without_an_address(make_hub: MakeHub) -> None:
    hub = await make_hub()
    pas = await pas_for(hub, postal_address=None)
    appointment_id = await pas.book(start=T0 + 20 * DAY)
    await hub.send_queued()
    hub.clock.advance(hours=72, minutes=1)  # the letter is still unread: the escalation to post is due
    await run_sweep(hub.db, settings=hub.settings, now=hub.clock.now())
    assert "letter" not in [m["channel"] for m in await messages(hub)]
    kinds = await event_kinds(hub)
    assert "letter.escalated_to_post" not in kinds and "letter.not_posted" in kinds
    assert [t["kind"] for t in await tasks(hub)] == ["no_postal_address"]
    # Paper as well: the patient asked for letters, but there is still nowhere to post them.
    await set_patient(hub, paperless=0)
    await pas.book(start=T0 + 25 * DAY, expect="changed")
    assert [m["channel"] for m in await messages(hub, "changed")] == ["sms"]
    assert [t["kind"] for t in await tasks(hub)] == ["no_postal_address", "no_postal_address"]
    assert appointment_id


# 7. Quiet hours: a message about an appointment before they end goes at once; superseded ones are withdrawn


async def test_a_cancellation_in_the_night_for_the_morning_goes_at_once_and_the_invitation_does_not(
    make_hub: MakeHub,
) -> None:
    hub = await make_hub()
    pas = await pas_for(hub)
    hub.clock.set(datetime(2026, 11, 24, 19, 30, tzinfo=UTC))  # Tuesday 19:30 (GMT): before quiet hours
    appointment_id = await pas.book(start=datetime(2026, 11, 26, 8, 30, tzinfo=UTC))  # Thursday 08:30
    hub.clock.set(datetime(2026, 11, 25, 0, 55, tzinfo=UTC))  # Wednesday 00:55: quiet hours; nothing sent yet
    await pas.book(start=datetime(2026, 11, 25, 8, 30, tzinfo=UTC), expect="changed")  # moved to this morning
    claimed = await claim_batch(hub.db, now=hub.clock.now(), policy=send_policy(hub.settings))
    assert [c.message.kind for c in claimed] == ["invitation"]  # the new time, at once: it is this morning
    await pas.book(start=datetime(2026, 11, 25, 8, 30, tzinfo=UTC), status="cancelled", expect="cancelled")
    claimed = await claim_batch(hub.db, now=hub.clock.now(), policy=send_policy(hub.settings))
    assert [c.message.kind for c in claimed] == ["cancelled"]
    statuses = {(m["kind"], m["status"]) for m in await messages(hub)}
    assert ("invitation", "cancelled") in statuses  # the first invitation, withdrawn unsent
    assert appointment_id


# 8. Confirming after the day-before reminder


async def test_the_patient_can_confirm_after_the_day_before_reminder(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    hub.clock.set(T0 + 19 * DAY + timedelta(minutes=1))
    await run_sweep(hub.db, settings=hub.settings, now=hub.clock.now())
    assert [m["kind"] for m in await messages(hub)][-1] == "appointment_reminder"
    await hub.sign_in()
    done = await patient_post(hub, f"/appointments/{appointment_id}/confirm")
    assert done.headers["location"] == f"/appointments/{appointment_id}?done=confirmed"
    assert (await state(hub))["request_state"] == "confirmed"


# 9. The hospital hears everything the patient gave


async def test_an_updated_rebook_request_carries_the_new_preferred_times(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "Away", "preferred_times": "Mon"})
    await patient_post(hub, f"/appointments/{appointment_id}/rebook", {"reason": "Away", "preferred_times": "Tue pm"})
    events = await rows(hub, "SELECT kind, data FROM events ORDER BY id")
    assert [(e["kind"], json.loads(e["data"])["preferred_times"]) for e in events] == [
        ("appointment.rebook_requested", "Mon"),
        ("appointment.rebook_updated", "Tue pm"),
    ]
    [task] = await tasks(hub)
    assert (await rows(hub, "SELECT preferred_times FROM tasks"))[0]["preferred_times"] == "Tue pm" and task


# 10. The API refuses what it does not know, and lets the hospital set how the patient is contacted


@pytest.mark.parametrize(("body", "field"), [({"opted_out": True}, "opted_out"), ({"statuss": "x"}, "statuss")])
async def test_unknown_fields_are_refused_not_ignored(make_hub: MakeHub, body: dict[str, Any], field: str) -> None:
    hub = await make_hub()
    pas = await pas_for(hub)
    path = "patients/MRN1" if field == "opted_out" else "appointments/A1"
    base = (
        {"given_name": "M", "family_name": "J", "date_of_birth": "1948-03-14"}
        if field == "opted_out"
        else {"patient_ref": "MRN1", "site_code": "RFH", "start": "2026-12-20T10:00:00+00:00", "duration_minutes": 30}
    )
    response = await pas.put(path, {**base, **body})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "message": response.json()["errors"][0]["message"]}]
    assert "is not a field of" in response.json()["errors"][0]["message"]


async def test_the_hospital_stops_and_restarts_texts_and_the_patients_own_stop_stands(make_hub: MakeHub) -> None:
    hub = await make_hub()
    pas = await pas_for(hub)
    await pas.put_patient(contact_opt_out={"sms": True}, paper_letters=True)
    row = await hub.db.fetch_one("SELECT sms_opted_out, paperless FROM patients")
    assert row == {"sms_opted_out": 1, "paperless": 0}
    events = await rows(hub, "SELECT kind, data FROM events ORDER BY id")
    assert [(e["kind"], json.loads(e["data"])["by"]) for e in events] == [
        ("patient.sms_opted_out", "hospital"),
        ("patient.preferences_changed", "hospital"),
    ]
    appointment_id = await pas.book(start=T0 + 20 * DAY)
    assert {m["channel"] for m in await messages(hub)} == {"email", "letter"}  # no texts; paper too
    # The hospital restarts texts; then the patient texts STOP; the hospital's next routine update (the same
    # contact_opt_out as before, another detail changed) does not undo her STOP.
    await pas.put_patient(contact_opt_out={"sms": False}, paper_letters=True)
    assert (await hub.db.fetch_one("SELECT sms_opted_out FROM patients")) == {"sms_opted_out": 0}
    await set_patient(hub, sms_opted_out=1)
    await pas.put_patient(contact_opt_out={"sms": False}, paper_letters=True, family_name="Jones-Smith")
    assert (await hub.db.fetch_one("SELECT sms_opted_out FROM patients")) == {"sms_opted_out": 1}
    assert appointment_id


# The lifecycle's state, as the store reads it back


async def test_the_hub_change_records_the_event_that_told_the_hospital(make_hub: MakeHub) -> None:
    hub, pas, appointment_id = await booked(make_hub, cancel_mode="immediate")
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})
    [told] = await rows(hub, "SELECT id FROM events WHERE kind = 'appointment.cancelled_by_patient'")
    async with hub.db.write() as tx:
        loaded = await load_appointment(tx, appointment_id)
    assert loaded is not None and loaded.state.hub_change is not None
    assert loaded.state.hub_change.event_id == told["id"]
    assert loaded.state.facts.status == "cancelled" and loaded.state.request_state == "cancel_requested"


async def test_a_cancel_request_withdrawn_after_a_move_does_not_bring_back_the_old_confirmation(
    make_hub: MakeHub,
) -> None:
    hub, pas, appointment_id = await booked(make_hub)
    await hub.sign_in()
    await patient_post(hub, f"/appointments/{appointment_id}/confirm")
    await patient_post(hub, f"/appointments/{appointment_id}/cancel", {"reason": "other"})
    await pas.book(start=T0 + 30 * DAY, expect="changed")  # the hospital moves it meanwhile
    [task] = await tasks(hub)
    await outcome(hub, task["id"], await agent(hub), Outcome(TaskOutcome.CLOSED, note="She will come"))
    assert (await state(hub))["request_state"] == "none"  # she confirmed the old time, not this one
