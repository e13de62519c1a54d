"""What an appointment is to the hub, and what a patient may do to it: the state the lifecycle reads and writes
(`hub.rules.lifecycle` holds every change), the actions a patient is offered, and where a list shows it.

The hospital's system is the authority on booked facts (time, site, clinic, clinician, mode, hospital status). The
hub holds the patient's requests and the booking centre's work, and tells the hospital through events.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from hub.vocabulary import (
    AuditAction,
    EventKind,
    HospitalStatus,
    MessageKind,
    RequestState,
    TaskKind,
    TaskOutcome,
    WhyNot,
)


class Plan(StrEnum):
    """What happens to the appointment's reminders and unread-letter escalation."""

    KEEP = "keep"  # as planned
    REMINDERS = "reminders"  # a new time: re-plan the reminders before it
    INVITATION = "invitation"  # a new booking: reminders, and the escalation while its letter is unread
    WITHDRAW = "withdraw"  # no more reminders or escalation, none of those already queued either


class ChangeKind(StrEnum):
    CANCELLED = "cancelled"
    REBOOKED = "rebooked"


@dataclass(frozen=True)
class Facts:
    """What the hospital is the authority on."""

    starts_at: datetime
    site_id: int
    clinic: str
    specialty: str
    clinician: str
    duration_minutes: int
    mode: str
    transport_booked: bool
    interpreter_booked: bool
    status: str

    def moved_from(self, other: Facts) -> bool:
        """A change the patient must hear of: another time, place or kind of appointment."""
        return (self.starts_at, self.site_id, self.mode) != (other.starts_at, other.site_id, other.mode)

    def booked(self) -> bool:
        return self.status == HospitalStatus.BOOKED

    def as_data(self, site_code: str = "") -> dict[str, Any]:
        """For an event: what the hospital's record would need to say."""
        data: dict[str, Any] = {"start": self.starts_at.isoformat(), "status": str(self.status)}
        if site_code:
            data["site_code"] = site_code
        data.update(clinic=self.clinic, clinician=self.clinician, mode=str(self.mode))
        return data


@dataclass(frozen=True)
class HubChange:
    """A change the hub made and told the hospital about, which the hospital's updates do not reflect yet."""

    kind: ChangeKind
    facts: Facts  # the facts as the hub set them
    event_id: int | None = None  # the event that told the hospital; the store fills it in

    def reflected_by(self, update: Facts, *, now: datetime, names_time: bool = True) -> bool:
        """Whether a hospital update is clearly about the hub's version, so there is nothing left to protect.

        A hub cancel is reflected by the hospital's cancel, whatever time it names. A hub move is reflected only by
        an update that names the hub's time and site, whatever its status: a cancel (or any update) for the old time
        or for no time is about the appointment the hospital still holds, and applying it would undo the move.
        Attended or did not attend is a record of what happened: it settles either kind once the hub's time has come,
        for the hub's time and site. `names_time` is False when the hospital sent no time and its feed filled in the
        hub's own (an HL7 SIU^S15 or S26 without timing): then the time proves nothing."""
        if self.kind == ChangeKind.CANCELLED:
            if update.status == HospitalStatus.CANCELLED:
                return True
            if update.booked():
                return False
        # A hub cancel keeps the time the hospital set; a move's time is one only the hospital can echo.
        named = names_time or self.kind == ChangeKind.CANCELLED
        ours = named and update.starts_at == self.facts.starts_at and update.site_id == self.facts.site_id
        if update.status in (HospitalStatus.ATTENDED, HospitalStatus.DID_NOT_ATTEND):
            return ours and now >= self.facts.starts_at
        return ours


@dataclass(frozen=True)
class Appointment:
    """The state the lifecycle reads and writes."""

    facts: Facts  # what the patient sees: the hospital's facts, or the hub's change to them
    request_state: str = RequestState.NONE
    hub_change: HubChange | None = None
    held: Facts | None = None  # a hospital update held back as a conflict with the hub's change
    rebook_requests: int = 0  # online requests to rebook so far (the limit counts them)
    open_rebook_request: bool = False  # a rebook task still open or claimed


@dataclass(frozen=True)
class TaskClosure:
    """Close the appointment's open or claimed tasks of these kinds (all kinds when empty) with this outcome."""

    outcome: TaskOutcome
    kinds: tuple[TaskKind, ...] = ()


@dataclass(frozen=True)
class Event:
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    """The next state and what follows from it, applied whole in one transaction."""

    appointment: Appointment
    audit: AuditAction | None
    notice: MessageKind | None = None  # what the patient is told
    plan: Plan = Plan.KEEP
    close_tasks: tuple[TaskClosure, ...] = ()
    open_task: TaskKind | None = None
    task_reason: str = ""  # the new task's reason
    preferred_times: str = ""  # a rebook request's preferred times
    update_rebook_request: bool = False  # the patient changed their open rebook request
    void_confirmation: bool = False  # a new time: an open request no longer returns the patient to "confirmed"
    events: tuple[Event, ...] = ()
    bump_sequence: bool = False  # calendars must replace their copy
    reset_first_viewed: bool = False
    free_slots: bool = False  # the slot the hub booked the appointment into is no longer its own

    @property
    def changed(self) -> bool:
        return self.audit is not None


@dataclass(frozen=True)
class Refused:
    why_not: WhyNot


# What the patient may do online


@dataclass(frozen=True)
class ActionPolicy:
    cutoff: timedelta
    rebook_limit: int
    cancel_mode: str  # CancelMode


@dataclass(frozen=True)
class Allowed:
    confirm: bool
    rebook: bool
    cancel: bool
    why_not: WhyNot  # why changes (rebook, cancel) are not allowed; NONE when they are

    @property
    def any(self) -> bool:
        return self.confirm or self.rebook or self.cancel


def allowed_actions(
    *, status: str, request_state: str, starts_at: datetime, now: datetime, rebook_requests: int, policy: ActionPolicy
) -> Allowed:
    """Confirming stays possible until the appointment starts; the cut-off applies to changes only."""
    if status == HospitalStatus.CANCELLED:
        return Allowed(False, False, False, WhyNot.CANCELLED)
    if status != HospitalStatus.BOOKED or starts_at <= now:
        return Allowed(False, False, False, WhyNot.PAST)
    confirm = request_state in (RequestState.NONE, RequestState.CONFIRMED)
    if request_state == RequestState.CANCEL_REQUESTED:
        within = starts_at - now < policy.cutoff
        return Allowed(False, False, False, WhyNot.CUTOFF if within else WhyNot.PENDING)
    if starts_at - now < policy.cutoff:
        return Allowed(confirm, False, False, WhyNot.CUTOFF)
    return Allowed(confirm=confirm, rebook=rebook_requests < policy.rebook_limit, cancel=True, why_not=WhyNot.NONE)


# Where the list shows an appointment, and how far back it looks


def group_of(*, status: str, starts_at: datetime, duration_minutes: int, now: datetime) -> str:
    """'upcoming', 'past' or 'cancelled': where the list shows it."""
    if status == HospitalStatus.CANCELLED:
        return "cancelled"
    if status in (HospitalStatus.ATTENDED, HospitalStatus.DID_NOT_ATTEND):
        return "past"
    return "upcoming" if starts_at + timedelta(minutes=duration_minutes) > now else "past"


def past_horizon(now: datetime, months: int) -> datetime:
    """The same time of day `months` calendar months back (the last day of a shorter month)."""
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)
