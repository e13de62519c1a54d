"""Sending a message another way, and checking a message going round again. Where these meet other features (a
hospital's cancel, a STOP, a read letter, a new link while a message is out) is in
tests/seams/test_retry_after_change.py; the rule itself is tests/rules/test_sending.py (no_longer_true)."""

from __future__ import annotations

import pytest

from hub.store.rerouting import next_channel, requeued
from tests.harness import Harness

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("channel", "has_email", "can_post", "expected"),
    [
        ("sms", True, True, "email"),
        ("sms", False, True, "letter"),
        ("sms", False, False, None),
        ("email", True, True, "letter"),
        ("email", True, False, None),
        ("letter", True, True, None),
    ],
)
def test_next_channel(channel: str, has_email: bool, can_post: bool, expected: str | None) -> None:
    assert next_channel(channel, has_email=has_email, can_post=can_post) == expected


async def test_a_message_about_no_appointment_goes_round_again_as_it_was(hub: Harness) -> None:
    # A link resent by an agent: nothing about an appointment to have gone out of date.
    patient = await hub.create_patient()
    message = await hub.create_message(kind="patient_link", patient_id=patient, personalisation={"link": "x"})
    async with hub.db.write(patient=patient) as tx:
        await requeued(tx, message, templates=hub.settings.notify.templates, now=hub.clock.now(), actor="outbox")
    row = await hub.db.fetch_one("SELECT status, personalisation FROM outbox_messages WHERE id = ?", (message,))
    assert row == {"status": "queued", "personalisation": '{"link": "x"}'}


async def test_a_text_to_a_patient_who_stopped_texts_goes_by_email(hub: Harness) -> None:
    patient = await hub.create_patient(email="margaret@example.com", sms_opted_out=True)
    message = await hub.create_message(kind="patient_link", patient_id=patient, personalisation={"link": "x"})
    async with hub.db.write(patient=patient) as tx:
        await requeued(tx, message, templates=hub.settings.notify.templates, now=hub.clock.now(), actor="outbox")
    found = await hub.db.fetch_all("SELECT channel, status, error FROM outbox_messages ORDER BY id")
    assert found == [
        {"channel": "sms", "status": "cancelled", "error": "sms opted out"},
        {"channel": "email", "status": "queued", "error": ""},
    ]
