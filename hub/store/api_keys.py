"""Integration API keys: created once (shown once), stored as a hash, one trust each, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from hub.clock import to_db
from hub.db import Database
from hub.store.audit import record_audit
from hub.vocabulary import ActorType, AuditAction, RecordType

_PREFIX = "hub_"


@dataclass(frozen=True)
class ApiKey:
    id: int
    organisation_id: int
    organisation_code: str
    name: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(db: Database, *, organisation_code: str, name: str, now: datetime) -> str:
    """Returns the new key: the only time it exists in readable form."""
    key = _PREFIX + secrets.token_urlsafe(32)
    async with db.write() as tx:
        org = await tx.fetch_one("SELECT id FROM organisations WHERE code = ?", (organisation_code,))
        if org is None:
            raise LookupError(f"no organisation with code {organisation_code}")
        taken = await tx.fetch_one("SELECT id FROM api_keys WHERE organisation_id = ? AND name = ?", (org["id"], name))
        if taken is not None:
            raise ValueError(f"this organisation already has a key named {name}")
        row = await tx.fetch_one(
            "INSERT INTO api_keys (organisation_id, name, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id",
            (org["id"], name, _hash(key), key[:8], to_db(now)),
        )
        assert row is not None
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.SYSTEM,
            actor_id="cli",
            action=AuditAction.API_KEY_CREATED,
            record_type=RecordType.API_KEY,
            record_id=row["id"],
            detail=name,
        )
    return key


async def revoke_api_key(db: Database, *, organisation_code: str, name: str, now: datetime) -> bool:
    async with db.write() as tx:
        row = await tx.fetch_one(
            "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL AND organisation_id ="
            " (SELECT id FROM organisations WHERE code = ?) RETURNING id",
            (to_db(now), name, organisation_code),
        )
        if row is None:
            return False
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.SYSTEM,
            actor_id="cli",
            action=AuditAction.API_KEY_REVOKED,
            record_type=RecordType.API_KEY,
            record_id=row["id"],
            detail=name,
        )
    return True


async def get_api_key(db: Database, key: str) -> ApiKey | None:
    if not key.startswith(_PREFIX) or len(key) > 100:
        return None
    digest = _hash(key)
    row = await db.fetch_one(
        "SELECT k.id, k.organisation_id, o.code, k.name, k.key_hash FROM api_keys k"
        " JOIN organisations o ON o.id = k.organisation_id WHERE k.key_hash = ? AND k.revoked_at IS NULL",
        (digest,),
    )
    # The lookup is by hash, so timing reveals nothing about the key; compare anyway, in constant time.
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        return None
    return ApiKey(int(row["id"]), int(row["organisation_id"]), row["code"], row["name"])
