"""Queueing a message: one outbox row, due at once, written in the caller's transaction."""

from __future__ import annotations

import json

import pytest

from hub.clock import to_db
from hub.store.outbox import queue_message
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_a_queued_message_is_due_now_and_keeps_its_personalisation(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient)
    async with hub.db.write() as tx:
        message_id = await queue_message(
            tx,
            at=hub.clock.now(),
            kind="invitation",
            channel="sms",
            recipient="+447700900001",
            template_id="template-1",
            personalisation={"link": "https://hub.example/p/x", "date": "Thursday 3 December 2026"},
            patient_id=patient,
            appointment_id=appointment,
        )
    row = await hub.db.fetch_one("SELECT * FROM outbox_messages WHERE id = ?", (message_id,))
    assert row is not None
    assert (row["status"], row["lane"], row["attempts"], row["notify_id"]) == ("queued", "bulk", 0, None)
    assert row["next_attempt_at"] == row["created_at"] == to_db(hub.clock.now())
    assert (row["patient_id"], row["appointment_id"], row["template_id"]) == (patient, appointment, "template-1")
    assert json.loads(row["personalisation"]) == {"date": "Thursday 3 December 2026", "link": "https://hub.example/p/x"}


async def test_a_message_queued_in_a_transaction_that_fails_is_never_sent(hub: Harness) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with hub.db.write() as tx:
            await queue_message(
                tx,
                at=hub.clock.now(),
                kind="security_code",
                channel="sms",
                recipient="+447700900001",
                template_id="t",
                personalisation={},
                patient_id=None,
                lane="immediate",
            )
            raise Boom
    assert await hub.db.fetch_all("SELECT id FROM outbox_messages") == []
