"""The patient's actions on an appointment, at the store: each is one transaction with its task, event and audit
entry, asks the lifecycle rule first, and changes nothing when the rule says no."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from hub.rules.appointments import ActionPolicy
from hub.store.appointments import (
    ActionResult,
    cancel_appointment,
    confirm_appointment,
    get_appointment_for_patient,
    list_appointments_for_patient,
    record_appointment_view,
    request_rebook,
)
from hub.vocabulary import CancelMode, WhyNot
from tests.harness import Harness

pytestmark = pytest.mark.anyio
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)


async def _state(hub: Harness, appointment_id: int) -> tuple[str, str, int]:
    row = await hub.db.fetch_one(
        "SELECT status, request_state, sequence FROM appointments WHERE id = ?", (appointment_id,)
    )
    assert row is not None
    return row["status"], row["request_state"], row["sequence"]


async def _trail(hub: Harness) -> list[tuple[str, str]]:
    """(event kind, audit action) pairs, in order."""
    events = await hub.db.fetch_all("SELECT kind FROM events ORDER BY id")
    audit = await hub.db.fetch_all("SELECT action FROM audit_events ORDER BY id")
    return list(zip([e["kind"] for e in events], [a["action"] for a in audit], strict=True))


async def test_confirming_twice_is_the_same_as_once(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, ref="A1")
    for _ in range(2):
        result = await confirm_appointment(
            hub.db, patient_id=patient, appointment_id=appointment, now=hub.clock.now(), policy=POLICY
        )
        assert result == ActionResult(True)
    assert await _state(hub, appointment) == ("booked", "confirmed", 0)
    assert await _trail(hub) == [("appointment.confirmed", "confirmed")]
    [event] = await hub.db.fetch_all("SELECT data FROM events")
    assert json.loads(event["data"]) == {"appointment_ref": "A1"}


async def test_a_rebook_request_is_a_task_and_asking_again_updates_it(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient)
    for reason in ("Away that week", "Away that fortnight"):
        result = await request_rebook(
            hub.db,
            patient_id=patient,
            appointment_id=appointment,
            reason=reason,
            preferred_times="Mornings",
            now=hub.clock.now(),
            policy=POLICY,
        )
        assert result.done
    tasks = await hub.db.fetch_all("SELECT kind, reason, preferred_times, status FROM tasks")
    assert tasks == [
        {"kind": "rebook", "reason": "Away that fortnight", "preferred_times": "Mornings", "status": "open"}
    ]
    assert await _state(hub, appointment) == ("booked", "rebook_requested", 0)
    assert [kind for kind, _ in await _trail(hub)] == ["appointment.rebook_requested", "appointment.rebook_updated"]


async def test_a_cancel_request_closes_an_open_rebook_request(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient)
    await request_rebook(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="Away",
        preferred_times="",
        now=hub.clock.now(),
        policy=POLICY,
    )
    result = await cancel_appointment(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="feeling_better",
        details="All well now",
        now=hub.clock.now(),
        policy=POLICY,
    )
    assert result == ActionResult(True)
    tasks = await hub.db.fetch_all("SELECT kind, reason, status FROM tasks ORDER BY id")
    assert tasks == [
        {"kind": "rebook", "reason": "Away", "status": "closed"},
        {"kind": "cancel", "reason": "feeling_better: All well now", "status": "open"},
    ]
    assert await _state(hub, appointment) == ("booked", "cancel_requested", 0)
    again = await cancel_appointment(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="other",
        details="",
        now=hub.clock.now(),
        policy=POLICY,
    )
    assert again == ActionResult(True)  # already asked: nothing more happens
    assert len(await hub.db.fetch_all("SELECT id FROM tasks")) == 2


async def test_where_the_trust_allows_it_a_cancel_cancels_at_once(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient)
    immediate = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.IMMEDIATE)
    result = await cancel_appointment(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="other",
        details="",
        now=hub.clock.now(),
        policy=immediate,
    )
    assert result.done
    assert await _state(hub, appointment) == ("cancelled", "cancel_requested", 1)
    assert await hub.db.fetch_all("SELECT id FROM tasks") == []
    assert await _trail(hub) == [("appointment.cancelled_by_patient", "cancelled_by_patient")]


async def test_what_the_rule_refuses_or_another_patients_appointment_changes_nothing(hub: Harness) -> None:
    patient = await hub.create_patient()
    other = await hub.create_patient(mobile="+447700900002")
    soon = await hub.create_appointment(patient_id=patient, starts_at=hub.clock.now() + timedelta(hours=2))
    theirs = await hub.create_appointment(patient_id=other)
    now = hub.clock.now()
    # Inside the cut-off a change is refused (confirming is still allowed until the start).
    inside = await request_rebook(
        hub.db, patient_id=patient, appointment_id=soon, reason="x", preferred_times="", now=now, policy=POLICY
    )
    assert inside == ActionResult(False, WhyNot.CUTOFF)
    assert await confirm_appointment(hub.db, patient_id=patient, appointment_id=theirs, now=now, policy=POLICY) == (
        ActionResult(False, WhyNot.MISSING)
    )
    refused = await request_rebook(
        hub.db, patient_id=patient, appointment_id=theirs, reason="x", preferred_times="", now=now, policy=POLICY
    )
    assert refused == ActionResult(False, WhyNot.MISSING)
    assert await _state(hub, soon) == ("booked", "none", 0) and await _state(hub, theirs) == ("booked", "none", 0)
    assert await _trail(hub) == []


async def test_a_patients_appointments_from_a_date_in_time_order(hub: Harness) -> None:
    patient = await hub.create_patient()
    now = hub.clock.now()
    later = await hub.create_appointment(patient_id=patient, starts_at=now + timedelta(days=20))
    sooner = await hub.create_appointment(patient_id=patient, starts_at=now + timedelta(days=2))
    await hub.create_appointment(patient_id=patient, starts_at=now - timedelta(days=400))
    await hub.create_appointment(patient_id=await hub.create_patient(mobile="+447700900002"))
    listed = await list_appointments_for_patient(hub.db, patient, since=now - timedelta(days=365))
    assert [a["id"] for a in listed] == [sooner, later]
    assert listed[0]["starts_at"] == now + timedelta(days=2) and listed[0]["site_code"] == "RFH"


async def test_the_first_view_is_recorded_once_and_stops_escalation_only_without_a_letter(hub: Harness) -> None:
    patient = await hub.create_patient()
    plain = await hub.create_appointment(patient_id=patient)
    lettered = await hub.create_appointment(patient_id=patient)
    await hub.create_letter(patient_id=patient, appointment_id=lettered)
    for appointment_id in (plain, lettered):
        await hub.create_scheduled_notice(
            appointment_id=appointment_id, kind="escalation_reminder_1", due_at=hub.clock.now() + timedelta(days=1)
        )
        row = await get_appointment_for_patient(hub.db, patient, appointment_id)
        assert row is not None and row["first_viewed_at"] is None
        await record_appointment_view(hub.db, row, now=hub.clock.now())
        hub.clock.advance(minutes=5)
        again = await get_appointment_for_patient(hub.db, patient, appointment_id)
        assert again is not None
        await record_appointment_view(hub.db, again, now=hub.clock.now())
    viewed = await hub.db.fetch_all("SELECT first_viewed_at FROM appointments ORDER BY id")
    assert [v["first_viewed_at"] for v in viewed] == ["2026-11-21T10:00:00.000000Z", "2026-11-21T10:05:00.000000Z"]
    pending = await hub.db.fetch_all("SELECT appointment_id FROM scheduled_notices WHERE done_at IS NULL")
    assert pending == [{"appointment_id": lettered}]  # an unread letter keeps the escalation going


async def test_patients_acting_at_once_each_get_one_change_and_the_feed_lists_every_event_in_order(
    hub: Harness,
) -> None:
    """On PostgreSQL these writes run side by side (a lock per patient); nothing is lost, doubled or reordered."""
    pairs = []
    for n in range(8):
        patient = await hub.create_patient(mobile=f"+4477009001{n:02d}", verification_code=f"V{n:05d}")
        pairs.append((patient, await hub.create_appointment(patient_id=patient, ref=f"C{n}")))

    async def act(patient: int, appointment: int, n: int) -> ActionResult:
        now = hub.clock.now()
        if n % 2:
            return await confirm_appointment(
                hub.db, patient_id=patient, appointment_id=appointment, now=now, policy=POLICY
            )
        return await request_rebook(
            hub.db,
            patient_id=patient,
            appointment_id=appointment,
            reason="Away",
            preferred_times="",
            now=now,
            policy=POLICY,
        )

    results = await asyncio.gather(*(act(p, a, n) for n, (p, a) in enumerate(pairs)))
    assert results == [ActionResult(True)] * 8
    events = await hub.db.fetch_all("SELECT id, patient_id, kind FROM events ORDER BY id")
    assert sorted(e["patient_id"] for e in events) == sorted(p for p, _ in pairs)
    assert len({e["id"] for e in events}) == 8
    for n, (_, appointment) in enumerate(pairs):
        assert (await _state(hub, appointment))[1] == ("confirmed" if n % 2 else "rebook_requested")
    tasks = await hub.db.fetch_all("SELECT appointment_id FROM tasks WHERE kind = 'rebook'")
    assert sorted(t["appointment_id"] for t in tasks) == sorted(a for n, (_, a) in enumerate(pairs) if n % 2 == 0)
