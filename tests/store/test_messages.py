"""What we have sent a patient, as /messages lists it: newest first, in words, never their sign-in codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.store.messages import list_messages_for_patient
from tests.harness import Harness

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("status", "delivery", "state"),
    [
        ("queued", None, "Waiting to be sent"),
        ("sending", None, "Waiting to be sent"),
        ("sent", None, "Sent"),
        ("sent", "delivered", "Delivered"),
        ("sent", "temporary-failure", "Not delivered"),
        ("queued", "technical-failure", "Not delivered"),  # waiting to be retried after a failure
        ("failed", "permanent-failure", "Not delivered"),
        ("failed", None, "Not delivered"),
        ("cancelled", None, "Not sent (no longer needed)"),
        ("expired", None, "Not sent (expired)"),
    ],
)
async def test_each_message_says_what_became_of_it(hub: Harness, status: str, delivery: str | None, state: str) -> None:
    patient = await hub.create_patient()
    await hub.create_message(patient_id=patient, status=status, delivery_status=delivery)
    [message] = await list_messages_for_patient(hub.db, patient)
    assert (message["about"], message["channel"], message["state"]) == ("A new appointment", "Text message", state)


async def test_newest_first_without_codes_or_other_patients_messages(hub: Harness) -> None:
    patient = await hub.create_patient()
    other = await hub.create_patient(mobile="+447700900002")
    await hub.create_message(patient_id=patient, kind="invitation", channel="sms")
    hub.clock.advance(days=1)
    await hub.create_message(patient_id=patient, kind="security_code", lane="immediate")
    await hub.create_message(patient_id=other, kind="cancelled")
    hub.clock.advance(days=1)
    await hub.create_message(patient_id=patient, kind="changed", channel="email", sent=True)
    await hub.create_message(patient_id=patient, kind="something_new", channel="letter")
    listed = await list_messages_for_patient(hub.db, patient)
    assert [(m["about"], m["channel"]) for m in listed] == [
        ("About your appointments", "Letter"),  # a kind with no words of its own yet
        ("A change to your appointment", "Email"),
        ("A new appointment", "Text message"),
    ]
    assert [m["at"] for m in listed] == [hub.clock.now(), hub.clock.now(), hub.clock.now() - timedelta(days=2)]
    assert len(await list_messages_for_patient(hub.db, patient, limit=2)) == 2
