"""Reminders and escalation: what is scheduled when, and what a due notice does. Pure rules, no I/O.

Escalation (Leeds' rule, configurable): when the letter for an invitation is not viewed, reminder 1 at 24 h,
reminder 2 at 48 h, and at 72 h the letter goes by post. Viewing the letter stops the chain.
Pre-appointment reminders: days before the appointment; after the patient confirms, only some of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ESCALATION_STEPS = ("escalation_reminder_1", "escalation_reminder_2", "escalation_post")


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
    due = [(f"reminder_{days}d", starts_at - timedelta(days=days)) for days in schedule.reminder_days]
    return [(kind, at) for kind, at in due if at > now]


@dataclass(frozen=True)
class DueState:
    kind: str
    status: str
    request_state: str
    starts_at: datetime
    opened: bool  # the invitation's letter (or, with no letter, the appointment) has been viewed
    digital_ok: bool  # not opted out, and a mobile or email to send to


def decide(state: DueState, *, now: datetime, schedule: Schedule) -> str:
    """The outbox kind to queue for a due notice, or 'skip:<why>'."""
    if state.status != "booked":
        return f"skip:{state.status}"
    if state.starts_at <= now:
        return "skip:past"
    if state.request_state == "cancel_requested":
        return "skip:cancel_requested"
    if state.kind.startswith("escalation_"):
        if state.opened:
            return "skip:opened"
        if state.kind == "escalation_post":
            return "invitation_post"
        return "invitation_reminder" if state.digital_ok else "skip:no_digital"
    if state.kind.startswith("reminder_"):
        days = int(state.kind.removeprefix("reminder_").removesuffix("d"))
        if state.request_state == "confirmed" and days not in schedule.reminder_days_after_confirm:
            return "skip:confirmed"
        return "appointment_reminder" if state.digital_ok else "skip:no_digital"
    return "skip:unknown"
