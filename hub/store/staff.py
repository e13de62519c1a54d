"""Staff accounts: creation with a one-time set-up link, sign-in checks, enrolment, admin changes."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
import anyio.to_thread

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.codes import keyed_hash, new_token
from hub.rules.staff import (
    LockoutPolicy,
    accepted_step,
    hash_password,
    is_locked,
    password_matches,
)
from hub.rules.staff_scope import SYSTEM, Scope
from hub.store.audit import record_audit
from hub.store.rate_limits import reserve, take_back
from hub.store.staff_scope import assign_organisations, staff_scoped
from hub.vocabulary import ActorType, AuditAction, RecordType, StaffRole, TaskStatus

_COLUMNS = (
    "id, username, role, password_hash, totp_secret, totp_last_step, enrolled_at, failed_attempts, locked_until,"
    " disabled_at, created_at"
)


_HOUR = timedelta(hours=1)
# Argon2 is made to be slow: run on the event loop, one client's wrong passwords stalled every page. It runs in
# worker threads, at most one per core, so a storm of guesses queues for the cores and the loop stays free.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()


def _hashing() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    if loop not in _limiters:
        _limiters[loop] = anyio.CapacityLimiter(_CORES)
    return _limiters[loop]


async def _matches(stored: str | None, password: str) -> bool:
    return await anyio.to_thread.run_sync(password_matches, stored, password, limiter=_hashing())


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


async def create_staff(
    db: Database,
    *,
    username: str,
    role: str,
    secret: str,
    now: datetime,
    hours: int,
    organisations: Sequence[str] = (),
    hub_wide: bool = False,
    by: Scope = SYSTEM,
) -> str:
    """A new account with no password yet, working for these organisations (codes) or, hub-wide, for every one;
    returns the set-up token (shown once, stored hashed). `by` is the admin creating it (SYSTEM: the command line)."""
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
        await assign_organisations(
            tx,
            staff_id=int(row["id"]),
            codes=organisations,
            hub_wide=hub_wide,
            by=by,
            action=AuditAction.STAFF_CREATED,
            now=now,
        )
    return token


async def get_staff(db: Database | Transaction, staff_id: int) -> Row | None:
    return await db.fetch_one(f"SELECT {_COLUMNS} FROM staff_users WHERE id = ?", (staff_id,))


async def list_staff(db: Database, *, scope: Scope) -> list[Row]:
    where, params = staff_scoped(scope)
    columns = ", ".join(f"u.{c.strip()}" for c in _COLUMNS.split(","))
    return await db.fetch_all(
        f"SELECT {columns}, u.hub_wide FROM staff_users u WHERE 1 = 1{where} ORDER BY u.username", params
    )


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
    hashed = await anyio.to_thread.run_sync(hash_password, password, limiter=_hashing())
    async with db.write() as tx:
        await tx.execute(
            "UPDATE staff_users SET password_hash = ?, setup_token_hash = NULL, setup_expires_at = NULL,"
            " totp_secret = NULL, enrolled_at = NULL WHERE id = ?",
            (hashed, staff_id),
        )
        await _audit(tx, actor=staff_id, action=AuditAction.STAFF_PASSWORD_SET, staff_id=staff_id, at=now)


@dataclass(frozen=True)
class Check:
    ok: bool
    staff: Row | None = None
    locked: bool = False
    too_many: bool = False  # the client's own limit on wrong passwords, not the account's


async def _fail(tx: Transaction, staff_id: int, *, now: datetime, policy: LockoutPolicy, action: AuditAction) -> bool:
    """Counts one failure and sets the lock in the same conditional write: of any number of concurrent failures,
    each is counted once and exactly one sets the lock. True when the account is (now) locked."""
    counted = await tx.fetch_one(
        "UPDATE staff_users SET"
        " failed_attempts = CASE WHEN failed_attempts + 1 >= ? THEN 0 ELSE failed_attempts + 1 END,"
        " locked_until = CASE WHEN failed_attempts + 1 >= ? THEN ? ELSE locked_until END"
        " WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?) RETURNING locked_until",
        (policy.attempts, policy.attempts, to_db(now + policy.duration), staff_id, to_db(now)),
    )
    if counted is None:  # another request locked it first: this one is not counted against a locked account
        return True
    await _audit(tx, actor=staff_id, action=action, staff_id=staff_id, at=now)
    locked = counted["locked_until"] is not None and _locked(counted, now)
    if locked:
        await _audit(tx, actor=staff_id, action=AuditAction.STAFF_LOCKED, staff_id=staff_id, at=now)
    return locked


def _locked(staff: Row, now: datetime) -> bool:
    return is_locked(from_db(staff["locked_until"]) if staff["locked_until"] else None, now)


async def check_password(
    db: Database, *, username: str, password: str, now: datetime, policy: LockoutPolicy, client_key: str = ""
) -> Check:
    reserved = None
    if client_key and policy.per_client:
        # Counted against the client before the password is hashed, so a refused burst costs no CPU.
        key = "staff-password:" + client_key
        reserved = await reserve(db, key, limit=policy.per_client, since=now - _HOUR, now=now)
        if reserved is None:
            return Check(False, too_many=True)
    staff = await db.fetch_one(f"SELECT {_COLUMNS} FROM staff_users WHERE username = ?", (username.lower()[:100],))
    # An unknown username is checked against a dummy hash: the same work and time as a wrong password.
    matches = await _matches(staff["password_hash"] if staff else None, password)
    if staff is None or staff["disabled_at"] is not None:
        return Check(False)
    async with db.write() as tx:
        if not matches:
            locked = await _fail(tx, staff["id"], now=now, policy=policy, action=AuditAction.STAFF_PASSWORD_WRONG)
            return Check(False, locked=locked)
        # Read again after the hashing: a burst of wrong guesses may have locked the account meanwhile.
        fresh = await get_staff(tx, int(staff["id"]))
        if fresh is None or fresh["disabled_at"] is not None:
            return Check(False)
        if _locked(fresh, now):
            return Check(False, locked=True)
        if reserved is not None:  # a right password does not count against the client
            await take_back(tx, reserved)
    return Check(True, fresh)


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
                False, locked=await _fail(tx, staff["id"], now=now, policy=policy, action=AuditAction.STAFF_CODE_WRONG)
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
                False, locked=await _fail(tx, staff["id"], now=now, policy=policy, action=AuditAction.STAFF_CODE_WRONG)
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
