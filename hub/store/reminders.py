"""Scheduled notices: planning reminders and escalation for an appointment, and the sweep that sends what is due.

The sweep reads only due rows through a partial index, so its cost grows with what is due, not with what is
stored. Several workers may sweep at once: each notice is marked done in the transaction that acts on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.clock import from_db, to_db
from hub.db import Database, Row, Transaction
from hub.rules.feed import choose_channel
from hub.rules.reminders import DueState, Schedule, decide, escalation_notices, reminder_notices
from hub.settings import Settings
from hub.store.audit import record_audit
from hub.store.events import record_event
from hub.store.outbox import (
    MESSAGE_PATIENT_COLUMNS,
    NOWHERE,
    has_address,
    queue_appointment_message,
    record_not_posted,
    withdraw_posted_copies,
)
from hub.store.tasks import create_task
from hub.vocabulary import (
    ESCALATION_PREFIX,
    REMINDER_PREFIX,
    ActorType,
    AuditAction,
    Channel,
    EventKind,
    LetterKind,
    MessageKind,
    MessageStatus,
    RecordType,
    ScheduledKind,
    TaskKind,
)

# A chain is its kinds' common prefix. Compared by substr, not `LIKE ?`: SQLite prepares a statement with a LIKE
# on a bound pattern afresh at every run (the pattern could change its plan), 5 to 30 times the statement's cost.
_EVERY_CHAIN = ""  # every kind: "" is the prefix of all of them


def schedule_from(settings: Settings) -> Schedule:
    hours = [int(h) for h in settings.escalation_hours]
    return Schedule(
        escalation_hours=(hours[0], hours[1], hours[2]),
        reminder_days=tuple(int(d) for d in settings.reminder_days_before),
        reminder_days_after_confirm=tuple(int(d) for d in settings.reminder_days_after_confirm),
    )


async def _close(tx: Transaction, appointment_id: int, *, chain: str, outcome: str, now: datetime) -> None:
    await tx.execute(
        "UPDATE scheduled_notices SET done_at = ?, outcome = ? WHERE appointment_id = ? AND done_at IS NULL"
        " AND substr(kind, 1, ?) = ?",
        (to_db(now), outcome, appointment_id, len(chain), chain),
    )


async def _insert(tx: Transaction, appointment_id: int, notices: list[tuple[str, datetime]]) -> None:
    if not notices:
        return
    await tx.execute(  # one statement for them all
        "INSERT INTO scheduled_notices (appointment_id, kind, due_at) VALUES "
        + ", ".join("(?, ?, ?)" for _ in notices),
        [value for kind, due_at in notices for value in (appointment_id, kind, to_db(due_at))],
    )


async def plan_reminders(
    tx: Transaction, *, settings: Settings, appointment_id: int, starts_at: datetime, now: datetime, fresh: bool = False
) -> None:
    """A new time: the reminders before it, planned again (any held back by quiet hours would give the old time).
    `fresh`: the appointment was made in this transaction, so it has no reminders to close or cancel."""
    if not fresh:
        await _close_reminders(tx, appointment_id, now=now)
    await _insert(tx, appointment_id, reminder_notices(starts_at, now, schedule_from(settings)))


async def _close_reminders(tx: Transaction, appointment_id: int, *, now: datetime) -> None:
    await _close(tx, appointment_id, chain=REMINDER_PREFIX, outcome="replanned", now=now)
    await _cancel_queued(
        tx, appointment_id, kinds=(MessageKind.APPOINTMENT_REMINDER,), why="replanned", now=now, actor="lifecycle"
    )


async def plan_invitation(
    tx: Transaction,
    *,
    settings: Settings,
    patient: dict[str, Any],
    appointment_id: int,
    starts_at: datetime,
    now: datetime,
    fresh: bool = False,
) -> None:
    """A new booking: its reminders, and the unread-letter escalation for a patient who reads online (both planned
    by one INSERT). `fresh`: the appointment was made in this transaction (see plan_reminders)."""
    if not fresh:
        await _close_reminders(tx, appointment_id, now=now)
        await _close(tx, appointment_id, chain=ESCALATION_PREFIX, outcome="replanned", now=now)
    schedule = schedule_from(settings)
    notices = reminder_notices(starts_at, now, schedule)
    # Opted out, or no mobile or email: the invitation itself went by post, so nothing escalates; nor when they
    # chose paper (the letter went beside the text or email).
    if choose_channel(patient) != Channel.LETTER and patient["paperless"]:
        notices += escalation_notices(now, schedule)
    await _insert(tx, appointment_id, notices)


async def _cancel_queued(
    tx: Transaction, appointment_id: int, *, kinds: tuple[MessageKind, ...], why: str, now: datetime, actor: str
) -> None:
    withdrawn = await tx.fetch_all(
        "UPDATE outbox_messages SET status = ?, error = ? WHERE appointment_id = ? AND status = ?"
        f" AND kind IN ({', '.join('?' for _ in kinds)}) RETURNING id, kind, patient_id, appointment_id",
        (MessageStatus.CANCELLED, why, appointment_id, MessageStatus.QUEUED, *kinds),
    )
    await withdraw_posted_copies(tx, withdrawn, why=why, now=now, actor=actor)


async def stop_escalation(tx: Transaction, *, appointment_id: int, now: datetime) -> None:
    """The patient read the letter: the reminders and the posted copy stop at once, even those queued."""
    await _close(tx, appointment_id, chain=ESCALATION_PREFIX, outcome="opened", now=now)
    await _cancel_queued(
        tx,
        appointment_id,
        kinds=(MessageKind.INVITATION_REMINDER, MessageKind.INVITATION_POST),
        why="letter opened",
        now=now,
        actor="letters",
    )


# Read through the partial index scheduled_notices_due: the cost follows what is due, not what is stored. Each
# notice comes with its appointment's patient, whose lock the sweep takes before acting on it.
DUE_NOTICES_SQL = (
    "SELECT n.id, n.kind, n.appointment_id, n.due_at, a.patient_id FROM scheduled_notices n"
    " LEFT JOIN appointments a ON a.id = n.appointment_id WHERE n.done_at IS NULL AND n.due_at <= ?"
    " ORDER BY n.due_at LIMIT ?"
)
SWEEP_CHUNK = 50  # notices a transaction: patients locked at once, and how long an event's lock can be held
# A notice is the sweep's once this marks it done, in the transaction that acts on it: another sweep that read it
# too finds it done and leaves it. Only while its appointment is still the patient read with it, whose lock is held
# (0: the appointment is gone): one moved to another patient meanwhile is left due, for the next sweep to take with
# the patient it has then.
_CLAIM = (
    "UPDATE scheduled_notices SET done_at = ? WHERE id = ? AND done_at IS NULL"
    " AND COALESCE((SELECT patient_id FROM appointments WHERE id = scheduled_notices.appointment_id), 0) = ?"
)


async def run_sweep(db: Database, *, settings: Settings, now: datetime, limit: int = 500) -> int:
    """Acts on up to `limit` due notices; returns how many were due when it read them, those another sweep took
    first included: the worker sweeps again while this is the whole limit (two workers that split a backlog
    between them both go on until it is done, rather than each stopping at its share).

    On PostgreSQL a chunk of notices is one transaction holding its patients' locks (hub.db.postgres), not the
    lock of the whole hub: a sweep of hundreds of reminders waits for, and holds up, only the patients it writes
    for, while every other patient signs in, confirms or cancels. Against those patients' own actions it is as
    before: a patient's cancel either commits first (and the sweep, finding it, sends nothing) or waits for it."""
    schedule = schedule_from(settings)
    due = await db.fetch_all(DUE_NOTICES_SQL, (to_db(now), limit))
    for start in range(0, len(due), SWEEP_CHUNK):
        chunk = due[start : start + SWEEP_CHUNK]
        patients = sorted({n["patient_id"] for n in chunk if n["patient_id"] is not None})
        async with db.write(patients=patients) as tx:
            for notice in chunk:
                # One at a time, just before acting: an earlier step looks for a later one still due (superseded).
                if await tx.execute(_CLAIM, (to_db(now), notice["id"], notice["patient_id"] or 0)):
                    outcome = await _act(tx, notice, settings=settings, schedule=schedule, now=now)
                    await tx.execute("UPDATE scheduled_notices SET outcome = ? WHERE id = ?", (outcome, notice["id"]))
    return len(due)


