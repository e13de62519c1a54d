"""Whether a message about an appointment is still true as the appointment is now (hub/store/stale_messages.py).

Where these checks meet other features (a hospital's cancel or move, a read letter, an offer taken while a message
is out) is in tests/seams/test_retry_after_change.py; the rule itself is tests/rules/test_sending.py
(no_longer_true). Here, each function on a message as the outbox holds it.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hub.clock import from_db, to_db
from hub.store.outbox import appointment_news
from hub.store.stale_messages import (
    MESSAGE_COLUMNS,
    Judgement,
    check_escalations,
    judge,
    out_of_date,
    withdraw_ended_offers,
)
from tests.harness import Harness
from tests.notify_callbacks import message, patient, rows, snapshot

pytestmark = pytest.mark.anyio


async def _queued(hub: Harness, *, kinds: tuple[str, ...] = ("invitation",)) -> tuple[int, list[int]]:
    """A patient's appointment, and messages about it waiting to go, saying what the appointment is now."""
    patient_id = await patient(hub)
    appointment_id = await hub.create_appointment(patient_id=patient_id)
    a = await hub.db.fetch_one(
        "SELECT a.starts_at, a.clinic, s.name FROM appointments a JOIN sites s ON s.id = a.site_id WHERE a.id = ?",
        (appointment_id,),
    )
    assert a is not None
    news = appointment_news(from_db(a["starts_at"]), a["name"], a["clinic"])
    messages = [
        await hub.create_message(
            kind=kind, patient_id=patient_id, appointment_id=appointment_id, personalisation={"link": "x", **news}
        )
        for kind in kinds
    ]
    return appointment_id, messages


async def _change(hub: Harness, sql: str, *params: object) -> None:
    async with hub.db.write() as tx:
        await tx.execute(sql, params)


async def _judge(hub: Harness, message_id: int) -> Judgement:
    async with hub.db.write() as tx:
        row = await tx.fetch_one(f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE id = ?", (message_id,))
        assert row is not None
        return await judge(tx, row, now=hub.clock.now())


async def test_a_message_saying_what_the_appointment_is_now_still_goes_and_judging_writes_nothing(
    hub: Harness,
) -> None:
    _, [invitation] = await _queued(hub)
    before = await snapshot(hub)
    assert await _judge(hub, invitation) == Judgement(None)
    assert await snapshot(hub) == before


async def test_a_message_about_a_cancelled_appointment_should_not_go(hub: Harness) -> None:
    appointment_id, [invitation] = await _queued(hub)
    await _change(hub, "UPDATE appointments SET status = 'cancelled' WHERE id = ?", appointment_id)
    assert await _judge(hub, invitation) == Judgement("appointment cancelled")


async def test_a_moved_appointments_invitation_is_brought_up_to_date_in_its_row(hub: Harness) -> None:
    appointment_id, [invitation] = await _queued(hub)
    later = hub.clock.now() + timedelta(days=12)
    await _change(hub, "UPDATE appointments SET starts_at = ? WHERE id = ?", to_db(later), appointment_id)
    judgement = await _judge(hub, invitation)
    assert judgement.why is None and judgement.said is not None and not judgement.templated
    async with hub.db.write() as tx:
        row = await tx.fetch_one(f"SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE id = ?", (invitation,))
        assert row is not None
        assert await out_of_date(tx, row, now=hub.clock.now(), actor="test") is None
    after = await message(hub, invitation)
    assert (after["status"], json.loads(after["personalisation"])) == ("queued", judgement.said)
    audit = await rows(hub, "SELECT detail FROM audit_events WHERE action = 'notification_queued'")
    assert audit == [{"detail": "invitation brought up to date: the appointment changed while it was being sent"}]


async def test_a_change_withdraws_the_waiting_reminders_it_made_untrue_and_leaves_the_rest(hub: Harness) -> None:
    appointment_id, [invitation, reminder] = await _queued(hub, kinds=("invitation", "invitation_reminder"))
    await _change(hub, "UPDATE appointments SET status = 'cancelled' WHERE id = ?", appointment_id)
    async with hub.db.write() as tx:
        await check_escalations(tx, appointment_id, now=hub.clock.now(), actor="test")
    found = await rows(hub, "SELECT id, status, error FROM outbox_messages ORDER BY id")
    assert found == [
        {"id": invitation, "status": "queued", "error": ""},
        {"id": reminder, "status": "cancelled", "error": "appointment cancelled"},
    ]


async def test_an_earlier_time_offered_with_no_offer_open_is_withdrawn(hub: Harness) -> None:
    appointment_id, [offer] = await _queued(hub, kinds=("earlier_offer",))
    async with hub.db.write() as tx:
        await withdraw_ended_offers(tx, [appointment_id], now=hub.clock.now(), actor="test")
    row = await message(hub, offer)
    assert (row["status"], row["error"]) == ("cancelled", "offer ended")
