"""Sending a message another way, and checking a message going round again. Where these meet other features (a
hospital's cancel, a STOP, a read letter, a new link while a message is out) is in
tests/seams/test_retry_after_change.py; the rule itself is tests/rules/test_sending.py (no_longer_true)."""

from __future__ import annotations

import asyncio

import pytest

from hub.store.rerouting import next_channel, requeued, reroute_waiting
from hub.vocabulary import Channel
from tests.harness import Harness

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("channel", "has_email", "can_post", "expected"),
    [
        ("sms", True, True, "email"),
        ("sms", False, True, "letter"),
        ("sms", False, False, None),
        ("email", True, True, "letter"),
        ("email", True, False, None),
        ("letter", True, True, None),
    ],
)
def test_next_channel(channel: str, has_email: bool, can_post: bool, expected: str | None) -> None:
    assert next_channel(channel, has_email=has_email, can_post=can_post) == expected


async def test_a_message_about_no_appointment_goes_round_again_as_it_was(hub: Harness) -> None:
    # A link resent by an agent: nothing about an appointment to have gone out of date.
    patient = await hub.create_patient()
    message = await hub.create_message(kind="patient_link", patient_id=patient, personalisation={"link": "x"})
    async with hub.db.write(patient=patient) as tx:
        await requeued(tx, message, templates=hub.settings.notify.templates, now=hub.clock.now(), actor="outbox")
    row = await hub.db.fetch_one("SELECT status, personalisation FROM outbox_messages WHERE id = ?", (message,))
    assert row == {"status": "queued", "personalisation": '{"link": "x"}'}


async def test_a_text_to_a_patient_who_stopped_texts_goes_by_email(hub: Harness) -> None:
    patient = await hub.create_patient(email="margaret@example.com", sms_opted_out=True)
    message = await hub.create_message(kind="patient_link", patient_id=patient, personalisation={"link": "x"})
    async with hub.db.write(patient=patient) as tx:
        await requeued(tx, message, templates=hub.settings.notify.templates, now=hub.clock.now(), actor="outbox")
    found = await hub.db.fetch_all("SELECT channel, status, error FROM outbox_messages ORDER BY id")
    assert found == [
        {"channel": "sms", "status": "cancelled", "error": "sms opted out"},
        {"channel": "email", "status": "queued", "error": ""},
    ]


async def test_texts_withdrawn_for_a_stopped_channel_are_locked_in_id_order(hub: Harness, backend: str) -> None:
    # Another patient's acceptance of a slot withdraws this patient's offer texts that it ended one by one, in id
    # order, without this patient's lock. Rerouting this patient's texts (STOP) took them all in one UPDATE, in the
    # order PostgreSQL found them, and an updated row is found after those it was inserted before: the two writers
    # took two texts in opposite orders, and PostgreSQL ended one with a deadlock.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: no row locks")
    patient = await hub.create_patient(email="margaret@example.com")
    first = await hub.create_message(kind="earlier_offer", patient_id=patient, personalisation={"n": "1"})
    second = await hub.create_message(kind="earlier_offer", patient_id=patient, personalisation={"n": "2"})
    for status in ("sending", "queued"):  # the first went round again (claimed, put back): found after the second
        async with hub.db.write() as tx:
            await tx.execute("UPDATE outbox_messages SET status = ? WHERE id = ?", (status, first))
    withdraw = "UPDATE outbox_messages SET status = 'cancelled', error = 'ended' WHERE id = ? AND status = 'queued'"
    took_first, go_on = asyncio.Event(), asyncio.Event()

    async def withdrawing() -> None:
        async with hub.db.write(keys=()) as tx:
            await tx.execute(withdraw, (first,))
            took_first.set()
            await go_on.wait()
            await tx.execute(withdraw, (second,))

    async def rerouting() -> None:
        async with hub.db.write(patient=patient) as tx:
            await reroute_waiting(
                tx,
                patient,
                Channel.SMS,
                templates=hub.settings.notify.templates,
                now=hub.clock.now(),
                why="the patient replied STOP",
                actor="notify",
            )

    other = asyncio.create_task(withdrawing())
    await asyncio.wait_for(took_first.wait(), timeout=5)
    stopping = asyncio.create_task(rerouting())
    await asyncio.sleep(0.3)  # rerouting waits for the first text (and, before, held the second meanwhile)
    go_on.set()
    await asyncio.wait_for(asyncio.gather(other, stopping), timeout=10)  # before: a deadlock ended one of them
    rows = await hub.db.fetch_all("SELECT id, channel, status FROM outbox_messages ORDER BY id")
    assert [(r["id"], r["status"]) for r in rows[:2]] == [(first, "cancelled"), (second, "cancelled")]