async def _superseded(tx: Transaction, notice: dict[str, Any], *, now: datetime) -> bool:
    """A later step of the same chain is due too (the worker was down): send only that one, not a burst."""
    chain = ESCALATION_PREFIX if notice["kind"].startswith(ESCALATION_PREFIX) else REMINDER_PREFIX
    later = await tx.fetch_one(
        "SELECT id FROM scheduled_notices WHERE appointment_id = ? AND done_at IS NULL AND substr(kind, 1, ?) = ?"
        " AND due_at > ? AND due_at <= ? LIMIT 1",
        (notice["appointment_id"], len(chain), chain, notice["due_at"], to_db(now)),
    )
    return later is not None


async def appointment_now(tx: Transaction, appointment_id: int) -> Row | None:
    """An appointment as a message about it needs it: its state, its site's name, its letters and whether they were
    read."""
    return await tx.fetch_one(
        "SELECT a.id, a.organisation_id, a.patient_id, a.status, a.request_state, a.starts_at, a.clinic,"
        " a.first_viewed_at, s.name AS site_name,"
        " (SELECT COUNT(*) FROM letters l WHERE l.appointment_id = a.id) AS letters,"
        " (SELECT COUNT(*) FROM letters l WHERE l.appointment_id = a.id AND l.first_viewed_at IS NOT NULL) AS read,"
        " (SELECT COUNT(*) FROM letters l WHERE l.appointment_id = a.id"
        f" AND l.kind = '{LetterKind.APPOINTMENT_LETTER}') AS appointment_letters"
        " FROM appointments a JOIN sites s ON s.id = a.site_id WHERE a.id = ?",
        (appointment_id,),
    )


