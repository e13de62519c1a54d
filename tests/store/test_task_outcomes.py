"""A task's outcome: the appointment, the patient's message, the hospital's event, the audit entry and the task
itself change in one transaction, or none of them does."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from hub.clock import LONDON
from hub.db import IntegrityError
from hub.rules.tasks import QueuePolicy
from hub.store.task_outcomes import NotHeld, Outcome, record_outcome
from hub.store.tasks import claim_task
from hub.vocabulary import TaskOutcome
from tests.harness import Harness

pytestmark = pytest.mark.anyio
QUEUE = QueuePolicy(sla_working_days=2, claim=timedelta(minutes=30), retry=timedelta(minutes=120), max_attempts=3)


async def _claimed_rebook_task(hub: Harness, *, agent: str = "alice") -> tuple[int, int, int]:
    """(task, appointment, staff): a rebook request that this agent has claimed."""
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, request_state="rebook_requested")
    task = await hub.create_task(patient_id=patient, appointment_id=appointment, reason="Away that week")
    staff = await hub.create_staff_user(username=agent)
    assert await claim_task(hub.db, task_id=task, staff_id=staff, now=hub.clock.now(), policy=QUEUE)
    return task, appointment, staff


async def _outcome(hub: Harness, task_id: int, staff_id: int, outcome: Outcome) -> str:
    return await record_outcome(
        hub.db,
        task_id=task_id,
        staff_id=staff_id,
        outcome=outcome,
        settings=hub.settings,
        policy=QUEUE,
        now=hub.clock.now(),
    )


async def _counts(hub: Harness, appointment_id: int) -> dict[str, int]:
    counts = {}
    for name, sql in (
        ("outbox", "SELECT COUNT(*) AS n FROM outbox_messages WHERE appointment_id = ?"),
        ("events", "SELECT COUNT(*) AS n FROM events WHERE appointment_id = ? AND kind LIKE 'callback.%'"),
        (
            "audit",
            "SELECT COUNT(*) AS n FROM audit_events WHERE action LIKE 'task_%' AND action != 'task_claimed'"
            " AND detail = 'appointment ' || ?",
        ),
    ):
        row = await hub.db.fetch_one(sql, (appointment_id,))
        assert row is not None
        counts[name] = int(row["n"])
    return counts


@pytest.mark.sqlite_only  # the failure is an SQLite trigger
async def test_a_failure_midway_leaves_nothing_half_done(hub: Harness) -> None:
    task_id, appointment_id, staff = await _claimed_rebook_task(hub)
    async with hub.db.write() as tx:  # the hospital-event insert, the last step but one, fails
        await tx.execute(
            "CREATE TRIGGER fail_events BEFORE INSERT ON events WHEN NEW.kind LIKE 'callback.%'"
            " BEGIN SELECT RAISE(ABORT, 'event store down'); END"
        )
    before = await _counts(hub, appointment_id)
    with pytest.raises(IntegrityError):
        await record_outcome(
            hub.db,
            task_id=task_id,
            staff_id=staff,
            outcome=Outcome(TaskOutcome.REBOOKED, starts_at=datetime(2026, 12, 15, 14, 30, tzinfo=LONDON)),
            settings=hub.settings,
            policy=QUEUE,
            now=hub.clock.now(),
        )
    a = await hub.db.fetch_one("SELECT starts_at, sequence FROM appointments WHERE id = ?", (appointment_id,))
    assert a is not None and a["sequence"] == 0 and a["starts_at"] != "2026-12-15T14:30:00.000000Z"
    assert await _counts(hub, appointment_id) == before
    task = await hub.db.fetch_one("SELECT status, claimed_by FROM tasks WHERE id = ?", (task_id,))
    assert task == {"status": "claimed", "claimed_by": staff}
    notices = await hub.db.fetch_one(
        "SELECT COUNT(*) AS n FROM scheduled_notices WHERE appointment_id = ?", (appointment_id,)
    )
    assert notices == {"n": 0}


async def test_only_the_agent_holding_the_task_records_its_outcome(hub: Harness) -> None:
    task_id, appointment_id, alice = await _claimed_rebook_task(hub)
    bob = await hub.create_staff_user(username="bob")
    before = await _counts(hub, appointment_id)
    with pytest.raises(NotHeld):
        await _outcome(hub, task_id, bob, Outcome(TaskOutcome.CANCELLED))
    hub.clock.advance(minutes=30)  # alice's claim has lapsed
    with pytest.raises(NotHeld):
        await _outcome(hub, task_id, alice, Outcome(TaskOutcome.CANCELLED))
    assert await _counts(hub, appointment_id) == before
    appointment = await hub.db.fetch_one("SELECT status FROM appointments WHERE id = ?", (appointment_id,))
    assert appointment == {"status": "booked"}


async def test_no_answer_puts_the_task_back_until_the_retry_time_then_sends_a_letter(hub: Harness) -> None:
    task_id, appointment_id, staff = await _claimed_rebook_task(hub)
    assert await _outcome(hub, task_id, staff, Outcome(TaskOutcome.NO_ANSWER)) == "retry"
    task = await hub.db.fetch_one("SELECT status, claimed_by, attempts, not_before FROM tasks")
    assert task is not None and (task["status"], task["claimed_by"], task["attempts"]) == ("open", None, 1)
    assert task["not_before"] == "2026-11-21T12:00:00.000000Z"
    for attempt in (2, 3):
        hub.clock.advance(hours=2)
        assert await claim_task(hub.db, task_id=task_id, staff_id=staff, now=hub.clock.now(), policy=QUEUE)
        assert await _outcome(hub, task_id, staff, Outcome(TaskOutcome.NO_ANSWER)) == (
            "retry" if attempt < 3 else "letter"
        )
    letters = await hub.db.fetch_all(
        "SELECT kind, channel FROM outbox_messages WHERE appointment_id = ?", (appointment_id,)
    )
    assert letters == [{"kind": "no_answer", "channel": "letter"}]
    task = await hub.db.fetch_one("SELECT status, outcome FROM tasks")
    assert task == {"status": "closed", "outcome": "no_answer_letter"}


async def test_an_outcome_that_needs_an_appointment_is_refused_on_a_task_without_one(hub: Harness) -> None:
    patient = await hub.create_patient()
    task_id = await hub.create_task(kind="inbound_text", patient_id=patient, reason="Text")
    staff = await hub.create_staff_user()
    assert await claim_task(hub.db, task_id=task_id, staff_id=staff, now=hub.clock.now(), policy=QUEUE)
    for kind in ("rebooked", "cancelled"):
        with pytest.raises(ValueError, match="no appointment"):
            await _outcome(
                hub, task_id, staff, Outcome(TaskOutcome(kind), starts_at=datetime(2026, 12, 15, 9, 0, tzinfo=LONDON))
            )
    assert await _outcome(hub, task_id, staff, Outcome(TaskOutcome.CLOSED, note="Answered by phone")) == "closed"
    task = await hub.db.fetch_one("SELECT status, note, closed_by FROM tasks WHERE id = ?", (task_id,))
    assert task == {"status": "closed", "note": "Answered by phone", "closed_by": staff}
