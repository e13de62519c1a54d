"""GET /fhir/r4/DocumentReference on both databases: letters, their read receipts as the patient acts, no titles."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.harness import Harness
from tests.web.fhir.conftest import NHS_NUMBER, Ask

pytestmark = pytest.mark.anyio


def _receipts(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["extension"][0]["valueCode"] for e in bundle["entry"]]


async def test_letters_go_unread_then_seen_then_read(wayfinder: Harness, ask: Ask) -> None:
    patient = await wayfinder.create_patient(nhs_number=NHS_NUMBER)
    appointment = await wayfinder.create_appointment(patient_id=patient, specialty="Dermatology")
    letter = await wayfinder.create_letter(
        patient_id=patient, appointment_id=appointment, title="Letter for Margaret Jones"
    )
    bundle = (await ask("DocumentReference")).json()
    Bundle.model_validate(bundle)
    assert _receipts(bundle) == ["Unread"]
    resource = bundle["entry"][0]["resource"]
    assert resource["description"] == "Dermatology appointment letter"
    assert "Margaret" not in str(bundle)
    await wayfinder.sign_in()
    await wayfinder.get_page(f"/appointments/{appointment}")
    assert _receipts((await ask("DocumentReference")).json()) == ["Seen"]
    assert (await wayfinder.client.get(f"/letters/{letter}")).status_code == 200
    assert _receipts((await ask("DocumentReference")).json()) == ["Read"]


async def test_letters_about_a_hidden_clinic_are_left_out(make_hub: object, wayfinder: Harness, ask: Ask) -> None:
    patient = await wayfinder.create_patient(nhs_number=NHS_NUMBER)
    await wayfinder.create_letter(patient_id=patient)
    assert (await ask("DocumentReference")).json()["total"] == 1
    assert (await ask("DocumentReference", nhs_number="9000000009")).status_code == 401  # not the token's number
