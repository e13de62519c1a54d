"""The unread invitation's posted copy, queued at 72 hours for an appointment the hospital moved before then (a day
after booking, say), while the only appointment letter is the hospital's PDF from the booking, giving the old time.
Queued after the move, the posted copy says the new time, but it would go as that PDF: the patient is posted the old
date. It goes as the hub's own letter with the new details instead, as a copy held overnight across the move does
(found by a seam hunt). A letter the hospital sends after the move is its own to post."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hub.jobs.worker import send_policy
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import drain_once
from tests.conftest import MakeHub
from tests.fake_notify import FakeNotify
from tests.harness import Harness
from tests.pas import PDF, messages, pas_for, set_patient
from tests.store.test_reminders import sweep

pytestmark = pytest.mark.anyio
BOOKED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
OLD = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
NEW = datetime(2026, 12, 15, 9, 30, tzinfo=UTC)
KINDS = ("invitation_sms", "changed_sms", "invitation_letter", "invitation_reminder_sms")


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    # Template ids as Notify's, for the fake Notify.
    return await make_hub(**{f"notify.templates.{kind}": str(uuid.uuid4()) for kind in KINDS})


async def send_due(hub: Harness, fake: FakeNotify) -> None:
    notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=2)
    while await drain_once(hub.db, notifier, hub.clock, policy=send_policy(hub.settings)):
        pass


async def test_a_posted_copy_queued_after_a_move_goes_as_the_hubs_letter_with_the_new_date(hub: Harness) -> None:
    hub.clock.set(BOOKED)
    pas = await pas_for(hub)
    await pas.book(start=OLD, expect="invitation")
    await pas.letter()  # the hospital's PDF, giving 10 December
    with FakeNotify() as fake:
        await send_due(hub, fake)
        hub.clock.set(BOOKED + timedelta(hours=30))
        await pas.book(start=NEW, expect="changed")
        await send_due(hub, fake)
        for hours in (48, 72):
            hub.clock.set(BOOKED + timedelta(hours=hours))
            await sweep(hub)
            await send_due(hub, fake)
        [post] = await messages(hub, "invitation_post")
        [letter] = fake.by_reference(str(post["id"]))
    assert letter.pdf is None  # not the hospital's PDF, which says 10 December
    assert letter.template_id == hub.settings.notify.templates.invitation_letter
    assert letter.personalisation["date"] == "Tuesday 15 December 2026"
    assert letter.personalisation["address_line_1"] == "Margaret Jones"


async def test_a_posted_copy_goes_as_the_hospitals_letter_sent_after_the_move(hub: Harness) -> None:
    hub.clock.set(BOOKED)
    pas = await pas_for(hub)
    await pas.book(start=OLD, expect="invitation")
    await pas.letter()
    with FakeNotify() as fake:
        await send_due(hub, fake)
        hub.clock.set(BOOKED + timedelta(hours=30))
        await pas.book(start=NEW, expect="changed")
        await pas.letter("L2")  # the hospital's new letter, giving 15 December
        hub.clock.set(BOOKED + timedelta(hours=72))
        await sweep(hub)
        await send_due(hub, fake)
        [post] = await messages(hub, "invitation_post")
        [letter] = fake.by_reference(str(post["id"]))
    assert letter.pdf == PDF


async def test_with_no_address_for_the_hubs_letter_nothing_is_posted_and_the_booking_centre_is_told(
    hub: Harness,
) -> None:
    hub.clock.set(BOOKED)
    pas = await pas_for(hub)
    await pas.book(start=OLD, expect="invitation")
    await pas.letter()
    await set_patient(hub, address_lines="[]", postcode="")  # the PDF carries its own address; the hub has none
    with FakeNotify() as fake:
        await send_due(hub, fake)
        hub.clock.set(BOOKED + timedelta(hours=30))
        await pas.book(start=NEW, expect="changed")
        hub.clock.set(BOOKED + timedelta(hours=72))
        await sweep(hub)
        await send_due(hub, fake)
        assert [m for m in fake.messages if m.type == "letter"] == []
    assert await messages(hub, "invitation_post") == []
    tasks = await hub.db.fetch_all("SELECT kind, status FROM tasks ORDER BY id")
    assert tasks == [{"kind": "no_postal_address", "status": "open"}]
    [event] = await hub.db.fetch_all("SELECT data FROM events WHERE kind = 'letter.not_posted'")
    assert json.loads(event["data"]) == {"kind": "invitation_post", "reason": "no_postal_address"}
    assert await hub.db.fetch_all("SELECT id FROM events WHERE kind = 'letter.escalated_to_post'") == []
