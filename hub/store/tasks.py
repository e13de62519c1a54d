"""The task queue: listing with filters, claiming (one agent at a time), releasing, and creating tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.staff_scope import Scope
from hub.rules.tasks import QueuePolicy, claim_until, sla_state, working_age
from hub.rules.text import printable
from hub.store.audit import record_audit
from hub.store.staff_scope import scoped
from hub.vocabulary import ActorType, AuditAction, RecordType, TaskKind, TaskStatus

_SELECT = (
    "SELECT t.id, t.kind, t.patient_id, t.appointment_id, t.reason, t.preferred_times, t.status, t.created_at,"
    " t.claimed_by, t.claimed_until, t.attempts, t.not_before, t.outcome, t.note, t.closed_at,"
    " p.given_name, p.family_name, p.mobile, p.email, p.opted_out, p.email_opted_out, p.nhs_number, p.mrn,"
    " p.date_of_birth,"
    " o.code AS organisation_code, o.name AS organisation_name, a.starts_at, a.specialty, a.clinic, a.clinician,"
    " a.status AS appointment_status,"
    " s.code AS site_code, s.name AS site_name, u.username AS claimed_by_name, i.content AS text_content"
    " FROM tasks t JOIN patients p ON p.id = t.patient_id JOIN organisations o ON o.id = p.organisation_id"
    " LEFT JOIN appointments a ON a.id = t.appointment_id LEFT JOIN sites s ON s.id = a.site_id"
    " LEFT JOIN staff_users u ON u.id = t.claimed_by"
    # A text from a patient: what they wrote, for the agent who answers it (its source is the received text).
    f" LEFT JOIN inbound_messages i ON t.kind = '{TaskKind.INBOUND_TEXT}' AND i.id = t.source_id"
)


@dataclass(frozen=True)
class Filters:
    organisation: str = ""
    site: str = ""
    specialty: str = ""
    kind: str = ""

    @classmethod
    def from_query(cls, query: Any) -> Filters:
        kind = str(query.get("kind", ""))
        return cls(
            organisation=printable(str(query.get("organisation", "")))[:20],
            site=printable(str(query.get("site", "")))[:20],
            specialty=printable(str(query.get("specialty", "")))[:100],
            kind=kind if kind in tuple(TaskKind) else "",
        )


def _shaped(row: Row, *, now: datetime, policy: QueuePolicy) -> Row:
    row["created_at"] = from_db(row["created_at"])
    row["starts_at"] = from_db(row["starts_at"]) if row["starts_at"] else None
    row["claimed_until"] = from_db(row["claimed_until"]) if row["claimed_until"] else None
    row["held"] = (
        row["status"] == TaskStatus.CLAIMED and row["claimed_until"] is not None and row["claimed_until"] > now
    )
    row["age"] = working_age(row["created_at"], now)
    row["sla"] = sla_state(row["age"], policy.sla_working_days)
    return row


async def list_queue(
    db: Database,
    *,
    filters: Filters,
    scope: Scope,
    now: datetime,
    policy: QueuePolicy,
    limit: int = 200,
    unheld: bool = False,
) -> list[Row]:
    """Open tasks due now, oldest first: those waiting for a retry time stay out of sight until it comes. `unheld`:
    only those nobody holds (a claim that lapsed is nobody's)."""
    where, params = scoped(scope, "p.organisation_id")
    sql = _SELECT + f" WHERE t.status != ? AND (t.not_before IS NULL OR t.not_before <= ?){where}"
    params = [TaskStatus.CLOSED, to_db(now), *params]
    if unheld:
        sql += " AND (t.status != ? OR t.claimed_until IS NULL OR t.claimed_until <= ?)"
        params += [TaskStatus.CLAIMED, to_db(now)]
    for column, value in (
        ("o.code", filters.organisation),
        ("s.code", filters.site),
        ("a.specialty", filters.specialty),
        ("t.kind", filters.kind),
    ):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    rows = await db.fetch_all(sql + " ORDER BY t.created_at, t.id LIMIT ?", (*params, limit))
    return [_shaped(r, now=now, policy=policy) for r in rows]


async def filter_choices(db: Database, *, scope: Scope) -> dict[str, list[str]]:
    where, params = scoped(scope, "organisation_id")
    organisations = await db.fetch_all(
        f"SELECT code FROM organisations WHERE 1 = 1{scoped(scope, 'id')[0]} ORDER BY code", params
    )
    sites = await db.fetch_all(f"SELECT DISTINCT code FROM sites WHERE 1 = 1{where} ORDER BY code", params)
    specialties = await db.fetch_all(
        f"SELECT DISTINCT specialty FROM appointments WHERE specialty != ''{where} ORDER BY specialty", params
    )
    return {
        "organisation": [r["code"] for r in organisations],
        "site": [r["code"] for r in sites],
        "specialty": [r["specialty"] for r in specialties],
    }


async def get_task(
    db: Database | Transaction, task_id: int, *, scope: Scope, now: datetime, policy: QueuePolicy
) -> Row | None:
    where, params = scoped(scope, "p.organisation_id")
    row = await db.fetch_one(_SELECT + f" WHERE t.id = ?{where}", (task_id, *params))
    return _shaped(row, now=now, policy=policy) if row else None


async def claim_task(db: Database, *, task_id: int, staff_id: int, now: datetime, policy: QueuePolicy) -> bool:
    """One conditional UPDATE: it wins only if nobody holds the task (or their claim lapsed), so two agents
    pressing Claim together cannot both hold it (the second waits for the first's row, then finds it held). It takes
    no lock of the whole hub (`keys=()`, hub.db.postgres): agents working the queue hold up no patient."""
    async with db.write(keys=()) as tx:
        won = await tx.execute(
            "UPDATE tasks SET status = ?, claimed_by = ?, claimed_until = ? WHERE id = ?"
            " AND status != ? AND (status = ? OR claimed_by = ? OR claimed_until <= ?)",
            (
                TaskStatus.CLAIMED,
                staff_id,
                to_db(claim_until(now, policy)),
                task_id,
                TaskStatus.CLOSED,
                TaskStatus.OPEN,
                staff_id,
                to_db(now),
            ),
        )
        if won:
            await record_audit(
                tx,
                at=now,
                actor_type=ActorType.AGENT,
                actor_id=staff_id,
                action=AuditAction.TASK_CLAIMED,
                record_type=RecordType.TASK,
                record_id=task_id,
            )
    return won == 1


async def claim_next_task(
    db: Database, *, staff_id: int, filters: Filters, scope: Scope, now: datetime, policy: QueuePolicy
) -> int | None:
    """The oldest task due now that nobody holds, claimed for this agent; None when there is none. Each try is
    claim_task's conditional UPDATE, so two agents pressing at once get different tasks: the loser of a race
    moves on to the next. Only the agent's trusts' tasks (`scope`), and only those nobody holds are read: however
    many agents are on the phone, the oldest waiting task is among the 50 read."""
    for task in await list_queue(db, filters=filters, scope=scope, now=now, policy=policy, limit=50, unheld=True):
        if await claim_task(db, task_id=task["id"], staff_id=staff_id, now=now, policy=policy):
            return int(task["id"])
    return None


async def release_task(db: Database, *, task_id: int, staff_id: int, now: datetime) -> bool:
    async with db.write(keys=()) as tx:  # one conditional UPDATE of the agent's own claim, and its audit row
        done = await tx.execute(
            "UPDATE tasks SET status = ?, claimed_by = NULL, claimed_until = NULL"
            " WHERE id = ? AND status = ? AND claimed_by = ?",
            (TaskStatus.OPEN, task_id, TaskStatus.CLAIMED, staff_id),
        )
        if done:
            await record_audit(
                tx,
                at=now,
                actor_type=ActorType.AGENT,
                actor_id=staff_id,
                action=AuditAction.TASK_RELEASED,
                record_type=RecordType.TASK,
                record_id=task_id,
            )
    return done == 1


def holds(task: Row, staff_id: int) -> bool:
    return bool(task["held"]) and task["claimed_by"] == staff_id


async def create_task(
    tx: Transaction,
    *,
    kind: TaskKind,
    patient_id: int,
    appointment_id: int | None,
    reason: str,
    now: datetime,
    source_id: int | None = None,
) -> None:
    """For the other parts of the hub: a failed message, a text from a patient, a letter gone to post."""
    await tx.execute(
        "INSERT INTO tasks (kind, patient_id, appointment_id, reason, source_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (kind, patient_id, appointment_id, reason[:500], source_id, to_db(now)),
    )


async def export_rows(db: Database, *, filters: Filters, scope: Scope, now: datetime, policy: QueuePolicy) -> list[Row]:
    return await list_queue(db, filters=filters, scope=scope, now=now, policy=policy, limit=100_000)
