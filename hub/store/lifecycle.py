"""Writing the appointment lifecycle: load an appointment's state, and apply a Transition (hub.rules.lifecycle) in the
caller's transaction: the appointment row, its tasks, the hospital's events, the audit entry, the patient's message
and the reminders. Every writer of appointments (the hospital's feed, the patient's pages, the console) goes through
`apply_transition`; no other module writes the appointments table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import to_db
from hub.db import Row, Transaction
from hub.rules.appointments import Appointment, ChangeKind, Facts, HubChange, Plan, Transition
from hub.settings import Settings
from hub.store.appointment_state import FACT_COLUMNS, change_from, change_json, db_value, facts_from, facts_json
from hub.store.audit import Actor, record_audit
from hub.store.events import record_event
from hub.store.outbox import MESSAGE_PATIENT_COLUMNS, announce
from hub.store.reminders import plan_invitation, plan_reminders, withdraw_reminders
from hub.store.slots import free_held_slots, leave_moved_into_slots, patient_moves, retake_left_slot
from hub.store.stale_messages import check_escalations
from hub.vocabulary import (
    MessageKind,
    RecordType,
    RequestState,
    SlotMoveHow,
    TaskKind,
    TaskStatus,
)

_STATE = (
    "SELECT a.id, a.organisation_id, a.ref, a.patient_id, a.request_state, a.hub_change, a.held_update, a.source_hash,"
    f" {', '.join('a.' + c for c in FACT_COLUMNS)},"
    # The rebook limit counts requests to rebook and the patient's own moves into free slots.
    " (SELECT COUNT(*) FROM tasks t WHERE t.appointment_id = a.id AND t.kind = ?)"
    f" + {patient_moves('a.id')} AS rebook_requests,"
    " (SELECT COUNT(*) FROM tasks t WHERE t.appointment_id = a.id AND t.kind = ? AND t.status != ?) AS open_rebook"
    " FROM appointments a"
)


@dataclass(frozen=True)
class Loaded:
    """An appointment's state, with what the store needs beside it (its ids and reference)."""

    id: int
    organisation_id: int
    ref: str
    patient_id: int
    state: Appointment
    source_hash: str | None = None  # the fingerprint of what the hospital last sent


@dataclass(frozen=True)
class New:
    """A new appointment's place: its trust, the hospital's reference and the patient."""

    organisation_id: int
    ref: str
    patient_id: int


async def load_appointment(tx: Transaction, appointment_id: int) -> Loaded | None:
    row = await tx.fetch_one(
        _STATE + " WHERE a.id = ?", (TaskKind.REBOOK, TaskKind.REBOOK, TaskStatus.CLOSED, appointment_id)
    )
    return _loaded(row) if row else None


async def load_appointment_by_ref(tx: Transaction, organisation_id: int, ref: str) -> Loaded | None:
    row = await tx.fetch_one(
        _STATE + " WHERE a.organisation_id = ? AND a.ref = ?",
        (TaskKind.REBOOK, TaskKind.REBOOK, TaskStatus.CLOSED, organisation_id, ref),
    )
    return _loaded(row) if row else None


def _loaded(row: Row) -> Loaded:
    state = Appointment(
        facts=facts_from(row),
        request_state=row["request_state"],
        hub_change=change_from(row["hub_change"]),
        held=facts_from(json.loads(row["held_update"])) if row["held_update"] else None,
        rebook_requests=int(row["rebook_requests"]),
        open_rebook_request=bool(row["open_rebook"]),
    )
    return Loaded(
        int(row["id"]), int(row["organisation_id"]), row["ref"], int(row["patient_id"]), state, row["source_hash"]
    )


