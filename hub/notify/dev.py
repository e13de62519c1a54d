"""The dev outbox: in demo mode and tests, 'sending' records the message for /dev/outbox to show."""

from __future__ import annotations

import json
import time
import uuid

from hub.clock import Clock, to_db
from hub.db import Database
from hub.notify import OutgoingMessage, TooLate


class DevNotifier:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def send(self, message: OutgoingMessage, *, start_by: float | None = None) -> str:
        async with self._db.write(keys=()) as tx:  # an INSERT only
            if start_by is not None and time.monotonic() > start_by:
                raise TooLate()
            await tx.execute(
                "INSERT INTO dev_messages (reference, channel, recipient, kind, personalisation, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    message.reference,
                    message.channel,
                    message.recipient,
                    message.kind,
                    json.dumps(message.personalisation, sort_keys=True),
                    to_db(self._clock.now()),
                ),
            )
        return str(uuid.uuid4())

    async def find(self, reference: str) -> str | None:
        row = await self._db.fetch_one("SELECT id FROM dev_messages WHERE reference = ? LIMIT 1", (reference,))
        return f"dev-{row['id']}" if row else None


async def list_dev_messages(db: Database, limit: int = 50) -> list[dict[str, object]]:
    rows = await db.fetch_all(
        "SELECT id, reference, channel, recipient, kind, personalisation, created_at FROM dev_messages"
        " ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [{**row, "personalisation": json.loads(row["personalisation"])} for row in rows]
