"""The appointment lifecycle on plain data: each event from each state, no database and no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hub.rules.appointments import (
    ActionPolicy,
    Appointment,
    ChangeKind,
    Event,
    Facts,
    HubChange,
    Plan,
    Refused,
    TaskClosure,
    Transition,
)
from hub.rules.lifecycle import (
    accept_hospital,
    agent_cancelled,
    agent_rebooked,
    hospital_update,
    patient_cancel,
    patient_confirm,
    patient_request_rebook,
    request_closed,
)
from hub.vocabulary import (
    AuditAction,
    CancelMode,
    EventKind,
    HospitalStatus,
    MessageKind,
    RequestState,
    TaskKind,
    TaskOutcome,
    WhyNot,
)
from tests.rules.facts import booked

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
IMMEDIATE = replace(POLICY, cancel_mode=CancelMode.IMMEDIATE)
BOOKED = booked(NOW + timedelta(days=10))
MOVED = replace(BOOKED, starts_at=BOOKED.starts_at + timedelta(days=2))
CANCELLED = replace(BOOKED, status=HospitalStatus.CANCELLED)


def done(result: Transition | Refused) -> Transition:
    assert isinstance(result, Transition), result
    return result


def kinds(t: Transition) -> list[EventKind]:
    return [e.kind for e in t.events]


# The hospital's feed


def test_a_new_booking_invites_the_patient_and_plans_reminders_and_escalation() -> None:
    t = hospital_update(None, BOOKED, now=NOW)
    assert (t.notice, t.plan, t.appointment.facts) == (MessageKind.INVITATION, Plan.INVITATION, BOOKED)
    assert t.events == () and not t.bump_sequence


@pytest.mark.parametrize("facts", [replace(BOOKED, starts_at=NOW - timedelta(days=1)), CANCELLED])
def test_a_past_or_cancelled_new_record_sends_nothing(facts: Facts) -> None:
    t = hospital_update(None, facts, now=NOW)
    assert (t.notice, t.plan) == (None, Plan.KEEP)


def test_the_same_record_again_changes_nothing() -> None:
    t = hospital_update(Appointment(BOOKED), BOOKED, now=NOW)
    assert not t.changed and t.notice is None


def test_a_move_clears_a_confirmation_tells_the_patient_once_and_replans_reminders() -> None:
    t = hospital_update(Appointment(BOOKED, request_state=RequestState.CONFIRMED), MOVED, now=NOW)
    assert t.appointment.request_state == RequestState.NONE
    assert (t.notice, t.plan, t.bump_sequence) == (MessageKind.CHANGED, Plan.REMINDERS, True)


def test_a_move_answers_an_open_rebook_request() -> None:
    current = Appointment(BOOKED, request_state=RequestState.REBOOK_REQUESTED, open_rebook_request=True)
    t = hospital_update(current, MOVED, now=NOW)
    assert t.appointment.request_state == RequestState.NONE and not t.appointment.open_rebook_request
    assert t.close_tasks == (TaskClosure(TaskOutcome.MOVED_BY_HOSPITAL, (TaskKind.REBOOK,)),)


def test_a_move_keeps_a_request_to_cancel() -> None:
    t = hospital_update(Appointment(BOOKED, request_state=RequestState.CANCEL_REQUESTED), MOVED, now=NOW)
    assert t.appointment.request_state == RequestState.CANCEL_REQUESTED and t.close_tasks == ()


@pytest.mark.parametrize(
    "facts",
    [
        replace(BOOKED, clinician="Dr B"),
        replace(BOOKED, clinic="Heart clinic"),
        replace(BOOKED, duration_minutes=45),
        replace(BOOKED, transport_booked=True),
    ],
)
def test_details_only_update_the_calendar_and_send_nothing(facts: Facts) -> None:
    t = hospital_update(Appointment(BOOKED, request_state=RequestState.CONFIRMED), facts, now=NOW)
    assert (t.notice, t.plan, t.bump_sequence) == (None, Plan.KEEP, True)
    assert t.appointment.request_state == RequestState.CONFIRMED


def test_a_hospital_cancel_closes_every_task_withdraws_reminders_and_sends_one_cancellation() -> None:
    t = hospital_update(Appointment(BOOKED, request_state=RequestState.REBOOK_REQUESTED), CANCELLED, now=NOW)
    assert (t.notice, t.plan) == (MessageKind.CANCELLED, Plan.WITHDRAW)
    assert t.close_tasks == (TaskClosure(TaskOutcome.CANCELLED_BY_HOSPITAL),)
    assert t.appointment.request_state == RequestState.NONE


def test_a_hospital_cancel_answers_a_request_to_cancel() -> None:
    t = hospital_update(Appointment(BOOKED, request_state=RequestState.CANCEL_REQUESTED), CANCELLED, now=NOW)
    assert t.appointment.request_state == RequestState.CANCEL_REQUESTED
    assert t.close_tasks == (TaskClosure(TaskOutcome.CANCELLED_BY_HOSPITAL),)


@pytest.mark.parametrize("status", [HospitalStatus.ATTENDED, HospitalStatus.DID_NOT_ATTEND])
def test_attended_or_not_closes_tasks_without_a_message(status: HospitalStatus) -> None:
    t = hospital_update(Appointment(BOOKED), replace(BOOKED, status=status), now=NOW)
    assert (t.notice, t.plan) == (None, Plan.WITHDRAW)
    assert t.close_tasks == (TaskClosure(TaskOutcome.CLOSED_BY_HOSPITAL),)


def test_a_reinstated_appointment_is_a_new_invitation() -> None:
    t = hospital_update(Appointment(CANCELLED, request_state=RequestState.CANCEL_REQUESTED), BOOKED, now=NOW)
    assert (t.notice, t.plan, t.appointment.request_state) == (MessageKind.INVITATION, Plan.INVITATION, "none")


# Two writers: the hub's change is never silently undone


def test_a_routine_update_after_an_immediate_cancel_is_held_as_a_conflict() -> None:
    cancelled = done(patient_cancel(Appointment(BOOKED), reason="other", details="", now=NOW, policy=IMMEDIATE))
    routine = replace(BOOKED, clinician="Dr New")
    t = hospital_update(cancelled.appointment, routine, now=NOW)
    assert t.appointment.facts.status == HospitalStatus.CANCELLED  # the patient keeps seeing the hub's state
    assert t.appointment.held == routine
    assert (t.notice, t.plan, t.open_task) == (None, Plan.KEEP, TaskKind.CONFLICT)
    assert kinds(t) == [EventKind.APPOINTMENT_CONFLICT]
    # The same disagreement again changes nothing; a different one is told but opens no second task.
    assert not hospital_update(t.appointment, routine, now=NOW).changed
    again = hospital_update(t.appointment, replace(routine, clinic="Renamed"), now=NOW)
    assert again.open_task is None and kinds(again) == [EventKind.APPOINTMENT_CONFLICT]


def test_a_hospital_update_that_reflects_the_cancel_settles_it_quietly() -> None:
    change = HubChange(ChangeKind.CANCELLED, CANCELLED, event_id=7)
    current = Appointment(CANCELLED, request_state=RequestState.CANCEL_REQUESTED, hub_change=change, held=BOOKED)
    t = hospital_update(current, CANCELLED, now=NOW)
    assert t.appointment.hub_change is None and t.appointment.held is None
    assert t.notice is None and t.changed
    assert TaskClosure(TaskOutcome.SETTLED, (TaskKind.CONFLICT,)) in t.close_tasks


def test_an_agent_rebook_is_not_moved_back_by_the_hospitals_old_time() -> None:
    rebooked = done(agent_rebooked(Appointment(BOOKED), starts_at=NOW + timedelta(days=50), site_id=2, clinician="X"))
    stale = replace(BOOKED, clinic="Renamed clinic")
    t = hospital_update(rebooked.appointment, stale, now=NOW)
    assert t.appointment.facts.starts_at == NOW + timedelta(days=50) and t.notice is None
    assert t.open_task == TaskKind.CONFLICT
    echoed = replace(rebooked.appointment.facts, clinic="Renamed clinic")
    settled = hospital_update(t.appointment, echoed, now=NOW)
    assert settled.appointment.hub_change is None and settled.notice is None
    assert settled.appointment.facts.clinic == "Renamed clinic"


def test_an_update_that_acknowledges_the_hub_event_settles_it_even_when_it_differs() -> None:
    change = HubChange(ChangeKind.REBOOKED, MOVED, event_id=12)
    current = Appointment(MOVED, hub_change=change)
    other_time = replace(BOOKED, starts_at=BOOKED.starts_at + timedelta(days=5))
    assert hospital_update(current, other_time, now=NOW, acknowledged_event=11).open_task == TaskKind.CONFLICT
    t = hospital_update(current, other_time, now=NOW, acknowledged_event=12)
    assert t.appointment.hub_change is None and t.notice == MessageKind.CHANGED


def test_the_agent_can_accept_the_hospitals_version() -> None:
    change = HubChange(ChangeKind.CANCELLED, CANCELLED, event_id=3)
    current = Appointment(CANCELLED, hub_change=change, held=BOOKED)
    t = done(accept_hospital(current, now=NOW))
    assert t.appointment.facts == BOOKED and t.appointment.hub_change is None
    assert t.notice == MessageKind.INVITATION  # booked again: the patient is told as for a new booking
    assert TaskClosure(TaskOutcome.ACCEPTED_HOSPITAL, (TaskKind.CONFLICT,)) in t.close_tasks
    assert isinstance(accept_hospital(Appointment(BOOKED), now=NOW), Refused)


# The patient


def test_confirming_stays_possible_inside_the_cut_off_until_the_start() -> None:
    soon = Appointment(replace(BOOKED, starts_at=NOW + timedelta(hours=2)))
    t = done(patient_confirm(soon, now=NOW, policy=POLICY))
    assert t.appointment.request_state == RequestState.CONFIRMED and kinds(t) == [EventKind.APPOINTMENT_CONFIRMED]
    started = Appointment(replace(BOOKED, starts_at=NOW))
    assert patient_confirm(started, now=NOW, policy=POLICY) == Refused(WhyNot.PAST)
    assert isinstance(patient_request_rebook(soon, reason="", preferred_times="", now=NOW, policy=POLICY), Refused)


def test_rebook_requests_carry_what_the_patient_gave_on_create_and_update() -> None:
    first = done(
        patient_request_rebook(Appointment(BOOKED), reason="away", preferred_times="mornings", now=NOW, policy=POLICY)
    )
    assert first.events[0].data == {"reason": "away", "preferred_times": "mornings"}
    assert first.open_task == TaskKind.REBOOK and first.appointment.rebook_requests == 1
    update = done(
        patient_request_rebook(first.appointment, reason="away", preferred_times="Tuesdays", now=NOW, policy=POLICY)
    )
    assert update.events[0].kind == EventKind.APPOINTMENT_REBOOK_UPDATED
    assert update.events[0].data == {"reason": "away", "preferred_times": "Tuesdays"}
    assert update.update_rebook_request and update.open_task is None


def test_an_immediate_cancel_is_a_hub_change_the_hospital_must_reflect() -> None:
    t = done(patient_cancel(Appointment(BOOKED), reason="other", details="moving", now=NOW, policy=IMMEDIATE))
    assert t.appointment.facts.status == HospitalStatus.CANCELLED
    assert t.appointment.hub_change is not None and t.appointment.hub_change.kind == ChangeKind.CANCELLED
    assert (t.plan, t.close_tasks) == (Plan.WITHDRAW, (TaskClosure(TaskOutcome.SUPERSEDED),))


def test_a_cancel_request_supersedes_a_rebook_request() -> None:
    current = Appointment(BOOKED, request_state=RequestState.REBOOK_REQUESTED, open_rebook_request=True)
    t = done(patient_cancel(current, reason="other", details="", now=NOW, policy=POLICY))
    assert t.close_tasks == (TaskClosure(TaskOutcome.SUPERSEDED, (TaskKind.REBOOK,)),)
    assert t.open_task == TaskKind.CANCEL and t.appointment.request_state == RequestState.CANCEL_REQUESTED


# The booking centre


def test_closing_a_request_returns_the_patients_state_to_what_it_was() -> None:
    current = Appointment(BOOKED, request_state=RequestState.REBOOK_REQUESTED, open_rebook_request=True)
    t = request_closed(current, kind=TaskKind.REBOOK, prior_state=RequestState.CONFIRMED)
    assert t.appointment.request_state == RequestState.CONFIRMED and not t.appointment.open_rebook_request
    cancel = Appointment(BOOKED, request_state=RequestState.CANCEL_REQUESTED)
    back = request_closed(cancel, kind=TaskKind.CANCEL, prior_state=RequestState.NONE)
    assert back.appointment.request_state == RequestState.NONE and back.plan == Plan.REMINDERS


def test_agent_outcomes_only_on_a_booked_appointment() -> None:
    assert isinstance(agent_cancelled(Appointment(CANCELLED)), Refused)
    t = done(agent_cancelled(Appointment(BOOKED)))
    assert (t.notice, t.plan) == (MessageKind.CANCELLED, Plan.WITHDRAW)


# Which message a hospital change sends (the cases the feed's old rule was pinned by)

LATER = NOW + timedelta(days=10)
EARLIER = NOW - timedelta(days=1)


def facts(start: datetime = LATER, site_id: int = 1, mode: str = "in_person", status: str = "booked") -> Facts:
    return replace(BOOKED, starts_at=start, site_id=site_id, mode=mode, status=status)


@pytest.mark.parametrize(
    ("before", "after", "notice", "bump"),
    [
        (None, facts(), MessageKind.INVITATION, False),
        (None, facts(start=EARLIER), None, False),
        (None, facts(status="cancelled"), None, False),
        (None, facts(status="attended", start=EARLIER), None, False),
        (facts(), facts(start=LATER + timedelta(hours=1)), MessageKind.CHANGED, True),
        (facts(), facts(site_id=2), MessageKind.CHANGED, True),
        (facts(), facts(mode="video"), MessageKind.CHANGED, True),
        (facts(start=EARLIER), facts(start=EARLIER - timedelta(days=1)), None, True),
        (facts(), facts(status="cancelled"), MessageKind.CANCELLED, True),
        (facts(), facts(status="cancelled", start=LATER + timedelta(days=1)), MessageKind.CANCELLED, True),
        (facts(start=EARLIER), facts(start=EARLIER, status="cancelled"), None, True),
        (facts(status="cancelled"), facts(), MessageKind.INVITATION, True),
        (facts(status="cancelled"), facts(start=LATER + timedelta(days=3)), MessageKind.INVITATION, True),
        (facts(status="cancelled"), facts(status="cancelled", site_id=2), None, True),
        (facts(start=EARLIER), facts(start=EARLIER, status="attended"), None, True),
        (facts(start=EARLIER), facts(start=EARLIER, status="did_not_attend"), None, True),
        (facts(), replace(facts(), clinic="Renamed"), None, True),  # duration, clinic...: calendars replace theirs
    ],
)
def test_which_message_a_hospital_change_sends(
    before: Facts | None, after: Facts, notice: MessageKind | None, bump: bool
) -> None:
    t = hospital_update(Appointment(before) if before else None, after, now=NOW)
    assert (t.notice, t.bump_sequence) == (notice, bump)


def test_an_appointment_starting_now_is_not_upcoming() -> None:
    assert hospital_update(None, facts(start=NOW), now=NOW).notice is None
    assert hospital_update(None, facts(start=NOW + timedelta(seconds=1)), now=NOW).notice == MessageKind.INVITATION


# Each change whole: every field of the transition, so no effect can go missing unseen


def test_an_agents_rebook_whole() -> None:
    held = replace(BOOKED, clinic="Held")
    current = Appointment(
        BOOKED, request_state=RequestState.REBOOK_REQUESTED, held=held, rebook_requests=1, open_rebook_request=True
    )
    starts_at = NOW + timedelta(days=20)
    moved = replace(BOOKED, starts_at=starts_at, site_id=2, clinician="Dr B")
    assert agent_rebooked(current, starts_at=starts_at, site_id=2, clinician="Dr B") == Transition(
        Appointment(moved, hub_change=HubChange(ChangeKind.REBOOKED, moved), rebook_requests=1),
        audit=AuditAction.TASK_REBOOKED,
        notice=MessageKind.CHANGED,
        plan=Plan.REMINDERS,
        close_tasks=(TaskClosure(TaskOutcome.SUPERSEDED, (TaskKind.REBOOK, TaskKind.CANCEL, TaskKind.CONFLICT)),),
        events=(
            Event(
                EventKind.TASK_REBOOKED,
                {"previous_start": BOOKED.starts_at.isoformat(), "start": starts_at.isoformat(), "clinician": "Dr B"},
            ),
        ),
        bump_sequence=True,
        reset_first_viewed=True,
        void_confirmation=True,
        free_slots=True,  # typed in: a slot the hub moved it into is no longer its own
    )
    # Into a free slot: the move takes that slot and frees the old one itself.
    assert not done(agent_rebooked(current, starts_at=starts_at, site_id=2, clinician="Dr B", in_slot=True)).free_slots


@pytest.mark.parametrize(
    ("state", "kept"),
    [(RequestState.CANCEL_REQUESTED, RequestState.CANCEL_REQUESTED), (RequestState.CONFIRMED, RequestState.NONE)],
)
def test_an_agents_cancel_whole(state: str, kept: str) -> None:
    current = Appointment(BOOKED, request_state=state, held=MOVED, open_rebook_request=True)
    assert agent_cancelled(current) == Transition(
        Appointment(CANCELLED, request_state=kept, hub_change=HubChange(ChangeKind.CANCELLED, CANCELLED)),
        audit=AuditAction.TASK_CANCELLED,
        notice=MessageKind.CANCELLED,
        plan=Plan.WITHDRAW,
        close_tasks=(TaskClosure(TaskOutcome.SUPERSEDED),),
        events=(Event(EventKind.TASK_CANCELLED),),
        bump_sequence=True,
    )


def test_an_immediate_cancel_whole() -> None:
    current = Appointment(BOOKED, request_state=RequestState.REBOOK_REQUESTED, open_rebook_request=True)
    t = patient_cancel(current, reason="other", details="moving", now=NOW, policy=IMMEDIATE)
    assert t == Transition(
        Appointment(
            CANCELLED,
            request_state=RequestState.CANCEL_REQUESTED,
            hub_change=HubChange(ChangeKind.CANCELLED, CANCELLED),
        ),
        audit=AuditAction.CANCELLED_BY_PATIENT,
        plan=Plan.WITHDRAW,
        close_tasks=(TaskClosure(TaskOutcome.SUPERSEDED),),
        events=(Event(EventKind.APPOINTMENT_CANCELLED_BY_PATIENT, {"reason": "other", "details": "moving"}),),
        bump_sequence=True,
    )


@pytest.mark.parametrize(("details", "task_reason"), [("moving", "other: moving"), ("", "other")])
def test_a_request_to_cancel_whole(details: str, task_reason: str) -> None:
    current = Appointment(BOOKED, request_state=RequestState.REBOOK_REQUESTED, open_rebook_request=True)
    assert patient_cancel(current, reason="other", details=details, now=NOW, policy=POLICY) == Transition(
        Appointment(BOOKED, request_state=RequestState.CANCEL_REQUESTED),
        audit=AuditAction.CANCEL_REQUESTED,
        plan=Plan.WITHDRAW,
        close_tasks=(TaskClosure(TaskOutcome.SUPERSEDED, (TaskKind.REBOOK,)),),
        open_task=TaskKind.CANCEL,
        task_reason=task_reason,
        events=(Event(EventKind.APPOINTMENT_CANCEL_REQUESTED, {"reason": "other", "details": details}),),
    )


def test_a_request_to_rebook_whole_and_again() -> None:
    data = {"reason": "away", "preferred_times": "mornings"}
    first = patient_request_rebook(
        Appointment(BOOKED), reason="away", preferred_times="mornings", now=NOW, policy=POLICY
    )
    asked = Appointment(
        BOOKED, request_state=RequestState.REBOOK_REQUESTED, rebook_requests=1, open_rebook_request=True
    )
    assert first == Transition(
        asked,
        audit=AuditAction.REBOOK_REQUESTED,
        open_task=TaskKind.REBOOK,
        task_reason="away",
        preferred_times="mornings",
        events=(Event(EventKind.APPOINTMENT_REBOOK_REQUESTED, data),),
    )
    assert patient_request_rebook(
        asked, reason="away", preferred_times="mornings", now=NOW, policy=POLICY
    ) == Transition(
        asked,
        audit=AuditAction.REBOOK_UPDATED,
        update_rebook_request=True,
        task_reason="away",
        preferred_times="mornings",
        events=(Event(EventKind.APPOINTMENT_REBOOK_UPDATED, data),),
    )


def test_pressing_again_changes_nothing_and_keeps_the_state() -> None:
    confirmed = Appointment(BOOKED, request_state=RequestState.CONFIRMED, rebook_requests=1)
    assert patient_confirm(confirmed, now=NOW, policy=POLICY) == Transition(confirmed, audit=None)
    asked = Appointment(BOOKED, request_state=RequestState.CANCEL_REQUESTED, rebook_requests=1)
    assert patient_cancel(asked, reason="x", details="", now=NOW, policy=POLICY) == Transition(asked, audit=None)


def test_closing_a_request_keeps_the_other_kinds_request_open() -> None:
    current = Appointment(BOOKED, request_state=RequestState.CANCEL_REQUESTED, open_rebook_request=True)
    closed = request_closed(current, kind=TaskKind.CANCEL, prior_state=RequestState.REBOOK_REQUESTED)
    assert closed == Transition(
        Appointment(BOOKED, request_state=RequestState.REBOOK_REQUESTED, open_rebook_request=True),
        audit=AuditAction.REQUEST_CLOSED,
        plan=Plan.REMINDERS,
    )
    assert request_closed(current, kind=TaskKind.CONFLICT, prior_state=RequestState.NONE) == Transition(
        current, audit=None
    )


def test_accepting_the_hospitals_version_whole() -> None:
    change = HubChange(ChangeKind.REBOOKED, MOVED, event_id=3)
    renamed = replace(BOOKED, clinic="Renamed")
    current = Appointment(MOVED, hub_change=change, held=renamed)
    assert accept_hospital(current, now=NOW) == Transition(
        Appointment(renamed),
        audit=AuditAction.CONFLICT_ACCEPTED,
        notice=MessageKind.CHANGED,
        plan=Plan.REMINDERS,
        close_tasks=(TaskClosure(TaskOutcome.ACCEPTED_HOSPITAL, (TaskKind.CONFLICT,)),),
        events=(Event(EventKind.APPOINTMENT_CONFLICT_RESOLVED, {"resolution": "hospital"}),),
        bump_sequence=True,
        void_confirmation=True,
        free_slots=True,  # back at the hospital's time: a slot the hub moved it into is no longer its own
    )
    assert accept_hospital(Appointment(BOOKED), now=NOW) == Refused(WhyNot.CLOSED)


def test_accepting_a_held_version_that_starts_now_tells_nobody() -> None:
    starting = replace(MOVED, starts_at=NOW)
    current = Appointment(BOOKED, hub_change=HubChange(ChangeKind.REBOOKED, BOOKED, event_id=3), held=starting)
    t = done(accept_hospital(current, now=NOW))
    assert (t.notice, t.plan) == (None, Plan.WITHDRAW)


def test_a_conflict_held_whole() -> None:
    change = HubChange(ChangeKind.REBOOKED, MOVED, event_id=3)
    current = Appointment(MOVED, hub_change=change)
    routine = replace(BOOKED, clinic="Renamed")
    t = hospital_update(current, routine, now=NOW)
    assert t == Transition(
        replace(current, held=routine),
        audit=AuditAction.APPOINTMENT_CONFLICT_HELD,
        open_task=TaskKind.CONFLICT,
        task_reason="The hospital's update does not reflect the hub's rebooked",
        events=(
            Event(
                EventKind.APPOINTMENT_CONFLICT,
                {"hub_change": "rebooked", "hub": MOVED.as_data(), "hospital": routine.as_data()},
            ),
        ),
    )
    assert hospital_update(t.appointment, routine, now=NOW) == Transition(t.appointment, audit=None)


def test_a_new_record_is_audited_as_created() -> None:
    assert hospital_update(None, BOOKED, now=NOW).audit == AuditAction.APPOINTMENT_CREATED
    assert hospital_update(None, CANCELLED, now=NOW).audit == AuditAction.APPOINTMENT_CREATED


def test_a_past_appointment_reinstated_or_moved_tells_nobody() -> None:
    past = replace(BOOKED, starts_at=NOW - timedelta(days=1))
    reinstated = hospital_update(Appointment(replace(past, status=HospitalStatus.CANCELLED)), past, now=NOW)
    assert (reinstated.notice, reinstated.plan, reinstated.bump_sequence) == (None, Plan.KEEP, True)
    moved = hospital_update(Appointment(past), replace(past, starts_at=NOW - timedelta(hours=1)), now=NOW)
    assert (moved.notice, moved.plan) == (None, Plan.WITHDRAW)


def test_a_move_whole_answers_a_rebook_task_still_open_after_a_confirmation() -> None:
    current = Appointment(BOOKED, request_state=RequestState.CONFIRMED, open_rebook_request=True)
    assert hospital_update(current, MOVED, now=NOW) == Transition(
        Appointment(MOVED),
        audit=AuditAction.APPOINTMENT_UPDATED,
        notice=MessageKind.CHANGED,
        plan=Plan.REMINDERS,
        close_tasks=(TaskClosure(TaskOutcome.MOVED_BY_HOSPITAL, (TaskKind.REBOOK,)),),
        void_confirmation=True,
        bump_sequence=True,
    )
