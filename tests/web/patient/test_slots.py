"""The patient chooses a new time themselves: the free slots by day, paged; the check page; the confirmation; the
time that has just gone; the clinics that keep the call-back route; the limit and the cut-off."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import MakeHub
from tests.harness import Harness
from tests.web.patient.test_appointments import location, text_of

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SELF_SERVICE = {"slots.self_service_clinics": ["RAL:Cardiology outpatients"]}


async def clinic(hub: Harness, *, days: int = 7, mobile: str = "+447700900001", **appointment: Any) -> tuple[int, int]:
    """A patient with an appointment in a busy slot in 20 days' time, and a free slot at 9:00 on each of `days`
    days from the 3rd day on: (patient, appointment)."""
    patient = await hub.create_patient(mobile=mobile, mrn=f"MRN{mobile[-3:]}")
    start = NOW + 20 * DAY
    made = await hub.create_appointment(patient_id=patient, starts_at=start, **appointment)
    await hub.create_slot(starts_at=start, status="busy", appointment_id=made, ref=f"OLD{made}")
    if not await hub.db.fetch_one("SELECT id FROM slots WHERE status = 'free'"):
        for day in range(days):
            await hub.create_slot(starts_at=NOW.replace(hour=9) + (3 + day) * DAY, ref=f"FREE{day}")
    return patient, made


async def post(hub: Harness, path: str, data: dict[str, str] | None = None) -> Any:
    return await hub.post_form(path, data or {}, csrf_from="/preferences")


def slot_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="slot" type="radio" value="(\d+)"', html)]


async def test_the_whole_flow_moves_the_appointment(make_hub: MakeHub) -> None:
    hub = await make_hub(**SELF_SERVICE)
    _, appointment = await clinic(hub, transport_booked=True)
    await hub.sign_in()

    detail = await hub.get_page(f"/appointments/{appointment}")
    assert f'href="/appointments/{appointment}/change-time"' in detail.text
    assert f'href="/appointments/{appointment}/rebook"' not in detail.text  # self-service instead of a call-back

    first = await hub.get_page(f"/appointments/{appointment}/change-time")
    assert len(slot_ids(first.text)) == 5  # five days a page, one time each
    assert "Tuesday 24 November 2026" in text_of(first.text)
    assert f'href="/appointments/{appointment}/change-time?page=2"' in first.text
    second = await hub.get_page(f"/appointments/{appointment}/change-time?page=2")
    assert len(slot_ids(second.text)) == 2

    nothing = await post(hub, f"/appointments/{appointment}/change-time", {"page": "1"})
    assert nothing.status_code == 422 and "Select a new date and time" in nothing.text
    chosen = slot_ids(first.text)[1]
    check = location(await post(hub, f"/appointments/{appointment}/change-time", {"slot": str(chosen)}))
    assert check == f"/appointments/{appointment}/change-time/{chosen}"
    page = text_of((await hub.get_page(check)).text)
    assert "Wednesday 25 November 2026" in page and "9am" in page
    assert "hospital transport" in page  # the warning is repeated
    assert "you can change this appointment online 1 more time" in page

    done = location(await post(hub, check))
    assert done == f"/appointments/{appointment}?done=moved"
    moved = text_of((await hub.get_page(done)).text)
    assert "Your appointment has been changed to Wednesday 25 November 2026 at 9am" in moved
    row = await hub.db.fetch_one("SELECT starts_at, sequence FROM appointments WHERE id = ?", (appointment,))
    assert row is not None and row["sequence"] == 1 and row["starts_at"].startswith("2026-11-25T09:00")
    [event] = await hub.db.fetch_all("SELECT kind, data FROM events")
    assert event["kind"] == "appointment.rescheduled_by_patient"
    assert json.loads(event["data"])["previous_slot_ref"] == f"OLD{appointment}"
    assert [m["kind"] for m in await hub.db.fetch_all("SELECT kind FROM outbox_messages WHERE lane = 'bulk'")] == [
        "changed"
    ]
    ics = (await hub.client.get(f"/appointments/{appointment}.ics")).text
    assert "SEQUENCE:1" in ics and "DTSTART;TZID=Europe/London:20261125T090000" in ics


async def test_the_time_that_has_just_gone(make_hub: MakeHub, new_browser: Callable[..., Harness]) -> None:
    hub = await make_hub(**SELF_SERVICE)
    _, mine = await clinic(hub)
    other = new_browser(hub)
    _, theirs = await clinic(other, mobile="+447700900002")
    await hub.sign_in()
    await other.sign_in("07700 900002")
    wanted = slot_ids((await hub.get_page(f"/appointments/{mine}/change-time")).text)[0]
    # Both reach the check page for the same time; the other patient confirms first.
    await hub.get_page(f"/appointments/{mine}/change-time/{wanted}")
    await other.get_page(f"/appointments/{theirs}/change-time/{wanted}")
    assert location(await post(other, f"/appointments/{theirs}/change-time/{wanted}")).endswith("done=moved")
    late = await post(hub, f"/appointments/{mine}/change-time/{wanted}")
    assert late.status_code == 409
    assert "That time has just gone" in text_of(late.text)
    assert wanted not in slot_ids(late.text) and len(slot_ids(late.text)) == 5  # the list again, without it
    # Opening its check page again says the same.
    gone = await hub.client.get(f"/appointments/{mine}/change-time/{wanted}")
    assert gone.status_code == 409 and "That time has just gone" in gone.text
    row = await hub.db.fetch_one("SELECT sequence FROM appointments WHERE id = ?", (mine,))
    assert row is not None and row["sequence"] == 0


async def test_other_clinics_keep_the_call_back_route(make_hub: MakeHub) -> None:
    hub = await make_hub(**{"slots.self_service_specialties": ["RAL:Dermatology"]})
    _, appointment = await clinic(hub)  # Cardiology
    await hub.sign_in()
    detail = await hub.get_page(f"/appointments/{appointment}")
    assert f'href="/appointments/{appointment}/rebook"' in detail.text
    assert "change-time" not in detail.text
    refused = await hub.client.get(f"/appointments/{appointment}/change-time")
    assert refused.status_code == 303 and "refused=" in refused.headers["location"]
    chosen = await post(hub, f"/appointments/{appointment}/change-time/3")
    assert chosen.status_code == 303 and "refused=" in chosen.headers["location"]
    assert await hub.db.fetch_all("SELECT id FROM slot_moves") == []


async def test_the_limit_and_the_cut_off(make_hub: MakeHub) -> None:
    hub = await make_hub(rebook_limit=1, **SELF_SERVICE)
    _, appointment = await clinic(hub)
    soon = await hub.create_appointment(patient_id=1, starts_at=NOW + timedelta(hours=20))
    await hub.sign_in()
    page = text_of((await hub.get_page(f"/appointments/{appointment}/change-time/2")).text)
    assert "This is the last time you can change this appointment online" in page
    assert location(await post(hub, f"/appointments/{appointment}/change-time/2")).endswith("done=moved")
    detail = await hub.get_page(f"/appointments/{appointment}")
    assert "change-time" not in detail.text and "/rebook" not in detail.text
    again = await hub.client.get(f"/appointments/{appointment}/change-time")
    assert again.headers["location"] == f"/appointments/{appointment}?refused=limit"
    late = await post(hub, f"/appointments/{appointment}/change-time/3")
    assert late.headers["location"] == f"/appointments/{appointment}?refused=limit"
    inside = await hub.client.get(f"/appointments/{soon}/change-time")
    assert inside.headers["location"] == f"/appointments/{soon}?refused=cutoff"


async def test_no_free_times_offers_the_booking_team(make_hub: MakeHub) -> None:
    hub = await make_hub(**SELF_SERVICE)
    _, appointment = await clinic(hub, days=0)
    await hub.sign_in()
    page = await hub.get_page(f"/appointments/{appointment}/change-time")
    assert "There are no other times free in the next 42 days." in text_of(page.text)
    assert f'href="/appointments/{appointment}/rebook"' in page.text
