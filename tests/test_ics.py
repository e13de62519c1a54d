from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import vobject

from hub.ics import CalendarEvent, build_calendar

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def make_event(
    *,
    uid: str = "appointment-42@hub.example.nhs.uk",
    sequence: int = 0,
    start: datetime = datetime(2026, 10, 24, 8, 30, tzinfo=UTC),
    duration_minutes: int = 30,
    summary: str = "Hospital appointment",
    description: str = "Bring a list of your medicines.",
    location: str = "St Example's Hospital, 1 Example Road, London SE1 7EH",
    url: str = "https://hub.example.nhs.uk/a/abc123",
    cancelled: bool = False,
) -> CalendarEvent:
    return CalendarEvent(
        uid=uid,
        sequence=sequence,
        start=start,
        duration_minutes=duration_minutes,
        summary=summary,
        description=description,
        location=location,
        url=url,
        cancelled=cancelled,
    )


def parse(data: bytes) -> Any:
    # vobject, not icalendar, so a fault shared by the writer and its own reader cannot hide.
    return vobject.readOne(data.decode("utf-8"))


def as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# (start in UTC, how DTSTART must be written). Wall times in the repeated October hour are written in UTC
# because clients disagree on which of the two instants a London wall time there means.
CLOCK_CHANGE_CASES = [
    (datetime(2026, 10, 24, 8, 30, tzinfo=UTC), "DTSTART;TZID=Europe/London:20261024T093000"),  # BST
    (datetime(2026, 10, 26, 9, 30, tzinfo=UTC), "DTSTART;TZID=Europe/London:20261026T093000"),  # GMT
    (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "DTSTART:20261025T003000Z"),  # 01:30 BST, first pass
    (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "DTSTART:20261025T013000Z"),  # 01:30 GMT, second pass
    (datetime(2026, 10, 25, 2, 0, tzinfo=UTC), "DTSTART;TZID=Europe/London:20261025T020000"),
    (datetime(2027, 3, 27, 9, 30, tzinfo=UTC), "DTSTART;TZID=Europe/London:20270327T093000"),  # GMT
    (datetime(2027, 3, 29, 8, 30, tzinfo=UTC), "DTSTART;TZID=Europe/London:20270329T093000"),  # BST
    (datetime(2027, 3, 28, 0, 30, tzinfo=UTC), "DTSTART;TZID=Europe/London:20270328T003000"),  # before
    (datetime(2027, 3, 28, 1, 30, tzinfo=UTC), "DTSTART;TZID=Europe/London:20270328T023000"),  # after
]


@pytest.mark.parametrize(("start", "line"), CLOCK_CHANGE_CASES)
def test_start_round_trips_across_clock_changes(start: datetime, line: str) -> None:
    data = build_calendar([make_event(start=start, duration_minutes=60)], now=NOW)

    event = parse(data).vevent
    assert line.encode() + b"\r\n" in data
    assert as_utc(event.dtstart.value) == start
    assert as_utc(event.dtend.value) == start + timedelta(minutes=60)
    assert event.dtend.value - event.dtstart.value == timedelta(minutes=60)


def test_local_start_carries_london_tzid() -> None:
    data = build_calendar([make_event(start=datetime(2026, 10, 24, 8, 30, tzinfo=UTC))], now=NOW)

    event = parse(data).vevent
    # vobject moves TZID into this parameter once it has resolved the time zone.
    assert event.dtstart.params["X-VOBJ-ORIGINAL-TZID"] == ["Europe/London"]
    assert event.dtend.params["X-VOBJ-ORIGINAL-TZID"] == ["Europe/London"]


def test_one_london_vtimezone_whose_rules_give_the_right_instants() -> None:
    starts = [start for start, _ in CLOCK_CHANGE_CASES]
    data = build_calendar([make_event(uid=f"{i}@x", start=s) for i, s in enumerate(starts)], now=NOW)

    calendar = parse(data)
    assert data.count(b"BEGIN:VTIMEZONE") == 1
    assert len(calendar.contents["vtimezone"]) == 1
    vtimezone = calendar.vtimezone
    assert vtimezone.tzid.value == "Europe/London"
    assert {c.name for c in vtimezone.getChildren()} >= {"STANDARD", "DAYLIGHT"}
    # vobject resolves a known TZID with pytz, so read the wall times again through the VTIMEZONE itself.
    rules = vtimezone.gettzinfo()
    for start, event in zip(starts, calendar.vevent_list, strict=True):
        wall = event.dtstart.value
        if "X-VOBJ-ORIGINAL-TZID" in event.dtstart.params:
            wall = wall.replace(tzinfo=rules)
        assert as_utc(wall) == start


