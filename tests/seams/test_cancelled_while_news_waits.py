"""News of an appointment held overnight by quiet hours, and the appointment cancelled meanwhile with no cancellation
notice of its own to withdraw it: the patient cancels it themselves (the trust cancels at once), having seen the new
time online. The change notice held since 9 pm must not go at 8 am to tell them of an appointment they have just
cancelled (found by a seam hunt). A request to cancel (the booking centre calls back) leaves it be: the appointment
is still booked, and the notice still true."""

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
EVENING = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # before quiet hours
MOVED = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)  # 9 pm: quiet hours
CANCELLED = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
MORNING = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
START = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
NEW_START = datetime(2026, 12, 15, 9, 30, tzinfo=UTC)
KINDS = ("invitation", "changed", "cancelled")


async def _hub(make_hub: MakeHub, cancel_mode: str) -> Harness:
    # Template ids as Notify's, for the fake Notify.
    return await make_hub(cancel_mode=cancel_mode, **{f"notify.templates.{k}_sms": str(uuid.uuid4()) for k in KINDS})


async def send_due(hub: Harness, fake: FakeNotify) -> None:
    notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=2)
    while await drain_once(hub.db, notifier, hub.clock, policy=send_policy(hub.settings)):
        pass


async def _moved_then_cancelled(hub: Harness, fake: FakeNotify) -> int:
    hub.clock.set(EVENING)
    pas = await pas_for(hub)
    appointment_id = await pas.book(start=START, expect="invitation")
    await send_due(hub, fake)
    hub.clock.set(MOVED)
    await pas.book(start=NEW_START, expect="changed")
    await send_due(hub, fake)  # held till 8 am
    hub.clock.set(CANCELLED)
    await hub.sign_in()
    done = await hub.post_form(
        f"/appointments/{appointment_id}/cancel", {"reason": "no_longer_needed"}, csrf_from="/preferences"
    )
    assert done.status_code == 303, done.text
    hub.clock.set(MORNING)
    await send_due(hub, fake)
    return appointment_id


async def test_a_change_notice_held_overnight_does_not_go_after_the_patient_cancels_at_once(
    make_hub: MakeHub,
) -> None:
    hub = await _hub(make_hub, "immediate")
    with FakeNotify() as fake:
        await _moved_then_cancelled(hub, fake)
        assert [m.template_id for m in fake.messages] == [hub.settings.notify.templates.invitation_sms]
    [changed] = await messages(hub, "changed")
    assert (changed["status"], changed["error"]) == ("cancelled", "appointment cancelled")


async def test_a_change_notice_held_overnight_still_goes_after_a_request_to_cancel(make_hub: MakeHub) -> None:
    hub = await _hub(make_hub, "request")
    with FakeNotify() as fake:
        await _moved_then_cancelled(hub, fake)
        sent = [m.template_id for m in fake.messages]
    templates = hub.settings.notify.templates
    assert sent == [templates.invitation_sms, templates.changed_sms]
