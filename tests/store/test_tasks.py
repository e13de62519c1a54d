"""What reaches the booking centre's queue from the rest of the hub."""

import pytest

from tests.harness import Harness
from tests.web.test_notify import hub, patient, post, rows, send_status, sent_message, text  # noqa: F401

pytestmark = pytest.mark.anyio


async def _tasks(hub: Harness) -> list[dict[str, object]]:  # noqa: F811
    return await rows(hub, "SELECT kind, patient_id, source_id, status FROM tasks ORDER BY id")


async def test_a_message_with_nowhere_else_to_go_becomes_a_task(hub: Harness) -> None:  # noqa: F811
    patient_id = await patient(hub)  # no email, no address: the failed text cannot go another way
    message_id = await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "permanent-failure")
    await send_status(hub, "n-1", "permanent-failure")  # Notify retries: still one task
    assert await _tasks(hub) == [
        {"kind": "failed_notification", "patient_id": patient_id, "source_id": message_id, "status": "open"}
    ]


async def test_a_failed_text_that_goes_again_by_email_is_not_a_task(hub: Harness) -> None:  # noqa: F811
    patient_id = await patient(hub, email="ann@example.com")
    await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "permanent-failure")
    assert await _tasks(hub) == []


async def test_a_text_from_a_patient_becomes_a_task_but_stop_does_not(hub: Harness) -> None:  # noqa: F811
    patient_id = await patient(hub)
    assert (await post(hub, "inbound", text("STOP", notify_id="in-1"))).status_code == 200
    assert (await post(hub, "inbound", text("Can I come earlier?", notify_id="in-2"))).status_code == 200
    assert (await post(hub, "inbound", text("Can I come earlier?", notify_id="in-2"))).status_code == 200
    [inbound] = await rows(hub, "SELECT id FROM inbound_messages WHERE notify_id = 'in-2'")
    assert await _tasks(hub) == [
        {"kind": "inbound_text", "patient_id": patient_id, "source_id": inbound["id"], "status": "open"}
    ]
