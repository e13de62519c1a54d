"""Staff account rules: password length, TOTP codes that cannot be replayed, the lockout policy. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 12
MAX_PASSWORD = 200
TOTP_STEP = 30  # seconds, as every authenticator app assumes
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# Checked when the username is unknown, so a miss costs the same time as a wrong password.
_DUMMY_HASH = _HASHER.hash("not-a-real-password-but-the-same-cost")


@dataclass(frozen=True)
class LockoutPolicy:
    attempts: int  # failures (password or code) before the account locks; counted and locked in SQL, in one write
    duration: timedelta
    per_client: int = 0  # wrong passwords one client address may try an hour, across usernames; 0: no limit


def password_problem(password: str, confirm: str) -> str:
    """'' when the password may be used; otherwise what to say."""
    if len(password) < MIN_PASSWORD:
        return f"Password must be {MIN_PASSWORD} characters or more"
    if len(password) > MAX_PASSWORD:
        return f"Password must be {MAX_PASSWORD} characters or fewer"
    if password != confirm:
        return "The passwords do not match"
    return ""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def time_step(at: datetime) -> int:
    return int(at.timestamp()) // TOTP_STEP


def accepted_step(secret: str, code: str, *, now: datetime, last_step: int) -> int | None:
    """The time step the code belongs to (this one or its neighbours, for clock drift), or None.

    A code from a step at or before the last one accepted is refused: a code seen once cannot be replayed.
    """
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = time_step(now)
    for step in (current - 1, current, current + 1):
        if step > last_step and totp.verify(code, for_time=step * TOTP_STEP):
            return step
    return None


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until
