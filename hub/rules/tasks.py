"""Task queue rules: a task's age in working days against the service level, and when to try again.
Pure functions over plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hub.clock import LONDON, london
from hub.vocabulary import SlaState


@dataclass(frozen=True)
class QueuePolicy:
    sla_working_days: int
    claim: timedelta
    retry: timedelta
    max_attempts: int


def working_days_between(start: date, end: date) -> int:
    """Weekdays after `start` up to and including `end`: a task from Friday is 1 working day old on Monday."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(1, rest + 1):
        if (start + timedelta(days=weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def working_age(created_at: datetime, now: datetime) -> int:
    return working_days_between(london(created_at).date(), london(now).date())


def sla_state(age: int, sla: int) -> SlaState:
    if age > sla:
        return SlaState.OVERDUE
    return SlaState.DUE if age == sla else SlaState.OK


def claim_until(now: datetime, policy: QueuePolicy) -> datetime:
    return now + policy.claim


def after_no_answer(attempts: int, *, now: datetime, policy: QueuePolicy) -> tuple[int, datetime | None]:
    """(attempts so far, when to call again); None when the calls are over and a letter goes instead."""
    attempts += 1
    if attempts >= policy.max_attempts:
        return attempts, None
    return attempts, now + policy.retry


def may_email(patient: Mapping[str, Any]) -> bool:
    """Whether an agent may email the patient to ring the booking team: nobody can phone them (no number), and they
    have an email address they have not stopped (nor all texts and emails)."""
    return (
        not patient["mobile"] and bool(patient["email"]) and not patient["opted_out"] and not patient["email_opted_out"]
    )


REBOOK_YEARS_AHEAD = 5  # no clinic books further ahead; a later year is a typing slip


DATE_ERROR = "Enter a real date, for example 3 12 2026"
TIME_ERROR = "Enter a time, for example 14:30 or 2:30pm"


def parse_date(day: str, month: str, year: str) -> date | str:
    try:
        return date(int(year), int(month), int(day))
    except (ValueError, OverflowError):  # a year of 10**20 overflows rather than being out of range
        return DATE_ERROR


def parse_time(time_text: str) -> tuple[int, int] | str:
    """(hour, minute) from 14:30, 2:30pm, 9.15 or 9am; or what is wrong with it."""
    text = time_text.strip().lower().replace(".", ":").replace(" ", "")
    suffix = text[-2:] if text.endswith(("am", "pm")) else ""
    hours, _, minutes = text.removesuffix(suffix).partition(":")
    # int() reads any decimal digit, but isdigit() also passes "²" and "①", which it refuses.
    if not hours.isdecimal() or (minutes and not minutes.isdecimal()):
        return TIME_ERROR
    hour, minute = int(hours), int(minutes or 0)
    if suffix:
        if not 1 <= hour <= 12:
            return TIME_ERROR
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return TIME_ERROR
    return hour, minute


def new_start_errors(day: str, month: str, year: str, time_text: str) -> dict[str, str]:
    """Every field an agent got wrong at once ("day" for the date, "time"), so they fix both in one go."""
    errors = {}
    if isinstance(date_error := parse_date(day, month, year), str):
        errors["day"] = date_error
    if isinstance(time_error := parse_time(time_text), str):
        errors["time"] = time_error
    return errors


def parse_new_start(day: str, month: str, year: str, time_text: str, *, now: datetime) -> datetime | str:
    """The new appointment time an agent typed (London time), or what is wrong with it."""
    local_date = parse_date(day, month, year)
    if isinstance(local_date, str):
        return local_date
    clock_time = parse_time(time_text)
    if isinstance(clock_time, str):
        return clock_time
    hour, minute = clock_time
    starts_at = datetime(local_date.year, local_date.month, local_date.day, hour, minute, tzinfo=LONDON)
    if (changed := _clock_change(starts_at)) is not None:
        return changed
    if starts_at <= now:
        return "The new time must be in the future"
    if starts_at.year > now.year + REBOOK_YEARS_AHEAD:
        return f"The new time must be within {REBOOK_YEARS_AHEAD} years"
    return starts_at


def _clock_change(local: datetime) -> str | None:
    """What is wrong with a London time in the hour the clocks change, or None: the night they go forward it never
    happens, the night they go back it happens twice (which of the two the patient was told is not ours to guess)."""
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() == local.utcoffset():
        return None
    shown = f"{local.hour % 12 or 12}:{local.minute:02d}{'am' if local.hour < 12 else 'pm'}"
    if london(local.astimezone(UTC)).replace(tzinfo=None) != local.replace(tzinfo=None):
        return f"There is no {shown} that night: the clocks go forward an hour. Enter another time"
    return f"{shown} happens twice that night: the clocks go back an hour. Enter another time"
