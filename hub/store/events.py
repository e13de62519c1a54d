"""Events: what the hub tells the hospital's system, written inside the transaction that made the change and read
back through GET /api/v1/events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Transaction
from hub.vocabulary import EventKind


async def record_event(
    tx: Transaction,
    *,
    at: datetime,
    kind: EventKind,
    organisation_id: int,
    patient_id: int | None,
    appointment_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Returns the event's id (a hospital that says it has processed it settles the change it told)."""
    # Writers about different patients run at once on PostgreSQL: the "events" lock, taken before the id is given
    # out and kept to commit, makes ids commit in order, so a reader by cursor never skips one.
    await tx.hold("events")
    row = await tx.fetch_one(
        "INSERT INTO events (kind, organisation_id, patient_id, appointment_id, data, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (
            kind,
            organisation_id,
            patient_id,
            appointment_id,
            json.dumps(data or {}, sort_keys=True),
            to_db(at),
        ),
    )
    assert row is not None
    return int(row["id"])


async def list_events(tx: Transaction, *, organisation_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """Oldest first by id. Ids are handed out in commit order (one writer on SQLite; the "events" lock on
    PostgreSQL), so a reader that has seen id N has seen every id below it: nothing is skipped however writes
    interleave."""
    rows = await tx.fetch_all(
        "SELECT e.id, e.kind, e.created_at, e.data, p.mrn AS patient_ref, a.ref AS appointment_ref FROM events e"
        " LEFT JOIN patients p ON p.id = e.patient_id LEFT JOIN appointments a ON a.id = e.appointment_id"
        " WHERE e.organisation_id = ? AND e.id > ? ORDER BY e.id LIMIT ?",
        (organisation_id, after, limit),
    )
    return [
        {
            "id": str(r["id"]),
            "kind": r["kind"],
            "occurred_at": from_db(r["created_at"]).isoformat().replace("+00:00", "Z"),
            "patient_ref": r["patient_ref"],
            "appointment_ref": r["appointment_ref"],
            "data": json.loads(r["data"]),
        }
        for r in rows
    ]
