"""What a patient may do to an appointment, and when: pure rules over plain data."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

CANCEL_REASONS = {
    "no_longer_needed": "I no longer need this appointment",
    "feeling_better": "I feel better",
    "treated_elsewhere": "I am being treated somewhere else",
    "cannot_attend": "I cannot come and do not want another date",
    "other": "Another reason",
}
MODES = {"in_person": "In person", "telephone": "By telephone", "video": "By video"}
STATUSES = {
    "booked": "Booked",
    "cancelled": "Cancelled",
    "attended": "Attended",
    "did_not_attend": "Did not attend",
}
REQUEST_STATES = {
    "none": "",
    "confirmed": "You confirmed you will attend",
    "rebook_requested": "You asked to change this appointment",
    "cancel_requested": "You asked to cancel this appointment",
}


@dataclass(frozen=True)
class ActionPolicy:
    cutoff: timedelta
    rebook_limit: int
    cancel_mode: str  # "request" or "immediate"


@dataclass(frozen=True)
class Allowed:
    confirm: bool
    rebook: bool
    cancel: bool
    why_not: str  # "" when something is allowed; otherwise one of: past, cancelled, closed, cutoff, pending

    @property
    def any(self) -> bool:
        return self.confirm or self.rebook or self.cancel


def allowed_actions(
    *,
    status: str,
    request_state: str,
    starts_at: datetime,
    now: datetime,
    rebook_requests: int,
    policy: ActionPolicy,
) -> Allowed:
    if status == "cancelled":
        return Allowed(False, False, False, "cancelled")
    if status != "booked" or starts_at <= now:
        return Allowed(False, False, False, "past")
    if starts_at - now < policy.cutoff:
        return Allowed(False, False, False, "cutoff")
    if request_state == "cancel_requested":
        return Allowed(False, False, False, "pending")
    return Allowed(
        confirm=request_state in ("none", "confirmed"),
        rebook=rebook_requests < policy.rebook_limit,
        cancel=True,
        why_not="",
    )


def group_of(*, status: str, starts_at: datetime, duration_minutes: int, now: datetime) -> str:
    """'upcoming', 'past' or 'cancelled': where the list shows it."""
    if status == "cancelled":
        return "cancelled"
    if status in ("attended", "did_not_attend"):
        return "past"
    return "upcoming" if starts_at + timedelta(minutes=duration_minutes) > now else "past"


def past_horizon(now: datetime, months: int) -> datetime:
    """The same time of day `months` calendar months back (the last day of a shorter month)."""
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)
