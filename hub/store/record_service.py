"""The NHS numbers the Aggregator's Record Service is to be told of, one list per resource type (WF-NFR-RS-01..09).

A patient qualifies with an NHS number, 16 or over, not excluded by the trust, and at least one appointment
(or letter). New ones are found by walking the ids added since the last look; a daily pass finds the rest
(patients who turned 16, or whose NHS number came later). Sending is idempotent at the Aggregator, so a number
sent twice after a crash does no harm; a resend on request puts every number back in the queue.

Each list's writes lock that list by its key (`write(keys=...)`, hub.db.postgres), not the whole hub: on
PostgreSQL the daily pass through every patient, a query of seconds at a large trust, holds up no patient's
sign-in or confirmation, while two workers still take turns with one list (its marks are read then written).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from hub.clock import to_db
from hub.db import Database, Row, Transaction
from hub.store.audit import record_audit
from hub.vocabulary import ActorType, AuditAction, RecordResource, RecordType

_SOURCE = {RecordResource.APPOINTMENTS: "appointments", RecordResource.DOCUMENTS: "letters"}
_CHUNK = 500  # numbers per statement, well inside both databases' limits on parameters


def _list(resource: RecordResource) -> list[str]:
    """The key of one resource's list and marks."""
    return [f"record_service:{resource.value}"]


def _qualifying(resource: RecordResource, *, since_id: bool) -> str:
    table = _SOURCE[resource]
    window = " AND x.id > ? AND x.id <= ?" if since_id else ""
    # CAST: PostgreSQL cannot tell a bare parameter's type in a SELECT list.
    return (
        "INSERT INTO record_service_numbers (resource, nhs_number, queued_at, next_attempt_at)"
        f" SELECT DISTINCT '{resource.value}', p.nhs_number, CAST(? AS TEXT), CAST(? AS TEXT)"
        f" FROM {table} x JOIN patients p ON p.id = x.patient_id"
        f" WHERE p.nhs_number IS NOT NULL AND p.nhs_app_excluded = 0 AND p.date_of_birth <= ?{window}"
        " AND NOT EXISTS (SELECT 1 FROM record_service_numbers r"
        f" WHERE r.resource = '{resource.value}' AND r.nhs_number = p.nhs_number)"
    )


async def _mark(tx: Transaction, resource: RecordResource) -> Row:
    await tx.execute(
        "INSERT INTO record_service_marks (resource, last_id) VALUES (?, 0) ON CONFLICT (resource) DO NOTHING",
        (resource,),
    )
    mark = await tx.fetch_one("SELECT last_id, full_pass_at FROM record_service_marks WHERE resource = ?", (resource,))
    assert mark is not None
    return mark


async def claim_full_pass(db: Database, *, resource: RecordResource, now: datetime) -> bool:
    """Whether this worker makes today's pass through everything (the first to ask in a day does)."""
    async with db.write(keys=_list(resource)) as tx:
        await _mark(tx, resource)
        won = await tx.execute(
            "UPDATE record_service_marks SET full_pass_at = ? WHERE resource = ?"
            " AND (full_pass_at IS NULL OR full_pass_at <= ?)",
            (to_db(now), resource, to_db(now - timedelta(days=1))),
        )
    return won == 1


async def queue_new_numbers(db: Database, *, resource: RecordResource, adult_born_by: date, now: datetime) -> int:
    """Numbers of patients with appointments (letters) added since the last look. Returns how many were queued."""
    async with db.write(keys=_list(resource)) as tx:
        mark = await _mark(tx, resource)
        top = await tx.fetch_one(f"SELECT MAX(id) AS id FROM {_SOURCE[resource]}")
        last, newest = int(mark["last_id"]) if mark else 0, int(top["id"] or 0) if top else 0
        if newest <= last:
            return 0
        queued = await tx.execute(
            _qualifying(resource, since_id=True),
            (to_db(now), to_db(now), adult_born_by.isoformat(), last, newest),
        )
        await tx.execute("UPDATE record_service_marks SET last_id = ? WHERE resource = ?", (newest, resource))
    return queued


async def queue_all_numbers(db: Database, *, resource: RecordResource, adult_born_by: date, now: datetime) -> int:
    """Every qualifying number not yet in the list: the daily pass and the bulk load before going live."""
    async with db.write(keys=_list(resource)) as tx:
        return await tx.execute(
            _qualifying(resource, since_id=False), (to_db(now), to_db(now), adult_born_by.isoformat())
        )


