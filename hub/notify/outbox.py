"""Queries on outbox_messages."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from hub.clock import Clock, to_db
from hub.db import Database, Transaction
from hub.notify import Notifier, NotifyError, OutgoingMessage

log = logging.getLogger(__name__)


async def queue_message(
    tx: Transaction,
    *,
    at: datetime,
    kind: str,
    channel: str,
    recipient: str,
    template_id: str,
    personalisation: dict[str, Any],
    patient_id: int | None,
    appointment_id: int | None = None,
    lane: str = "bulk",
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


async def send_immediate(
    db: Database, notifier: Notifier, clock: Clock, message_id: int, secret: dict[str, Any]
) -> None:
    """Send one immediate-lane message now, adding `secret` (never stored) to its personalisation.

    A code that fails to go is not retried: it would be dead before a retry landed, and the patient can ask
    for a new one. The failure is recorded for staff.
    """
    async with db.write() as tx:
        claimed = await tx.fetch_one(
            "UPDATE outbox_messages SET status = 'sending', attempts = attempts + 1 WHERE id = ? AND"
            " status = 'queued' RETURNING id, kind, channel, recipient, template_id, personalisation",
            (message_id,),
        )
        if claimed is not None:  # counted in Notify's per-minute limit, which the workers share
            await tx.execute("INSERT INTO notify_requests (at) VALUES (?)", (to_db(clock.now()),))
    if claimed is None:
        return
    message = OutgoingMessage(
        reference=str(claimed["id"]),
        kind=claimed["kind"],
        channel=claimed["channel"],
        recipient=claimed["recipient"],
        template_id=claimed["template_id"],
        personalisation={**json.loads(claimed["personalisation"]), **secret},
    )
    try:
        notify_id = await notifier.send(message)
    except NotifyError as exc:
        log.warning("immediate message %s failed: %s", message_id, exc.status or type(exc).__name__)
        async with db.write() as tx:
            await tx.execute(
                "UPDATE outbox_messages SET status = 'failed', error = ? WHERE id = ?",
                (f"notify {exc.status or 'error'}", message_id),
            )
        return
    async with db.write() as tx:
        await tx.execute(
            "UPDATE outbox_messages SET status = 'sent', notify_id = ?, sent_at = ? WHERE id = ?",
            (notify_id, to_db(clock.now()), message_id),
        )
