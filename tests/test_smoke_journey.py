import pytest

from tests.harness import Harness, check_page

pytestmark = pytest.mark.anyio


async def test_patient_signs_in_and_sees_appointments(hub: Harness) -> None:
    patient = await hub.create_patient()
    await hub.create_appointment(patient_id=patient, clinic="Eye clinic")
    await hub.sign_in()
    page = await hub.client.get("/appointments")
    assert page.status_code == 200
    assert "Eye clinic" in page.text
    check_page(page.text)
