"""Queries on appointments (a conflict as the booking centre sees it among them), and the patient's actions on them
through the lifecycle (each one transaction)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import format_when, from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.appointments import ActionPolicy, Allowed, Appointment, Facts, Refused, Transition, allowed_actions
from hub.rules.lifecycle import patient_cancel, patient_confirm, patient_request_rebook
from hub.settings import Settings
from hub.store.appointment_state import change_from, facts_from, held_version
from hub.store.audit import Actor
from hub.store.lifecycle import apply_transition, load_appointment
from hub.store.reminders import stop_escalation
from hub.store.slots import patient_moves
from hub.vocabulary import (
    HOSPITAL_STATUS_LABELS,
    MODE_LABELS,
    ActorType,
    HospitalStatus,
    Mode,
    TaskKind,
    TaskStatus,
    WhyNot,
)

_COLUMNS = (
    "a.id, a.organisation_id, a.ref, a.patient_id, a.clinic, a.specialty, a.clinician, a.starts_at,"
    " a.duration_minutes, a.mode, a.transport_booked, a.interpreter_booked, a.status, a.request_state,"
    " a.sequence, a.first_viewed_at, s.code AS site_code, s.name AS site_name, s.address AS site_address,"
    " s.postcode AS site_postcode,"
    " s.phone AS site_phone, o.phone AS organisation_phone, o.code AS organisation_code,"
    " EXISTS (SELECT 1 FROM letters l WHERE l.appointment_id = a.id AND l.first_viewed_at IS NULL) AS unread_letter"
)
_FROM = " FROM appointments a JOIN sites s ON s.id = a.site_id JOIN organisations o ON o.id = a.organisation_id"


def _shaped(row: Row) -> Row:
    row["starts_at"] = from_db(row["starts_at"])
    row["unread_letter"] = bool(row["unread_letter"])
    return row


@dataclass(frozen=True)
class Move:
    """The latest change of an appointment's time: when, by whom (an ActorType) and from what time."""

    at: datetime
    by: str
    previous_start: datetime


async def get_last_move(db: Database, appointment_id: int) -> Move | None:
    row = await db.fetch_one(
        "SELECT moved_at, moved_by, moved_from FROM appointments WHERE id = ? AND moved_at IS NOT NULL",
        (appointment_id,),
    )
    if row is None:
        return None
    return Move(from_db(row["moved_at"]), row["moved_by"], from_db(row["moved_from"]))


async def list_appointments_for_patient(db: Database, patient_id: int, *, since: datetime) -> list[Row]:
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS}{_FROM} WHERE a.patient_id = ? AND a.starts_at >= ? ORDER BY a.starts_at",
        (patient_id, to_db(since)),
    )
    return [_shaped(r) for r in rows]


async def get_appointment_for_patient(db: Database | Transaction, patient_id: int, appointment_id: int) -> Row | None:
    row = await db.fetch_one(
        f"SELECT {_COLUMNS}{_FROM} WHERE a.id = ? AND a.patient_id = ?", (appointment_id, patient_id)
    )
    return _shaped(row) if row else None


async def count_rebook_requests(db: Database | Transaction, appointment_id: int) -> int:
    row = await db.fetch_one(
        f"SELECT (SELECT COUNT(*) FROM tasks WHERE appointment_id = ? AND kind = ?) + {patient_moves('?')} AS n",
        (appointment_id, TaskKind.REBOOK, appointment_id),
    )
    return int(row["n"]) if row else 0


async def get_open_rebook_task_id(db: Database | Transaction, appointment_id: int) -> int | None:
    row = await db.fetch_one(
        "SELECT id FROM tasks WHERE appointment_id = ? AND kind = ? AND status != ?",
        (appointment_id, TaskKind.REBOOK, TaskStatus.CLOSED),
    )
    return int(row["id"]) if row else None


async def actions_for(db: Database | Transaction, appointment: Row, *, now: datetime, policy: ActionPolicy) -> Allowed:
    return allowed_actions(
        status=appointment["status"],
        request_state=appointment["request_state"],
        starts_at=appointment["starts_at"],
        now=now,
        rebook_requests=await count_rebook_requests(db, appointment["id"]),
        policy=policy,
    )


@dataclass(frozen=True)
class ActionResult:
    done: bool
    why_not: WhyNot = WhyNot.NONE


