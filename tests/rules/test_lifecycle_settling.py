"""Which hospital updates settle a change the hub made and told the hospital about, for each kind of hub change: an
update settles it only when it is clearly about the hub's version (or acknowledges the hub's event); anything else is
held as a conflict, the patient keeps the hub's version and is told nothing. The JSON API, the CSV import and HL7
all reach these rules through `hospital_update`; HL7 alone can send an update that names no time (a SIU^S15 or S26
without timing), which the listener fills in from what the hub holds: `names_time=False`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hub.rules.appointments import ActionPolicy, Appointment, Facts, Plan, Refused, TaskClosure, Transition
from hub.rules.lifecycle import agent_cancelled, agent_rebooked, hospital_update, patient_cancel, patient_rescheduled
from hub.vocabulary import CancelMode, EventKind, HospitalStatus, MessageKind, TaskKind, TaskOutcome
from tests.rules.facts import booked

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.IMMEDIATE)
OLD = booked(datetime(2026, 12, 14, 9, 30, tzinfo=UTC))
EARLIER = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
OUTCOMES = (HospitalStatus.ATTENDED, HospitalStatus.DID_NOT_ATTEND)
Make = Callable[[], Appointment]


def done(result: Transition | Refused, event_id: int = 10) -> Appointment:
    """The appointment after the hub's change, as the store leaves it: the change knows the event that told."""
    assert isinstance(result, Transition), result
    change = result.appointment.hub_change
    assert change is not None
    return replace(result.appointment, hub_change=replace(change, event_id=event_id))


def moved_by_patient() -> Appointment:
    """The patient took an earlier slot (an accepted offer): the hub moved the appointment to 28 November."""
    return done(patient_rescheduled(Appointment(OLD), starts_at=EARLIER, duration_minutes=30, data={}, now=NOW,
                                    policy=POLICY))  # fmt: skip


def rebooked_by_agent() -> Appointment:
    """An agent rebooked it to 28 November at another site."""
    return done(agent_rebooked(Appointment(OLD), starts_at=EARLIER, site_id=2, clinician="Dr B"))


def cancelled_by_patient() -> Appointment:
    return done(patient_cancel(Appointment(OLD), reason="other", details="", now=NOW, policy=POLICY))


def cancelled_by_agent() -> Appointment:
    return done(agent_cancelled(Appointment(OLD)))


MOVES = {"moved by the patient": moved_by_patient, "rebooked by an agent": rebooked_by_agent}
CANCELS = {"cancelled by the patient": cancelled_by_patient, "cancelled by an agent": cancelled_by_agent}


def assert_held(current: Appointment, t: Transition, update: Facts) -> None:
    assert t.appointment == replace(current, held=update)  # the patient keeps the hub's version
    assert (t.notice, t.plan, t.close_tasks, t.bump_sequence) == (None, Plan.KEEP, (), False)
    assert t.open_task == TaskKind.CONFLICT
    assert [e.kind for e in t.events] == [EventKind.APPOINTMENT_CONFLICT]


def assert_settled(t: Transition) -> None:
    assert t.appointment.hub_change is None and t.appointment.held is None
    assert TaskClosure(TaskOutcome.SETTLED, (TaskKind.CONFLICT,)) in t.close_tasks
    assert EventKind.APPOINTMENT_CONFLICT not in [e.kind for e in t.events]


# A move the hub made (the patient's own, into a free or offered slot; an agent's rebook)


@pytest.mark.parametrize("make", MOVES.values(), ids=MOVES.keys())
def test_a_hospital_cancel_naming_the_old_time_is_held(make: Make) -> None:
    current = make()
    stale = replace(OLD, status=HospitalStatus.CANCELLED)
    t = hospital_update(current, stale, now=NOW)
    assert_held(current, t, stale)
    assert t.appointment.facts.booked() and t.appointment.facts.starts_at == EARLIER


@pytest.mark.parametrize("make", MOVES.values(), ids=MOVES.keys())
def test_a_hospital_cancel_naming_no_time_is_held_and_the_hospital_is_not_told_a_time_it_did_not_send(
    make: Make,
) -> None:
    current = make()
    # HL7 fills the time it was not sent in from what the hub holds: the hub's own time, which proves nothing.
    untimed = replace(current.facts, status=HospitalStatus.CANCELLED)
    t = hospital_update(current, untimed, now=NOW, names_time=False)
    assert_held(current, t, untimed)
    hospital = t.events[0].data["hospital"]
    assert "start" not in hospital and hospital["status"] == "cancelled"
    # The same message again holds nothing twice.
    assert not hospital_update(t.appointment, untimed, now=NOW, names_time=False).changed


@pytest.mark.parametrize("make", MOVES.values(), ids=MOVES.keys())
def test_a_hospital_cancel_naming_the_hubs_time_and_site_settles_the_move_and_cancels(make: Make) -> None:
    current = make()
    t = hospital_update(current, replace(current.facts, status=HospitalStatus.CANCELLED), now=NOW)
    assert_settled(t)
    assert t.appointment.facts.status == HospitalStatus.CANCELLED
    assert (t.notice, t.plan) == (MessageKind.CANCELLED, Plan.WITHDRAW)  # the hospital's own decision: told
    assert TaskClosure(TaskOutcome.CANCELLED_BY_HOSPITAL) in t.close_tasks


