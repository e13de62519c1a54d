"""What pages say about time follows the settings that decide it: change a setting and the text follows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def _patient_hub(make_hub: MakeHub, **settings: Any) -> tuple[Harness, int]:
    hub = await make_hub(**settings)
    patient = await hub.create_patient()
    return hub, await hub.create_appointment(patient_id=patient)


@pytest.mark.parametrize(("seconds", "text"), [(150, "2 and a half minutes"), (300, "5 minutes")])
async def test_the_code_page_states_the_code_lifetime(make_hub: MakeHub, seconds: int, text: str) -> None:
    hub, _ = await _patient_hub(make_hub, code_lifetime_seconds=seconds)
    assert (await hub.submit_details("07700 900001", "1948-03-14")).status_code == 303
    page = await hub.client.get("/sign-in/code")
    assert f"The code works for {text}." in page.text


@pytest.mark.parametrize(("months", "seconds"), [(24, 150), (12, 60)])
async def test_the_privacy_notice_states_what_is_kept_and_for_how_long(
    make_hub: MakeHub, months: int, seconds: int
) -> None:
    hub = await make_hub(past_months=months, code_lifetime_seconds=seconds)
    page = await hub.client.get("/privacy")
    lifetime = "2 and a half minutes" if seconds == 150 else "1 minute"
    assert f"past appointments for {months} months. Security codes stop working after {lifetime}," in page.text


@pytest.mark.parametrize(("minutes", "text"), [(30, "30 minutes"), (45, "45 minutes")])
async def test_the_staff_sign_in_page_states_the_idle_timeout(make_hub: MakeHub, minutes: int, text: str) -> None:
    hub = await make_hub(**{"staff.session_idle_minutes": minutes})
    page = await hub.client.get("/staff/sign-in?timed_out=1")
    assert f"You were signed out after {text} without activity." in page.text


@pytest.mark.parametrize(("days", "text"), [(2, "2 working days"), (1, "1 working day"), (5, "5 working days")])
async def test_the_rebook_pages_state_the_service_level(make_hub: MakeHub, days: int, text: str) -> None:
    hub, appointment = await _patient_hub(make_hub, **{"staff.sla_working_days": days})
    await hub.sign_in()
    page = await hub.client.get(f"/appointments/{appointment}/rebook")
    assert f"arrange a new date, usually within {text}." in page.text
    done = await hub.client.get(f"/appointments/{appointment}?done=rebook")
    assert f"arrange a new date, usually within {text}." in done.text


@pytest.mark.parametrize(("hours", "text"), [(["24", "48", "72"], "3 days"), (["12", "24", "36"], "36 hours")])
async def test_the_preferences_page_states_when_an_unread_letter_is_posted(
    make_hub: MakeHub, hours: list[str], text: str
) -> None:
    hub, _ = await _patient_hub(make_hub, escalation_hours=hours)
    await hub.sign_in()
    page = await hub.client.get("/preferences")
    assert f"We post a letter only if you have not read it online within {text}." in page.text