async def _act(
    db: Database,
    patient_id: int,
    appointment_id: int,
    decide: Callable[[Appointment], Transition | Refused],
    *,
    now: datetime,
    settings: Settings | None,
) -> ActionResult:
    """A patient's action, through the lifecycle, in one transaction: only their own appointment (so it waits
    for no other patient's write)."""
    async with db.write(patient=patient_id) as tx:
        loaded = await load_appointment(tx, appointment_id)
        if loaded is None or loaded.patient_id != patient_id:
            return ActionResult(False, WhyNot.MISSING)
        result = decide(loaded.state)
        if isinstance(result, Refused):
            return ActionResult(False, result.why_not)
        actor = Actor(ActorType.PATIENT, patient_id)
        await apply_transition(tx, loaded, result, actor=actor, now=now, settings=settings)
    return ActionResult(True)


async def confirm_appointment(
    db: Database,
    *,
    patient_id: int,
    appointment_id: int,
    now: datetime,
    policy: ActionPolicy,
    settings: Settings | None = None,
) -> ActionResult:
    return await _act(
        db,
        patient_id,
        appointment_id,
        lambda state: patient_confirm(state, now=now, policy=policy),
        now=now,
        settings=settings,
    )


async def request_rebook(
    db: Database,
    *,
    patient_id: int,
    appointment_id: int,
    reason: str,
    preferred_times: str,
    now: datetime,
    policy: ActionPolicy,
    settings: Settings | None = None,
) -> ActionResult:
    return await _act(
        db,
        patient_id,
        appointment_id,
        lambda state: patient_request_rebook(
            state, reason=reason, preferred_times=preferred_times, now=now, policy=policy
        ),
        now=now,
        settings=settings,
    )


async def cancel_appointment(
    db: Database,
    *,
    patient_id: int,
    appointment_id: int,
    reason: str,
    details: str,
    now: datetime,
    policy: ActionPolicy,
    settings: Settings | None = None,
) -> ActionResult:
    return await _act(
        db,
        patient_id,
        appointment_id,
        lambda state: patient_cancel(state, reason=reason, details=details, now=now, policy=policy),
        now=now,
        settings=settings,
    )


async def record_appointment_view(db: Database, appointment: Row, *, now: datetime) -> None:
    """The first time the patient opens an appointment. With no letter to read, that is what stops escalation."""
    if appointment["first_viewed_at"] is not None:
        return
    async with db.write(patient=appointment["patient_id"]) as tx:
        first = await tx.execute(
            # Still this patient's (locked above): an appointment the hospital moved to another patient meanwhile
            # is left alone.
            "UPDATE appointments SET first_viewed_at = ? WHERE id = ? AND patient_id = ? AND first_viewed_at IS NULL",
            (to_db(now), appointment["id"], appointment["patient_id"]),
        )
        letters = await tx.fetch_one("SELECT COUNT(*) AS n FROM letters WHERE appointment_id = ?", (appointment["id"],))
        if first and letters is not None and letters["n"] == 0:
            await stop_escalation(tx, appointment_id=appointment["id"], now=now)


async def describe_conflict(db: Database, appointment_id: int) -> dict[str, Any] | None:
    """For the booking centre: the hub's version of an appointment beside the hospital update held against it."""
    row = await db.fetch_one("SELECT hub_change, held_update FROM appointments WHERE id = ?", (appointment_id,))
    change = change_from(row["hub_change"]) if row else None
    if row is None or change is None or not row["held_update"]:
        return None
    held = facts_from(json.loads(row["held_update"]))
    sites = {
        s["id"]: s["name"]
        for s in await db.fetch_all(
            "SELECT id, name FROM sites WHERE id IN (?, ?)", (change.facts.site_id, held.site_id)
        )
    }
    return {
        "change": change.kind,
        "hub": _described(change.facts, sites),
        "hospital": _described(held, sites),
        "version": held_version(held),
    }


def _described(facts: Facts, sites: dict[int, str]) -> dict[str, str]:
    return {
        "status": HOSPITAL_STATUS_LABELS.get(HospitalStatus(facts.status), facts.status),
        "when": format_when(facts.starts_at),
        "site": sites.get(facts.site_id, ""),
        "clinic": facts.clinic,
        "clinician": facts.clinician,
        "mode": MODE_LABELS.get(Mode(facts.mode), facts.mode),
    }