async def _invitation_posted(tx: Transaction, appointment_id: int) -> bool:
    """The invitation went, or is going, by post after all: planned to go by text or email, it went another way
    after a STOP or a failure, as it does for a patient whose invitation is never escalated. The latest invitation
    counts (one re-sent by text after the appointment was booked again is not the letter posted before)."""
    latest = await tx.fetch_one(
        "SELECT channel FROM outbox_messages WHERE appointment_id = ? AND kind = ? AND status IN (?, ?, ?)"
        " ORDER BY id DESC LIMIT 1",
        (appointment_id, MessageKind.INVITATION, MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.SENT),
    )
    return latest is not None and latest["channel"] == Channel.LETTER


async def _letter_predates_move(tx: Transaction, appointment_id: int) -> bool:
    """The appointment's time changed after its newest appointment letter (the hospital's PDF) was filed."""
    found = await tx.fetch_one(
        "SELECT a.id FROM appointments a WHERE a.id = ? AND a.moved_at > (SELECT MAX(l.created_at) FROM letters l"
        f" WHERE l.appointment_id = a.id AND l.kind = '{LetterKind.APPOINTMENT_LETTER}')",
        (appointment_id,),
    )
    return found is not None


def letter_opened(appointment: Row) -> bool:
    """The invitation's letter has been read (or, with no letter, the appointment has been viewed)."""
    return bool(appointment["read"]) or (appointment["letters"] == 0 and appointment["first_viewed_at"] is not None)


