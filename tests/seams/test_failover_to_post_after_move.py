"""An invitation sent by text, the hospital moving the appointment since, then the text failing for good: it goes on
by post, to a patient with no email. The hospital's own PDF of the appointment gives the old date, so the letter is the
hub's own, with the new one (found in review: the PDF went, as the letter's kind has one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import MakeHub
from tests.notify_callbacks import CALLBACKS, send_status
from tests.pas import messages, pas_for, set_patient
from tests.store.test_reminders import RecordingNotifier, drain

pytestmark = pytest.mark.anyio
MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OLD = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


async def test_a_text_failed_after_a_move_goes_by_post_as_the_hubs_letter_with_the_new_date(
    make_hub: MakeHub,
) -> None:
    hub = await make_hub(**CALLBACKS)
    hub.clock.set(MORNING)
    pas = await pas_for(hub)
    await set_patient(hub, email=None)
    await pas.book(start=OLD)
    await pas.letter()  # the hospital's PDF, giving 10 December
    assert await drain(hub) == 1
    [invitation] = await messages(hub, "invitation")
    assert invitation["channel"] == "sms" and invitation["status"] == "sent"
    hub.clock.set(MORNING + timedelta(hours=1))
    await pas.book(start=OLD + timedelta(days=5), expect="changed")

    answer = await send_status(hub, invitation["notify_id"], "permanent-failure")
    assert answer.status_code == 200, answer.text
    notifier = RecordingNotifier(hub)
    while await drain(hub, notifier):
        pass
    [letter] = [m for m in notifier.sent if m.kind == "invitation" and m.channel == "letter"]
    assert letter.pdf is None  # not the hospital's letter with the old date
    assert letter.personalisation["date"] == "Tuesday 15 December 2026"
    assert letter.personalisation["address_line_1"] == "Margaret Jones"
