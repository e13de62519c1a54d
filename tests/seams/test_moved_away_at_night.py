"""Quiet hours meeting a move: at 11 pm the hospital moves tomorrow's 8:30am appointment to next week. The change
notice is about a time a week away, but the patient needs it before 8:30 tomorrow, when they would otherwise set off
for an appointment that is no longer there: it is as urgent as a cancellation of the 8:30 would be, and goes at once
rather than at 8am (found by a seam hunt). A move of a time already past, or of one far off, still waits till 8am."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from hub.jobs.worker import send_policy
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import drain_once
from tests.conftest import MakeHub
from tests.fake_notify import FakeNotify
from tests.harness import Harness
from tests.pas import messages, pas_for

pytestmark = pytest.mark.anyio
EVENING = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)  # Tuesday 7:30pm (GMT): before quiet hours
NIGHT = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)  # 11pm: quiet hours
TOMORROW = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)  # Wednesday 8:30am
NEXT_WEEK = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    # Template ids as Notify's, for the fake Notify.
    return await make_hub(**{f"notify.templates.{k}_sms": str(uuid.uuid4()) for k in ("invitation", "changed")})


async def send_due(hub: Harness, fake: FakeNotify) -> int:
    notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=2)
    return await drain_once(hub.db, notifier, hub.clock, policy=send_policy(hub.settings))


async def test_moving_tomorrow_mornings_appointment_to_next_week_at_night_tells_the_patient_at_once(
    hub: Harness,
) -> None:
    hub.clock.set(EVENING)
    pas = await pas_for(hub)
    await pas.book(start=TOMORROW, expect="invitation")
    with FakeNotify() as fake:
        assert await send_due(hub, fake) == 1  # the invitation, before quiet hours
        hub.clock.set(NIGHT)
        await pas.book(start=NEXT_WEEK, expect="changed")
        assert await send_due(hub, fake) == 1
        [_, changed] = fake.messages
    assert (changed.type, changed.personalisation["date"]) == ("sms", "Wednesday 2 December 2026")
    [notice] = await messages(hub, "changed")
    assert (notice["status"], notice["sent_at"], notice["urgent"]) == ("sent", "2026-11-24T23:00:00.000000Z", 1)


@pytest.mark.parametrize(
    ("booked", "moved_from"),
    [
        (datetime(2026, 11, 20, 10, 0, tzinfo=UTC), datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),  # this morning's
        (EVENING, datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),  # Friday's: time enough in the morning
    ],
    ids=["already-past", "far-off"],
)
async def test_moving_an_appointment_not_due_before_the_morning_waits_till_8am(
    hub: Harness, booked: datetime, moved_from: datetime
) -> None:
    hub.clock.set(booked)
    pas = await pas_for(hub)
    await pas.book(start=moved_from, expect="invitation")
    with FakeNotify() as fake:
        hub.clock.set(NIGHT)
        await pas.book(start=NEXT_WEEK)
        assert await send_due(hub, fake) == 0
        hub.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
        assert await send_due(hub, fake) >= 1
    assert [m["urgent"] for m in await messages(hub, "changed", "invitation") if m["status"] == "sent"][-1] == 0