async def apply_transition(
    tx: Transaction,
    target: Loaded | New,
    transition: Transition,
    *,
    actor: Actor,
    now: datetime,
    settings: Settings | None,
    event_data: dict[str, Any] | None = None,
    source_hash: str | None = None,
    acting_task_id: int | None = None,
    patient: Row | None = None,
    site: Row | None = None,
) -> int:
    """Write everything a transition implies, in the caller's transaction. Returns the appointment's id.

    `event_data` goes into each event beside the transition's own (a task's id, a site's code); `source_hash` is the
    fingerprint of what the hospital sent; `acting_task_id` is the agent's task, which its caller closes itself.
    `patient` (MESSAGE_PATIENT_COLUMNS) and `site` (its id and name): rows the caller has read in this transaction,
    not read again when they are the appointment's."""
    if not transition.changed:
        return target.id if isinstance(target, Loaded) else 0
    before = target.state if isinstance(target, Loaded) else None
    after = transition.appointment
    appointment_id = await _write_row(tx, target, transition, now=now, source_hash=source_hash)
    if before is not None and after.facts.starts_at != before.facts.starts_at:
        # The patient's page says who moved it, when, and what the time was.
        await tx.execute(
            "UPDATE appointments SET moved_at = ?, moved_by = ?, moved_from = ? WHERE id = ?",
            (to_db(now), actor.type, to_db(before.facts.starts_at), appointment_id),
        )
    organisation_id, patient_id, ref = (
        (target.organisation_id, target.patient_id, target.ref)
        if isinstance(target, Loaded)
        else (target.organisation_id, target.patient_id, target.ref)
    )
    await _tasks(tx, appointment_id, patient_id, transition, before=before, now=now, acting_task_id=acting_task_id)
    told: int | None = None
    for event in transition.events:
        told = await record_event(
            tx,
            at=now,
            kind=event.kind,
            organisation_id=organisation_id,
            patient_id=patient_id,
            appointment_id=appointment_id,
            data={"appointment_ref": ref, **(event_data or {}), **event.data},
        )
    change = after.hub_change
    if change is not None and change.event_id is None and told is not None:
        # The hub's own change is settled when the hospital says it has processed the event that told it.
        await tx.execute(
            "UPDATE appointments SET hub_change = ? WHERE id = ?",
            (change_json(HubChange(change.kind, change.facts, told)), appointment_id),
        )
    assert transition.audit is not None
    detail = [f"notice {transition.notice}"] if transition.notice else []
    await record_audit(
        tx,
        at=now,
        actor_type=actor.type,
        actor_id=actor.id,
        action=transition.audit,
        record_type=RecordType.APPOINTMENT,
        record_id=appointment_id,
        detail="; ".join(detail),
    )
    if after.hub_change is not None and after.hub_change.kind == ChangeKind.CANCELLED and not after.facts.booked():
        if before is None or before.facts.booked():
            await free_held_slots(tx, appointment_id, previous_start=after.facts.starts_at, actor=actor, now=now)
    if transition.free_slots and before is not None:
        await leave_moved_into_slots(
            tx, appointment_id, after.facts, previous_start=before.facts.starts_at, actor=actor, now=now
        )
        await retake_left_slot(
            tx, appointment_id, after.facts, previous_start=before.facts.starts_at, actor=actor, now=now
        )
    elif before is not None and not before.facts.booked() and after.facts.booked():
        # Booked again at its time (the hospital's version of a conflict accepted, or the hospital booking it again
        # after taking in the hub's cancel): the slot the cancel freed is its own again, when still free.
        await retake_left_slot(
            tx,
            appointment_id,
            after.facts,
            previous_start=before.facts.starts_at,
            actor=actor,
            now=now,
            how=SlotMoveHow.CANCELLED,
        )
    if transition.notice is None and transition.plan in (Plan.KEEP, Plan.WITHDRAW):
        if transition.plan == Plan.WITHDRAW:
            await _withdraw(tx, appointment_id, after.facts, now=now)
        return appointment_id
    assert settings is not None, "a change that tells the patient or plans reminders needs the settings"
    if patient is None or int(patient["id"]) != patient_id:
        patient = await tx.fetch_one(f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE id = ?", (patient_id,))
    if site is None or int(site["id"]) != after.facts.site_id:
        site = await tx.fetch_one("SELECT id, name FROM sites WHERE id = ?", (after.facts.site_id,))
    assert patient is not None and site is not None
    # An id the database has just given out: the foreign keys let no message or reminder refer to it yet, so there
    # is nothing queued to supersede and no earlier plan to close.
    fresh = before is None
    if transition.notice is not None:
        await announce(
            tx,
            settings=settings,
            kind=transition.notice,
            patient=patient,
            appointment_id=appointment_id,
            starts_at=after.facts.starts_at,
            site_name=site["name"],
            clinic=after.facts.clinic,
            now=now,
            fresh=fresh,
            moved_from=before.facts.starts_at
            if before is not None and transition.notice == MessageKind.CHANGED
            else None,
        )
        if transition.notice == MessageKind.CHANGED and not fresh:
            await check_escalations(tx, appointment_id, now=now, actor="lifecycle")
    await _plan(tx, transition.plan, appointment_id, after.facts, patient, settings=settings, now=now, fresh=fresh)
    return appointment_id


async def _write_row(
    tx: Transaction, target: Loaded | New, transition: Transition, *, now: datetime, source_hash: str | None
) -> int:
    state = transition.appointment
    facts = [db_value(getattr(state.facts, column)) for column in FACT_COLUMNS]
    held = json.dumps(facts_json(state.held)) if state.held is not None else None
    if isinstance(target, New):
        created = await tx.fetch_one(
            f"INSERT INTO appointments ({', '.join(FACT_COLUMNS)}, request_state, hub_change, held_update,"
            " source_hash, organisation_id, ref, patient_id, created_at, updated_at)"
            f" VALUES ({', '.join('?' for _ in FACT_COLUMNS)}, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                *facts,
                state.request_state,
                change_json(state.hub_change),
                held,
                source_hash,
                target.organisation_id,
                target.ref,
                target.patient_id,
                to_db(now),
                to_db(now),
            ),
        )
        assert created is not None
        return int(created["id"])
    await tx.execute(
        f"UPDATE appointments SET {', '.join(c + ' = ?' for c in FACT_COLUMNS)}, request_state = ?,"
        " hub_change = ?, held_update = ?, source_hash = COALESCE(?, source_hash), updated_at = ?,"
        " sequence = sequence + ?, first_viewed_at = CASE WHEN ? = 1 THEN NULL ELSE first_viewed_at END"
        " WHERE id = ?",
        (
            *facts,
            state.request_state,
            change_json(state.hub_change),
            held,
            source_hash,
            to_db(now),
            int(transition.bump_sequence),
            int(transition.reset_first_viewed),
            target.id,
        ),
    )
    return target.id