def test_a_hospital_cancel_naming_the_hubs_time_at_the_old_site_is_held() -> None:
    current = rebooked_by_agent()
    other_site = replace(current.facts, site_id=OLD.site_id, status=HospitalStatus.CANCELLED)
    assert_held(current, hospital_update(current, other_site, now=NOW), other_site)


@pytest.mark.parametrize("make", MOVES.values(), ids=MOVES.keys())
def test_a_hospital_cancel_that_acknowledges_the_hubs_event_settles_the_move_whatever_it_names(
    make: Make,
) -> None:
    current = make()
    stale = replace(OLD, status=HospitalStatus.CANCELLED)
    assert hospital_update(current, stale, now=NOW, acknowledged_event=9).open_task == TaskKind.CONFLICT
    t = hospital_update(current, stale, now=NOW, acknowledged_event=10)
    assert_settled(t)
    assert (t.appointment.facts, t.notice) == (stale, MessageKind.CANCELLED)


@pytest.mark.parametrize("status", OUTCOMES)
@pytest.mark.parametrize("make", MOVES.values(), ids=MOVES.keys())
def test_attended_or_not_after_the_hubs_time_and_naming_it_settles_the_move(make: Make, status: HospitalStatus) -> None:
    current = make()
    after = EARLIER + timedelta(hours=2)
    t = hospital_update(current, replace(current.facts, status=status), now=after)
    assert_settled(t)
    assert (t.appointment.facts.status, t.notice, t.plan) == (status, None, Plan.WITHDRAW)


@pytest.mark.parametrize("status", OUTCOMES)
@pytest.mark.parametrize("make", MOVES.values(), ids=MOVES.keys())
def test_attended_or_not_for_the_old_time_or_no_time_or_before_the_hubs_time_is_held(
    make: Make, status: HospitalStatus
) -> None:
    current = make()
    after_both = OLD.starts_at + timedelta(days=1)
    old_time = replace(OLD, status=status)
    assert_held(current, hospital_update(current, old_time, now=after_both), old_time)
    untimed = replace(current.facts, status=status)
    assert_held(current, hospital_update(current, untimed, now=after_both, names_time=False), untimed)
    # Naming the hub's time before that time has come: not a record of what happened.
    assert_held(current, hospital_update(current, untimed, now=NOW), untimed)


@pytest.mark.parametrize("make", MOVES.values(), ids=MOVES.keys())
def test_a_booked_update_naming_no_time_does_not_settle_a_move(make: Make) -> None:
    current = make()
    details = replace(current.facts, clinician="Dr New")  # an SIU^S14 without timing, filled in with the hub's time
    assert_held(current, hospital_update(current, details, now=NOW, names_time=False), details)
    settled = hospital_update(current, details, now=NOW)  # the same naming the hub's time: the hospital has it
    assert_settled(settled)
    assert (settled.appointment.facts, settled.notice) == (details, None)


@pytest.mark.parametrize("make", MOVES.values(), ids=MOVES.keys())
def test_a_held_cancel_then_a_different_stale_update_tells_the_hospital_again_but_opens_no_second_task(
    make: Make,
) -> None:
    current = make()
    held = hospital_update(current, replace(OLD, status=HospitalStatus.CANCELLED), now=NOW).appointment
    again = hospital_update(held, replace(OLD, clinician="Dr C"), now=NOW)
    assert again.open_task is None and [e.kind for e in again.events] == [EventKind.APPOINTMENT_CONFLICT]
    assert again.appointment.facts == current.facts


# A cancel the hub made (the patient's, in immediate mode; an agent's)


@pytest.mark.parametrize(
    ("update", "names_time"),
    [
        (replace(OLD, status=HospitalStatus.CANCELLED), True),
        (replace(OLD, status=HospitalStatus.CANCELLED, starts_at=EARLIER), True),  # another time
        (replace(OLD, status=HospitalStatus.CANCELLED), False),
        (replace(OLD, status=HospitalStatus.CANCELLED, site_id=2, clinician="Dr Z"), True),
    ],
)
@pytest.mark.parametrize("make", CANCELS.values(), ids=CANCELS.keys())
def test_a_hospital_cancel_reflects_a_hub_cancel_whatever_time_it_names(
    make: Make, update: Facts, names_time: bool
) -> None:
    t = hospital_update(make(), update, now=NOW, names_time=names_time)
    assert_settled(t)
    assert t.appointment.facts == update and t.notice is None  # the patient was told when the hub cancelled


@pytest.mark.parametrize("status", OUTCOMES)
@pytest.mark.parametrize("make", CANCELS.values(), ids=CANCELS.keys())
def test_attended_or_not_after_the_time_settles_a_hub_cancel_and_before_it_is_held(
    make: Make, status: HospitalStatus
) -> None:
    current = make()
    outcome = replace(OLD, status=status)
    assert_held(current, hospital_update(current, outcome, now=NOW), outcome)
    t = hospital_update(current, outcome, now=OLD.starts_at + timedelta(hours=1), names_time=False)
    assert_settled(t)
    assert (t.appointment.facts, t.notice) == (outcome, None)


@pytest.mark.parametrize("make", CANCELS.values(), ids=CANCELS.keys())
def test_a_booked_update_never_reflects_a_hub_cancel(make: Make) -> None:
    current = make()
    assert_held(current, hospital_update(current, OLD, now=NOW), OLD)
    assert_held(current, hospital_update(current, OLD, now=NOW, names_time=False), OLD)
