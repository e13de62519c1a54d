"""Queueing messages: rows of outbox_messages, written in the transaction that caused them (the sender drains
them). Queueing a message about an appointment is the one place that picks its channel, template and
personalisation."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hub.clock import format_date, format_time, to_db
from hub.db import Transaction
from hub.links import patient_link
from hub.rules.feed import choose_channel
from hub.settings import Settings
from hub.vocabulary import Channel, Lane, MessageKind

# What a message about an appointment needs to know about the patient.
MESSAGE_PATIENT_COLUMNS = (
    "id, mobile, email, contact_preference, opted_out, sms_opted_out, paperless, verification_code"
)


async def queue_message(
    tx: Transaction,
    *,
    at: datetime,
    kind: MessageKind,
    channel: Channel,
    recipient: str,
    template_id: str,
    personalisation: dict[str, Any],
    patient_id: int | None,
    appointment_id: int | None = None,
    lane: Lane = Lane.BULK,
) -> int:
    row = await tx.fetch_one(
        "INSERT INTO outbox_messages (kind, lane, channel, patient_id, appointment_id, recipient, template_id,"
        " personalisation, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            kind,
            lane,
            channel,
            patient_id,
            appointment_id,
            recipient,
            template_id,
            json.dumps(personalisation, sort_keys=True),
            to_db(at),
            to_db(at),
        ),
    )
    assert row is not None
    return int(row["id"])


async def queue_appointment_message(
    tx: Transaction,
    *,
    settings: Settings,
    kind: MessageKind,
    patient: dict[str, Any],
    appointment_id: int,
    starts_at: datetime,
    site_name: str,
    clinic: str,
    now: datetime,
    channel: Channel | None = None,
    template_kind: MessageKind | None = None,
) -> int:
    channel = channel or choose_channel(patient)
    recipient = {Channel.SMS: patient["mobile"], Channel.EMAIL: patient["email"]}.get(channel) or "post"
    personalisation = {
        "link": patient_link(settings, patient["id"]),
        "verification_code": patient["verification_code"],
        "date": format_date(starts_at),
        "time": format_time(starts_at),
        "site": site_name,
        "clinic": clinic or "",
    }
    return await queue_message(
        tx,
        at=now,
        kind=kind,
        channel=channel,
        recipient=recipient,
        template_id=settings.notify.templates.template_for(template_kind or kind, channel) or "",
        personalisation=personalisation,
        patient_id=patient["id"],
        appointment_id=appointment_id,
    )
