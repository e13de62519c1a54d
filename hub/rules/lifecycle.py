"""The appointment lifecycle: every change to an appointment, whoever makes it (the hospital's feed, the patient, an
agent), as a pure function from the current state to the next state and the effects that follow.

A change the hub made and told the hospital about (an immediate cancel, an agent's rebook or cancel) is never
silently undone by a later hospital update that does not reflect it yet: that update is held as a conflict for the
booking centre, and the hospital is told. `hub.store.appointments.apply_transition` writes a Transition in one
transaction; nothing else writes appointments. docs/lifecycle.md is generated from these functions.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from hub.rules.appointments import (
    ActionPolicy,
    Allowed,
    Appointment,
    ChangeKind,
    Event,
    Facts,
    HubChange,
    Plan,
    Refused,
    TaskClosure,
    Transition,
    allowed_actions,
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


def _allowed(a: Appointment, now: datetime, policy: ActionPolicy) -> Allowed:
    return allowed_actions(
        status=a.facts.status,
        request_state=a.request_state,
        starts_at=a.facts.starts_at,
        now=now,
        rebook_requests=a.rebook_requests,
        policy=policy,
    )


def _nothing(a: Appointment) -> Transition:
    return Transition(a, audit=None)


# The hospital's feed


def hospital_update(
    current: Appointment | None,
    update: Facts,
    *,
    now: datetime,
    acknowledged_event: int | None = None,
    names_time: bool = True,
) -> Transition:
    """The hospital sent its record of the appointment (new or changed). `acknowledged_event`: the newest hub event
    about this appointment the hospital says it has processed, when it says. `names_time`: False when the hospital
    sent no time and its feed filled in the one the hub holds (HL7 without timing)."""
    upcoming = update.starts_at > now
    if current is None:
        new = update.booked() and upcoming
        return Transition(
            Appointment(update),
            audit=AuditAction.APPOINTMENT_CREATED,
            notice=MessageKind.INVITATION if new else None,
            plan=Plan.INVITATION if new else Plan.KEEP,
        )
    change = current.hub_change
    if change is not None and not _settles(change, update, now, acknowledged_event, names_time=names_time):
        if current.held == update:
            return _nothing(current)
        hospital = update.as_data()
        if not names_time:
            del hospital["start"]  # the hub's own, filled in: not the hospital's to be told back
        conflict = Event(
            EventKind.APPOINTMENT_CONFLICT,
            {"hub_change": str(change.kind), "hub": change.facts.as_data(), "hospital": hospital},
        )
        return Transition(
            replace(current, held=update),
            audit=AuditAction.APPOINTMENT_CONFLICT_HELD,
            open_task=None if current.held is not None else TaskKind.CONFLICT,
            task_reason=f"The hospital's update does not reflect the hub's {change.kind}",
            events=(conflict,),
        )
    settled = change is not None
    transition = _hospital_change(replace(current, hub_change=None, held=None), update, upcoming=upcoming)
    if not settled:
        return transition
    return replace(
        transition,
        audit=transition.audit or AuditAction.APPOINTMENT_CONFLICT_SETTLED,
        close_tasks=(*transition.close_tasks, TaskClosure(TaskOutcome.SETTLED, (TaskKind.CONFLICT,))),
    )


def _settles(
    change: HubChange, update: Facts, now: datetime, acknowledged_event: int | None, *, names_time: bool
) -> bool:
    """The update reflects the hub's change, or the hospital says it has processed the event that told it."""
    if change.reflected_by(update, now=now, names_time=names_time):
        return True
    return change.event_id is not None and acknowledged_event is not None and acknowledged_event >= change.event_id


