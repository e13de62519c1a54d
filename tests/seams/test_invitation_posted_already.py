"""The invitation went by post after all, and the unread-letter escalation meets it 72 hours on: the patient texted
STOP while the invitation text waited overnight (no email, so it was posted instead), or Notify could not deliver the
text and there is no email (it failed over to post). The patient has the letter; the escalation, planned when the
invitation was to go by text, must not post it a second time (a paid letter, and a "Letter sent by post" task and a
`letter.escalated_to_post` for a letter the patient already has), as it never escalates an invitation that went by
post in the first place (found by a seam hunt)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hub.jobs.worker import send_policy
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import drain_once
from tests.conftest import MakeHub
from tests.fake_notify import FakeNotify
from tests.harness import Harness
from tests.notify_callbacks import CALLBACKS, post, send_status, text
from tests.pas import messages, pas_for
from tests.store.test_reminders import sweep

pytestmark = pytest.mark.anyio
EVENING = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # 9 pm London: quiet hours
MORNING = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
START = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
KINDS = ("invitation_sms", "invitation_letter", "invitation_reminder_sms", "sms_opt_out_confirmation_letter")


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    # Template ids as Notify's, for the fake Notify.
    return await make_hub(**CALLBACKS, **{f"notify.templates.{kind}": str(uuid.uuid4()) for kind in KINDS})


async def send_due(hub: Harness, fake: FakeNotify) -> None:
    notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=2)
    while await drain_once(hub.db, notifier, hub.clock, policy=send_policy(hub.settings)):
        pass


async def escalate(hub: Harness, fake: FakeNotify) -> None:
    """Through the unread-letter chain, sending what is due at each step."""
    for hours in (24, 48, 72, 73):
        hub.clock.set(EVENING + timedelta(hours=hours))
        await sweep(hub)
        hub.clock.set(MORNING + timedelta(hours=hours))
        await send_due(hub, fake)


async def posted_once(hub: Harness, fake: FakeNotify) -> None:
    posted = [m for m in await messages(hub, "invitation", "invitation_post") if m["channel"] == "letter"]
    assert [(m["kind"], m["status"]) for m in posted] == [("invitation", "sent")]
    references = {str(m["id"]) for m in await messages(hub, "invitation", "invitation_post")}
    assert [m.type for m in fake.messages if m.reference in references and m.type == "letter"] == ["letter"]
    assert await hub.db.fetch_all("SELECT id FROM tasks WHERE kind = 'letter_posted'") == []
    assert await hub.db.fetch_all("SELECT id FROM events WHERE kind = 'letter.escalated_to_post'") == []
    [notice] = await hub.db.fetch_all("SELECT outcome FROM scheduled_notices WHERE kind = 'escalation_post'")
    assert notice["outcome"] == "skip:posted"


async def test_an_invitation_posted_after_a_stop_is_not_posted_again_at_72_hours(hub: Harness) -> None:
    hub.clock.set(EVENING)
    pas = await pas_for(hub, email=None)
    await pas.book(start=START, expect="invitation")
    # Overnight, while the invitation text waits for the morning, the patient texts STOP: it is posted instead.
    hub.clock.set(EVENING + timedelta(hours=1))
    assert (await post(hub, "inbound", text("STOP", source="447700900001"))).status_code == 200
    with FakeNotify() as fake:
        hub.clock.set(MORNING)
        await send_due(hub, fake)
        await escalate(hub, fake)
        await posted_once(hub, fake)


async def test_an_invitation_failed_over_to_post_is_not_posted_again_at_72_hours(hub: Harness) -> None:
    hub.clock.set(EVENING)
    pas = await pas_for(hub, email=None)
    await pas.book(start=START, expect="invitation")
    with FakeNotify() as fake:
        hub.clock.set(MORNING)
        await send_due(hub, fake)
        [sms] = await messages(hub, "invitation")
        # The number reaches nobody: with no email, the invitation goes by post.
        answer = await send_status(hub, sms["notify_id"], "permanent-failure", reference=str(sms["id"]))
        assert answer.json() == {"outcome": "recorded"}
        await send_due(hub, fake)
        await escalate(hub, fake)
        await posted_once(hub, fake)
