"""Queueing a notice about an appointment: the one place that picks the channel, template and personalisation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.clock import format_date, format_time
from hub.db import Transaction
from hub.links import patient_link
from hub.rules.feed import choose_channel
from hub.settings import Settings
from hub.store.outbox import queue_message

# What a notice needs to know about the patient.
NOTICE_PATIENT_COLUMNS = "id, mobile, email, contact_preference, opted_out, sms_opted_out, paperless, verification_code"


async def queue_appointment_notice(
    tx: Transaction,
    *,
    settings: Settings,
    kind: str,
    patient: dict[str, Any],
    appointment_id: int,
    starts_at: datetime,
    site_name: str,
    clinic: str,
    now: datetime,
    channel: str | None = None,
    template_kind: str | None = None,
) -> int:
    channel = channel or choose_channel(patient)
    recipient = {"sms": patient["mobile"], "email": patient["email"]}.get(channel) or "post"
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
