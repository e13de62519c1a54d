"""The console's rough edges, smoothed: claim next (two agents at once get different call-backs), a confirmation
page before cancelling, notices that say what was done, both date and time errors at once, titles naming the
booking centre."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from hub.rules.staff_scope import SYSTEM
from hub.store.staff import create_staff
from hub.store.tasks import Filters, claim_next_task
from tests.harness import Harness
from tests.pages import check_page
from tests.staff_harness import set_up_staff
from tests.web.staff.test_queue import QUEUE, _claim, _outcome, _rebook_task

pytestmark = pytest.mark.anyio


async def _claim_next(hub: Harness, data: dict[str, str] | None = None) -> str:
    response = await hub.post_form("/staff/claim-next", data or {}, csrf_from="/staff/sign-in")
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def test_claim_next_takes_the_oldest_due_call_back_and_two_agents_get_different_ones(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    first, _ = await _rebook_task(hub)
    hub.clock.advance(minutes=5)
    second, _ = await _rebook_task(hub, mobile="+447700900002", family_name="Smith")
    other = new_browser(hub)
    await set_up_staff(hub, "alice")
    await set_up_staff(other, "bob")
    assert "Claim the next call-back" in (await hub.client.get("/staff")).text
    places = await asyncio.gather(_claim_next(hub), _claim_next(other))
    assert sorted(places) == [f"/staff/tasks/{first}", f"/staff/tasks/{second}"]
    held = await hub.db.fetch_all("SELECT claimed_by FROM tasks WHERE status = 'claimed'")
    assert len({row["claimed_by"] for row in held}) == 2
    # Nothing left to claim: the queue says so.
    assert await _claim_next(hub) == "/staff?done=none"
    assert "No call-backs are waiting to be claimed" in (await hub.client.get("/staff?done=none")).text
    # At the store, many at once: every task goes to exactly one agent, and no agent gets two in one round.
    for n in range(4):
        await _rebook_task(hub, mobile=f"+44770090010{n}", family_name=f"Family{n}")
    contenders = []  # more agents than call-backs
    for n in range(6):
        await create_staff(
            hub.db, username=f"agent{n}", role="agent", secret=hub.settings.secret_key, now=hub.clock.now(), hours=1
        )
        row = await hub.db.fetch_one("SELECT id FROM staff_users WHERE username = ?", (f"agent{n}",))
        assert row is not None
        contenders.append(int(row["id"]))
    won = await asyncio.gather(
        *(
            claim_next_task(hub.db, staff_id=s, filters=Filters(), scope=SYSTEM, now=hub.clock.now(), policy=QUEUE)
            for s in contenders
        )
    )
    claimed = [t for t in won if t is not None]
    assert len(claimed) == 4 and len(set(claimed)) == 4 and won.count(None) == 2


async def test_claim_next_keeps_to_the_queue_filters(hub: Harness) -> None:
    await _rebook_task(hub)
    patient = await hub.create_patient(mobile="+447700900002", family_name="Smith")
    await hub.create_task(kind="inbound_text", patient_id=patient, reason="Text")
    await set_up_staff(hub)
    place = await _claim_next(hub, {"kind": "inbound_text"})
    task = await hub.db.fetch_one("SELECT id FROM tasks WHERE kind = 'inbound_text'")
    assert task is not None and place == f"/staff/tasks/{task['id']}"


async def test_cancelling_asks_first_on_a_page_of_its_own(hub: Harness) -> None:
    task_id, appointment_id = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    page = await hub.client.get(f"/staff/tasks/{task_id}")
    assert f'href="/staff/tasks/{task_id}/cancel"' in page.text
    # Posting the outcome without the confirmation only leads to the question (post, redirect, get).
    assert await _outcome(hub, task_id, {"outcome": "cancelled"}) == f"/staff/tasks/{task_id}/cancel"
    assert await hub.db.fetch_one("SELECT status FROM appointments WHERE id = ?", (appointment_id,)) == {
        "status": "booked"
    }
    question = await hub.client.get(f"/staff/tasks/{task_id}/cancel")
    check_page(question.text)
    assert "<h1>Cancel Margaret Jones's appointment?</h1>" in question.text
    assert 'name="confirm" value="yes"' in question.text and "No, go back to the call-back" in question.text
    done = await _outcome(hub, task_id, {"outcome": "cancelled", "confirm": "yes"})
    assert done == "/staff?done=cancelled"
    assert "Call-back closed: appointment cancelled" in (await hub.client.get(done)).text
    # Once it is done, the question page goes back to the call-back.
    response = await hub.client.get(f"/staff/tasks/{task_id}/cancel")
    assert response.status_code == 303 and response.headers["location"] == f"/staff/tasks/{task_id}"


async def test_each_outcome_notice_says_what_was_done(hub: Harness) -> None:
    task_id, _ = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    form = {"outcome": "rebooked", "day": "15", "month": "12", "year": "2026", "time": "14:30", "site": "RFH"}
    done = await _outcome(hub, task_id, form)
    assert "Call-back closed: appointment moved to the new time" in (await hub.client.get(done)).text
    other, _ = await _rebook_task(hub, mobile="+447700900002", family_name="Smith")
    await _claim(hub, other)
    done = await _outcome(hub, other, {"outcome": "closed", "note": "Changed their mind"})
    assert "Call-back closed with your note" in (await hub.client.get(done)).text


async def test_a_bad_date_and_a_bad_time_are_both_reported(hub: Harness) -> None:
    task_id, _ = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    page = await _outcome(
        hub, task_id, {"outcome": "rebooked", "day": "31", "month": "2", "year": "2027", "time": "25"}
    )
    check_page(page)
    assert "Enter a real date, for example 3 12 2026" in page
    assert "Enter a time, for example 14:30 or 2:30pm" in page
    summary = page.split('class="nhsuk-error-summary', 1)[1].split("</ul>", 1)[0]
    assert 'href="#day"' in summary and 'href="#time"' in summary


@pytest.mark.parametrize("time", ["²", "9:①"])  # digits to str.isdigit(), not to int()
async def test_a_time_in_other_digits_is_refused_as_a_time(hub: Harness, time: str) -> None:
    task_id, _ = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    page = await _outcome(
        hub, task_id, {"outcome": "rebooked", "day": "15", "month": "12", "year": "2026", "time": time}
    )
    check_page(page)
    assert "Enter a time, for example 14:30 or 2:30pm" in page


async def test_console_titles_name_the_booking_centre(hub: Harness) -> None:
    task_id, _ = await _rebook_task(hub)
    await set_up_staff(hub, "root", "admin")
    service = hub.settings.service_name
    for path, title in (
        ("/staff", "Call-back queue"),
        (f"/staff/tasks/{task_id}", "Rebook request: Margaret Jones"),
        ("/staff/patients", "Find a patient"),
        ("/staff/admin/staff", "Staff"),
        ("/staff/admin/audit", "Audit log"),
    ):
        text = (await hub.client.get(path)).text
        found = re.search(r"<title>(.*?)</title>", text, re.DOTALL)
        assert found and " ".join(found.group(1).split()) == f"{title} – Booking centre – {service} – NHS", path
