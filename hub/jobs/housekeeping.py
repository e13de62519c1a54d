"""Removing what must not be kept: dead sign-in attempts, old rate-limit counters, ended sessions.

The worker runs this on a schedule; the notifications work adds the outbox drain and sweeps beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.clock import to_db
from hub.db import Database

# Sign-in attempts are kept a day for investigating abuse, then go; nothing in them can be turned into a code.
_CHALLENGES_KEPT = timedelta(days=1)
_RATE_EVENTS_KEPT = timedelta(days=1)
_SESSIONS_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class Removed:
    challenges: int
    rate_events: int
    sessions: int


async def remove_expired(db: Database, *, now: datetime, session_absolute: timedelta) -> Removed:
    async with db.write() as tx:
        cutoff = to_db(now - _CHALLENGES_KEPT)
        await tx.execute(
            "DELETE FROM code_challenge_candidates WHERE challenge_id IN"
            " (SELECT id FROM code_challenges WHERE issued_at < ?)",
            (cutoff,),
        )
        challenges = await tx.execute("DELETE FROM code_challenges WHERE issued_at < ?", (cutoff,))
        rate_events = await tx.execute("DELETE FROM rate_events WHERE at < ?", (to_db(now - _RATE_EVENTS_KEPT),))
        sessions = await tx.execute(
            "DELETE FROM sessions WHERE (ended_at IS NOT NULL AND ended_at < ?) OR created_at < ?",
            (to_db(now - _SESSIONS_KEPT), to_db(now - session_absolute - _SESSIONS_KEPT)),
        )
    return Removed(challenges, rate_events, sessions)
