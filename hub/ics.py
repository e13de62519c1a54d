from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event, Timezone
from icalendar.enums import STATUS, TRANSP

LONDON = ZoneInfo("Europe/London")
PRODID = "-//NHS appointment hub//EN"


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    sequence: int
    start: datetime
    duration_minutes: int
    summary: str
    description: str
    location: str
    url: str
    cancelled: bool

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        if self.duration_minutes <= 0:
            raise ValueError("duration_minutes must be positive")
        if not self.summary:
            # Calendar apps show an untitled entry and the reminder would have no text.
            raise ValueError("summary must not be empty")

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_minutes)


def _wall_time(instant: datetime) -> datetime:
    local = instant.astimezone(LONDON)
    # A wall time in the repeated hour of the October change names two instants. RFC 5545 says a client takes
    # the first, but some (vobject, via pytz) take the second, so only UTC is safe there.
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        return instant.astimezone(UTC)
    return local


def _london_timezone(events: Sequence[CalendarEvent], now: datetime) -> Timezone:
    # icalendar lists each clock change as an RDATE rather than a rule, so cover whole years around the
    # events, not 1970-2038, to keep the file small.
    instants = [e.start for e in events] + [e.end for e in events] or [now]
    first, last = min(instants).astimezone(LONDON).year, max(instants).astimezone(LONDON).year
    return Timezone.from_tzinfo(LONDON, "Europe/London", date(first, 1, 1), date(last + 1, 1, 1))


def _event(event: CalendarEvent, stamp: datetime) -> Event:
    alarms = [] if event.cancelled else [Alarm.new_display(event.summary, timedelta(days=-1))]
    return Event.new(
        uid=event.uid,
        sequence=event.sequence,
        stamp=stamp,
        start=_wall_time(event.start),
        end=_wall_time(event.end),
        summary=event.summary,
        description=event.description or None,
        location=event.location or None,
        url=event.url,
        status=STATUS.CANCELLED if event.cancelled else STATUS.CONFIRMED,
        transparency=TRANSP.OPAQUE,
        subcomponents=alarms,
    )


def build_calendar(events: Sequence[CalendarEvent], *, now: datetime, name: str = "Hospital appointments") -> bytes:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    calendar = Calendar()
    calendar.version = "2.0"
    calendar.prodid = PRODID
    calendar.calscale = "GREGORIAN"
    calendar.method = "PUBLISH"
    calendar.calendar_name = name
    # Added even with no events: a VCALENDAR needs at least one component to be valid.
    calendar.add_component(_london_timezone(events, now))
    stamp = now.astimezone(UTC)
    for event in events:
        calendar.add_component(_event(event, stamp))
    return calendar.to_ical()