async def _tasks(
    tx: Transaction,
    appointment_id: int,
    patient_id: int,
    transition: Transition,
    *,
    before: Appointment | None,
    now: datetime,
    acting_task_id: int | None,
) -> None:
    prior = before.request_state if before is not None else RequestState.NONE
    if transition.open_task == TaskKind.CANCEL and prior == RequestState.REBOOK_REQUESTED:
        # A cancel request supersedes the open rebook request (closed below): closing the cancel request without a
        # change returns the appointment to the state before that rebook request, not to a request nobody works.
        superseded = await tx.fetch_one(
            "SELECT prior_request_state FROM tasks WHERE appointment_id = ? AND kind = ? AND status != ?"
            " ORDER BY id DESC LIMIT 1",
            (appointment_id, TaskKind.REBOOK, TaskStatus.CLOSED),
        )
        prior = superseded["prior_request_state"] if superseded else RequestState.NONE
    for closure in transition.close_tasks:
        sql = (
            "UPDATE tasks SET status = ?, outcome = ?, closed_at = ?, claimed_until = NULL"
            " WHERE appointment_id = ? AND status != ? AND id != ?"
        )
        params: list[Any] = [
            TaskStatus.CLOSED,
            closure.outcome,
            to_db(now),
            appointment_id,
            TaskStatus.CLOSED,
            acting_task_id or 0,
        ]
        if closure.kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in closure.kinds)})"
            params += closure.kinds
        await tx.execute(sql, params)
    if transition.void_confirmation:
        # The patient confirmed the old time: closing a request still open must not bring that confirmation back.
        await tx.execute(
            "UPDATE tasks SET prior_request_state = ? WHERE appointment_id = ? AND status != ?"
            " AND prior_request_state = ?",
            (RequestState.NONE, appointment_id, TaskStatus.CLOSED, RequestState.CONFIRMED),
        )
    if transition.update_rebook_request:
        await tx.execute(
            "UPDATE tasks SET reason = ?, preferred_times = ? WHERE appointment_id = ? AND kind = ? AND status != ?",
            (
                transition.task_reason[:500],
                transition.preferred_times[:500],
                appointment_id,
                TaskKind.REBOOK,
                TaskStatus.CLOSED,
            ),
        )
    if transition.open_task is not None:
        await tx.execute(
            "INSERT INTO tasks (kind, patient_id, appointment_id, reason, preferred_times, prior_request_state,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                transition.open_task,
                patient_id,
                appointment_id,
                transition.task_reason[:500],
                transition.preferred_times[:500],
                prior,
                to_db(now),
            ),
        )


async def _plan(
    tx: Transaction,
    plan: Plan,
    appointment_id: int,
    facts: Facts,
    patient: Row,
    *,
    settings: Settings,
    now: datetime,
    fresh: bool,
) -> None:
    if plan == Plan.WITHDRAW or (plan != Plan.KEEP and facts.starts_at <= now):
        await _withdraw(tx, appointment_id, facts, now=now)
    elif plan == Plan.REMINDERS:
        await plan_reminders(
            tx, settings=settings, appointment_id=appointment_id, starts_at=facts.starts_at, now=now, fresh=fresh
        )
    elif plan == Plan.INVITATION:
        await plan_invitation(
            tx,
            settings=settings,
            patient=patient,
            appointment_id=appointment_id,
            starts_at=facts.starts_at,
            now=now,
            fresh=fresh,
        )


async def _withdraw(tx: Transaction, appointment_id: int, facts: Facts, *, now: datetime) -> None:
    if not facts.booked():
        outcome = f"appointment {facts.status}"
    else:
        outcome = "appointment past" if facts.starts_at <= now else "cancel requested"
    # A request to cancel leaves the appointment booked: its news, held overnight say, is still true.
    news = outcome != "cancel requested"
    await withdraw_reminders(tx, appointment_id=appointment_id, now=now, outcome=outcome, news=news)


async def reassign_appointments(tx: Transaction, *, from_patient: int, to_patient: int) -> int:
    """Two patient records merged (HL7 ADT^A40): the appointments change hands and nothing else about them does."""
    return await tx.execute("UPDATE appointments SET patient_id = ? WHERE patient_id = ?", (to_patient, from_patient))
