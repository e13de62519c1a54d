"""One appointment's page as a patient reads it: only the rows that say something, what happens after asking to
change it, and a time the hospital or the booking team moved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.harness import Harness
from tests.pages import Page

pytestmark = pytest.mark.anyio
START = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def rows(page: Page) -> dict[str, str]:
    keys = [" ".join("".join(k.itertext()).split()) for k in page.document.iterfind(".//dt")]
    values = [" ".join("".join(v.itertext()).split()) for v in page.document.iterfind(".//dd")]
    return dict(zip(keys, values, strict=True))


async def test_a_telephone_appointment_shows_no_rows_about_nothing(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, mode="telephone", starts_at=START)
    await hub.sign_in()
    shown = rows(await hub.get_page(f"/appointments/{appointment}"))
    assert "Interpreter" not in shown and "Hospital transport" not in shown
    assert "Your request" not in shown
    assert "Not booked" not in shown.values() and "None" not in shown.values()
    assert len(shown) <= 7


async def test_what_is_booked_and_what_was_asked_are_shown(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(
        patient_id=patient, starts_at=START, interpreter_booked=True, request_state="confirmed", clinic=""
    )
    await hub.sign_in()
    shown = rows(await hub.get_page(f"/appointments/{appointment}"))
    assert shown["Interpreter"] == "Booked"
    assert shown["Your request"] == "You confirmed you will attend"
    assert "Clinic" not in shown  # not "Not given"


async def test_after_asking_to_change_the_page_says_so_and_offers_to_update_the_request(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, starts_at=START)
    await hub.sign_in()
    asked = await hub.post_form(
        f"/appointments/{appointment}/rebook", {"reason": "Away"}, csrf_from=f"/appointments/{appointment}/rebook"
    )
    assert asked.status_code == 303
    page = await hub.get_page(f"/appointments/{appointment}")  # later, without the banner
    text = " ".join(page.text.split())
    assert "You have asked to change this appointment." in text
    assert "Keep this appointment until they confirm the change." in text
    assert "Ask to change this appointment" not in text
    buttons = [" ".join("".join(a.itertext()).split()) for a in page.document.iterfind(".//a[@role='button']")]
    assert "Update your request to change it" in buttons


async def test_a_time_the_hospital_moved_says_what_it_was(hub: Harness) -> None:
    patient = await hub.create_patient(mrn="MRN1")
    appointment = await hub.create_appointment(patient_id=patient, ref="A1", starts_at=START)
    key = await hub.create_api_key()
    body = {"patient_ref": "MRN1", "site_code": "RFH", "start": "2026-12-10T14:00:00+00:00", "duration_minutes": 30}
    moved = await hub.client.put("/api/v1/appointments/A1", json=body, headers={"Authorization": f"Bearer {key}"})
    assert moved.status_code == 200, moved.text
    await hub.sign_in()
    text = " ".join((await hub.get_page(f"/appointments/{appointment}")).text.split())
    assert "The hospital changed this appointment on Saturday 21 November 2026." in text
    assert "It was on Thursday 3 December 2026 at 9:30am." in text


async def test_an_appointment_never_moved_has_no_changed_notice(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, starts_at=START)
    await hub.sign_in()
    assert "changed this appointment" not in (await hub.get_page(f"/appointments/{appointment}")).text