def _hospital_change(current: Appointment, update: Facts, *, upcoming: bool) -> Transition:
    before = current.facts
    if before == update:
        return _nothing(current)
    audit = AuditAction.APPOINTMENT_UPDATED
    if update.booked() and not before.booked():
        # Re-instated: as good as a new booking.
        return Transition(
            replace(current, facts=update, request_state=RequestState.NONE),
            audit=audit,
            notice=MessageKind.INVITATION if upcoming else None,
            plan=Plan.INVITATION if upcoming else Plan.KEEP,
            bump_sequence=True,
        )
    if not update.booked():
        if not before.booked():
            return Transition(replace(current, facts=update), audit=audit, bump_sequence=True)
        cancelled = update.status == HospitalStatus.CANCELLED
        keep = current.request_state == RequestState.CANCEL_REQUESTED
        outcome = TaskOutcome.CANCELLED_BY_HOSPITAL if cancelled else TaskOutcome.CLOSED_BY_HOSPITAL
        return Transition(
            replace(current, facts=update, request_state=current.request_state if keep else RequestState.NONE),
            audit=audit,
            notice=MessageKind.CANCELLED if cancelled and upcoming else None,
            plan=Plan.WITHDRAW,
            close_tasks=(TaskClosure(outcome),),
            bump_sequence=True,
        )
    if update.moved_from(before):
        state = current.request_state
        closures: tuple[TaskClosure, ...] = ()
        if state == RequestState.REBOOK_REQUESTED or current.open_rebook_request:
            # A new time from the hospital answers the patient's request to rebook.
            closures = (TaskClosure(TaskOutcome.MOVED_BY_HOSPITAL, (TaskKind.REBOOK,)),)
        if state in (RequestState.CONFIRMED, RequestState.REBOOK_REQUESTED):
            state = RequestState.NONE  # they confirmed, or asked to change, another time
        return Transition(
            replace(current, facts=update, request_state=state, open_rebook_request=False),
            audit=audit,
            void_confirmation=True,
            notice=MessageKind.CHANGED if upcoming else None,
            plan=Plan.REMINDERS if upcoming else Plan.WITHDRAW,
            close_tasks=closures,
            bump_sequence=True,
        )
    # Details only (clinic, clinician, duration, transport, interpreter): calendars must replace their copy.
    return Transition(replace(current, facts=update), audit=audit, bump_sequence=True)


# The patient


def patient_confirm(current: Appointment, *, now: datetime, policy: ActionPolicy) -> Transition | Refused:
    allowed = _allowed(current, now, policy)
    if not allowed.confirm:
        return Refused(allowed.why_not or WhyNot.CLOSED)
    if current.request_state == RequestState.CONFIRMED:
        return _nothing(current)  # confirming twice is the same as once
    return Transition(
        replace(current, request_state=RequestState.CONFIRMED),
        audit=AuditAction.CONFIRMED,
        events=(Event(EventKind.APPOINTMENT_CONFIRMED),),
    )


def patient_request_rebook(
    current: Appointment, *, reason: str, preferred_times: str, now: datetime, policy: ActionPolicy
) -> Transition | Refused:
    allowed = _allowed(current, now, policy)
    data = {"reason": reason, "preferred_times": preferred_times}
    if current.open_rebook_request and allowed.why_not == WhyNot.NONE:
        # Asking again before the booking centre has called updates the request; it is not a new one.
        return Transition(
            current,
            audit=AuditAction.REBOOK_UPDATED,
            update_rebook_request=True,
            task_reason=reason,
            preferred_times=preferred_times,
            events=(Event(EventKind.APPOINTMENT_REBOOK_UPDATED, data),),
        )
    if not allowed.rebook:
        return Refused(allowed.why_not or WhyNot.LIMIT)
    return Transition(
        replace(
            current,
            request_state=RequestState.REBOOK_REQUESTED,
            rebook_requests=current.rebook_requests + 1,
            open_rebook_request=True,
        ),
        audit=AuditAction.REBOOK_REQUESTED,
        open_task=TaskKind.REBOOK,
        task_reason=reason,
        preferred_times=preferred_times,
        events=(Event(EventKind.APPOINTMENT_REBOOK_REQUESTED, data),),
    )


