"""Staff see their own trusts only: the one SQL condition every console query adds, the account's organisations,
and the admin's change of them (audited)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from hub.db import Database, Transaction
from hub.rules.staff_scope import Scope, assigned, assignment_problem
from hub.store.audit import record_audit
from hub.vocabulary import ActorType, AuditAction, RecordType, TaskStatus


def scoped(scope: Scope, column: str) -> tuple[str, list[Any]]:
    """` AND <column> IN (...)`, limiting a query to the scope's organisations (nothing for a hub-wide account,
    nothing found for an account without any). `column` is an organisation id column of the query."""
    if scope.hub_wide:
        return "", []
    if not scope.organisation_ids:
        return " AND 1 = 0", []
    ids = sorted(scope.organisation_ids)
    return f" AND {column} IN ({', '.join('?' for _ in ids)})", list(ids)


async def get_scope(db: Database | Transaction, staff_id: int) -> Scope:
    row = await db.fetch_one("SELECT hub_wide FROM staff_users WHERE id = ?", (staff_id,))
    rows = await db.fetch_all("SELECT organisation_id FROM staff_organisations WHERE staff_id = ?", (staff_id,))
    return Scope(
        staff_id=staff_id,
        hub_wide=bool(row and row["hub_wide"]),
        organisation_ids=frozenset(int(r["organisation_id"]) for r in rows),
    )


async def patient_in_scope(db: Database, patient_id: int, scope: Scope) -> bool:
    where, params = scoped(scope, "organisation_id")
    return await db.fetch_one(f"SELECT id FROM patients WHERE id = ?{where}", (patient_id, *params)) is not None


async def appointment_in_scope(db: Database, appointment_id: int, scope: Scope) -> bool:
    where, params = scoped(scope, "organisation_id")
    sql = f"SELECT id FROM appointments WHERE id = ?{where}"
    return await db.fetch_one(sql, (appointment_id, *params)) is not None


async def staff_in_scope(db: Database | Transaction, staff_id: int, scope: Scope) -> bool:
    """Accounts an admin may see and manage: any for a hub-wide admin; otherwise their own and those of their trusts
    (not hub-wide ones)."""
    if scope.hub_wide or staff_id == scope.staff_id:
        return await db.fetch_one("SELECT id FROM staff_users WHERE id = ?", (staff_id,)) is not None
    where, params = scoped(scope, "m.organisation_id")
    row = await db.fetch_one(
        "SELECT u.id FROM staff_users u JOIN staff_organisations m ON m.staff_id = u.id"
        f" WHERE u.id = ? AND u.hub_wide = 0{where}",
        (staff_id, *params),
    )
    return row is not None


async def shared_beyond(db: Database, scope: Scope) -> set[int]:
    """The accounts that also work for a trust this admin does not: disabling or resetting one would lock them out
    of that trust's work too, so only a hub-wide admin does (the admin of trust A takes trust A away instead)."""
    if scope.hub_wide:
        return set()
    ids = sorted(scope.organisation_ids)
    beyond = f"organisation_id NOT IN ({', '.join('?' for _ in ids)})" if ids else "1 = 1"
    rows = await db.fetch_all(f"SELECT DISTINCT staff_id FROM staff_organisations WHERE {beyond}", ids)
    return {int(r["staff_id"]) for r in rows}


def staff_scoped(scope: Scope) -> tuple[str, list[Any]]:
    """The condition on `staff_users u` for the accounts `staff_in_scope` allows."""
    if scope.hub_wide:
        return "", []
    where, params = scoped(scope, "m.organisation_id")
    return (
        f" AND (u.id = ? OR (u.hub_wide = 0 AND u.id IN (SELECT m.staff_id FROM staff_organisations m"
        f" WHERE 1 = 1{where})))",
        [scope.staff_id, *params],
    )


def audit_scoped(scope: Scope) -> tuple[str, list[Any]]:
    """The audit rows a staff member may read (`audit_events e`): their own actions, and rows about their trusts'
    patients, appointments, tasks, letters and staff. Everything for a hub-wide admin."""
    if scope.hub_wide:
        return "", []
    org, ids = scoped(scope, "organisation_id")
    p_org, p_ids = scoped(scope, "p.organisation_id")
    m_org, m_ids = scoped(scope, "organisation_id")
    sql = (
        " AND ((e.actor_type = ? AND e.actor_id = ?)"
        f" OR (e.record_type = ? AND e.record_id IN (SELECT CAST(id AS TEXT) FROM patients WHERE 1 = 1{org}))"
        f" OR (e.record_type = ? AND e.record_id IN (SELECT CAST(id AS TEXT) FROM appointments WHERE 1 = 1{org}))"
        f" OR (e.record_type = ? AND e.record_id IN (SELECT CAST(id AS TEXT) FROM letters WHERE 1 = 1{org}))"
        " OR (e.record_type IN (?, ?) AND e.record_id IN (SELECT CAST(t.id AS TEXT) FROM tasks t"
        f" JOIN patients p ON p.id = t.patient_id WHERE 1 = 1{p_org}))"
        " OR (e.record_type = ? AND e.record_id IN (SELECT CAST(staff_id AS TEXT) FROM staff_organisations"
        f" WHERE 1 = 1{m_org})))"
    )
    params: list[Any] = [ActorType.AGENT, str(scope.staff_id)]
    params += [RecordType.PATIENT, *ids, RecordType.APPOINTMENT, *ids, RecordType.LETTER, *ids]
    params += [RecordType.TASK, "callback_task", *p_ids, RecordType.STAFF, *m_ids]
    return sql, params