def test_confirmed_event_properties() -> None:
    event = make_event(uid="appointment-7@hub.example.nhs.uk", sequence=3, duration_minutes=45)

    calendar = parse(build_calendar([event], now=NOW))
    parsed = calendar.vevent
    assert parsed.uid.value == "appointment-7@hub.example.nhs.uk"
    assert parsed.sequence.value == "3"
    assert parsed.dtstamp.value == NOW
    assert parsed.summary.value == "Hospital appointment"
    assert parsed.description.value == "Bring a list of your medicines."
    assert parsed.location.value == "St Example's Hospital, 1 Example Road, London SE1 7EH"
    assert parsed.url.value == "https://hub.example.nhs.uk/a/abc123"
    assert parsed.status.value == "CONFIRMED"
    assert parsed.transp.value == "OPAQUE"
    assert parsed.dtend.value - parsed.dtstart.value == timedelta(minutes=45)
    assert len(parsed.contents["valarm"]) == 1
    assert parsed.valarm.action.value == "DISPLAY"
    assert parsed.valarm.description.value == "Hospital appointment"
    assert parsed.valarm.trigger.value == timedelta(days=-1)


def test_cancelled_event_has_status_and_no_alarm() -> None:
    data = build_calendar([make_event(sequence=5, cancelled=True)], now=NOW)

    parsed = parse(data).vevent
    assert parsed.status.value == "CANCELLED"
    assert parsed.sequence.value == "5"
    assert "valarm" not in parsed.contents
    assert b"BEGIN:VALARM" not in data


def test_empty_description_and_location_are_left_out() -> None:
    data = build_calendar([make_event(description="", location="")], now=NOW)

    parsed = parse(data).vevent
    assert "description" not in parsed.contents
    assert "location" not in parsed.contents
    assert parsed.url.value == "https://hub.example.nhs.uk/a/abc123"


def test_calendar_header() -> None:
    calendar = parse(build_calendar([make_event()], now=NOW, name="Appointments for J Smith"))

    assert calendar.version.value == "2.0"
    assert calendar.prodid.value == "-//NHS appointment hub//EN"
    assert calendar.method.value == "PUBLISH"
    assert calendar.calscale.value == "GREGORIAN"
    assert calendar.x_wr_calname.value == "Appointments for J Smith"


def test_several_events_each_round_trip() -> None:
    events = [
        make_event(uid="appointment-1@x", sequence=0, start=datetime(2026, 10, 24, 8, 30, tzinfo=UTC)),
        make_event(uid="appointment-2@x", sequence=2, start=datetime(2026, 10, 26, 9, 30, tzinfo=UTC)),
        make_event(uid="appointment-3@x", sequence=1, start=datetime(2027, 3, 27, 9, 30, tzinfo=UTC)),
        make_event(uid="appointment-4@x", sequence=4, start=datetime(2027, 3, 29, 8, 30, tzinfo=UTC), cancelled=True),
        # Crosses New Year in London, so the VTIMEZONE must cover both years.
        make_event(uid="appointment-5@x", start=datetime(2027, 12, 31, 23, 30, tzinfo=UTC), duration_minutes=90),
    ]

    calendar = parse(build_calendar(events, now=NOW))
    by_uid = {parsed.uid.value: parsed for parsed in calendar.vevent_list}
    assert sorted(by_uid) == [event.uid for event in events]
    for event in events:
        parsed = by_uid[event.uid]
        assert as_utc(parsed.dtstart.value) == event.start
        assert parsed.dtend.value - parsed.dtstart.value == timedelta(minutes=event.duration_minutes)
        assert parsed.sequence.value == str(event.sequence)
        assert parsed.status.value == ("CANCELLED" if event.cancelled else "CONFIRMED")
        assert ("valarm" in parsed.contents) is not event.cancelled
    assert len(calendar.contents["vtimezone"]) == 1


def test_no_events_still_gives_a_calendar_with_its_timezone() -> None:
    calendar = parse(build_calendar([], now=NOW))

    assert "vevent" not in calendar.contents
    assert calendar.vtimezone.tzid.value == "Europe/London"


def test_output_uses_crlf_and_folds_long_lines() -> None:
    data = build_calendar([make_event(description="Please arrive early. " * 10)], now=NOW)

    lines = data.split(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines)
    assert parse(data).vevent.description.value == "Please arrive early. " * 10


@pytest.mark.parametrize(
    "changes",
    [
        {"start": datetime(2026, 10, 24, 8, 30)},
        {"duration_minutes": 0},
        {"duration_minutes": -15},
        {"summary": ""},
    ],
)
def test_invalid_event_raises(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_event(**changes)


def test_naive_now_raises() -> None:
    with pytest.raises(ValueError, match="now"):
        build_calendar([make_event()], now=datetime(2026, 9, 1, 12, 0))