def patient_cancel(
    current: Appointment, *, reason: str, details: str, now: datetime, policy: ActionPolicy
) -> Transition | Refused:
    allowed = _allowed(current, now, policy)
    if allowed.why_not == WhyNot.PENDING:
        return _nothing(current)  # already asked: a second press changes nothing
    if not allowed.cancel:
        return Refused(allowed.why_not or WhyNot.CLOSED)
    data = {"reason": reason, "details": details}
    # A cancel supersedes an open request to rebook: nobody should call back with a new date.
    superseded = TaskClosure(TaskOutcome.SUPERSEDED, (TaskKind.REBOOK,))
    if policy.cancel_mode == CancelMode.IMMEDIATE:
        facts = replace(current.facts, status=HospitalStatus.CANCELLED)
        return Transition(
            replace(
                current,
                facts=facts,
                request_state=RequestState.CANCEL_REQUESTED,
                hub_change=HubChange(ChangeKind.CANCELLED, facts),
                open_rebook_request=False,
            ),
            audit=AuditAction.CANCELLED_BY_PATIENT,
            plan=Plan.WITHDRAW,
            close_tasks=(TaskClosure(TaskOutcome.SUPERSEDED),),
            events=(Event(EventKind.APPOINTMENT_CANCELLED_BY_PATIENT, data),),
            bump_sequence=True,
        )
    return Transition(
        replace(current, request_state=RequestState.CANCEL_REQUESTED, open_rebook_request=False),
        audit=AuditAction.CANCEL_REQUESTED,
        plan=Plan.WITHDRAW,
        close_tasks=(superseded,),
        open_task=TaskKind.CANCEL,
        task_reason=f"{reason}: {details}" if details else reason,
        events=(Event(EventKind.APPOINTMENT_CANCEL_REQUESTED, data),),
    )


def patient_rescheduled(
    current: Appointment,
    *,
    starts_at: datetime,
    duration_minutes: int,
    data: dict[str, str],
    now: datetime,
    policy: ActionPolicy,
) -> Transition | Refused:
    """The patient moved the appointment into a free slot (a new time they chose, or an earlier one they were
    offered): only the time changes. Each move counts against the rebook limit, as a request to rebook does. Like an
    agent's rebook, the hospital must reflect it before its own updates apply."""
    allowed = _allowed(current, now, policy)
    if not allowed.rebook:
        return Refused(allowed.why_not or WhyNot.LIMIT)
    facts = replace(current.facts, starts_at=starts_at, duration_minutes=duration_minutes)
    return Transition(
        replace(
            current,
            facts=facts,
            request_state=RequestState.NONE,
            hub_change=HubChange(ChangeKind.REBOOKED, facts),
            held=None,
            open_rebook_request=False,
        ),
        audit=AuditAction.RESCHEDULED_BY_PATIENT,
        notice=MessageKind.CHANGED,
        plan=Plan.REMINDERS,
        # They no longer need the call-back they asked for; a conflict held against their last move is moot now.
        close_tasks=(TaskClosure(TaskOutcome.SUPERSEDED, (TaskKind.REBOOK, TaskKind.CONFLICT)),),
        events=(
            Event(
                EventKind.APPOINTMENT_RESCHEDULED_BY_PATIENT,
                {"previous_start": current.facts.starts_at.isoformat(), "start": starts_at.isoformat(), **data},
            ),
        ),
        bump_sequence=True,
        void_confirmation=True,
    )


# The booking centre


def agent_rebooked(
    current: Appointment, *, starts_at: datetime, site_id: int, clinician: str, in_slot: bool = False
) -> Transition | Refused:
    """An agent's new time: typed in, or a free slot's (`in_slot`: the move takes that slot and frees the old one
    itself). A time typed in frees the slot the hub had moved the appointment into, once it is no longer at that slot's
    time and site (a slot the hospital booked it into itself is the hospital's to free)."""
    if not current.facts.booked():
        return Refused(WhyNot.CLOSED)
    facts = replace(current.facts, starts_at=starts_at, site_id=site_id, clinician=clinician)
    told = Event(
        EventKind.TASK_REBOOKED,
        {"previous_start": current.facts.starts_at.isoformat(), "start": starts_at.isoformat(), "clinician": clinician},
    )
    return Transition(
        replace(
            current,
            facts=facts,
            request_state=RequestState.NONE,
            hub_change=HubChange(ChangeKind.REBOOKED, facts),
            held=None,
            open_rebook_request=False,
        ),
        audit=AuditAction.TASK_REBOOKED,
        notice=MessageKind.CHANGED,
        plan=Plan.REMINDERS,
        free_slots=not in_slot,
        close_tasks=(TaskClosure(TaskOutcome.SUPERSEDED, (TaskKind.REBOOK, TaskKind.CANCEL, TaskKind.CONFLICT)),),
        events=(told,),
        bump_sequence=True,
        reset_first_viewed=True,
        void_confirmation=True,
    )


