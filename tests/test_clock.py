from datetime import UTC, datetime

import pytest

from hub.clock import (
    LONDON,
    format_birth_date,
    format_date,
    format_duration,
    format_time,
    format_when,
    format_working_days,
    from_db,
    to_db,
)


@pytest.mark.parametrize(
    ("utc", "date", "time"),
    [
        # The autumn change: 01:30 happens twice in London, first in BST, then in GMT; pages and texts say which.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "Sunday 25 October 2026", "1:30am BST"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "Sunday 25 October 2026", "1:30am GMT"),
        (datetime(2026, 10, 25, 0, 0, tzinfo=UTC), "Sunday 25 October 2026", "1am BST"),
        (datetime(2026, 10, 24, 23, 59, tzinfo=UTC), "Sunday 25 October 2026", "12:59am"),
        (datetime(2026, 10, 25, 2, 0, tzinfo=UTC), "Sunday 25 October 2026", "2am"),
        # The spring change: 01:00 UTC is 02:00 BST (01:00 to 01:59 never happens in London).
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Sunday 29 March 2026", "2am"),
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "Sunday 29 March 2026", "12:59am"),
        # Late on 30 June in UTC is already 1 July in London.
        (datetime(2026, 6, 30, 23, 0, tzinfo=UTC), "Wednesday 1 July 2026", "12am"),
        (datetime(2026, 12, 3, 12, 5, tzinfo=UTC), "Thursday 3 December 2026", "12:05pm"),
        (datetime(2027, 1, 1, 21, 0, tzinfo=UTC), "Friday 1 January 2027", "9pm"),
    ],
)
def test_dates_and_times_are_shown_in_london(utc: datetime, date: str, time: str) -> None:
    assert format_date(utc) == date
    assert format_time(utc) == time
    assert format_when(utc) == f"{date} at {time}"


def test_every_day_and_month_has_its_english_name() -> None:
    days = {format_date(datetime(2026, 6, day, 12, tzinfo=UTC)).split()[0] for day in range(1, 8)}
    assert days == {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
    months = [format_date(datetime(2026, month, 15, 12, tzinfo=UTC)).split()[2] for month in range(1, 13)]
    assert months == [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (150, "2 and a half minutes"),
        (90, "1 and a half minutes"),
        (60, "1 minute"),
        (1800, "30 minutes"),
        (100, "1 minute and 40 seconds"),
        (45, "45 seconds"),
        (1, "1 second"),
        (3600, "1 hour"),
        (36 * 3600, "36 hours"),
        (72 * 3600, "3 days"),
        (86_400, "1 day"),
    ],
)
def test_durations_read_as_a_page_says_them(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_to_db_refuses_a_naive_datetime_and_stores_utc() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        to_db(datetime(2026, 11, 21, 10, 0))
    assert to_db(datetime(2026, 6, 21, 10, 0, tzinfo=LONDON)) == "2026-06-21T09:00:00.000000Z"
    assert from_db(to_db(datetime(2026, 6, 21, 10, 0, 0, 5, tzinfo=UTC))) == datetime(
        2026, 6, 21, 10, 0, 0, 5, tzinfo=UTC
    )


def test_staff_see_dates_of_birth_and_waiting_times_in_words() -> None:
    assert format_birth_date("1948-03-14") == "14 March 1948"
    assert format_birth_date("not a date") == "not a date"
    assert format_working_days(0) == "Less than a working day"
    assert format_working_days(1) == "1 working day"
    assert format_working_days(3) == "3 working days"
