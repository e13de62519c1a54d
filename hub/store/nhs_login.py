"""NHS login's sign-in attempts (the OpenID Connect state and nonce) and the sessions it starts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hub.clock import from_db, to_db
from hub.db import Database, Row
from hub.rules.codes import keyed_hash, new_token
from hub.store.audit import record_audit
from hub.store.sessions import create_session
from hub.vocabulary import ActorType, AuditAction, RecordType

ATTEMPT_LIFETIME = timedelta(minutes=10)  # NHS login's authorisation codes live no longer


def _attempt_id(secret: str, state: str) -> str:
    return keyed_hash(secret, "nhs_login_state", state)


async def create_login_attempt(
    db: Database, *, secret: str, return_to: str, tracking_id: str, now: datetime
) -> tuple[str, str]:
    """A new attempt: the state (for the browser's cookie and the authorize request) and the nonce."""
    state, nonce = new_token(), new_token()
    async with db.write(keys=()) as tx:  # a row of its own
        await tx.execute(
            "INSERT INTO nhs_login_attempts (id, nonce, return_to, tracking_id, created_at) VALUES (?, ?, ?, ?, ?)",
            (_attempt_id(secret, state), nonce, return_to, tracking_id[:100], to_db(now)),
        )
    return state, nonce


async def take_login_attempt(db: Database, *, secret: str, state: str, now: datetime) -> Row | None:
    """The attempt, used up: a state works once, and for ten minutes. Used up by one conditional UPDATE, so that of
    two callbacks with the same state at once (a double submit, a replay), one gets the attempt and the other
    nothing, with no lock of the whole hub."""
    async with db.write(keys=()) as tx:
        row = await tx.fetch_one(
            "UPDATE nhs_login_attempts SET used_at = ? WHERE id = ? AND used_at IS NULL"
            " RETURNING nonce, return_to, tracking_id, created_at",
            (to_db(now), _attempt_id(secret, state)),
        )
    if row is None or now - from_db(row["created_at"]) >= ATTEMPT_LIFETIME:
        return None
    return row


async def find_patient_for_nhs_login(
    db: Database, *, nhs_number: str, born: date, appointment_id: int = 0, letter_id: int = 0
) -> Row | None:
    """The patient by NHS number and date of birth, never by name; a trust's NHS App exclusion keeps them out.
    Known to several trusts: the record holding the appointment or letter the NHS App linked to, else the record
    with the latest change."""
    return await db.fetch_one(
        "SELECT id FROM patients p WHERE nhs_number = ? AND date_of_birth = ? AND nhs_app_excluded = 0"
        " ORDER BY CASE WHEN EXISTS (SELECT 1 FROM appointments a WHERE a.id = ? AND a.patient_id = p.id)"
        " OR EXISTS (SELECT 1 FROM letters l WHERE l.id = ? AND l.patient_id = p.id) THEN 0 ELSE 1 END,"
        " updated_at DESC, id DESC LIMIT 1",
        (nhs_number, born.isoformat(), appointment_id, letter_id),
    )


async def start_nhs_login_session(db: Database, *, secret: str, patient_id: int, idle: timedelta, now: datetime) -> str:
    async with db.write(patient=patient_id) as tx:  # as a sign-in by code: that patient's session and audit
        token = await create_session(tx, secret=secret, patient_id=patient_id, at=now, idle=idle)
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.PATIENT,
            actor_id=patient_id,
            action=AuditAction.SIGNED_IN,
            record_type=RecordType.PATIENT,
            record_id=patient_id,
            detail="nhs_login",
        )
    return token


async def remove_old_login_attempts(db: Database, *, now: datetime) -> int:
    async with db.write(keys=()) as tx:  # attempts a day old: nobody else writes them
        return await tx.execute(
            "DELETE FROM nhs_login_attempts WHERE created_at < ?", (to_db(now - timedelta(days=1)),)
        )
