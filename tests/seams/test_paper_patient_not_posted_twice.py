"""A patient who chose paper letters is posted the invitation, a change and a cancellation beside the text, at once.
When the text then cannot go (the patient texts STOP while it waits overnight, or Notify cannot deliver it) and there
is no email, it goes another way: by post, which the letter queued beside it already is. The patient must get one
letter, not two (found by a seam hunt)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from hub.jobs.worker import send_policy
from hub.notify.govuk import GovukNotifier
from hub.notify.sender import drain_once
from tests.conftest import MakeHub
from tests.fake_notify import FakeNotify
from tests.harness import Harness
from tests.notify_callbacks import CALLBACKS, post, send_status, text
from tests.pas import messages, pas_for, set_patient

pytestmark = pytest.mark.anyio
EVENING = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # 9 pm London: quiet hours
MORNING = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
START = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
KINDS = ("invitation_sms", "invitation_letter", "sms_opt_out_confirmation_letter")


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    # Template ids as Notify's, for the fake Notify.
    return await make_hub(**CALLBACKS, **{f"notify.templates.{kind}": str(uuid.uuid4()) for kind in KINDS})


async def send_due(hub: Harness, fake: FakeNotify) -> None:
    notifier = GovukNotifier(api_key=fake.api_key, base_url=fake.url, timeout=2)
    while await drain_once(hub.db, notifier, hub.clock, policy=send_policy(hub.settings)):
        pass


async def paper_patient_booked(hub: Harness) -> None:
    hub.clock.set(EVENING)
    pas = await pas_for(hub, email=None)
    await set_patient(hub, paperless=0)
    await pas.book(start=START, expect="invitation")
    assert sorted(m["channel"] for m in await messages(hub, "invitation")) == ["letter", "sms"]


async def invitation_letters(hub: Harness, fake: FakeNotify) -> list[str]:
    ids = {str(m["id"]) for m in await messages(hub, "invitation")}
    return [m.type for m in fake.messages if m.reference in ids and m.type == "letter"]


async def test_a_paper_patients_invitation_is_posted_once_after_a_stop(hub: Harness) -> None:
    await paper_patient_booked(hub)
    assert (await post(hub, "inbound", text("STOP", source="447700900001"))).status_code == 200
    with FakeNotify() as fake:
        hub.clock.set(MORNING)
        await send_due(hub, fake)
        assert await invitation_letters(hub, fake) == ["letter"]
    statuses = [(m["channel"], m["status"]) for m in await messages(hub, "invitation")]
    assert statuses == [("sms", "cancelled"), ("letter", "sent")]


async def test_a_paper_patients_invitation_is_posted_once_after_its_text_fails(hub: Harness) -> None:
    await paper_patient_booked(hub)
    with FakeNotify() as fake:
        hub.clock.set(MORNING)
        await send_due(hub, fake)
        [sms] = [m for m in await messages(hub, "invitation") if m["channel"] == "sms"]
        answer = await send_status(hub, sms["notify_id"], "permanent-failure", reference=str(sms["id"]))
        assert answer.json() == {"outcome": "recorded"}
        await send_due(hub, fake)
        assert await invitation_letters(hub, fake) == ["letter"]
    [letter] = [m for m in await messages(hub, "invitation") if m["channel"] == "letter"]
    # The hospital hears the patient is reached by post, by the letter already sent; no task to chase it.
    [event] = await hub.db.fetch_all("SELECT data FROM events WHERE kind = 'notification.failed_over'")
    assert json.loads(event["data"])["replacement_id"] == str(letter["id"])
    assert await hub.db.fetch_all("SELECT id FROM tasks WHERE kind = 'failed_notification'") == []
