"""Notify's callbacks as a test drives them: the token, receipts and texts as Notify sends them, and what to read back.

A test module that posts callbacks makes its hub with the token set: `make_hub(**CALLBACKS)`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from hub.clock import from_db
from hub.store.outbox import appointment_news
from tests.harness import Harness

TOKEN = "notify-callback-token-0123456789"
CALLBACKS = {"notify.callback_token": TOKEN}
MOBILE = "+447700900111"
WATCHED = ("outbox_messages", "audit_events", "events", "patients", "inbound_messages")


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(hub: Harness, path: str, body: Any, *, headers: dict[str, Any] | None = None) -> httpx.Response:
    headers = auth() if headers is None else headers
    if isinstance(body, bytes):
        return await hub.client.post(f"/notify/callbacks/{path}", content=body, headers=headers)
    return await hub.client.post(f"/notify/callbacks/{path}", json=body, headers=headers)


def receipt(notify_id: str, status: str, *, reference: str | None = None, kind: str = "sms") -> dict[str, Any]:
    return {
        "id": notify_id,
        "reference": reference,
        "to": MOBILE,
        "status": status,
        "created_at": "2026-11-21T10:00:00.000000Z",
        "completed_at": "2026-11-21T10:00:05.000000Z",
        "sent_at": "2026-11-21T10:00:01.000000Z",
        "notification_type": kind,
        "template_id": "f33517ff-2a88-4f6e-b855-c550268ce08a",
        "template_version": 1,
    }


def text(message: str, *, notify_id: str = "in-1", source: str = "447700900111") -> dict[str, Any]:
    return {
        "id": notify_id,
        "source_number": source,
        "destination_number": "07700900000",
        "message": message,
        "date_received": "2026-11-21T09:59:00.000000Z",
    }


async def send_status(hub: Harness, notify_id: str, status: str, **kwargs: Any) -> httpx.Response:
    return await post(hub, "status", receipt(notify_id, status, **kwargs))


async def sent_message(
    hub: Harness,
    *,
    patient_id: int | None,
    notify_id: str = "n-1",
    channel: str = "sms",
    recipient: str = MOBILE,
    kind: str = "invitation",
    appointment_id: int | None = None,
    attempts: int = 1,
    lane: str = "bulk",
) -> int:
    """A message the worker has handed to Notify, as the outbox holds it afterwards: about its appointment as it
    is (as the outbox writes it)."""
    personalisation = {"link": "https://example.test/p/x", "date": "Thursday 3 December 2026"}
    if appointment_id is not None:
        row = await hub.db.fetch_one(
            "SELECT a.starts_at, a.clinic, s.name FROM appointments a JOIN sites s ON s.id = a.site_id WHERE a.id = ?",
            (appointment_id,),
        )
        assert row is not None
        personalisation |= appointment_news(from_db(row["starts_at"]), row["name"], row["clinic"])
    return await hub.create_message(
        patient_id=patient_id,
        kind=kind,
        channel=channel,
        recipient=recipient,
        personalisation=personalisation,
        appointment_id=appointment_id,
        lane=lane,
        sent=True,
        notify_id=notify_id,
        attempts=attempts,
    )


async def patient(hub: Harness, *, email: str | None = None, postcode: str = "", **kwargs: Any) -> int:
    """A patient on MOBILE; with a postcode, an address to post to."""
    address = ["1 Pond Street", "London"] if postcode else []
    return await hub.create_patient(
        mobile=kwargs.pop("mobile", MOBILE), email=email, address_lines=address, postcode=postcode, **kwargs
    )


async def rows(hub: Harness, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await hub.db.fetch_all(sql, params)


async def message(hub: Harness, message_id: int) -> dict[str, Any]:
    [row] = await rows(hub, "SELECT * FROM outbox_messages WHERE id = ?", (message_id,))
    return row


async def snapshot(hub: Harness) -> dict[str, list[dict[str, Any]]]:
    return {table: await rows(hub, f"SELECT * FROM {table} ORDER BY id") for table in WATCHED}


async def events(hub: Harness, kind: str | None = None) -> list[dict[str, Any]]:
    found = await rows(hub, "SELECT kind, patient_id, appointment_id, data FROM events ORDER BY id")
    return [{**e, "data": json.loads(e["data"])} for e in found if kind is None or e["kind"] == kind]


async def assert_nothing_personal_recorded(hub: Harness, *secrets: str) -> None:
    audit = await rows(hub, "SELECT action, record_type, record_id, detail FROM audit_events")
    recorded = json.dumps([audit, await rows(hub, "SELECT data FROM events")])
    for secret in (MOBILE, MOBILE.removeprefix("+"), *secrets):
        assert secret not in recorded
