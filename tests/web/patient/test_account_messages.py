import pytest

from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio


async def _message(hub: Harness, patient: int, kind: str, channel: str, status: str, delivery: str | None) -> None:
    await hub.create_message(
        patient_id=patient, kind=kind, channel=channel, template_id="", status=status, delivery_status=delivery
    )


async def test_the_patient_sees_what_we_sent_them_but_not_their_codes_or_anyone_elses(hub: Harness) -> None:
    patient = await hub.create_patient()
    other = await hub.create_patient(mobile="+447700900002", verification_code="XX2345")
    await _message(hub, patient, "invitation", "sms", "sent", "delivered")
    await _message(hub, patient, "changed", "email", "failed", "permanent-failure")
    await _message(hub, patient, "appointment_reminder", "sms", "queued", None)
    await _message(hub, other, "cancelled", "letter", "sent", None)
    await hub.sign_in()

    page = await hub.client.get("/messages")

    assert page.status_code == 200
    check_page(page.text)
    text = " ".join(page.text.split())
    assert "A new appointment" in text and "Delivered" in text
    assert "A change to your appointment" in text and "Not delivered" in text
    assert "A reminder of your appointment" in text and "Waiting to be sent" in text
    assert "A cancelled appointment" not in text  # the other patient's
    # The header row and three messages: the sign-in code sent to this patient is not among them.
    assert text.count('<tr class="nhsuk-table__row" role="row">') == 4


async def test_no_messages_yet(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()  # the sign-in code itself is not listed
    page = await hub.client.get("/messages")
    assert "We have not sent you any messages yet." in page.text
