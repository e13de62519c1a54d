from datetime import UTC, datetime

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


async def test_a_message_names_its_appointment_by_clinic_and_date(hub: Harness) -> None:
    patient = await hub.create_patient()
    starts = datetime(2026, 12, 14, 9, 30, tzinfo=UTC)
    appointment = await hub.create_appointment(patient_id=patient, starts_at=starts, clinic="Eye clinic")
    moved = await hub.create_appointment(patient_id=patient, starts_at=starts, clinic="", specialty="Dermatology")
    await hub.create_message(patient_id=patient, appointment_id=appointment, kind="invitation", sent=True)
    # What the message said, not what the appointment says now: it has moved since.
    said = {"date": "Friday 11 December 2026", "time": "2:00pm", "clinic": "", "site": "", "link": ""}
    await hub.create_message(patient_id=patient, appointment_id=moved, kind="changed", personalisation=said)
    await hub.sign_in()

    text = " ".join((await hub.get_page("/messages")).text.split())

    assert "A new appointment: Eye clinic, Monday 14 December 2026" in text
    assert "A change to your appointment: Dermatology, Friday 11 December 2026" in text
