"""Notify's callbacks over HTTP: the token, what a well-formed receipt or text is, and what the answers say.

What a receipt or a text then changes (retries, fallbacks, STOP and START) is in tests/store/test_receipts.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

import pytest

from hub.db import Transaction
from hub.web.notify import inbound_command
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.holding import held_write, touch_patient
from tests.notify_callbacks import (
    CALLBACKS,
    MOBILE,
    TOKEN,
    auth,
    patient,
    post,
    receipt,
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


# The token.


@pytest.mark.parametrize("path", ["status", "inbound"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN.upper()}"},
        {"Authorization": "Bearer t\u00f6ken".encode("latin-1")},  # not ASCII
    ],
)
async def test_a_missing_or_wrong_token_is_refused(hub: Harness, path: str, headers: dict[str, Any]) -> None:
    patient_id = await patient(hub, email="a@example.com")
    await sent_message(hub, patient_id=patient_id)
    before = await snapshot(hub)
    body = receipt("n-1", "permanent-failure") if path == "status" else text("STOP")
    response = await post(hub, path, body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"errors": [{"field": "authorization", "message": "a valid bearer token is required"}]}
    assert "set-cookie" not in response.headers
    assert await snapshot(hub) == before


@pytest.mark.parametrize("path", ["status", "inbound"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}])
async def test_without_a_configured_token_every_callback_is_refused(
    make_hub: MakeHub, path: str, headers: dict[str, str]
) -> None:
    hub = await make_hub()
    assert hub.settings["notify.callback_token"] == ""
    patient_id = await patient(hub)
    await sent_message(hub, patient_id=patient_id)
    before = await snapshot(hub)
    body = receipt("n-1", "delivered") if path == "status" else text("STOP")
    response = await post(hub, path, body, headers=headers)
    assert response.status_code == 503  # Notify retries, so nothing is lost while the token is set
    assert response.json()["errors"][0]["field"] == "authorization"
    assert await snapshot(hub) == before


@pytest.mark.parametrize("path", ["status", "inbound"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"not json", "body"),
        (b"\xff\xfe{}", "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
        (b"x" * 70_000, "body"),
        ([], "body"),
        ("STOP", "body"),
        (None, "body"),
        ({}, "id"),
        ({"id": "", "status": "delivered", "source_number": MOBILE, "message": "hi"}, "id"),
        ({"id": 7, "status": "delivered", "source_number": MOBILE, "message": "hi"}, "id"),
        ({"id": "x" * 101, "status": "delivered", "source_number": MOBILE, "message": "hi"}, "id"),
        ({"id": ["n-1"], "status": "delivered", "source_number": MOBILE, "message": "hi"}, "id"),
    ],
)
async def test_malformed_bodies_get_a_422_never_a_500(hub: Harness, path: str, body: Any, field: str) -> None:
    patient_id = await patient(hub)
    await sent_message(hub, patient_id=patient_id)
    before = await snapshot(hub)
    response = await post(hub, path, body if isinstance(body, bytes) else json.dumps(body).encode())
    assert response.status_code in (413, 422), response.text
    assert response.json()["errors"][0]["field"] == field
    assert await snapshot(hub) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "n-1"}, "status"),
        ({"id": "n-1", "status": None}, "status"),
        ({"id": "n-1", "status": 200}, "status"),
        ({"id": "n-1", "status": "delivered", "reference": 1}, "reference"),
        ({"id": "n-1", "status": "delivered", "reference": {"id": 1}}, "reference"),
    ],
)
async def test_malformed_receipts_get_a_422(hub: Harness, body: dict[str, Any], field: str) -> None:
    await sent_message(hub, patient_id=await patient(hub))
    before = await snapshot(hub)
    response = await post(hub, "status", body)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "message": response.json()["errors"][0]["message"]}]
    assert await snapshot(hub) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "in-1", "message": "STOP"}, "source_number"),
        ({"id": "in-1", "source_number": 447700900111, "message": "STOP"}, "source_number"),
        ({"id": "in-1", "source_number": MOBILE}, "message"),
        ({"id": "in-1", "source_number": MOBILE, "message": None}, "message"),
        ({"id": "in-1", "source_number": MOBILE, "message": ["STOP"]}, "message"),
    ],
)
async def test_malformed_texts_get_a_422(hub: Harness, body: dict[str, Any], field: str) -> None:
    await patient(hub)
    before = await snapshot(hub)
    response = await post(hub, "inbound", body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert await snapshot(hub) == before


async def test_callbacks_only_take_post(hub: Harness) -> None:
    for path in ("status", "inbound"):
        assert (await hub.client.get(f"/notify/callbacks/{path}", headers=auth())).status_code == 405


# Delivery receipts.


@pytest.mark.parametrize("status", ["sending", "pending", "created", "", "exploded"])
async def test_in_between_or_unknown_statuses_change_nothing(hub: Harness, status: str) -> None:
    await sent_message(hub, patient_id=await patient(hub))
    before = await snapshot(hub)
    response = await post(hub, "status", {**receipt("n-1", "delivered"), "status": status})
    assert response.status_code == (422 if status == "" else 200)
    assert await snapshot(hub) == before


async def test_a_receipt_for_a_message_we_do_not_know_is_accepted_and_dropped(
    hub: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await sent_message(hub, patient_id=await patient(hub))
    before = await snapshot(hub)
    with caplog.at_level(logging.INFO):
        for reference in (None, "999", "not-ours", "9" * 40):
            response = await send_status(hub, "someone-else", "delivered", reference=reference)
            assert response.status_code == 200 and response.json() == {"outcome": "unknown"}
    assert await snapshot(hub) == before
    assert "for a message we do not know" in caplog.text
    assert MOBILE not in caplog.text and TOKEN not in caplog.text


async def test_a_receipt_that_beats_the_worker_is_asked_for_again(hub: Harness) -> None:
    patient_id = await patient(hub)
    message_id = await sent_message(hub, patient_id=patient_id)
    async with hub.db.write() as tx:  # Notify took it; our worker has not recorded the answer yet
        await tx.execute("UPDATE outbox_messages SET status = 'sending', notify_id = NULL WHERE id = ?", (message_id,))
    before = await snapshot(hub)
    response = await send_status(hub, "n-9", "delivered", reference=str(message_id))
    assert response.status_code == 503 and response.headers["retry-after"] == "300"
    assert await snapshot(hub) == before
    async with hub.db.write() as tx:
        await tx.execute("UPDATE outbox_messages SET status = 'sent', notify_id = 'n-9' WHERE id = ?", (message_id,))
    assert (await send_status(hub, "n-9", "delivered", reference=str(message_id))).json() == {"outcome": "recorded"}


async def test_a_receipt_waits_only_for_its_own_patients_write(hub: Harness, backend: str) -> None:
    # An invitation run's receipts come back by the thousand: each locks its message's patient, not the hub, so
    # on PostgreSQL another patient's write open meanwhile holds it up not at all (SQLite: one writer at a time).
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    mine, someone_else = await patient(hub), await patient(hub, email="other@example.com")
    message_id = await sent_message(hub, patient_id=mine)
    async with held_write(hub.db, patient=someone_else, doing=touch_patient(someone_else)):
        response = await asyncio.wait_for(send_status(hub, "n-1", "delivered"), timeout=5)
        assert response.json() == {"outcome": "recorded"}
    # The same patient's own write is waited for: a repeat of the receipt then finds it recorded.
    async with held_write(hub.db, patient=mine, doing=touch_patient(mine)):
        repeat = asyncio.create_task(send_status(hub, "n-1", "delivered"))
        await asyncio.sleep(0.3)
        assert not repeat.done()
    assert (await repeat).json() == {"outcome": "ignored"}
    assert (await rows(hub, "SELECT delivery_status FROM outbox_messages WHERE id = ?", (message_id,))) == [
        {"delivery_status": "delivered"}
    ]


async def test_a_receipt_for_a_message_moved_to_another_patient_meanwhile_is_asked_for_again(hub: Harness) -> None:
    # The receipt reads the message's patient, then waits for that patient's lock; a merge (HL7 A40) moves the
    # message to the surviving patient meanwhile. It does not act under the wrong patient's lock: Notify is asked
    # to try again, and the next try locks the right patient.
    merged, surviving = await patient(hub), await patient(hub, email="survivor@example.com")
    message_id = await sent_message(hub, patient_id=merged)

    def merge(tx: Transaction) -> Awaitable[int]:
        return tx.execute("UPDATE outbox_messages SET patient_id = ? WHERE id = ?", (surviving, message_id))

    async with held_write(hub.db, patient=merged, doing=merge):
        answer = asyncio.create_task(send_status(hub, "n-1", "permanent-failure"))
        await asyncio.sleep(0.3)
        assert not answer.done()
    first = await asyncio.wait_for(answer, timeout=10)
    assert first.status_code == 503 and first.headers["retry-after"] == "300"
    assert (await send_status(hub, "n-1", "permanent-failure")).json() == {"outcome": "recorded"}
    fallbacks = await rows(hub, "SELECT patient_id FROM outbox_messages WHERE channel = 'email'")
    assert fallbacks == [{"patient_id": surviving}]


async def test_two_copies_of_a_failure_at_once_send_one_fallback(hub: Harness) -> None:
    # Notify retries a callback it had no answer to: two copies of a permanent failure arriving together make one
    # email in place of the text, not two.
    patient_id = await patient(hub, email="patient@example.com")
    await sent_message(hub, patient_id=patient_id)
    first, second = await asyncio.gather(
        send_status(hub, "n-1", "permanent-failure"), send_status(hub, "n-1", "permanent-failure")
    )
    assert sorted(r.json()["outcome"] for r in (first, second)) == ["ignored", "recorded"]
    fallbacks = await rows(hub, "SELECT channel FROM outbox_messages WHERE channel = 'email'")
    assert fallbacks == [{"channel": "email"}]


# Received texts.


@pytest.mark.parametrize(
    ("message", "command"),
    [
        ("STOP", "stop"),
        ("stop", "stop"),
        ("Stop.", "stop"),
        ("stop!", "stop"),
        ("  STOP\n", "stop"),
        ("RAL STOP", "stop"),
        ("ral: stop", "stop"),
        ("royal free stop", "stop"),
        ("Royal Free London stop", "stop"),
        ("please stop", "stop"),
        ("\uff33\uff34\uff2f\uff30", "stop"),  # full-width letters from some phone keyboards
        ("START", "start"),
        ("start", "start"),
        ("RAL Start", "start"),
        ("", None),
        ("   ", None),
        ("stopped", None),
        ("STOP it now", None),
        ("please don't stop", None),
        ("please don\u2019t stop", None),
        ("when do I stop", None),
        ("do not stop", None),
        ("I need to change my appointment please stop", None),
        ("Can I come at 3pm instead", None),
        ("s t o p", None),
    ],
)
def test_inbound_command(message: str, command: str | None) -> None:
    assert inbound_command(message) == command


async def test_after_stop_the_next_appointment_notice_goes_by_email_then_by_post(hub: Harness) -> None:
    key = await hub.create_api_key(organisation_code="RAL")
    api = {"Authorization": f"Bearer {key}"}
    site = {"name": "Royal Free Hospital", "postcode": "NW3 2QG"}
    assert (await hub.client.put("/api/v1/sites/RFH", json=site, headers=api)).status_code == 201
    person = {
        "given_name": "Margaret",
        "family_name": "Jones",
        "date_of_birth": "1948-03-14",
        "mobile": "07700 900111",
        "email": "margaret@example.com",
        "postal_address": {"lines": ["1 Pond Street", "London"], "postcode": "NW3 2QG"},
        "contact_preference": "sms",
    }
    assert (await hub.client.put("/api/v1/patients/MRN1", json=person, headers=api)).status_code == 201
    await post(hub, "inbound", text("RAL STOP"))

    async def book(ref: str) -> dict[str, Any]:
        appointment = {
            "patient_ref": "MRN1",
            "site_code": "RFH",
            "start": "2026-12-03T09:30:00+00:00",
            "duration_minutes": 30,
        }
        response = await hub.client.put(f"/api/v1/appointments/{ref}", json=appointment, headers=api)
        assert response.status_code == 201, response.text
        [row] = await rows(
            hub,
            "SELECT o.channel, o.recipient FROM outbox_messages o JOIN appointments a ON a.id = o.appointment_id"
            " WHERE a.ref = ? AND o.kind = 'invitation'",
            (ref,),
        )
        return row

    assert await book("A1") == {"channel": "email", "recipient": "margaret@example.com"}
    async with hub.db.write() as tx:
        await tx.execute("UPDATE patients SET email = NULL")
    assert await book("A2") == {"channel": "letter", "recipient": "post"}
    await post(hub, "inbound", text("START", notify_id="in-2"))
    assert await book("A3") == {"channel": "sms", "recipient": MOBILE}
