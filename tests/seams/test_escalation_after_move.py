"""The unread invitation's reminder and posted copy, held overnight by quiet hours, and the hospital moving the
appointment meanwhile: the change notice does not withdraw them (the invitation is still unread), so they are checked
when the appointment changes, as a retry checks them: the hospital's own PDF with the old time is withdrawn, a
reminder goes with the new time (found by a seam hunt)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.harness import Harness
from tests.pas import messages, pas_for
from tests.store.test_reminders import RecordingNotifier, drain, sweep

pytestmark = pytest.mark.anyio
EVENING = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # 9 pm London: quiet hours


async def test_a_posted_letter_held_overnight_does_not_go_with_the_old_time_after_a_move(hub: Harness) -> None:
    hub.clock.set(EVENING)
    pas = await pas_for(hub)
    old = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
    await pas.book(start=old)
    await pas.letter()  # the hospital's own PDF, giving 10 December
    hub.clock.set(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    assert await drain(hub) == 1  # the invitation
    hub.clock.set(EVENING + timedelta(hours=72))
    assert await sweep(hub) >= 1  # the post is queued, held till 8 am
    [post] = await messages(hub, "invitation_post")
    assert post["status"] == "queued"
    hub.clock.set(EVENING + timedelta(hours=72, minutes=30))
    await pas.book(start=old + timedelta(days=5), expect="changed")
    hub.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    notifier = RecordingNotifier(hub)
    while await drain(hub, notifier):
        pass
    kinds = [m.kind for m in notifier.sent]
    assert "changed" in kinds
    assert "invitation_post" not in kinds  # the PDF says 10 December


async def test_an_unread_letter_reminder_held_overnight_gives_the_new_date_after_a_move(hub: Harness) -> None:
    hub.clock.set(EVENING)
    pas = await pas_for(hub)
    old = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
    await pas.book(start=old)
    hub.clock.set(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    assert await drain(hub) == 1  # the invitation
    hub.clock.set(EVENING + timedelta(hours=24))
    assert await sweep(hub) >= 1
    [reminder] = await messages(hub, "invitation_reminder")
    assert reminder["status"] == "queued"
    hub.clock.set(EVENING + timedelta(hours=24, minutes=30))
    await pas.book(start=old + timedelta(days=5), expect="changed")
    hub.clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    notifier = RecordingNotifier(hub)
    while await drain(hub, notifier):
        pass
    sent = [m for m in notifier.sent if m.kind == "invitation_reminder"]
    assert all(m.personalisation["date"] == "Tuesday 15 December 2026" for m in sent), [
        m.personalisation["date"] for m in sent
    ]
