"""The call-back queue: order, filters, SLA age, atomic claims, lapses, and every outcome in one transaction."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.rules.appointments import ActionPolicy
from hub.rules.tasks import QueuePolicy
from hub.store.appointments import request_rebook
from hub.store.tasks import claim_task
from hub.vocabulary import CancelMode
from tests.harness import Harness
from tests.pages import check_page
from tests.staff_harness import set_up_staff, sign_in_staff

pytestmark = pytest.mark.anyio
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
QUEUE = QueuePolicy(sla_working_days=2, claim=timedelta(minutes=30), retry=timedelta(minutes=120), max_attempts=3)


async def _rebook_task(hub: Harness, *, mobile: str = "+447700900001", family_name: str = "Jones") -> tuple[int, int]:
    patient = await hub.create_patient(mobile=mobile, family_name=family_name)
    appointment = await hub.create_appointment(patient_id=patient)
    done = await request_rebook(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="Away that week",
        preferred_times="Weekday mornings",
        now=hub.clock.now(),
        policy=POLICY,
    )
    assert done.done
    row = await hub.db.fetch_one("SELECT id FROM tasks WHERE appointment_id = ?", (appointment,))
    assert row is not None
    return int(row["id"]), appointment


async def _claim(hub: Harness, task_id: int) -> str:
    response = await hub.post_form(f"/staff/tasks/{task_id}/claim", {}, csrf_from="/staff/sign-in")
    assert response.status_code == 303
    return response.headers["location"]


async def _outcome(hub: Harness, task_id: int, data: dict[str, str]) -> str:
    response = await hub.post_form(f"/staff/tasks/{task_id}/outcome", data, csrf_from="/staff/sign-in")
    assert response.status_code in (303, 400), response.text
    return response.headers.get("location", "") or response.text


async def test_queue_lists_open_tasks_oldest_first_with_the_call_details(hub: Harness) -> None:
    hub.clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))  # a Friday
    first, _ = await _rebook_task(hub)
    hub.clock.advance(hours=1)
    patient = await hub.create_patient(mobile="+447700900002", family_name="Smith")
    await hub.create_task(kind="inbound_text", patient_id=patient, reason="Text")
    hub.clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))  # the Tuesday after: 2 working days
    staff = await set_up_staff(hub)
    page = await hub.client.get("/staff")
    check_page(page.text)
    rows = re.findall(r'data-task="(\d+)" data-kind="(\w+)"', page.text)
    assert rows[0] == (str(first), "rebook") and rows[1][1] == "inbound_text"
    assert "+447700900001" in page.text and "Weekday mornings" in page.text
    assert "2 working days" in page.text and "Due today" in page.text
    hub.clock.advance(days=1)
    await sign_in_staff(hub, staff)  # a day later is a new sign-in
    assert "Overdue" in (await hub.client.get("/staff")).text


async def test_queue_filters_by_kind_trust_site_and_specialty(hub: Harness) -> None:
    await _rebook_task(hub)
    other = await hub.create_patient(mobile="+447700900002")
    await hub.create_task(kind="failed_notification", patient_id=other)
    await set_up_staff(hub)

    async def kinds(query: str) -> list[str]:
        page = await hub.client.get(f"/staff?{query}")
        check_page(page.text)
        return re.findall(r'data-kind="(\w+)"', page.text)

    assert await kinds("") == ["rebook", "failed_notification"]
    assert await kinds("kind=failed_notification") == ["failed_notification"]
    assert await kinds("site=RFH") == ["rebook"]
    assert await kinds("specialty=Cardiology") == ["rebook"]
    assert await kinds("specialty=Dermatology") == []
    assert await kinds("organisation=RAL") == ["rebook", "failed_notification"]
    assert await kinds("organisation=XYZ") == []


async def test_two_agents_claiming_at_once_one_wins(hub: Harness, new_browser: Callable[..., Harness]) -> None:
    task_id, _ = await _rebook_task(hub)
    other = new_browser(hub)
    alice = await set_up_staff(hub, "alice")
    bob = await set_up_staff(other, "bob")
    places = await asyncio.gather(_claim(hub, task_id), _claim(other, task_id))
    assert sorted(places) == sorted([f"/staff/tasks/{task_id}", "/staff?done=taken"])
    row = await hub.db.fetch_one("SELECT status, claimed_by FROM tasks WHERE id = ?", (task_id,))
    assert row is not None and row["status"] == "claimed" and row["claimed_by"] in (alice.id, bob.id)
    # And at the store, many at once: still exactly one.
    task2, _ = await _rebook_task(hub, mobile="+447700900009")
    contenders = [alice.id, bob.id] * 4
    wins = await asyncio.gather(
        *(claim_task(hub.db, task_id=task2, staff_id=s, now=hub.clock.now(), policy=QUEUE) for s in contenders)
    )
    winners = {s for s, won in zip(contenders, wins, strict=True) if won}
    assert len(winners) == 1  # the winner may press again; the other never gets it
    held = await hub.db.fetch_one("SELECT claimed_by FROM tasks WHERE id = ?", (task2,))
    assert held is not None and held["claimed_by"] in winners


async def test_release_and_lapse(make_hub: Callable[..., Any], new_browser: Callable[..., Harness]) -> None:
    hub: Harness = await make_hub(**{"staff.claim_minutes": 10})
    task_id, _ = await _rebook_task(hub)
    other = new_browser(hub)
    await set_up_staff(hub, "alice")
    await set_up_staff(other, "bob")
    assert await _claim(hub, task_id) == f"/staff/tasks/{task_id}"
    assert await _claim(other, task_id) == "/staff?done=taken"
    page = await other.client.get("/staff")
    assert "Claimed by alice" in page.text
    response = await hub.post_form(f"/staff/tasks/{task_id}/release", {}, csrf_from="/staff/sign-in")
    assert response.headers["location"] == "/staff?done=released"
    assert await _claim(other, task_id) == f"/staff/tasks/{task_id}"
    hub.clock.advance(minutes=9)
    assert await _claim(hub, task_id) == "/staff?done=taken"
    hub.clock.advance(minutes=1)  # bob's claim lapses: he walked away
    assert await _claim(hub, task_id) == f"/staff/tasks/{task_id}"
    assert await _outcome(other, task_id, {"outcome": "no_answer"}) == "/staff?done=lapsed"


async def _counts(hub: Harness, appointment_id: int) -> dict[str, int]:
    counts = {}
    for name, sql in (
        ("outbox", "SELECT COUNT(*) AS n FROM outbox_messages WHERE appointment_id = ?"),
        ("events", "SELECT COUNT(*) AS n FROM events WHERE appointment_id = ? AND kind LIKE 'callback.%'"),
        (
            "audit",
            "SELECT COUNT(*) AS n FROM audit_events WHERE action LIKE 'task_%' AND action != 'task_claimed'"
            " AND detail = 'appointment ' || ?",
        ),
    ):
        row = await hub.db.fetch_one(sql, (appointment_id,))
        assert row is not None
        counts[name] = int(row["n"])
    return counts


async def test_rebooked_moves_the_appointment_tells_the_patient_and_the_hospital(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    task_id, appointment_id = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    page = await hub.client.get(f"/staff/tasks/{task_id}")
    check_page(page.text)
    bad = await _outcome(
        hub, task_id, {"outcome": "rebooked", "day": "31", "month": "2", "year": "2027", "time": "9:00"}
    )
    assert "Enter a real date" in bad
    done = await _outcome(
        hub,
        task_id,
        {
            "outcome": "rebooked",
            "day": "15",
            "month": "12",
            "year": "2026",
            "time": "14:30",
            "site": "RFH",
            "clinician": "Dr B Other",
        },
    )
    assert done == "/staff?done=rebooked"
    a = await hub.db.fetch_one(
        "SELECT starts_at, sequence, request_state, clinician FROM appointments WHERE id = ?", (appointment_id,)
    )
    assert a == {
        "starts_at": "2026-12-15T14:30:00.000000Z",
        "sequence": 1,
        "request_state": "none",
        "clinician": "Dr B Other",
    }
    message = await hub.db.fetch_one(
        "SELECT kind, channel, recipient FROM outbox_messages WHERE appointment_id = ?", (appointment_id,)
    )
    assert message == {"kind": "changed", "channel": "sms", "recipient": "+447700900001"}
    assert await _counts(hub, appointment_id) == {"outbox": 1, "events": 1, "audit": 1}
    task = await hub.db.fetch_one("SELECT status, outcome FROM tasks WHERE id = ?", (task_id,))
    assert task == {"status": "closed", "outcome": "rebooked"}
    # The patient's calendar file now has the new time and a higher SEQUENCE.
    patient = new_browser(hub)
    await patient.sign_in()
    ics = (await patient.client.get(f"/appointments/{appointment_id}.ics")).text
    assert "DTSTART;TZID=Europe/London:20261215T143000" in ics and "SEQUENCE:1" in ics


async def test_cancelled_cancels_and_tells(hub: Harness) -> None:
    task_id, appointment_id = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    assert await _outcome(hub, task_id, {"outcome": "cancelled", "confirm": "yes"}) == "/staff?done=cancelled"
    a = await hub.db.fetch_one("SELECT status, sequence FROM appointments WHERE id = ?", (appointment_id,))
    assert a == {"status": "cancelled", "sequence": 1}
    message = await hub.db.fetch_one("SELECT kind FROM outbox_messages WHERE appointment_id = ?", (appointment_id,))
    assert message == {"kind": "cancelled"}
    assert await _counts(hub, appointment_id) == {"outbox": 1, "events": 1, "audit": 1}


async def test_no_answer_returns_later_then_sends_a_letter(make_hub: Callable[..., Any]) -> None:
    hub: Harness = await make_hub(**{"staff.retry_minutes": 20})
    task_id, appointment_id = await _rebook_task(hub)
    await set_up_staff(hub)
    for attempt in (1, 2):
        await _claim(hub, task_id)
        assert await _outcome(hub, task_id, {"outcome": "no_answer"}) == "/staff?done=retry"
        row = await hub.db.fetch_one("SELECT status, attempts FROM tasks WHERE id = ?", (task_id,))
        assert row == {"status": "open", "attempts": attempt}
        assert f'data-task="{task_id}"' not in (await hub.client.get("/staff")).text  # out of sight for now
        hub.clock.advance(minutes=20)
        assert f'data-task="{task_id}"' in (await hub.client.get("/staff")).text
    await _claim(hub, task_id)
    assert await _outcome(hub, task_id, {"outcome": "no_answer"}) == "/staff?done=letter"
    letter = await hub.db.fetch_one(
        "SELECT kind, channel FROM outbox_messages WHERE appointment_id = ?", (appointment_id,)
    )
    assert letter == {"kind": "no_answer", "channel": "letter"}
    task = await hub.db.fetch_one("SELECT status, outcome, attempts FROM tasks WHERE id = ?", (task_id,))
    assert task == {"status": "closed", "outcome": "no_answer_letter", "attempts": 3}
    events = await hub.db.fetch_all("SELECT kind FROM events WHERE kind = 'callback.no_answer'")
    assert len(events) == 3


async def test_an_email_only_patient_is_emailed_from_the_approved_template(make_hub: Callable[..., Any]) -> None:
    hub: Harness = await make_hub(**{"notify.templates.no_answer_email": "tpl-no-answer-email"})
    patient = await hub.create_patient(mobile=None, email="david.patel@example.com", contact_preference="email")
    appointment_id = await hub.create_appointment(patient_id=patient)
    assert (
        await request_rebook(
            hub.db,
            patient_id=patient,
            appointment_id=appointment_id,
            reason="",
            preferred_times="",
            now=hub.clock.now(),
            policy=POLICY,
        )
    ).done
    row = await hub.db.fetch_one("SELECT id FROM tasks WHERE appointment_id = ?", (appointment_id,))
    assert row is not None
    task_id = int(row["id"])
    await set_up_staff(hub)
    assert "none, email david.patel@example.com" in (await hub.client.get("/staff")).text
    await _claim(hub, task_id)
    page = await hub.client.get(f"/staff/tasks/{task_id}")
    check_page(page.text)
    assert "david.patel@example.com" in page.text and "Email the patient to ring us" in page.text

    assert await _outcome(hub, task_id, {"outcome": "emailed"}) == "/staff?done=emailed"

    sent = await hub.db.fetch_all(
        "SELECT kind, channel, recipient, template_id, personalisation FROM outbox_messages WHERE patient_id = ?",
        (patient,),
    )
    assert [(m["kind"], m["channel"], m["recipient"], m["template_id"]) for m in sent] == [
        ("no_answer", "email", "david.patel@example.com", "tpl-no-answer-email")
    ]
    assert {"link", "date", "time", "site", "clinic"} <= set(json.loads(sent[0]["personalisation"]))
    task = await hub.db.fetch_one("SELECT status, outcome FROM tasks WHERE id = ?", (task_id,))
    assert task == {"status": "closed", "outcome": "emailed"}
    audit = await hub.db.fetch_all("SELECT record_id FROM audit_events WHERE action = 'task_emailed'")
    assert audit == [{"record_id": str(task_id)}]
    assert "Email sent asking the patient to ring" in (await hub.client.get("/staff?done=emailed")).text


async def test_a_patient_with_a_mobile_is_phoned_not_emailed(hub: Harness) -> None:
    task_id, _ = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    assert "Email the patient to ring us" not in (await hub.client.get(f"/staff/tasks/{task_id}")).text
    assert "Emailing is for a patient with an email address" in await _outcome(hub, task_id, {"outcome": "emailed"})
    assert await hub.db.fetch_all("SELECT id FROM outbox_messages") == []


async def test_closed_with_a_note_withdraws_the_request(hub: Harness) -> None:
    task_id, appointment_id = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    assert "Enter a note" in await _outcome(hub, task_id, {"outcome": "closed", "note": " "})
    done = await _outcome(hub, task_id, {"outcome": "closed", "note": "Patient changed their mind"})
    assert done == "/staff?done=closed"
    a = await hub.db.fetch_one("SELECT request_state, sequence FROM appointments WHERE id = ?", (appointment_id,))
    assert a == {"request_state": "none", "sequence": 0}
    task = await hub.db.fetch_one("SELECT status, note FROM tasks WHERE id = ?", (task_id,))
    assert task == {"status": "closed", "note": "Patient changed their mind"}
    assert await _counts(hub, appointment_id) == {"outbox": 0, "events": 1, "audit": 1}


async def test_an_outcome_without_a_claim_changes_nothing(hub: Harness) -> None:
    task_id, appointment_id = await _rebook_task(hub)
    await set_up_staff(hub)
    assert await _outcome(hub, task_id, {"outcome": "cancelled", "confirm": "yes"}) == "/staff?done=lapsed"
    a = await hub.db.fetch_one("SELECT status FROM appointments WHERE id = ?", (appointment_id,))
    assert a == {"status": "booked"}


async def test_admin_exports_the_queue_as_csv(hub: Harness) -> None:
    task_id, _ = await _rebook_task(hub)
    await set_up_staff(hub, "root", "admin")
    response = await hub.client.get("/staff/queue.csv?kind=rebook")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("task_id,kind,created_at") and lines[1].startswith(f"{task_id},rebook,")
    assert "+44" not in response.text  # no phone numbers leave in an export
