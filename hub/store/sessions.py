"""Server-side patient sessions. The cookie holds a random token; the table holds its keyed hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.codes import keyed_hash, new_token
from hub.store.patients import PATIENT_COLUMNS

# Writing last_seen_at on every request would make every page a write; a minute's slack is enough.
_TOUCH_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class PatientSession:
    id: str
    token: str
    patient_id: int
    patient: Row
    idle: timedelta | None = None  # a shorter idle limit of its own: NHS login's (WF-NFR-18)


# What get_live_session says of a session that timed out: a session with an idle limit of its own (NHS login's)
# ends with a page of its own.
EXPIRED = "expired"
EXPIRED_OWN_LIMIT = "expired_own_limit"


# The session and its patient in one read: every signed-in page needs both.
_LIVE_SESSION = (
    "SELECT s.created_at AS session_created_at, s.last_seen_at AS session_last_seen_at,"
    " s.idle_seconds AS session_idle_seconds, "
    + ", ".join(f"p.{column.strip()}" for column in PATIENT_COLUMNS.split(","))
    + " FROM sessions s JOIN patients p ON p.id = s.patient_id WHERE s.id = ? AND s.ended_at IS NULL"
)


def session_state(
    *, created_at: datetime, last_seen: datetime, now: datetime, idle: timedelta, absolute: timedelta | None = None
) -> str:
    """'expired', 'touch' (alive; record the activity) or 'fresh' (alive; recorded within the last minute)."""
    if now - last_seen >= idle or (absolute is not None and now - created_at >= absolute):
        return "expired"
    return "touch" if now - last_seen >= _TOUCH_AFTER else "fresh"


def session_id(secret: str, token: str) -> str:
    return keyed_hash(secret, "session", token)


async def create_session(
    tx: Transaction, *, secret: str, patient_id: int, at: datetime, idle: timedelta | None = None
) -> str:
    """`idle`: a shorter idle limit than the policy's, for this session alone."""
    token = new_token()
    await tx.execute(
        "INSERT INTO sessions (id, patient_id, created_at, last_seen_at, idle_seconds) VALUES (?, ?, ?, ?, ?)",
        (
            session_id(secret, token),
            patient_id,
            to_db(at),
            to_db(at),
            int(idle.total_seconds()) if idle is not None else None,
        ),
    )
    return token


async def get_live_session(
    db: Database, *, secret: str, token: str, now: datetime, policy: SessionPolicy
) -> PatientSession | None | str:
    """The session; EXPIRED (or EXPIRED_OWN_LIMIT) when it timed out, to say so; None when there is none."""
    sid = session_id(secret, token)
    row = await db.fetch_one(_LIVE_SESSION, (sid,))
    if row is None:
        return None
    own = row.pop("session_idle_seconds")
    own_idle = timedelta(seconds=own) if own is not None else None
    state = session_state(
        created_at=from_db(row.pop("session_created_at")),
        last_seen=from_db(row.pop("session_last_seen_at")),
        now=now,
        idle=min(policy.idle, own_idle) if own_idle is not None else policy.idle,
        absolute=policy.absolute,
    )
    if state == "expired":
        async with db.write(patient=int(row["id"])) as tx:
            await tx.execute("UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL", (to_db(now), sid))
        return EXPIRED_OWN_LIMIT if own_idle is not None else EXPIRED
    if state == "touch":
        async with db.write(patient=int(row["id"])) as tx:
            await tx.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (to_db(now), sid))
    return PatientSession(id=sid, token=token, patient_id=int(row["id"]), patient=row, idle=own_idle)


async def end_patient_sessions(tx: Transaction, *, patient_id: int, at: datetime) -> int:
    """Sign-out ends the patient's sessions everywhere, not only in this browser."""
    return await tx.execute(
        "UPDATE sessions SET ended_at = ? WHERE patient_id = ? AND ended_at IS NULL", (to_db(at), patient_id)
    )


async def end_nhs_login_sessions(tx: Transaction, *, patient_id: int, at: datetime) -> int:
    """The patient's sessions NHS login started (those with an idle limit of their own, WF-NFR-18): the NHS App's way
    in, ended when the trust keeps the patient out of the NHS App. A session from the code sign-in stays."""
    return await tx.execute(
        "UPDATE sessions SET ended_at = ? WHERE patient_id = ? AND ended_at IS NULL AND idle_seconds IS NOT NULL",
        (to_db(at), patient_id),
    )


async def end_session(tx: Transaction, *, secret: str, token: str, at: datetime) -> None:
    await tx.execute(
        "UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL", (to_db(at), session_id(secret, token))
    )
