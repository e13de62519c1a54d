"""Staff accounts: creation with a one-time set-up link, sign-in checks, enrolment, admin changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.codes import keyed_hash, new_token
from hub.rules.staff import (
    LockoutPolicy,
    accepted_step,
    after_failure,
    hash_password,
    is_locked,
    password_matches,
)
from hub.store.audit import record_audit
from hub.vocabulary import ActorType, AuditAction, RecordType, StaffRole, TaskStatus

_COLUMNS = (
    "id, username, role, password_hash, totp_secret, totp_last_step, enrolled_at, failed_attempts, locked_until,"
    " disabled_at, created_at"
)


def setup_token_hash(secret: str, token: str) -> str:
    return keyed_hash(secret, "staff-setup", token)


async def _audit(tx: Transaction, *, actor: str | int, action: AuditAction, staff_id: int, at: datetime) -> None:
    actor_type = ActorType.SYSTEM if actor == "cli" else ActorType.AGENT
    await record_audit(
        tx,
        at=at,
        actor_type=actor_type,
        actor_id=actor,
        action=action,
        record_type=RecordType.STAFF,
        record_id=staff_id,
    )


async def create_staff(db: Database, *, username: str, role: str, secret: str, now: datetime, hours: int) -> str:
    """A new account with no password yet; returns the set-up token (shown once, stored hashed)."""
    if role not in tuple(StaffRole):
        raise ValueError(f"role must be one of {', '.join(StaffRole)}")
    if not username or len(username) > 100 or not username.replace(".", "").replace("-", "").isalnum():
        raise ValueError("username must be letters, digits, dots or dashes")
    token = new_token()
    async with db.write() as tx:
        if await tx.fetch_one("SELECT id FROM staff_users WHERE username = ?", (username.lower(),)):
            raise ValueError(f"there is already a staff member called {username}")
        row = await tx.fetch_one(
            "INSERT INTO staff_users (username, role, setup_token_hash, setup_expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (username.lower(), role, setup_token_hash(secret, token), to_db(now + timedelta(hours=hours)), to_db(now)),
        )
        assert row is not None
        await _audit(tx, actor="cli", action=AuditAction.STAFF_CREATED, staff_id=int(row["id"]), at=now)
    return token


async def get_staff(db: Database | Transaction, staff_id: int) -> Row | None:
    return await db.fetch_one(f"SELECT {_COLUMNS} FROM staff_users WHERE id = ?", (staff_id,))


async def list_staff(db: Database) -> list[Row]:
    return await db.fetch_all(f"SELECT {_COLUMNS} FROM staff_users ORDER BY username")


async def get_staff_by_setup_token(db: Database, *, secret: str, token: str, now: datetime) -> Row | None:
    row = await db.fetch_one(
        f"SELECT {_COLUMNS}, setup_expires_at FROM staff_users WHERE setup_token_hash = ? AND disabled_at IS NULL",
        (setup_token_hash(secret, token[:100]),),
    )
    if row is None or from_db(row["setup_expires_at"]) <= now:
        return None
    return row


async def set_password_from_setup(db: Database, *, staff_id: int, password: str, now: datetime) -> None:
    """The set-up link is used up; the authenticator is enrolled next."""
    async with db.write() as tx:
        await tx.execute(
            "UPDATE staff_users SET password_hash = ?, setup_token_hash = NULL, setup_expires_at = NULL,"
            " totp_secret = NULL, enrolled_at = NULL WHERE id = ?",
            (hash_password(password), staff_id),
        )
        await _audit(tx, actor=staff_id, action=AuditAction.STAFF_PASSWORD_SET, staff_id=staff_id, at=now)


@dataclass(frozen=True)
class Check:
    ok: bool
    staff: Row | None = None
    locked: bool = False


async def _fail(tx: Transaction, staff: Row, *, now: datetime, policy: LockoutPolicy, action: AuditAction) -> bool:
    failures, locked_until = after_failure(staff["failed_attempts"], now=now, policy=policy)
    await tx.execute(
        "UPDATE staff_users SET failed_attempts = ?, locked_until = COALESCE(?, locked_until) WHERE id = ?",
        (failures, to_db(locked_until) if locked_until else None, staff["id"]),
    )
    await _audit(tx, actor=staff["id"], action=action, staff_id=staff["id"], at=now)
    if locked_until is not None:
        await _audit(tx, actor=staff["id"], action=AuditAction.STAFF_LOCKED, staff_id=staff["id"], at=now)
    return locked_until is not None


def _locked(staff: Row, now: datetime) -> bool:
    return is_locked(from_db(staff["locked_until"]) if staff["locked_until"] else None, now)


async def check_password(db: Database, *, username: str, password: str, now: datetime, policy: LockoutPolicy) -> Check:
    staff = await db.fetch_one(f"SELECT {_COLUMNS} FROM staff_users WHERE username = ?", (username.lower()[:100],))
    matches = password_matches(staff["password_hash"] if staff else None, password)
    if staff is None or staff["disabled_at"] is not None:
        return Check(False)
    if _locked(staff, now):
        return Check(False, locked=True)
    if not matches:
        async with db.write() as tx:
            locked = await _fail(tx, staff, now=now, policy=policy, action=AuditAction.STAFF_PASSWORD_WRONG)
        return Check(False, locked=locked)
    return Check(True, staff)


async def check_totp(db: Database, *, staff_id: int, code: str, now: datetime, policy: LockoutPolicy) -> Check:
    """The second factor. Step and failure count are updated in one write, so a code is accepted once only."""
    async with db.write() as tx:
        staff = await get_staff(tx, staff_id)
        if staff is None or staff["disabled_at"] is not None or not staff["totp_secret"]:
            return Check(False)
        if _locked(staff, now):
            return Check(False, locked=True)
        step = accepted_step(staff["totp_secret"], code, now=now, last_step=int(staff["totp_last_step"]))
        if step is None:
            return Check(
                False, locked=await _fail(tx, staff, now=now, policy=policy, action=AuditAction.STAFF_CODE_WRONG)
            )
        await tx.execute(
            "UPDATE staff_users SET totp_last_step = ?, failed_attempts = 0, locked_until = NULL WHERE id = ?",
            (step, staff_id),
        )
        await _audit(tx, actor=staff_id, action=AuditAction.STAFF_SIGNED_IN, staff_id=staff_id, at=now)
    return Check(True, staff)


async def enrol_totp(
    db: Database, *, staff_id: int, secret: str, code: str, now: datetime, policy: LockoutPolicy
) -> Check:
    async with db.write() as tx:
        staff = await get_staff(tx, staff_id)
        if staff is None or staff["disabled_at"] is not None:
            return Check(False)
        if _locked(staff, now):
            return Check(False, locked=True)
        step = accepted_step(secret, code, now=now, last_step=0)
        if step is None:
            return Check(
                False, locked=await _fail(tx, staff, now=now, policy=policy, action=AuditAction.STAFF_CODE_WRONG)
            )
        await tx.execute(
            "UPDATE staff_users SET totp_secret = ?, totp_last_step = ?, enrolled_at = ?, failed_attempts = 0,"
            " locked_until = NULL WHERE id = ?",
            (secret, step, to_db(now), staff_id),
        )
        await _audit(tx, actor=staff_id, action=AuditAction.STAFF_ENROLLED, staff_id=staff_id, at=now)
    return Check(True, staff)


async def disable_staff(db: Database, *, staff_id: int, by: int, now: datetime) -> None:
    async with db.write() as tx:
        await tx.execute(
            "UPDATE staff_users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL", (to_db(now), staff_id)
        )
        await tx.execute(
            "UPDATE staff_sessions SET ended_at = ? WHERE staff_id = ? AND ended_at IS NULL", (to_db(now), staff_id)
        )
        await tx.execute(
            "UPDATE tasks SET status = ?, claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND status = ?",
            (TaskStatus.OPEN, staff_id, TaskStatus.CLAIMED),
        )
        await _audit(tx, actor=by, action=AuditAction.STAFF_DISABLED, staff_id=staff_id, at=now)


async def reset_totp(db: Database, *, staff_id: int, by: int, now: datetime) -> None:
    """The authenticator is enrolled again at the next sign-in (after the password)."""
    async with db.write() as tx:
        await tx.execute(
            "UPDATE staff_users SET totp_secret = NULL, enrolled_at = NULL, failed_attempts = 0, locked_until = NULL"
            " WHERE id = ?",
            (staff_id,),
        )
        await tx.execute(
            "UPDATE staff_sessions SET ended_at = ? WHERE staff_id = ? AND ended_at IS NULL", (to_db(now), staff_id)
        )
        await _audit(tx, actor=by, action=AuditAction.STAFF_TOTP_RESET, staff_id=staff_id, at=now)
