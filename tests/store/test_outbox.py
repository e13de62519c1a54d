"""Queueing a message: one outbox row, due at once, written in the caller's transaction; and a message about an
appointment, the one place that picks its channel, recipient, template and personalisation."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.clock import to_db
from hub.store.outbox import MESSAGE_PATIENT_COLUMNS, announce, queue_appointment_message, queue_message
from hub.vocabulary import Channel, Lane, MessageKind
from tests.conftest import MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_a_queued_message_is_due_now_and_keeps_its_personalisation(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient)
    async with hub.db.write() as tx:
        message_id = await queue_message(
            tx,
            at=hub.clock.now(),
            kind=MessageKind.INVITATION,
            channel=Channel.SMS,
            recipient="+447700900001",
            template_id="template-1",
            personalisation={"link": "https://hub.example/p/x", "date": "Thursday 3 December 2026"},
            patient_id=patient,
            appointment_id=appointment,
        )
    row = await hub.db.fetch_one("SELECT * FROM outbox_messages WHERE id = ?", (message_id,))
    assert row is not None
    assert (row["status"], row["lane"], row["attempts"], row["notify_id"]) == ("queued", "bulk", 0, None)
    assert row["next_attempt_at"] == row["created_at"] == to_db(hub.clock.now())
    assert (row["patient_id"], row["appointment_id"], row["template_id"]) == (patient, appointment, "template-1")
    assert json.loads(row["personalisation"]) == {"date": "Thursday 3 December 2026", "link": "https://hub.example/p/x"}


async def test_a_message_queued_in_a_transaction_that_fails_is_never_sent(hub: Harness) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with hub.db.write() as tx:
            await queue_message(
                tx,
                at=hub.clock.now(),
                kind=MessageKind.SECURITY_CODE,
                channel=Channel.SMS,
                recipient="+447700900001",
                template_id="t",
                personalisation={},
                patient_id=None,
                lane=Lane.IMMEDIATE,
            )
            raise Boom
    assert await hub.db.fetch_all("SELECT id FROM outbox_messages") == []


# A message about an appointment


STARTS = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


TEMPLATES = {
    "notify.templates.invitation_sms": "inv-sms",
    "notify.templates.invitation_email": "inv-email",
    "notify.templates.invitation_letter": "inv-letter",
    "notify.templates.appointment_reminder_sms": "reminder-sms",
}


ADDRESS: dict[str, Any] = {"address_lines": ["1 Example Street", "London"], "postcode": "NW3 2QG"}


async def _appointment_message(hub: Harness, patient_id: int, **kwargs: Any) -> dict[str, Any]:
    appointment_id = await hub.create_appointment(patient_id=patient_id, starts_at=STARTS)
    patient = await hub.db.fetch_one(f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE id = ?", (patient_id,))
    assert patient is not None
    async with hub.db.write() as tx:
        message_id = await queue_appointment_message(
            tx,
            settings=hub.settings,
            kind=kwargs.pop("kind", "invitation"),
            patient=patient,
            appointment_id=appointment_id,
            starts_at=STARTS,
            site_name="Royal Free Hospital",
            clinic="Cardiology outpatients",
            now=hub.clock.now(),
            **kwargs,
        )
    row = await hub.db.fetch_one(
        "SELECT kind, channel, recipient, template_id, personalisation, appointment_id FROM outbox_messages"
        " WHERE id = ?",
        (message_id,),
    )
    assert row is not None and row["appointment_id"] == appointment_id
    return {**row, "personalisation": json.loads(row["personalisation"])}


@pytest.mark.parametrize(
    ("patient", "channel", "recipient", "template"),
    [
        ({}, "sms", "+447700900001", "inv-sms"),
        ({"email": "m@example.com", "contact_preference": "email"}, "email", "m@example.com", "inv-email"),
        ({"mobile": None, "email": "m@example.com"}, "email", "m@example.com", "inv-email"),
        ({"mobile": None, **ADDRESS}, "letter", "post", "inv-letter"),
        ({"sms_opted_out": True, **ADDRESS}, "letter", "post", "inv-letter"),
    ],
)
async def test_the_channel_follows_the_patient_and_the_template_follows_kind_and_channel(
    make_hub: MakeHub, patient: dict[str, Any], channel: str, recipient: str, template: str
) -> None:
    hub = await make_hub(**TEMPLATES)
    message = await _appointment_message(hub, await hub.create_patient(**patient))
    assert (message["channel"], message["recipient"], message["template_id"]) == (channel, recipient, template)


async def test_the_personalisation_carries_the_link_the_code_and_the_appointment(hub: Harness) -> None:
    patient = await hub.create_patient(verification_code="MJ4K7Q")
    message = await _appointment_message(hub, patient)
    assert message["personalisation"] == {
        "link": await hub.patient_link(patient),
        "verification_code": "MJ4K7Q",
        "date": "Thursday 3 December 2026",
        "time": "9:30am",
        "site": "Royal Free Hospital",
        "clinic": "Cardiology outpatients",
    }


async def test_a_caller_may_choose_the_channel_and_the_template_comes_from_the_declared_table(
    make_hub: MakeHub,
) -> None:
    hub = await make_hub(**TEMPLATES)
    patient = await hub.create_patient(email="m@example.com", **ADDRESS)
    message = await _appointment_message(hub, patient, kind="appointment_reminder", channel="sms")
    assert (message["kind"], message["channel"], message["template_id"]) == (
        "appointment_reminder",
        "sms",
        "reminder-sms",
    )
    posted = await _appointment_message(hub, patient, kind="invitation_post", channel="letter")
    assert posted["template_id"] == "inv-letter"  # the posted invitation is the invitation's letter
    unset = await _appointment_message(hub, patient, kind="changed", channel="email")
    assert unset["template_id"] == ""  # declared but not set (demo and tests): the sender reports that, not this


async def test_a_kind_with_no_template_by_a_channel_queues_nothing(hub: Harness) -> None:
    patient_id = await hub.create_patient(email="m@example.com", **ADDRESS)
    appointment_id = await hub.create_appointment(patient_id=patient_id, starts_at=STARTS)
    patient = await hub.db.fetch_one(f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE id = ?", (patient_id,))
    assert patient is not None
    async with hub.db.write() as tx:
        queued = await queue_appointment_message(
            tx,
            settings=hub.settings,
            kind=MessageKind.INVITATION_REMINDER,  # a reminder has no letter: it once went with an empty template
            patient=patient,
            appointment_id=appointment_id,
            starts_at=STARTS,
            site_name="Royal Free Hospital",
            clinic="",
            now=hub.clock.now(),
            channel=Channel.LETTER,
        )
    assert queued is None
    assert await hub.db.fetch_all("SELECT id FROM outbox_messages") == []


async def test_a_change_meeting_an_invitation_a_worker_is_claiming_is_told_as_a_change(hub: Harness) -> None:
    """On PostgreSQL a worker claims messages beside the hospital's writes (claims take their own lock). A change
    that found the invitation still queued while a claim of it was under way withdrew nothing (the claim had
    taken it) and queued a second invitation: the patient was invited twice, and not told of the change."""
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient)
    invitation = await hub.create_message(kind="invitation", patient_id=patient, appointment_id=appointment)
    claiming, release = asyncio.Event(), asyncio.Event()

    async def claim() -> None:
        # A worker's claim, not yet committed: the row locked and marked sending, as claim_batch leaves it.
        async with hub.db.write(lock="outbox") as tx:
            await tx.execute("UPDATE outbox_messages SET status = 'sending' WHERE id = ?", (invitation,))
            claiming.set()
            await release.wait()

    async def change() -> None:
        async with hub.db.write() as tx:
            row = await tx.fetch_one(f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE id = ?", (patient,))
            assert row is not None
            await announce(
                tx,
                settings=hub.settings,
                kind=MessageKind.CHANGED,
                patient=row,
                appointment_id=appointment,
                starts_at=datetime(2026, 12, 16, 14, 0, tzinfo=UTC),
                site_name="Royal Free Hospital",
                clinic="Cardiology",
                now=hub.clock.now(),
            )

    claimed = asyncio.create_task(claim())
    await claiming.wait()
    changed = asyncio.create_task(change())
    await asyncio.sleep(0.2)  # the change is under way, behind the claim
    release.set()
    await asyncio.wait_for(asyncio.gather(claimed, changed), timeout=10)
    messages = await hub.db.fetch_all("SELECT kind, status FROM outbox_messages ORDER BY id")
    assert messages == [{"kind": "invitation", "status": "sending"}, {"kind": "changed", "status": "queued"}]