def agent_cancelled(current: Appointment) -> Transition | Refused:
    if not current.facts.booked():
        return Refused(WhyNot.CLOSED)
    facts = replace(current.facts, status=HospitalStatus.CANCELLED)
    asked = current.request_state == RequestState.CANCEL_REQUESTED
    return Transition(
        replace(
            current,
            facts=facts,
            request_state=current.request_state if asked else RequestState.NONE,
            hub_change=HubChange(ChangeKind.CANCELLED, facts),
            held=None,
            open_rebook_request=False,
        ),
        audit=AuditAction.TASK_CANCELLED,
        notice=MessageKind.CANCELLED,
        plan=Plan.WITHDRAW,
        close_tasks=(TaskClosure(TaskOutcome.SUPERSEDED),),
        events=(Event(EventKind.TASK_CANCELLED),),
        bump_sequence=True,
    )


def request_closed(current: Appointment, *, kind: TaskKind, prior_state: str) -> Transition:
    """The booking centre closed a patient's request without changing the appointment (closed with a note, or no
    answer after the last call): the request state returns to what it was before the request (a confirmation
    survives a closed rebook request), and a withdrawn cancel request brings the reminders back. A conflict closed
    so (settled with the hospital by other means) lets its held update go: the hub's change stands, and the
    hospital's next update that does not reflect it is held, with a task, afresh."""
    if kind == TaskKind.CONFLICT:
        return (
            Transition(replace(current, held=None), audit=AuditAction.REQUEST_CLOSED)
            if current.held
            else _nothing(current)
        )
    own = {TaskKind.REBOOK: RequestState.REBOOK_REQUESTED, TaskKind.CANCEL: RequestState.CANCEL_REQUESTED}.get(kind)
    if own is None:
        return _nothing(current)
    state = prior_state if current.request_state == own else current.request_state
    rebook_open = current.open_rebook_request and kind != TaskKind.REBOOK
    cancel_withdrawn = kind == TaskKind.CANCEL and current.facts.booked() and state != RequestState.CANCEL_REQUESTED
    return Transition(
        replace(current, request_state=state, open_rebook_request=rebook_open),
        audit=AuditAction.REQUEST_CLOSED,
        plan=Plan.REMINDERS if cancel_withdrawn else Plan.KEEP,
    )


def accept_hospital(current: Appointment, *, now: datetime) -> Transition | Refused:
    """An agent accepts the hospital's version held as a conflict: it applies as if the hospital had settled it."""
    if current.held is None:
        return Refused(WhyNot.CLOSED)
    transition = _hospital_change(
        replace(current, hub_change=None, held=None), current.held, upcoming=current.held.starts_at > now
    )
    held = current.held
    return replace(
        transition,
        # The hospital's version has no place for the hub's move: the slot the patient took is free again.
        free_slots=not held.booked()
        or held.starts_at != current.facts.starts_at
        or held.site_id != current.facts.site_id,
        audit=AuditAction.CONFLICT_ACCEPTED,
        close_tasks=(*transition.close_tasks, TaskClosure(TaskOutcome.ACCEPTED_HOSPITAL, (TaskKind.CONFLICT,))),
        events=(*transition.events, Event(EventKind.APPOINTMENT_CONFLICT_RESOLVED, {"resolution": "hospital"})),
    )
