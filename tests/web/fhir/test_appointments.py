"""GET /fhir/r4/Appointment on both databases: what is included, what is not, and a patient's change at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.conftest import MakeHub
from tests.fake_aggregator import FakeAggregator
from tests.fake_nhs_login import MARGARET, FakeNhsLogin
from tests.harness import Harness
from tests.web.fhir.conftest import CORRELATION, NHS_NUMBER, Ask, wayfinder_settings

pytestmark = pytest.mark.anyio
REQUEST_STATUS = "https://fhir.nhs.uk/StructureDefinition/Extension-Appointment-RequestStatus"


def _request_status(resource: dict[str, Any]) -> object:
    found = [e for e in resource["extension"] if e["url"] == REQUEST_STATUS]
    return found[0]["valueCode"] if found else None


async def test_past_future_and_cancelled_appointments_are_returned(wayfinder: Harness, ask: Ask) -> None:
    patient = await wayfinder.create_patient(nhs_number=NHS_NUMBER)
    now = wayfinder.clock.now()
    await wayfinder.create_appointment(patient_id=patient, starts_at=now - timedelta(days=30), status="attended")
    await wayfinder.create_appointment(patient_id=patient, starts_at=now + timedelta(days=3))
    await wayfinder.create_appointment(patient_id=patient, starts_at=now + timedelta(days=9), status="cancelled")
    response = await ask()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["x-correlation-id"] == CORRELATION
    assert response.headers["cache-control"] == "no-store"
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["total"] == 3
    assert [e["resource"]["status"] for e in bundle["entry"]] == ["fulfilled", "booked", "cancelled"]


async def test_no_appointments_is_200_with_total_0(wayfinder: Harness, ask: Ask) -> None:
    response = await ask()
    assert response.status_code == 200
    assert response.json() == {"resourceType": "Bundle", "type": "searchset", "total": 0}


async def test_a_patient_the_trust_excludes_gets_nothing(wayfinder: Harness, ask: Ask) -> None:
    patient = await wayfinder.create_patient(nhs_number=NHS_NUMBER, nhs_app_excluded=True)
    await wayfinder.create_appointment(patient_id=patient)
    await wayfinder.create_letter(patient_id=patient)
    assert (await ask()).json()["total"] == 0
    assert (await ask("DocumentReference")).json()["total"] == 0


async def test_hidden_clinics_and_specialties_are_left_out(
    make_hub: MakeHub, aggregator: FakeAggregator, nhs_login: FakeNhsLogin, ask: Ask
) -> None:
    hidden = {"nhs_app.hidden_clinics": ["RAL:Sexual health"], "nhs_app.hidden_specialties": ["RAL:Fertility"]}
    hub = await make_hub(**wayfinder_settings(aggregator, nhs_login), **hidden)
    patient = await hub.create_patient(nhs_number=NHS_NUMBER)
    await hub.create_appointment(patient_id=patient, clinic="Sexual health", specialty="Genitourinary medicine")
    await hub.create_appointment(patient_id=patient, clinic="Fertility clinic", specialty="Fertility")
    shown = await hub.create_appointment(patient_id=patient)
    bundle = (await ask(hub=hub)).json()
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["identifier"][1]["value"] == str(shown)


async def test_under_16s_are_refused(wayfinder: Harness, ask: Ask, nhs_login: FakeNhsLogin) -> None:
    child = {**MARGARET, "birthdate": "2010-11-22"}  # 16 tomorrow
    patient = await wayfinder.create_patient(nhs_number=NHS_NUMBER, dob="2010-11-22")
    await wayfinder.create_appointment(patient_id=patient)
    response = await ask(id_token=nhs_login.id_token(child))
    assert response.status_code == 403
    assert response.json()["issue"][0] == {"severity": "error", "code": "forbidden", "diagnostics": "UNDER_16_DENIED"}


async def test_a_patients_change_shows_in_the_next_call(wayfinder: Harness, ask: Ask) -> None:
    patient = await wayfinder.create_patient(nhs_number=NHS_NUMBER)
    appointment = await wayfinder.create_appointment(patient_id=patient)
    assert _request_status((await ask()).json()["entry"][0]["resource"]) is None
    await wayfinder.sign_in()
    response = await wayfinder.post_form(
        f"/appointments/{appointment}/confirm", {}, csrf_from=f"/appointments/{appointment}"
    )
    assert response.status_code == 303
    assert _request_status((await ask()).json()["entry"][0]["resource"]) == "Confirmed Attendance"