async def request_resend(db: Database, *, actor: str, now: datetime) -> int:
    """The Aggregator asked for every number again (WF-NFR-RS-06): all go back in the queue; new ones keep going."""
    async with db.write(keys=[key for resource in RecordResource for key in _list(resource)]) as tx:
        count = await tx.execute(
            "UPDATE record_service_numbers SET sent_at = NULL, attempts = 0, error = '', next_attempt_at = ?",
            (to_db(now),),
        )
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.SYSTEM,
            actor_id=actor,
            action=AuditAction.RECORD_SERVICE_RESEND,
            record_type=RecordType.RECORD_SERVICE,
            record_id="all",
            detail=f"{count} numbers",
        )
    return count


async def claim_due_numbers(
    db: Database, *, resource: RecordResource, limit: int, now: datetime, lease: timedelta
) -> list[str]:
    """Up to `limit` numbers due to go, held for `lease` so no other worker sends them meanwhile."""
    async with db.write(keys=_list(resource)) as tx:
        rows = await tx.fetch_all(
            "SELECT nhs_number FROM record_service_numbers WHERE resource = ? AND sent_at IS NULL"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at, nhs_number LIMIT ?",
            (resource, to_db(now), limit),
        )
        numbers = [str(r["nhs_number"]) for r in rows]
        for chunk in _chunks(numbers):
            await tx.execute(
                "UPDATE record_service_numbers SET next_attempt_at = ?"
                f" WHERE resource = ? AND nhs_number IN ({', '.join('?' for _ in chunk)})",
                (to_db(now + lease), resource, *chunk),
            )
    return numbers


async def mark_sent(db: Database, *, resource: RecordResource, numbers: Sequence[str], now: datetime) -> None:
    """The Aggregator answered 200: these are never sent again, unless a resend is asked for."""
    async with db.write(keys=_list(resource)) as tx:
        for chunk in _chunks(numbers):
            await tx.execute(
                "UPDATE record_service_numbers SET sent_at = ?, attempts = attempts + 1, error = ''"
                f" WHERE resource = ? AND nhs_number IN ({', '.join('?' for _ in chunk)})",
                (to_db(now), resource, *chunk),
            )
        await _audit(tx, resource, AuditAction.RECORD_SERVICE_SENT, f"{len(numbers)} numbers", now)


async def mark_failed(
    db: Database, *, resource: RecordResource, numbers: Sequence[str], retry_at: datetime, error: str, now: datetime
) -> None:
    """The call failed: the numbers wait until `retry_at`. `error` names the failure, never a number."""
    async with db.write(keys=_list(resource)) as tx:
        for chunk in _chunks(numbers):
            await tx.execute(
                "UPDATE record_service_numbers SET next_attempt_at = ?, attempts = attempts + 1, error = ?"
                f" WHERE resource = ? AND nhs_number IN ({', '.join('?' for _ in chunk)})",
                (to_db(retry_at), error[:200], resource, *chunk),
            )
        await _audit(tx, resource, AuditAction.RECORD_SERVICE_FAILED, f"{len(numbers)} numbers: {error[:200]}", now)


async def count_attempts(db: Database, *, resource: RecordResource, nhs_number: str) -> int:
    row = await db.fetch_one(
        "SELECT attempts FROM record_service_numbers WHERE resource = ? AND nhs_number = ?", (resource, nhs_number)
    )
    return int(row["attempts"]) if row else 0


async def count_sent(db: Database, *, resource: RecordResource) -> int:
    """Distinct NHS numbers the Aggregator has taken, for its reconciliation (WF-NFR-RS-06, RS-09)."""
    row = await db.fetch_one(
        "SELECT COUNT(*) AS n FROM record_service_numbers WHERE resource = ? AND sent_at IS NOT NULL", (resource,)
    )
    return int(row["n"]) if row else 0


async def _audit(tx: Transaction, resource: RecordResource, action: AuditAction, detail: str, now: datetime) -> None:
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.SYSTEM,
        actor_id="worker",
        action=action,
        record_type=RecordType.RECORD_SERVICE,
        record_id=resource,
        detail=detail,
    )


def _chunks(numbers: Sequence[str]) -> list[Sequence[str]]:
    return [numbers[i : i + _CHUNK] for i in range(0, len(numbers), _CHUNK)]
