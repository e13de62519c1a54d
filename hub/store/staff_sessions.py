"""Server-side staff sessions: the cookie holds a random token, the table its keyed hash and the sign-in stage.
Each write changes one session's rows (or adds one), so on PostgreSQL it takes no lock of the whole hub (`keys=()`,
hub.db.postgres): agents opening pages all day hold up no patient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.clock import from_db, to_db
from hub.db import Database
from hub.rules.codes import keyed_hash, new_token
from hub.store.sessions import session_state
from hub.vocabulary import StaffSessionStage

# A half-finished sign-in (password given, code not yet) is short-lived whatever the idle timeout.
_PENDING = timedelta(minutes=10)


@dataclass(frozen=True)
class StaffSession:
    id: str
    staff_id: int
    stage: StaffSessionStage
    pending_secret: str | None


def staff_session_id(secret: str, token: str) -> str:
    return keyed_hash(secret, "staff-session", token)


async def start_staff_session(
    db: Database,
    *,
    secret: str,
    staff_id: int,
    stage: StaffSessionStage,
    at: datetime,
    pending_secret: str | None = None,
    replaces: str | None = None,
) -> str:
    """A new id at every stage change, so a token seen before sign-in is worth nothing after it."""
    token = new_token()
    async with db.write(keys=()) as tx:
        if replaces:
            await tx.execute(
                "UPDATE staff_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
                (to_db(at), staff_session_id(secret, replaces)),
            )
        await tx.execute(
            "INSERT INTO staff_sessions (id, staff_id, stage, pending_secret, created_at, last_seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (staff_session_id(secret, token), staff_id, stage, pending_secret, to_db(at), to_db(at)),
        )
    return token


async def get_staff_session(
    db: Database, *, secret: str, token: str, now: datetime, idle: timedelta, absolute: timedelta | None = None
) -> StaffSession | str | None:
    """The live session; 'expired' when it timed out (idle, or `absolute` after sign-in); None when there is none."""
    sid = staff_session_id(secret, token[:100])
    row = await db.fetch_one(
        "SELECT s.staff_id, s.stage, s.pending_secret, s.created_at, s.last_seen_at FROM staff_sessions s"
        " JOIN staff_users u ON u.id = s.staff_id WHERE s.id = ? AND s.ended_at IS NULL AND u.disabled_at IS NULL",
        (sid,),
    )
    if row is None:
        return None
    limit = idle if row["stage"] == StaffSessionStage.ACTIVE else min(idle, _PENDING)
    last_seen, created_at = from_db(row["last_seen_at"]), from_db(row["created_at"])
    state = session_state(created_at=created_at, last_seen=last_seen, now=now, idle=limit, absolute=absolute)
    if state == "expired":
        await end_staff_session(db, secret=secret, token=token, at=now)
        return "expired"
    if state == "touch":
        async with db.write(keys=()) as tx:
            await tx.execute("UPDATE staff_sessions SET last_seen_at = ? WHERE id = ?", (to_db(now), sid))
    return StaffSession(sid, int(row["staff_id"]), StaffSessionStage(row["stage"]), row["pending_secret"])


async def end_staff_session(db: Database, *, secret: str, token: str, at: datetime) -> None:
    async with db.write(keys=()) as tx:
        await tx.execute(
            "UPDATE staff_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            (to_db(at), staff_session_id(secret, token[:100])),
        )
