"""The hospital changes a patient's mobile or email while messages to them are waiting: held overnight by quiet
hours, or out with a worker and coming back to be tried again. Before, each went to the number or address it was
queued with: the patient's appointment, link and verification code to a number they had just told the hospital
was no longer theirs."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime

import pytest

from hub.jobs.worker import send_policy
from hub.notify import NotifyError
from hub.notify.sender import Outcome, SendPolicy, claim_batch, record_outcomes
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.notify_callbacks import CALLBACKS, post, text
from tests.seams.conftest import rows
from tests.web.api.test_handlers import APPOINTMENT, PATIENT, Api

pytestmark = pytest.mark.anyio
OLD, NEW = "+447700900001", "+447700900002"
EVENING = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # 9pm in London: quiet hours till 8am
MORNING = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    return await make_hub()


@pytest.fixture
async def pas(hub: Harness) -> Api:
    pas = Api(hub, await hub.create_api_key(), "pas")
    await pas.setup()
    return pas


async def _book_in_the_evening(hub: Harness, pas: Api) -> None:
    hub.clock.set(EVENING)
    assert (await pas.put("appointments/A1", APPOINTMENT)).status_code == 201
    assert await hub.send_queued() == 0  # held till the morning


async def _change_patient(pas: Api, **fields: object) -> None:
    answer = await pas.put("patients/MRN1", {**PATIENT, **fields})
    assert answer.status_code == 200, answer.text


async def _sent(hub: Harness) -> list[tuple[str, str, str]]:
    found = await rows(hub, "SELECT kind, channel, recipient FROM dev_messages ORDER BY id")
    return [(m["kind"], m["channel"], m["recipient"]) for m in found]


async def test_a_text_held_overnight_goes_to_the_mobile_the_hospital_gave_since(hub: Harness, pas: Api) -> None:
    await _book_in_the_evening(hub, pas)
    await _change_patient(pas, mobile="07700 900002")  # 10pm: the patient rang to give their new number
    hub.clock.set(MORNING)
    await hub.send_queued()
    assert await _sent(hub) == [("invitation", "sms", NEW)]


async def test_a_text_held_overnight_goes_by_email_when_the_hospital_removed_the_mobile(hub: Harness, pas: Api) -> None:
    await _book_in_the_evening(hub, pas)
    await _change_patient(pas, mobile=None, contact_preference="email")
    hub.clock.set(MORNING)
    await hub.send_queued()
    assert await _sent(hub) == [("invitation", "email", "margaret.jones@example.com")]


async def test_an_email_held_overnight_goes_to_the_address_the_hospital_gave_since(hub: Harness, pas: Api) -> None:
    await _change_patient(pas, contact_preference="email")
    await _book_in_the_evening(hub, pas)
    await _change_patient(pas, contact_preference="email", email="m.jones@example.org")
    hub.clock.set(MORNING)
    await hub.send_queued()
    assert await _sent(hub) == [("invitation", "email", "m.jones@example.org")]


def _policy(hub: Harness) -> SendPolicy:
    return dataclasses.replace(send_policy(hub.settings), quiet_start=0, quiet_end=0)


async def test_a_text_failing_for_now_while_the_mobile_changes_is_tried_again_at_the_new_one(
    hub: Harness, pas: Api
) -> None:
    assert (await pas.put("appointments/A1", APPOINTMENT)).status_code == 201
    [invitation] = await claim_batch(hub.db, now=hub.clock.now(), policy=_policy(hub))
    await _change_patient(pas, mobile="07700 900002")  # passes the message by: it is out with the worker
    failed = Outcome(invitation, error=NotifyError("502", status=502, error="Bad Gateway"))
    await record_outcomes(hub.db, [failed], now=hub.clock.now(), policy=_policy(hub), rng=random.Random(1))
    assert await rows(hub, "SELECT status, recipient FROM outbox_messages WHERE id = ?", (invitation.id,)) == [
        {"status": "queued", "recipient": NEW}
    ]


async def test_a_code_sent_to_the_old_mobile_no_longer_signs_in_once_the_hospital_changes_it(
    hub: Harness, pas: Api
) -> None:
    # Someone with the patient's old phone (lost, or the number given up) asks for a code with it and the date of
    # birth; the patient has just rung the hospital with their new number.
    assert (await hub.submit_details("07700 900001", "1948-03-14")).status_code == 303
    [code] = await hub.sent_codes(OLD)
    await _change_patient(pas, mobile="07700 900002")
    answer = await hub.submit_code(code)
    assert answer.headers.get("location") != "/appointments"
    assert await rows(hub, "SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL") == [{"n": 0}]


@pytest.mark.parametrize("how", ["new record", "new mobile"])
async def test_a_number_that_texted_stop_gets_no_texts_for_a_patient_the_hospital_gives_it_later(
    make_hub: MakeHub, how: str
) -> None:
    # A parent's mobile: they texted STOP for their child; later the hospital puts the same number on the record of
    # another of their children (a new record, or a changed mobile on one it had).
    hub = await make_hub(**CALLBACKS)
    pas = Api(hub, await hub.create_api_key(), "pas")
    await pas.setup()
    assert (await post(hub, "inbound", text("STOP", source="447700900001"))).status_code == 200
    sibling = {**PATIENT, "given_name": "Tom", "date_of_birth": "2015-06-01", "email": None}
    if how == "new mobile":
        assert (await pas.put("patients/MRN2", {**sibling, "mobile": "07700 900009"})).status_code == 201
    assert (await pas.put("patients/MRN2", sibling)).status_code in (200, 201)
    assert (await pas.put("appointments/A2", {**APPOINTMENT, "patient_ref": "MRN2"})).status_code == 201
    await hub.send_queued()
    sent = await rows(hub, "SELECT d.channel FROM dev_messages d WHERE d.kind = 'invitation'")
    assert sent == [{"channel": "letter"}]


@pytest.mark.parametrize(
    ("before", "after", "channel", "recipient"),
    [
        ("sms", "email", "email", "margaret.jones@example.com"),
        ("email", "sms", "sms", OLD),
    ],
)
async def test_a_message_held_overnight_goes_by_the_way_the_patient_chose_since(
    hub: Harness, pas: Api, before: str, after: str, channel: str, recipient: str
) -> None:
    await _change_patient(pas, contact_preference=before)
    await _book_in_the_evening(hub, pas)
    await hub.sign_in()  # 9pm: the patient signs in and chooses the other way
    await hub.send_queued()
    answer = await hub.post_form("/preferences", {"contact_preference": after, "paper": "no", "digital": "yes"})
    assert answer.status_code == 303, answer.text
    hub.clock.set(MORNING)
    await hub.send_queued()
    assert [m for m in await _sent(hub) if m[0] != "security_code"] == [("invitation", channel, recipient)]
