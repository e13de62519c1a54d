"""Rate-limit counters: events noted by key (a sign-in's contact, an address, a recipient), counted over a window.

The caller decides what a count means and holds whatever lock keeps its read-then-write honest (on PostgreSQL the
counter's key lock, `Transaction.hold_keys`). A counter shared by many people at once (an address: a carrier's or a
hospital's network puts thousands behind one) is `reserve`d in a transaction of its own, so its lock is held for
two statements and a commit, not for the whole of the work it guards. Old rows are removed by housekeeping.
"""

from __future__ import annotations

from datetime import datetime

from hub.clock import to_db
from hub.db import Database, Transaction


async def count_recent(tx: Transaction, keys: list[str], since: datetime) -> dict[str, int]:
    """How many times each key was noted after `since`, in one statement."""
    marks = ", ".join(["?"] * len(keys))
    rows = await tx.fetch_all(
        f"SELECT key, COUNT(*) AS n FROM rate_events WHERE key IN ({marks}) AND at > ? GROUP BY key",
        (*keys, to_db(since)),
    )
    found = {row["key"]: int(row["n"]) for row in rows}
    return {key: found.get(key, 0) for key in keys}


async def note(tx: Transaction, keys: list[str], at: datetime) -> list[int]:
    """One event for each key, in one statement; their ids (for a caller that may take one back)."""
    rows = ", ".join(["(?, ?)"] * len(keys))
    noted = await tx.fetch_all(
        f"INSERT INTO rate_events (key, at) VALUES {rows} RETURNING id",
        [value for key in keys for value in (key, to_db(at))],
    )
    return [int(row["id"]) for row in noted]


async def reserve(db: Database, key: str, *, limit: int, since: datetime, now: datetime) -> int | None:
    """One event for `key`, committed at once under the key's lock, unless `limit` events were noted after `since`
    (None). Its id, for a caller whose outcome should not count (`take_back`)."""
    async with db.write(keys=[key]) as tx:  # counted and noted in one statement: one round trip on PostgreSQL
        noted = await tx.fetch_one(
            "INSERT INTO rate_events (key, at) SELECT ?, ?"
            " WHERE (SELECT COUNT(*) FROM rate_events WHERE key = ? AND at > ?) < ? RETURNING id",
            (key, to_db(now), key, to_db(since), limit),
        )
        return int(noted["id"]) if noted else None


async def take_back(tx: Transaction, event_id: int) -> None:
    await tx.execute("DELETE FROM rate_events WHERE id = ?", (event_id,))
