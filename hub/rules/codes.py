"""Security code rules: pure functions, no I/O and no clock of their own."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

CODE_DIGITS = 6


@dataclass(frozen=True)
class CodePolicy:
    lifetime: timedelta
    max_guesses: int


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def keyed_hash(key: str, *parts: str) -> str:
    """HMAC-SHA256 over the parts: stored instead of codes, tokens, contacts and client addresses."""
    message = "\x1f".join(parts).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def hash_code(key: str, challenge_id: str, code: str) -> str:
    return keyed_hash(key, "code", challenge_id, code)


def is_well_formed(code: str) -> bool:
    return len(code) == CODE_DIGITS and code.isascii() and code.isdigit()


def clean_code(text: str) -> str:
    """People type codes with spaces or dashes ("123 456"); keep the digits."""
    # NFKC turns full-width and other compatibility digits ("１２３") into ASCII ones.
    return "".join(ch for ch in unicodedata.normalize("NFKC", text[:40]) if ch not in " -\t")[:20]


def valid_from(now: datetime, policy: CodePolicy) -> datetime:
    """A code issued strictly after this instant is still alive at `now`."""
    return now - policy.lifetime


def code_state(*, issued_at: datetime, now: datetime, failed_guesses: int, policy: CodePolicy) -> str:
    """'live', 'expired' or 'locked': what a wrong or missing code should be told."""
    if failed_guesses >= policy.max_guesses:
        return "locked"
    if now - issued_at >= policy.lifetime:
        return "expired"
    return "live"
