"""The hospital changes a free slot's time (a PUT of the same slot reference) while a patient has it on the check page
or in an earlier-time offer: "Confirm new time" or "Take this appointment" must not move the patient to a time they
were never shown; they read "That time has just gone" (or "This earlier appointment has gone") and nothing moves."""

from __future__ import annotations

import re

import pytest

from hub.store.offers import OfferRound, run_offers, set_earlier_request
from tests.conftest import MakeHub
from tests.web.api.test_handlers import Api
from tests.web.patient.test_appointments import location
from tests.web.patient.test_slots import NOW, SELF_SERVICE, clinic

pytestmark = pytest.mark.anyio

FIRST = "2026-11-24T09:00:00+00:00"  # FREE0, the first free slot of tests.web.patient.test_slots.clinic
LATER = "2026-12-01T15:00:00+00:00"  # where the hospital moves it


def slot_body(start: str) -> dict[str, object]:
    return {
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "clinician": "Dr A Example",
        "start": start,
        "duration_minutes": 30,
        "mode": "in_person",
        "status": "free",
    }


def hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form posting to `action` (all but the CSRF token): what the browser sends."""
    form = html.split(f'action="{action}"', 1)[1].split("</form>", 1)[0]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields.pop("csrf_token", None)
    return fields


async def test_confirming_a_time_the_hospital_has_changed_since_the_check_page_moves_nothing(
    make_hub: MakeHub,
) -> None:
    hub = await make_hub(**SELF_SERVICE)
    hub.clock.set(NOW)
    _, appointment = await clinic(hub)
    pas = Api(hub, await hub.create_api_key(), "pas")
    assert (await pas.put("slots/FREE0", slot_body(FIRST))).status_code == 200
    [slot] = await hub.db.fetch_all("SELECT id FROM slots WHERE ref = 'FREE0'")
    await hub.sign_in()
    check = f"/appointments/{appointment}/change-time/{slot['id']}"
    page = await hub.get_page(check)
    assert "Tuesday 24 November 2026" in page.text
    shown = hidden_fields(page.text, check)

    assert (await pas.put("slots/FREE0", slot_body(LATER))).status_code == 200
    nonsense = await hub.post_form(check, {"start": "9am Tuesday"}, csrf_from="/preferences")
    assert nonsense.status_code == 409 and "That time has just gone" in nonsense.text
    answer = await hub.post_form(check, shown, csrf_from="/preferences")
    assert answer.status_code == 409 and "That time has just gone" in answer.text
    [row] = await hub.db.fetch_all("SELECT starts_at, sequence FROM appointments WHERE id = ?", (appointment,))
    assert row == {"starts_at": "2026-12-11T10:00:00.000000Z", "sequence": 0}
    assert await hub.db.fetch_all("SELECT status FROM slots WHERE ref = 'FREE0'") == [{"status": "free"}]


async def test_taking_an_offer_whose_slot_the_hospital_has_moved_since_moves_nothing(make_hub: MakeHub) -> None:
    hub = await make_hub(**SELF_SERVICE, **{"slots.earlier_batch": 1})
    hub.clock.set(NOW)
    patient, appointment = await clinic(hub, days=1)
    pas = Api(hub, await hub.create_api_key(), "pas")
    assert (await pas.put("slots/FREE0", slot_body(FIRST))).status_code == 200
    assert await set_earlier_request(hub.db, patient_id=patient, appointment_id=appointment, wanted=True, now=NOW)
    assert await run_offers(hub.db, settings=hub.settings, now=NOW) == OfferRound(0, 1)
    [offer] = await hub.db.fetch_all("SELECT id FROM slot_offers")
    await hub.sign_in()
    page = await hub.get_page(f"/offers/{offer['id']}")
    assert "Tuesday 24 November 2026" in page.text
    action = f"/offers/{offer['id']}"
    shown = hidden_fields(page.text.split('value="decline"', 1)[0], action)

    assert (await pas.put("slots/FREE0", slot_body(LATER))).status_code == 200
    answer = await hub.post_form(action, shown, csrf_from="/preferences")
    assert answer.status_code == 409, location(answer)
    [row] = await hub.db.fetch_all("SELECT starts_at, sequence FROM appointments WHERE id = ?", (appointment,))
    assert row == {"starts_at": "2026-12-11T10:00:00.000000Z", "sequence": 0}
