import pytest

from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio


async def test_patient_signs_in_and_sees_appointments(hub: Harness) -> None:
    patient = await hub.create_patient()
    await hub.create_appointment(patient_id=patient, clinic="Eye clinic")
    await hub.sign_in()
    page = await hub.client.get("/appointments")
    assert page.status_code == 200
    assert "Eye clinic" in page.text
    check_page(page.text)


async def test_ids_too_big_for_the_database_are_not_found(hub: Harness) -> None:
    patient = await hub.create_patient()
    await hub.create_appointment(patient_id=patient)
    await hub.sign_in()
    for path in (
        "/appointments/99999999999999999999",
        "/letters/9223372036854775808",
        "/appointments/1234567890123456789.ics",
    ):
        response = await hub.client.get(path)
        assert response.status_code == 404, path