async def organisation_ids(db: Database | Transaction, codes: Iterable[str]) -> frozenset[int]:
    """The ids of these organisation codes; a ValueError naming any the hub does not have."""
    found: set[int] = set()
    for code in dict.fromkeys(c.strip() for c in codes):
        row = await db.fetch_one("SELECT id FROM organisations WHERE code = ?", (code[:20],))
        if row is None:
            raise ValueError(f"there is no organisation with the code {code[:20]!r}")
        found.add(int(row["id"]))
    return frozenset(found)


async def staff_organisation_codes(db: Database) -> dict[int, list[str]]:
    rows = await db.fetch_all(
        "SELECT m.staff_id, o.code FROM staff_organisations m JOIN organisations o ON o.id = m.organisation_id"
        " ORDER BY o.code"
    )
    found: dict[int, list[str]] = {}
    for row in rows:
        found.setdefault(int(row["staff_id"]), []).append(row["code"])
    return found


async def _describe(tx: Transaction, staff_id: int) -> str:
    """The account's trusts for the audit detail: codes only, nothing personal."""
    row = await tx.fetch_one("SELECT hub_wide FROM staff_users WHERE id = ?", (staff_id,))
    codes = await tx.fetch_all(
        "SELECT o.code FROM staff_organisations m JOIN organisations o ON o.id = m.organisation_id"
        " WHERE m.staff_id = ? ORDER BY o.code",
        (staff_id,),
    )
    text = "organisations " + (",".join(r["code"] for r in codes) or "none")
    return text + ("; hub-wide" if row and row["hub_wide"] else "")


async def assign_organisations(
    tx: Transaction,
    *,
    staff_id: int,
    codes: Iterable[str],
    hub_wide: bool,
    by: Scope,
    action: AuditAction,
    now: datetime,
) -> None:
    """Gives the account these organisations (and the hub-wide flag) as `by` may; a ValueError when they may not.
    Audited with `action`, by the admin (or the command line: `by` is SYSTEM)."""
    chosen = await organisation_ids(tx, codes)
    current = await get_scope(tx, staff_id)
    problem = assignment_problem(
        by, chosen=chosen, hub_wide=hub_wide, was_hub_wide=current.hub_wide, own=staff_id == by.staff_id
    )
    if problem:
        raise ValueError(problem)
    after = assigned(current.organisation_ids, chosen, by)
    await tx.execute("UPDATE staff_users SET hub_wide = ? WHERE id = ?", (1 if hub_wide else 0, staff_id))
    for gone in current.organisation_ids - after:
        await tx.execute("DELETE FROM staff_organisations WHERE staff_id = ? AND organisation_id = ?", (staff_id, gone))
    for new in sorted(after - current.organisation_ids):
        await tx.execute("INSERT INTO staff_organisations (staff_id, organisation_id) VALUES (?, ?)", (staff_id, new))
    if not hub_wide:
        # Call-backs they held of trusts they no longer see go back to the queue (not held for the claim's rest).
        keep = sorted(after)
        marks = ", ".join("?" for _ in keep)
        elsewhere = ""
        if keep:
            elsewhere = f" AND patient_id IN (SELECT id FROM patients WHERE organisation_id NOT IN ({marks}))"
        await tx.execute(
            "UPDATE tasks SET status = ?, claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND status = ?"
            + elsewhere,
            (TaskStatus.OPEN, staff_id, TaskStatus.CLAIMED, *keep),
        )
    await record_audit(
        tx,
        at=now,
        actor_type=ActorType.SYSTEM if by.staff_id == 0 else ActorType.AGENT,
        actor_id="cli" if by.staff_id == 0 else by.staff_id,
        action=action,
        record_type=RecordType.STAFF,
        record_id=staff_id,
        detail=await _describe(tx, staff_id),
    )


async def set_staff_organisations(
    db: Database, *, staff_id: int, codes: Iterable[str], hub_wide: bool, by: Scope, now: datetime
) -> bool:
    """An admin changes an account's trusts. False when the account is not one they may manage."""
    async with db.write() as tx:
        if not await staff_in_scope(tx, staff_id, by):
            return False
        await assign_organisations(
            tx,
            staff_id=staff_id,
            codes=codes,
            hub_wide=hub_wide,
            by=by,
            action=AuditAction.STAFF_ORGANISATIONS_CHANGED,
            now=now,
        )
    return True
