"""Reminders and escalation: what is scheduled when, and what a due notice does. Pure rules, no I/O.

Escalation (Leeds' rule, configurable): when the letter for an invitation is not viewed, reminder 1 at 24 h,
reminder 2 at 48 h, and at 72 h the letter goes by post. Viewing the letter stops the chain.
Pre-appointment reminders: days before the appointment; after the patient confirms, only some of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.vocabulary import (
    ESCALATION_PREFIX,
    ESCALATION_STEPS,
    REMINDER_PREFIX,
    HospitalStatus,
    MessageKind,
    RequestState,
    ScheduledKind,
    reminder_days,
    reminder_kind,
)


@dataclass(frozen=True)
class Schedule:
    escalation_hours: tuple[int, int, int]
    reminder_days: tuple[int, ...]
    reminder_days_after_confirm: tuple[int, ...]


def escalation_notices(invited_at: datetime, schedule: Schedule) -> list[tuple[str, datetime]]:
    return [
        (kind, invited_at + timedelta(hours=h))
        for kind, h in zip(ESCALATION_STEPS, schedule.escalation_hours, strict=True)
    ]


def reminder_notices(starts_at: datetime, now: datetime, schedule: Schedule) -> list[tuple[str, datetime]]:
    """Only reminders still ahead: an appointment booked 3 days out gets no 7-day reminder."""
    due = [(reminder_kind(days), starts_at - timedelta(days=days)) for days in schedule.reminder_days]
    return [(kind, at) for kind, at in due if at > now]


@dataclass(frozen=True)
class DueState:
    kind: str
    status: str
    request_state: str
    starts_at: datetime
    opened: bool  # the invitation's letter (or, with no letter, the appointment) has been viewed
    digital_ok: bool  # not opted out, and a mobile or email to send to
    posted: bool = False  # the invitation itself went (or is going) by post: after a STOP, or its text failed over


def decide(state: DueState, *, now: datetime, schedule: Schedule) -> MessageKind | str:
    """The kind of message to queue for a due notice, or 'skip:<why>'."""
    if state.status != HospitalStatus.BOOKED:
        return f"skip:{state.status}"
    if state.starts_at <= now:
        return "skip:past"
    if state.request_state == RequestState.CANCEL_REQUESTED:
        return "skip:cancel_requested"
    if state.kind.startswith(ESCALATION_PREFIX):
        if state.opened:
            return "skip:opened"
        if state.kind == ScheduledKind.ESCALATION_POST:
            # The patient has the letter already: posting it again would be a second paid copy.
            return "skip:posted" if state.posted else MessageKind.INVITATION_POST
        return MessageKind.INVITATION_REMINDER if state.digital_ok else "skip:no_digital"
    if state.kind.startswith(REMINDER_PREFIX):
        days = reminder_days(state.kind)
        if state.request_state == RequestState.CONFIRMED and days not in schedule.reminder_days_after_confirm:
            return "skip:confirmed"
        return MessageKind.APPOINTMENT_REMINDER if state.digital_ok else "skip:no_digital"
    return "skip:unknown"
