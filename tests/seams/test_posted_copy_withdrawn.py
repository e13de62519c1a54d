"""The unread invitation's posted copy, held overnight by quiet hours, withdrawn before it goes: the patient reads the
letter, asks to cancel, or the hospital cancels. The booking centre's "Letter sent by post" task is closed with it (an
agent would otherwise tell the patient a letter is on its way that never goes), and the hospital, told by
`letter.escalated_to_post` that it was posted, is told by `letter.not_posted` that it was not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import MakeHub
from tests.harness import Harness
from tests.notify_callbacks import CALLBACKS, send_status
from tests.pas import messages
from tests.seams.test_escalation_after_move import EVENING, OLD, events, posted_copy_held, send_all, tasks

pytestmark = pytest.mark.anyio


async def withdrawn(hub: Harness, post_id: int, reason: str, outcome: str = "not_posted") -> None:
    notifier = await send_all(hub)
    assert "invitation_post" not in [m.kind for m in notifier.sent]
    [post] = await messages(hub, "invitation_post")
    assert post["status"] == "cancelled"
    [task] = [t for t in await tasks(hub) if t["kind"] == "letter_posted"]
    assert task == {"kind": "letter_posted", "status": "closed", "outcome": outcome, "source_id": post_id}
    [escalated] = await events(hub, "letter.escalated_to_post")
    assert await events(hub, "letter.not_posted") == [
        {"kind": "invitation_post", "reason": reason, "message_id": escalated["message_id"]}
    ]


async def test_the_patient_reading_the_letter_closes_the_posted_letters_task(hub: Harness) -> None:
    _, post = await posted_copy_held(hub)
    hub.clock.set(EVENING + timedelta(hours=72, minutes=30))
    await hub.sign_in()
    [letter] = await hub.db.fetch_all("SELECT id FROM letters")
    assert (await hub.client.get(f"/letters/{letter['id']}")).status_code == 200
    await withdrawn(hub, post["id"], "letter_opened")


async def test_the_patient_asking_to_cancel_closes_the_posted_letters_task(hub: Harness) -> None:
    _, post = await posted_copy_held(hub)
    hub.clock.set(EVENING + timedelta(hours=72, minutes=30))
    await hub.sign_in()
    [appointment] = await hub.db.fetch_all("SELECT id FROM appointments")
    asked = await hub.post_form(
        f"/appointments/{appointment['id']}/cancel", {"reason": "no_longer_needed"}, csrf_from="/preferences"
    )
    assert asked.status_code == 303, asked.text
    assert [t["kind"] for t in await tasks(hub) if t["status"] == "open"] == ["cancel"]  # the request, not the letter
    await withdrawn(hub, post["id"], "cancel_requested")


async def test_the_hospital_cancelling_tells_it_the_posted_letter_did_not_go(hub: Harness) -> None:
    pas, post = await posted_copy_held(hub)
    hub.clock.set(EVENING + timedelta(hours=72, minutes=30))
    await pas.book(start=OLD, status="cancelled", expect="cancelled")
    await withdrawn(hub, post["id"], "appointment_cancelled", outcome="cancelled_by_hospital")


async def test_a_posted_copy_notify_could_not_deliver_closes_its_task_and_tells_the_hospital(
    make_hub: MakeHub,
) -> None:
    # It went, then failed for good (here Notify's letter validation): the "Letter sent by post" task stayed open
    # beside "Message not delivered", and the hospital, told it was posted, never heard it was not.
    hub = await make_hub(**CALLBACKS)
    _, post = await posted_copy_held(hub)
    await send_all(hub)
    [sent] = await messages(hub, "invitation_post")
    assert sent["status"] == "sent"
    row = await hub.db.fetch_one("SELECT notify_id FROM outbox_messages WHERE id = ?", (post["id"],))
    assert row is not None
    answer = await send_status(hub, row["notify_id"], "validation-failed", kind="letter")
    assert answer.status_code == 200, answer.text
    assert [(t["kind"], t["status"], t["outcome"]) for t in await tasks(hub)] == [
        ("letter_posted", "closed", "not_posted"),
        ("failed_notification", "open", ""),
    ]
    [escalated] = await events(hub, "letter.escalated_to_post")
    assert await events(hub, "letter.not_posted") == [
        {"kind": "invitation_post", "reason": "not_delivered", "message_id": escalated["message_id"]}
    ]
