"""Giving up on a message (hub/store/failures.py), the one function behind Notify's receipts and the sender.

How each path reaches it is tested with the path: receipts through Notify's callbacks (tests/store/test_receipts.py),
the sender against the fake Notify (tests/notify/test_sender_faults.py). Here, what holds whichever path calls it.
"""

from __future__ import annotations

import pytest

from hub.store.failures import Failure, Fence, fail_message
from tests.harness import Harness
from tests.notify_callbacks import events, message, patient, rows, sent_message, snapshot

pytestmark = pytest.mark.anyio

STILL_SENT = Fence("status = 'sent' AND notify_id = ?", ("n-1",))


async def _fail(hub: Harness, message_id: int, fence: Fence, failure: Failure) -> bool:
    async with hub.db.write() as tx:
        return await fail_message(
            tx,
            message_id,
            fence=fence,
            changes={"error": f"test {failure.status}"},
            failure=failure,
            templates=hub.settings.notify.templates,
            now=hub.clock.now(),
            actor="test",
        )


async def test_a_message_that_moved_on_since_its_caller_read_it_is_left_as_it_is(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com", postcode="NW3 2QG")
    message_id = await sent_message(hub, patient_id=patient_id, notify_id="n-2")  # sent again since
    before = await snapshot(hub)
    assert not await _fail(hub, message_id, STILL_SENT, Failure("permanent-failure", fail_over=True))
    assert await snapshot(hub) == before


async def test_a_failed_address_goes_by_the_next_channel_with_everything_recorded(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com", postcode="NW3 2QG")
    message_id = await sent_message(hub, patient_id=patient_id)
    assert await _fail(hub, message_id, STILL_SENT, Failure("refused", fail_over=True, detail="why"))
    row = await message(hub, message_id)
    assert (row["status"], row["error"]) == ("failed", "test refused")
    [replacement] = await rows(hub, "SELECT id, channel, status FROM outbox_messages WHERE id != ?", (message_id,))
    assert (replacement["channel"], replacement["status"]) == ("email", "queued")
    [event] = await events(hub)
    assert (event["kind"], event["data"]["status"], event["data"]["to"]) == (
        "notification.failed_over",
        "refused",
        "email",
    )
    audit = await rows(hub, "SELECT actor_id, action, record_id, detail FROM audit_events ORDER BY id")
    assert audit[0] == {
        "actor_id": "test",
        "action": "notification_failed",
        "record_id": str(message_id),
        "detail": "sms refused: why",
    }
    assert await rows(hub, "SELECT id FROM tasks") == []


async def test_a_failed_sending_goes_no_other_way_and_the_booking_centre_chases_it(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com", postcode="NW3 2QG")
    message_id = await sent_message(hub, patient_id=patient_id)
    assert await _fail(hub, message_id, STILL_SENT, Failure("not-sent", fail_over=False))
    assert [r["id"] for r in await rows(hub, "SELECT id FROM outbox_messages")] == [message_id]
    assert [(e["kind"], e["data"]["status"]) for e in await events(hub)] == [("notification.failed", "not-sent")]
    assert await rows(hub, "SELECT kind, reason FROM tasks") == [
        {"kind": "failed_notification", "reason": "sms not-sent"}
    ]


async def test_a_security_code_is_never_sent_another_way_nor_chased(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com", postcode="NW3 2QG")
    message_id = await sent_message(hub, patient_id=patient_id, kind="security_code", lane="immediate")
    assert await _fail(hub, message_id, STILL_SENT, Failure("refused", fail_over=True))
    assert [r["id"] for r in await rows(hub, "SELECT id FROM outbox_messages")] == [message_id]
    assert [e["kind"] for e in await events(hub)] == ["notification.failed"]
    assert await rows(hub, "SELECT id FROM tasks") == []
