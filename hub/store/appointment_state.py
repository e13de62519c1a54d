"""How an appointment's lifecycle state is kept in its row: the facts' columns, and the hub's change and a held
hospital update as JSON of the same facts (hub.store.lifecycle reads and writes them)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Row
from hub.rules.appointments import ChangeKind, Facts, HubChange

# The appointments table's columns that hold the hospital's facts (hub.rules.appointments.Facts).
FACT_COLUMNS = (
    "starts_at",
    "site_id",
    "clinic",
    "specialty",
    "clinician",
    "duration_minutes",
    "mode",
    "transport_booked",
    "interpreter_booked",
    "status",
)


def facts_from(row: Row) -> Facts:
    return Facts(
        starts_at=from_db(row["starts_at"]),
        site_id=int(row["site_id"]),
        clinic=row["clinic"],
        specialty=row["specialty"],
        clinician=row["clinician"],
        duration_minutes=int(row["duration_minutes"]),
        mode=row["mode"],
        transport_booked=bool(row["transport_booked"]),
        interpreter_booked=bool(row["interpreter_booked"]),
        status=row["status"],
    )


def facts_json(facts: Facts) -> dict[str, Any]:
    return {column: db_value(getattr(facts, column)) for column in FACT_COLUMNS}


def held_version(facts: Facts) -> str:
    """A short fingerprint of a held hospital update: the agent's form names the one they saw, so that accepting it
    never applies a newer one held since."""
    return hashlib.sha256(json.dumps(facts_json(facts), sort_keys=True).encode()).hexdigest()[:16]


def db_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_db(value)
    if isinstance(value, bool):
        return int(value)
    return str(value) if isinstance(value, str) else value


def change_json(change: HubChange | None) -> str | None:
    if change is None:
        return None
    return json.dumps({"kind": str(change.kind), "event_id": change.event_id, "facts": facts_json(change.facts)})


def change_from(text: str | None) -> HubChange | None:
    if not text:
        return None
    data = json.loads(text)
    return HubChange(ChangeKind(data["kind"]), facts_from(data["facts"]), data["event_id"])
