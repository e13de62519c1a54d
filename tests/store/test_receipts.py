"""Delivery receipts and received texts (hub/store/receipts.py), driven the way they arrive: through Notify's callbacks.

What the callbacks themselves accept and refuse (the token, malformed bodies) is in tests/web/test_notify.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import timedelta

import pytest

from hub.clock import from_db, to_db
from hub.db import Transaction
from hub.notify.dev import DevNotifier
from hub.notify.sender import SendPolicy, drain_once
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.holding import held_write
from tests.notify_callbacks import (
    CALLBACKS,
    MOBILE,
    TOKEN,
    assert_nothing_personal_recorded,
    events,
    message,
    patient,
    post,
    rows,
    send_status,
    sent_message,
    snapshot,
    text,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(make_hub: MakeHub) -> Harness:
    return await make_hub(**CALLBACKS)


# Delivery receipts.


async def test_a_delivered_receipt_is_recorded_once(hub: Harness) -> None:
    patient_id = await patient(hub, email="a@example.com")
    message_id = await sent_message(hub, patient_id=patient_id)
    response = await send_status(hub, "n-1", "delivered", reference=str(message_id))
    assert response.status_code == 200 and response.json() == {"outcome": "recorded"}
    row = await message(hub, message_id)
    assert (row["status"], row["delivery_status"]) == ("sent", "delivered")
    audit = await rows(hub, "SELECT actor_type, actor_id, action, record_id FROM audit_events")
    assert audit == [
        {
            "actor_type": "system",
            "actor_id": "notify-callback",
            "action": "notification_delivered",
            "record_id": str(message_id),
        }
    ]
    before = await snapshot(hub)
    for _ in range(5):
        response = await send_status(hub, "n-1", "delivered", reference=str(message_id))
        assert response.status_code == 200 and response.json() == {"outcome": "ignored"}
    assert await snapshot(hub) == before


@pytest.mark.parametrize("later", ["temporary-failure", "technical-failure", "permanent-failure", "delivered"])
async def test_nothing_after_delivered_changes_anything(hub: Harness, later: str) -> None:
    patient_id = await patient(hub, email="a@example.com")
    message_id = await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "delivered")
    before = await snapshot(hub)
    response = await send_status(hub, "n-1", later)
    assert response.status_code == 200 and response.json() == {"outcome": "ignored"}
    assert await snapshot(hub) == before
    assert (await message(hub, message_id))["delivery_status"] == "delivered"


async def test_a_permanently_failed_text_goes_again_by_email_exactly_once(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com", postcode="NW3 2QG")
    appointment_id = await hub.create_appointment(patient_id=patient_id)
    message_id = await sent_message(hub, patient_id=patient_id, appointment_id=appointment_id)
    for _ in range(5):  # Notify's retries, or a receipt sent twice
        response = await send_status(hub, "n-1", "permanent-failure", reference=str(message_id))
        assert response.status_code == 200
    failed = await message(hub, message_id)
    assert (failed["status"], failed["delivery_status"]) == ("failed", "permanent-failure")
    [fallback] = await rows(hub, "SELECT * FROM outbox_messages WHERE id != ?", (message_id,))
    assert fallback["channel"] == "email" and fallback["recipient"] == "margaret@example.com"
    assert fallback["status"] == "queued" and fallback["lane"] == "bulk"
    assert (fallback["kind"], fallback["patient_id"], fallback["appointment_id"]) == (
        "invitation",
        patient_id,
        appointment_id,
    )
    assert fallback["personalisation"] == failed["personalisation"]
    assert fallback["template_id"] == hub.settings["notify.templates.invitation_email"]
    assert await events(hub) == [
        {
            "kind": "notification.failed_over",
            "patient_id": patient_id,
            "appointment_id": appointment_id,
            "data": {
                "message_id": str(message_id),
                "kind": "invitation",
                "status": "permanent-failure",
                "from": "sms",
                "to": "email",
                "replacement_id": str(fallback["id"]),
            },
        }
    ]
    audit = await rows(hub, "SELECT actor_type, actor_id, action, record_id FROM audit_events ORDER BY id")
    assert [(a["action"], a["record_id"]) for a in audit] == [
        ("notification_failed", str(message_id)),
        ("notification_queued", str(fallback["id"])),
    ]
    assert {(a["actor_type"], a["actor_id"]) for a in audit} == {("system", "notify-callback")}
    await assert_nothing_personal_recorded(hub, "margaret@example.com")


async def test_a_permanently_failed_text_goes_by_post_when_there_is_no_email(hub: Harness) -> None:
    patient_id = await patient(hub, postcode="NW3 2QG")
    message_id = await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "permanent-failure")
    await send_status(hub, "n-1", "permanent-failure")
    [fallback] = await rows(hub, "SELECT * FROM outbox_messages WHERE id != ?", (message_id,))
    assert (fallback["channel"], fallback["recipient"], fallback["status"]) == ("letter", "post", "queued")
    assert [e["data"]["to"] for e in await events(hub, "notification.failed_over")] == ["letter"]


async def test_the_hospitals_own_letter_can_be_posted_without_an_address_on_record(hub: Harness) -> None:
    patient_id = await patient(hub)
    appointment_id = await hub.create_appointment(patient_id=patient_id)
    await hub.create_letter(patient_id=patient_id, appointment_id=appointment_id)
    await sent_message(hub, patient_id=patient_id, appointment_id=appointment_id)
    await send_status(hub, "n-1", "permanent-failure")
    assert [r["channel"] for r in await rows(hub, "SELECT channel FROM outbox_messages ORDER BY id")] == [
        "sms",
        "letter",
    ]


async def test_a_failed_text_with_nowhere_else_to_go_is_reported(hub: Harness) -> None:
    patient_id = await patient(hub)  # no email, no address
    message_id = await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "permanent-failure")
    assert [r["id"] for r in await rows(hub, "SELECT id FROM outbox_messages")] == [message_id]
    [event] = await events(hub)
    assert event["kind"] == "notification.failed"
    assert event["data"] == {
        "message_id": str(message_id),
        "kind": "invitation",
        "status": "permanent-failure",
        "channel": "sms",
    }


async def test_a_permanently_failed_email_goes_by_post(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com", postcode="NW3 2QG")
    message_id = await sent_message(hub, patient_id=patient_id, channel="email", recipient="margaret@example.com")
    await send_status(hub, "n-1", "permanent-failure", kind="email")
    [fallback] = await rows(hub, "SELECT * FROM outbox_messages WHERE id != ?", (message_id,))
    assert (fallback["channel"], fallback["recipient"]) == ("letter", "post")
    [event] = await events(hub)
    assert (event["kind"], event["data"]["from"], event["data"]["to"]) == (
        "notification.failed_over",
        "email",
        "letter",
    )


async def test_a_failed_fallback_email_falls_back_again_to_post(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com", postcode="NW3 2QG")
    await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "permanent-failure")
    async with hub.db.write() as tx:
        await tx.execute("UPDATE outbox_messages SET status = 'sent', notify_id = 'n-2' WHERE channel = 'email'")
    await send_status(hub, "n-2", "permanent-failure", kind="email")
    channels = await rows(hub, "SELECT channel, status FROM outbox_messages ORDER BY id")
    assert channels == [
        {"channel": "sms", "status": "failed"},
        {"channel": "email", "status": "failed"},
        {"channel": "letter", "status": "queued"},
    ]


@pytest.mark.parametrize("status", ["permanent-failure", "validation-failed", "temporary-failure"])
async def test_a_failed_letter_stays_failed(hub: Harness, status: str) -> None:
    patient_id = await patient(hub, email="margaret@example.com", postcode="NW3 2QG")
    message_id = await sent_message(hub, patient_id=patient_id, channel="letter", recipient="post", attempts=8)
    await send_status(hub, "n-1", status, kind="letter")
    assert (await message(hub, message_id))["status"] == "failed"
    assert len(await rows(hub, "SELECT id FROM outbox_messages")) == 1
    assert [e["kind"] for e in await events(hub)] == ["notification.failed"]


@pytest.mark.parametrize("status", ["temporary-failure", "technical-failure"])
async def test_a_temporary_failure_is_retried_later(hub: Harness, status: str) -> None:
    patient_id = await patient(hub, email="margaret@example.com")
    message_id = await sent_message(hub, patient_id=patient_id, attempts=2)
    async with hub.db.write() as tx:
        await tx.execute("UPDATE outbox_messages SET check_first = 1 WHERE id = ?", (message_id,))
    response = await send_status(hub, "n-1", status)
    assert response.json() == {"outcome": "recorded"}
    row = await message(hub, message_id)
    assert (row["status"], row["delivery_status"], row["check_first"], row["attempts"]) == ("queued", status, 0, 2)
    assert from_db(row["next_attempt_at"]) > hub.clock.now()
    assert from_db(row["next_attempt_at"]) <= hub.clock.now() + timedelta(seconds=60)  # 30 s doubled, jittered
    assert len(await rows(hub, "SELECT id FROM outbox_messages")) == 1
    assert await events(hub) == []
    [audit] = await rows(hub, "SELECT action, detail FROM audit_events")
    assert audit == {"action": "notification_retry", "detail": f"sms {status}"}
    before = await snapshot(hub)
    await send_status(hub, "n-1", status)
    await send_status(hub, "n-1", "delivered")  # a late receipt for the attempt already answered
    assert await snapshot(hub) == before


async def test_temporary_failures_stop_at_the_attempt_limit(make_hub: MakeHub) -> None:
    hub = await make_hub(**{"notify.callback_token": TOKEN, "notify.max_attempts": 3})
    patient_id = await patient(hub, email="margaret@example.com")
    message_id = await sent_message(hub, patient_id=patient_id, attempts=3)
    await send_status(hub, "n-1", "temporary-failure")
    row = await message(hub, message_id)
    assert (row["status"], row["delivery_status"]) == ("failed", "temporary-failure")
    assert len(await rows(hub, "SELECT id FROM outbox_messages")) == 1  # Notify already tried for 72 hours
    [event] = await events(hub)
    assert event["kind"] == "notification.failed" and event["data"]["status"] == "temporary-failure"


async def test_a_retried_message_is_sent_again_and_its_new_receipt_counts(hub: Harness) -> None:
    patient_id = await patient(hub)
    message_id = await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "temporary-failure")
    hub.clock.advance(minutes=2)
    assert await drain_once(hub.db, DevNotifier(hub.db, hub.clock), hub.clock, policy=SendPolicy()) == 1
    row = await message(hub, message_id)
    assert row["status"] == "sent" and row["notify_id"] != "n-1" and row["attempts"] == 2
    before = await snapshot(hub)
    await send_status(hub, "n-1", "temporary-failure")  # Notify retrying the first receipt
    await send_status(hub, "n-1", "permanent-failure")
    assert await snapshot(hub) == before
    await send_status(hub, row["notify_id"], "delivered")
    assert (await message(hub, message_id))["delivery_status"] == "delivered"


async def test_a_failed_security_code_is_not_retried_or_sent_another_way(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com")
    message_id = await sent_message(hub, patient_id=patient_id, kind="security_code", lane="immediate")
    await send_status(hub, "n-1", "temporary-failure")
    assert (await message(hub, message_id))["status"] == "failed"
    assert len(await rows(hub, "SELECT id FROM outbox_messages")) == 1
    assert [e["kind"] for e in await events(hub)] == ["notification.failed"]


async def test_out_of_order_receipts_keep_the_first_final_answer(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com")
    message_id = await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "permanent-failure")
    before = await snapshot(hub)
    for status in ("delivered", "temporary-failure", "technical-failure", "permanent-failure"):
        assert (await send_status(hub, "n-1", status)).json() == {"outcome": "ignored"}
    assert await snapshot(hub) == before
    assert (await message(hub, message_id))["status"] == "failed"


async def test_a_receipt_for_another_attempt_of_ours_is_ignored(hub: Harness) -> None:
    message_id = await sent_message(hub, patient_id=await patient(hub), notify_id="n-2")
    before = await snapshot(hub)
    response = await send_status(hub, "n-1", "permanent-failure", reference=str(message_id))
    assert response.json() == {"outcome": "ignored"}
    assert await snapshot(hub) == before


# Received texts.


@pytest.mark.parametrize("words", ["STOP", "stop", "RAL STOP", "Stop.", "royal free stop"])
async def test_stop_opts_the_patient_out_of_texts_and_confirms_by_email(hub: Harness, words: str) -> None:
    patient_id = await patient(hub, email="margaret@example.com")
    response = await post(hub, "inbound", text(words))
    assert response.status_code == 200 and response.json() == {"outcome": "stop"}
    [row] = await rows(hub, "SELECT sms_opted_out FROM patients")
    assert row["sms_opted_out"] == 1
    [stored] = await rows(hub, "SELECT * FROM inbound_messages")
    assert (stored["notify_id"], stored["patient_id"], stored["source_number"]) == ("in-1", patient_id, MOBILE)
    assert (stored["content"], stored["action"]) == (words, "stop")
    assert stored["received_at"] == "2026-11-21T09:59:00.000000Z"
    [confirmation] = await rows(hub, "SELECT * FROM outbox_messages")
    assert (confirmation["kind"], confirmation["channel"], confirmation["recipient"]) == (
        "sms_opt_out_confirmation",
        "email",
        "margaret@example.com",
    )
    assert json.loads(confirmation["personalisation"])["link"].startswith(hub.settings.base_url + "/p/")
    assert [(e["kind"], e["patient_id"]) for e in await events(hub)] == [("patient.sms_opted_out", patient_id)]
    await assert_nothing_personal_recorded(hub, "margaret@example.com")


async def test_stop_without_an_email_is_confirmed_by_post(hub: Harness) -> None:
    await patient(hub, postcode="NW3 2QG")
    await post(hub, "inbound", text("STOP"))
    [confirmation] = await rows(hub, "SELECT kind, channel, recipient FROM outbox_messages")
    assert confirmation == {"kind": "sms_opt_out_confirmation", "channel": "letter", "recipient": "post"}


async def test_stop_with_no_email_or_address_still_opts_out(hub: Harness) -> None:
    await patient(hub)
    assert (await post(hub, "inbound", text("STOP"))).json() == {"outcome": "stop"}
    assert (await rows(hub, "SELECT sms_opted_out FROM patients"))[0]["sms_opted_out"] == 1
    assert await rows(hub, "SELECT id FROM outbox_messages") == []


async def test_start_opts_back_in_and_confirms_by_text(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com")
    await post(hub, "inbound", text("STOP", notify_id="in-1"))
    response = await post(hub, "inbound", text("RAL start", notify_id="in-2"))
    assert response.json() == {"outcome": "start"}
    assert (await rows(hub, "SELECT sms_opted_out FROM patients"))[0]["sms_opted_out"] == 0
    sent = await rows(hub, "SELECT kind, channel, recipient FROM outbox_messages ORDER BY id")
    assert sent[-1] == {"kind": "sms_opt_in_confirmation", "channel": "sms", "recipient": MOBILE}
    assert [e["kind"] for e in await events(hub)] == ["patient.sms_opted_out", "patient.sms_opted_in"]
    assert [r["action"] for r in await rows(hub, "SELECT action FROM inbound_messages ORDER BY id")] == [
        "stop",
        "start",
    ]
    assert all(e["patient_id"] == patient_id for e in await events(hub))


async def test_stop_or_start_that_changes_nothing_sends_nothing(hub: Harness) -> None:
    await patient(hub, email="margaret@example.com")
    await post(hub, "inbound", text("START", notify_id="in-1"))  # never opted out
    await post(hub, "inbound", text("STOP", notify_id="in-2"))
    await post(hub, "inbound", text("stop", notify_id="in-3"))  # already opted out
    assert len(await rows(hub, "SELECT id FROM outbox_messages")) == 1
    assert [e["kind"] for e in await events(hub)] == ["patient.sms_opted_out"]
    assert len(await rows(hub, "SELECT id FROM inbound_messages")) == 3


async def test_stop_opts_out_everyone_on_the_number_with_one_confirmation_per_email(hub: Harness) -> None:
    twin_1 = await patient(hub, email="parent@example.com", given_name="Amy", dob="2019-05-01")
    twin_2 = await patient(hub, email="parent@example.com", given_name="Ben", dob="2019-05-01", mrn="MRN9")
    other = await patient(hub, mobile="+447700900222", email="other@example.com")
    await post(hub, "inbound", text("STOP"))
    opted = {r["id"]: r["sms_opted_out"] for r in await rows(hub, "SELECT id, sms_opted_out FROM patients")}
    assert opted == {twin_1: 1, twin_2: 1, other: 0}
    assert len(await rows(hub, "SELECT id FROM outbox_messages")) == 1
    [stored] = await rows(hub, "SELECT patient_id FROM inbound_messages")
    assert stored["patient_id"] is None  # two patients share the number
    assert sorted(e["patient_id"] for e in await events(hub, "patient.sms_opted_out")) == [twin_1, twin_2]


async def test_stop_sends_texts_still_waiting_another_way(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com")
    waiting = await hub.create_message(recipient=MOBILE, personalisation={"link": "x"}, patient_id=patient_id)
    await post(hub, "inbound", text("STOP"))
    assert (await message(hub, waiting))["status"] == "cancelled"
    queued = await rows(hub, "SELECT kind, channel, recipient FROM outbox_messages WHERE status = 'queued'")
    assert sorted(q["kind"] for q in queued) == ["invitation", "sms_opt_out_confirmation"]
    assert {q["channel"] for q in queued} == {"email"}


async def test_stop_leaves_a_text_a_worker_has_claimed_meanwhile_to_its_claim(hub: Harness) -> None:
    # A worker claims the waiting text (its own lock, not the write lock) while STOP is being recorded: STOP's
    # withdrawal waits for that row and then finds it no longer waiting. It is not marked cancelled under the
    # worker's claim and sent again by email: the text goes, as it was already going, and nothing goes twice.
    patient_id = await patient(hub, email="margaret@example.com")
    waiting = await hub.create_message(recipient=MOBILE, personalisation={"link": "x"}, patient_id=patient_id)

    def worker_claims(tx: Transaction) -> Awaitable[int]:
        return tx.execute(
            "UPDATE outbox_messages SET status = 'sending', claims = claims + 1, claimed_until = ? WHERE id = ?",
            (to_db(hub.clock.now() + timedelta(minutes=5)), waiting),
        )

    async with held_write(hub.db, lock="outbox", doing=worker_claims):
        stop = asyncio.create_task(post(hub, "inbound", text("STOP")))
        await asyncio.sleep(0.3)
    await asyncio.wait_for(stop, timeout=10)
    assert (await message(hub, waiting))["status"] == "sending"
    queued = await rows(hub, "SELECT kind FROM outbox_messages WHERE status = 'queued' AND channel = 'email'")
    assert [q["kind"] for q in queued] == ["sms_opt_out_confirmation"]


async def test_other_texts_are_kept_for_the_booking_centre(hub: Harness) -> None:
    patient_id = await patient(hub, email="margaret@example.com")
    words = "Can I come at 3pm instead? My daughter drives me"
    response = await post(hub, "inbound", text(words))
    assert response.status_code == 200 and response.json() == {"outcome": "for_booking_centre"}
    [stored] = await rows(hub, "SELECT * FROM inbound_messages")
    assert (stored["patient_id"], stored["content"], stored["action"]) == (patient_id, words, "for_booking_centre")
    [event] = await events(hub)
    assert event == {
        "kind": "patient.message_received",
        "patient_id": patient_id,
        "appointment_id": None,
        "data": {"inbound_message_id": str(stored["id"])},
    }
    assert (await rows(hub, "SELECT sms_opted_out FROM patients"))[0]["sms_opted_out"] == 0
    assert await rows(hub, "SELECT id FROM outbox_messages") == []
    [audit] = await rows(hub, "SELECT actor_type, action, record_type FROM audit_events")
    assert audit == {"actor_type": "system", "action": "inbound_message_received", "record_type": "inbound_message"}
    await assert_nothing_personal_recorded(hub, "3pm", "daughter")


async def test_a_text_from_a_number_we_do_not_know_is_kept_without_a_patient(hub: Harness) -> None:
    await patient(hub)
    for i, source in enumerate(["447700900999", "33612345678", "+1 202 555 0100"]):
        await post(hub, "inbound", text("STOP", notify_id=f"in-{i}", source=source))
    stored = await rows(hub, "SELECT patient_id, source_number FROM inbound_messages ORDER BY id")
    assert [s["patient_id"] for s in stored] == [None, None, None]
    assert stored[0]["source_number"] == "+447700900999"
    assert await events(hub) == []
    assert (await rows(hub, "SELECT sms_opted_out FROM patients"))[0]["sms_opted_out"] == 0


@pytest.mark.parametrize("words", ["STOP", "START", "Please call me"])
async def test_a_repeated_text_changes_nothing(hub: Harness, words: str) -> None:
    await patient(hub, email="margaret@example.com")
    await post(hub, "inbound", text("STOP", notify_id="in-0"))
    await post(hub, "inbound", text(words))
    before = await snapshot(hub)
    for _ in range(5):
        response = await post(hub, "inbound", text(words))
        assert response.status_code == 200 and response.json() == {"outcome": "duplicate"}
    response = await post(hub, "inbound", text("START"))  # the same id with other words: still the same text
    assert response.json() == {"outcome": "duplicate"}
    assert await snapshot(hub) == before


async def test_an_odd_date_received_does_not_lose_the_text(hub: Harness) -> None:
    await patient(hub)
    for i, received in enumerate([None, "yesterday", 12, "2026-11-21T09:00:00"]):
        body = {**text("STOP", notify_id=f"in-{i}"), "date_received": received}
        assert (await post(hub, "inbound", body)).status_code == 200
    stamps = [r["received_at"] for r in await rows(hub, "SELECT received_at FROM inbound_messages ORDER BY id")]
    assert stamps == [to_db(hub.clock.now())] * 3 + ["2026-11-21T09:00:00.000000Z"]


# What reaches the booking centre's queue.


async def _tasks(hub: Harness) -> list[dict[str, object]]:
    return await rows(hub, "SELECT kind, patient_id, source_id, status FROM tasks ORDER BY id")


async def test_a_message_with_nowhere_else_to_go_becomes_a_task(hub: Harness) -> None:
    patient_id = await patient(hub)  # no email, no address: the failed text cannot go another way
    message_id = await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "permanent-failure")
    await send_status(hub, "n-1", "permanent-failure")  # Notify retries: still one task
    assert await _tasks(hub) == [
        {"kind": "failed_notification", "patient_id": patient_id, "source_id": message_id, "status": "open"}
    ]


async def test_a_failed_text_that_goes_again_by_email_is_not_a_task(hub: Harness) -> None:
    patient_id = await patient(hub, email="ann@example.com")
    await sent_message(hub, patient_id=patient_id)
    await send_status(hub, "n-1", "permanent-failure")
    assert await _tasks(hub) == []


async def test_a_text_from_a_patient_becomes_a_task_but_stop_does_not(hub: Harness) -> None:
    patient_id = await patient(hub)
    assert (await post(hub, "inbound", text("STOP", notify_id="in-1"))).status_code == 200
    assert (await post(hub, "inbound", text("Can I come earlier?", notify_id="in-2"))).status_code == 200
    assert (await post(hub, "inbound", text("Can I come earlier?", notify_id="in-2"))).status_code == 200
    [inbound] = await rows(hub, "SELECT id FROM inbound_messages WHERE notify_id = 'in-2'")
    assert await _tasks(hub) == [
        {"kind": "inbound_text", "patient_id": patient_id, "source_id": inbound["id"], "status": "open"}
    ]
