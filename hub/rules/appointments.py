"""What a patient may do to an appointment, and when: pure rules over plain data."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.vocabulary import CancelMode, HospitalStatus, RequestState, WhyNot


@dataclass(frozen=True)
class ActionPolicy:
    cutoff: timedelta
    rebook_limit: int
    cancel_mode: CancelMode


@dataclass(frozen=True)
class Allowed:
    confirm: bool
    rebook: bool
    cancel: bool
    why_not: WhyNot  # WhyNot.NONE when something is allowed

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
    if status == HospitalStatus.CANCELLED:
        return Allowed(False, False, False, WhyNot.CANCELLED)
    if status != HospitalStatus.BOOKED or starts_at <= now:
        return Allowed(False, False, False, WhyNot.PAST)
    if starts_at - now < policy.cutoff:
        return Allowed(False, False, False, WhyNot.CUTOFF)
    if request_state == RequestState.CANCEL_REQUESTED:
        return Allowed(False, False, False, WhyNot.PENDING)
    return Allowed(
        confirm=request_state in (RequestState.NONE, RequestState.CONFIRMED),
        rebook=rebook_requests < policy.rebook_limit,
        cancel=True,
        why_not=WhyNot.NONE,
    )


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
