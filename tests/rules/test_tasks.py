"""Booking-centre task rules: age in working days against the service level, retries, the new time an agent types."""

from datetime import UTC, date, datetime, timedelta

import pytest

from hub.clock import LONDON
from hub.rules.tasks import (
    QueuePolicy,
    after_no_answer,
    claim_until,
    may_email,
    parse_new_start,
    sla_state,
    working_age,
    working_days_between,
)

QUEUE = QueuePolicy(sla_working_days=2, claim=timedelta(minutes=30), retry=timedelta(minutes=120), max_attempts=3)
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_working_days_skip_weekends() -> None:
    friday, saturday, monday = date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 23)
    assert working_days_between(friday, friday) == 0
    assert working_days_between(friday, saturday) == 0
    assert working_days_between(friday, monday) == 1
    assert working_days_between(saturday, monday) == 1
    assert working_days_between(monday, monday + timedelta(days=14)) == 10
    assert working_days_between(friday, date(2026, 11, 25)) == 3
    assert [sla_state(age, 2) for age in (1, 2, 3)] == ["ok", "due", "overdue"]


def test_retries_then_a_letter() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert after_no_answer(0, now=now, policy=QUEUE) == (1, now + timedelta(minutes=120))
    assert after_no_answer(2, now=now, policy=QUEUE) == (3, None)


def test_new_start_is_read_in_london_time() -> None:
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert parse_new_start("3", "12", "2026", "2:30pm", now=now) == datetime(2026, 12, 3, 14, 30, tzinfo=LONDON)
    assert parse_new_start("3", "7", "2027", "09:15", now=now) == datetime(2027, 7, 3, 8, 15, tzinfo=UTC)
    assert parse_new_start("31", "2", "2027", "9:00", now=now) == "Enter a real date, for example 3 12 2026"
    assert "time" in str(parse_new_start("3", "12", "2026", "25:00", now=now))
    assert "future" in str(parse_new_start("1", "1", "2020", "9:00", now=now))
    # The hour the clocks change: skipped in March, repeated in October.
    assert parse_new_start("28", "3", "2027", "1:30am", now=now) == (
        "There is no 1:30am that night: the clocks go forward an hour. Enter another time"
    )
    assert parse_new_start("31", "10", "2027", "01:15", now=now) == (
        "1:15am happens twice that night: the clocks go back an hour. Enter another time"
    )
    assert parse_new_start("28", "3", "2027", "2:00am", now=now) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


def test_age_is_counted_in_london_days() -> None:
    late_monday = datetime(2026, 6, 8, 23, 30, tzinfo=UTC)  # already Tuesday in London (BST)
    assert working_age(late_monday, datetime(2026, 6, 9, 10, 0, tzinfo=UTC)) == 0
    winter_monday = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # still Monday in London (GMT)
    assert working_age(winter_monday, datetime(2026, 12, 8, 10, 0, tzinfo=UTC)) == 1


@pytest.mark.parametrize(
    ("text", "hour", "minute"),
    [("14:30", 14, 30), ("2:30pm", 14, 30), ("2.30 PM", 14, 30), ("12am", 0, 0), ("12pm", 12, 0), ("9", 9, 0)],
)
def test_times_are_read_as_people_write_them(text: str, hour: int, minute: int) -> None:
    assert parse_new_start("3", "12", "2026", text, now=NOW) == datetime(2026, 12, 3, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize("text", ["", "noon", "13pm", "0am", "9:75", "24:00", "-1", "²", "9:①"])
def test_times_that_are_not_times_are_refused(text: str) -> None:
    assert parse_new_start("3", "12", "2026", text, now=NOW) == "Enter a time, for example 14:30 or 2:30pm"


def test_the_last_attempt_is_the_policys() -> None:
    policy = QueuePolicy(sla_working_days=2, claim=timedelta(minutes=30), retry=timedelta(hours=1), max_attempts=1)
    assert after_no_answer(0, now=NOW, policy=policy) == (1, None)
    assert after_no_answer(1, now=NOW, policy=QUEUE) == (2, NOW + timedelta(minutes=120))


def test_working_days_over_whole_weeks_and_the_days_left() -> None:
    monday = date(2026, 11, 23)
    # Two whole weeks and a Monday to Thursday: the days left are counted from the third Monday, not the first.
    assert working_days_between(monday, monday + timedelta(days=17)) == 13
    assert working_days_between(monday, monday + timedelta(days=19)) == 14  # and the third weekend is skipped
    assert working_days_between(monday, monday - timedelta(days=3)) == 0
    # Seven whole weeks, then Tuesday to Saturday: the Saturday is not a working day.
    assert working_days_between(monday, monday + timedelta(days=54)) == 39


@pytest.mark.parametrize(
    ("text", "hour", "minute"),
    [("1am", 1, 0), ("1pm", 13, 0), ("12:59pm", 12, 59), ("23:59", 23, 59), ("0:00", 0, 0), ("11:59am", 11, 59)],
)
def test_times_at_the_edges_of_the_clock(text: str, hour: int, minute: int) -> None:
    assert parse_new_start("3", "12", "2026", text, now=NOW) == datetime(2026, 12, 3, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize("text", ["9:60", "23:60", "24:59"])
def test_a_minute_or_hour_one_past_the_clock_is_refused(text: str) -> None:
    assert parse_new_start("3", "12", "2026", text, now=NOW) == "Enter a time, for example 14:30 or 2:30pm"


def test_a_new_time_must_be_after_now() -> None:
    now = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)  # GMT: London time is UTC
    assert parse_new_start("3", "12", "2026", "14:30", now=now) == "The new time must be in the future"
    assert parse_new_start("3", "12", "2026", "14:31", now=now) == datetime(2026, 12, 3, 14, 31, tzinfo=LONDON)


def test_a_claim_lasts_the_policys_time() -> None:
    assert claim_until(NOW, QUEUE) == NOW + timedelta(minutes=30)


def test_a_new_start_with_a_huge_or_far_year_is_refused_not_an_error() -> None:
    # F6: a year or day of 10**20 raised OverflowError (not ValueError) and the outcome form answered 500.
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    huge = str(10**20)
    assert parse_new_start("3", "12", huge, "9:00", now=now) == "Enter a real date, for example 3 12 2026"
    assert parse_new_start(huge, "12", "2027", "9:00", now=now) == "Enter a real date, for example 3 12 2026"
    assert parse_new_start("3", "12", "9999", "9:00", now=now) == "The new time must be within 5 years"
    assert isinstance(parse_new_start("3", "12", "2031", "9:00", now=now), datetime)


def test_an_agent_may_email_only_a_patient_with_no_phone_and_an_email_they_have_not_stopped() -> None:
    reachable = {"mobile": None, "email": "a@example.com", "opted_out": 0, "email_opted_out": 0}
    assert may_email(reachable)
    assert not may_email({**reachable, "mobile": "+447700900001"})  # phone them
    assert not may_email({**reachable, "email": None})
    assert not may_email({**reachable, "opted_out": 1})  # no texts or emails, they said
    assert not may_email({**reachable, "email_opted_out": 1})  # the hospital stopped emails to that address
