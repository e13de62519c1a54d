"""Time: stored as aware UTC, shown in Europe/London. A clock object so tests control time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
_DB_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, **kwargs: float) -> None:
        self._at += timedelta(**kwargs)

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)


def to_db(at: datetime) -> str:
    """Fixed-width UTC text: sorts and compares correctly as a string on every backend."""
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return at.astimezone(UTC).strftime(_DB_FORMAT)


def from_db(text: str) -> datetime:
    # fromisoformat reads the fixed-width form (Z included) many times faster than strptime.
    return datetime.fromisoformat(text).astimezone(UTC)


def london(at: datetime) -> datetime:
    return at.astimezone(LONDON)


# English names whatever the machine's locale (strftime's %A and %B follow LC_TIME).
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def format_date(at: datetime) -> str:
    """'Thursday 3 December 2026', in London."""
    return _date(london(at))


def format_time(at: datetime) -> str:
    """'9:30am', '2pm', in London."""
    return _time(london(at))


def format_when(at: datetime) -> str:
    """'Thursday 3 December 2026 at 9:30am', in London."""
    local = london(at)
    return f"{_date(local)} at {_time(local)}"


def _date(local: datetime) -> str:
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"


def _time(local: datetime) -> str:
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    shown = f"{hour}{suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d}{suffix}"
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        # The night the clocks go back, 1am to 2am happens twice: say which (BST, then GMT).
        shown += f" {local.tzname()}"
    return shown


def format_duration(seconds: int) -> str:
    """How long, as a page says it: '2 and a half minutes', '30 minutes', '3 days', '36 hours', '45 seconds'."""
    if seconds % 86_400 == 0:
        return plural(seconds // 86_400, "day")
    if seconds % 3_600 == 0:
        return plural(seconds // 3_600, "hour")
    if seconds < 60:
        return plural(seconds, "second")
    minutes, rest = divmod(seconds, 60)
    if rest == 0:
        return plural(minutes, "minute")
    if rest == 30:
        return f"{minutes} and a half minutes"
    return f"{plural(minutes, 'minute')} and {plural(rest, 'second')}"


def format_birth_date(iso: str) -> str:
    """'1948-03-14' -> '14 March 1948'; anything else as it is."""
    try:
        born = date.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    return f"{born.day} {_MONTHS[born.month - 1]} {born.year}"


def format_working_days(count: int) -> str:
    """How long a task has waited: '0 working days' read as a fault."""
    return "Less than a working day" if count < 1 else plural(count, "working day")


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