async def _act(
    tx: Transaction, notice: dict[str, Any], *, settings: Settings, schedule: Schedule, now: datetime
) -> str:
    if await _superseded(tx, notice, now=now):
        return "skip:superseded"
    a = await appointment_now(tx, notice["appointment_id"])
    patient = a and await tx.fetch_one(
        f"SELECT {MESSAGE_PATIENT_COLUMNS} FROM patients WHERE id = ?", (a["patient_id"],)
    )
    if a is None or patient is None:
        return "skip:gone"
    state = DueState(
        kind=notice["kind"],
        status=a["status"],
        request_state=a["request_state"],
        starts_at=from_db(a["starts_at"]),
        opened=letter_opened(a),
        digital_ok=choose_channel(patient) != Channel.LETTER,
        posted=notice["kind"] == ScheduledKind.ESCALATION_POST and await _invitation_posted(tx, a["id"]),
    )
    verdict = decide(state, now=now, schedule=schedule)
    if not isinstance(verdict, MessageKind):
        return verdict  # skip:<why>
    post = verdict == MessageKind.INVITATION_POST
    # Moved since the hospital's letter was filed: that PDF gives the old time, so the hub's own letter goes instead
    # (as for a copy held overnight across a move: hub.store.stale_messages.judge), or, with no address, nothing.
    out_of_date = post and await _letter_predates_move(tx, a["id"])
    if out_of_date and not has_address(patient):
        await record_not_posted(tx, patient, appointment_id=a["id"], kind=verdict, now=now, why=NOWHERE)
        return "skip:no_postal_address"
    message_id = await queue_appointment_message(
        tx,
        settings=settings,
        kind=verdict,
        patient=patient,
        appointment_id=a["id"],
        starts_at=state.starts_at,
        site_name=a["site_name"],
        clinic=a["clinic"],
        now=now,
        channel=Channel.LETTER if post else None,
    )
    if message_id is None:
        return "skip:no_postal_address" if post else "skip:no_template"
    if out_of_date:
        await tx.execute("INSERT INTO templated_letters (message_id) VALUES (?)", (message_id,))
    if post:
        await create_task(
            tx,
            kind=TaskKind.LETTER_POSTED,
            patient_id=a["patient_id"],
            appointment_id=a["id"],
            reason="",
            now=now,
            source_id=message_id,
        )
        await record_event(
            tx,
            at=now,
            kind=EventKind.LETTER_ESCALATED_TO_POST,
            organisation_id=a["organisation_id"],
            patient_id=a["patient_id"],
            appointment_id=a["id"],
            data={"message_id": message_id},
        )
        await record_audit(
            tx,
            at=now,
            actor_type=ActorType.SYSTEM,
            actor_id="sweep",
            action=AuditAction.ESCALATED_TO_POST,
            record_type=RecordType.APPOINTMENT,
            record_id=a["id"],
            detail=f"message {message_id}"
            + (", as the hub's own letter: the hospital's is out of date" if out_of_date else ""),
        )
    return f"queued {message_id}"


async def withdraw_reminders(
    tx: Transaction, *, appointment_id: int, now: datetime, outcome: str = "cancel requested", news: bool = False
) -> None:
    """No more reminders or escalation, not even those already queued: the patient asked to cancel, or the
    hospital cancelled the appointment or it has passed. `news`: its invitation and change notices still queued
    (held overnight) go too: the appointment is no longer booked or has passed, and a change with no notice of its
    own (the patient cancelling it themselves) withdraws them nowhere else."""
    await _close(tx, appointment_id, chain=_EVERY_CHAIN, outcome=outcome, now=now)
    kinds: tuple[MessageKind, ...] = (
        MessageKind.INVITATION_REMINDER,
        MessageKind.APPOINTMENT_REMINDER,
        MessageKind.INVITATION_POST,
    )
    if news:
        kinds += (MessageKind.INVITATION, MessageKind.CHANGED)
    await _cancel_queued(tx, appointment_id, kinds=kinds, why=outcome, now=now, actor="lifecycle")
