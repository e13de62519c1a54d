"""When and how to send: what a failed attempt means, backoff, quiet hours, Notify's daily reset. No I/O."""

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from hub.rules.sending import (
    SUPERSEDES,
    RetryPolicy,
    Verdict,
    attempts_used_up,
    backoff,
    hub_refused,
    in_quiet_hours,
    is_urgent,
    judge_failure,
    message_to_queue,
    next_quiet_end,
    next_utc_midnight,
    no_longer_true,
    postal_address,
)
from hub.vocabulary import MessageKind

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def judge(status: int | None, error: str = "", attempts: int = 1) -> Verdict:
    return judge_failure(status=status, error=error, attempts=attempts, now=NOW, policy=POLICY, rng=random.Random(1))


def test_the_daily_limit_holds_the_channel_until_midnight_utc_without_using_an_attempt() -> None:
    assert judge(429, "TooManyRequestsError") == Verdict(
        "hold_channel", retry_at=datetime(2026, 11, 22, tzinfo=UTC), counts=False
    )


def test_the_rate_limit_waits_a_little_without_using_an_attempt() -> None:
    assert judge(429, "RateLimitError") == Verdict("retry", retry_at=NOW + timedelta(seconds=10), counts=False)


@pytest.mark.parametrize("error", ["ValidationError", "BadRequestError"])
def test_a_refusal_fails_at_once_and_is_never_looked_up(error: str) -> None:
    assert judge(400, error, attempts=1) == Verdict("failed")


def test_a_refused_key_or_clock_holds_the_channel_a_little_without_using_an_attempt() -> None:
    # The hub's fault, not the message's: nothing fails, nothing goes another way.
    assert hub_refused(403) and not hub_refused(400)
    assert judge(403, "AuthError", attempts=1) == Verdict(
        "hold_channel", retry_at=NOW + timedelta(minutes=5), counts=False
    )


@pytest.mark.parametrize("status", [None, 500, 502, 503, 504])
def test_no_answer_or_a_server_error_is_retried_and_looked_up_first(status: int | None) -> None:
    verdict = judge(status, attempts=1)
    assert verdict.outcome == "retry" and verdict.check_first and verdict.counts
    assert verdict.retry_at is not None and NOW + timedelta(seconds=15) <= verdict.retry_at <= NOW + timedelta(
        seconds=30
    )


def test_after_the_last_attempt_it_is_looked_up_not_failed() -> None:
    # Notify may have it: only the look-up the next claim makes can say it failed.
    last = judge(500, attempts=POLICY.max_attempts)
    assert (last.outcome, last.check_first) == ("retry", True)
    assert attempts_used_up(POLICY.max_attempts, POLICY)
    assert not attempts_used_up(POLICY.max_attempts - 1, POLICY)


@pytest.mark.parametrize(
    ("attempts", "cap"), [(0, 30), (1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (10**6, 3600)]
)
def test_backoff_doubles_up_to_the_ceiling_with_full_jitter(attempts: int, cap: int) -> None:
    rng = random.Random(7)
    waits = [backoff(attempts, POLICY, rng).total_seconds() for _ in range(200)]
    assert all(cap / 2 <= w <= cap for w in waits)
    assert max(waits) - min(waits) > cap / 4  # spread out, not all at once


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        (NOW, datetime(2026, 11, 22, tzinfo=UTC)),
        (datetime(2026, 6, 30, 23, 30, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),
        (datetime(2026, 7, 1, 0, 30, tzinfo=UTC).astimezone(UTC), datetime(2026, 7, 2, tzinfo=UTC)),
    ],
)
def test_notifys_limits_reset_at_midnight_utc(now: datetime, midnight: datetime) -> None:
    assert next_utc_midnight(now) == midnight


@pytest.mark.parametrize(
    ("utc", "quiet"),
    [
        (datetime(2026, 11, 21, 19, 59, tzinfo=UTC), False),  # GMT: London time is UTC
        (datetime(2026, 11, 21, 20, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 22, 7, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 22, 8, 0, tzinfo=UTC), False),
        (datetime(2026, 6, 21, 18, 59, tzinfo=UTC), False),  # BST: 19:59 in London
        (datetime(2026, 6, 21, 19, 0, tzinfo=UTC), True),  # 20:00 in London
        (datetime(2026, 6, 22, 6, 59, tzinfo=UTC), True),
        (datetime(2026, 6, 22, 7, 0, tzinfo=UTC), False),  # 08:00 in London
    ],
)
def test_quiet_hours_are_london_evenings_and_nights(utc: datetime, quiet: bool) -> None:
    assert in_quiet_hours(utc, start=20, end=8) is quiet


def test_quiet_hours_that_do_not_cross_midnight_and_none_at_all() -> None:
    assert not in_quiet_hours(datetime(2026, 11, 21, 11, 59, tzinfo=UTC), start=12, end=14)
    assert in_quiet_hours(datetime(2026, 11, 21, 12, 0, tzinfo=UTC), start=12, end=14)
    assert in_quiet_hours(datetime(2026, 11, 21, 13, 59, tzinfo=UTC), start=12, end=14)
    assert not in_quiet_hours(datetime(2026, 11, 21, 14, 0, tzinfo=UTC), start=12, end=14)
    assert not in_quiet_hours(datetime(2026, 11, 21, 23, 0, tzinfo=UTC), start=12, end=14)
    assert not in_quiet_hours(datetime(2026, 11, 21, 1, 0, tzinfo=UTC), start=12, end=14)
    assert not any(in_quiet_hours(NOW + timedelta(hours=h), start=0, end=0) for h in range(24))


def test_backoff_is_drawn_from_the_whole_jitter_range() -> None:
    # Full jitter: uniform over [cap / 2, cap], drawn from the rng it is given (so the same seed, the same wait).
    first = [backoff(3, POLICY, random.Random(3)) for _ in range(2)]
    assert first[0] == first[1] == timedelta(seconds=random.Random(3).uniform(60, 120))
    rng = random.Random(5)
    waits = [backoff(3, POLICY, rng).total_seconds() for _ in range(500)]
    assert min(waits) < 65 and max(waits) > 115


def test_the_retry_ceiling_is_one_hour_and_a_smaller_one_is_kept() -> None:
    assert POLICY.ceiling == timedelta(hours=1)
    rng = random.Random(2)
    assert max(backoff(attempts, POLICY, rng) for attempts in range(1, 60) for _ in range(20)) <= timedelta(hours=1)
    low = RetryPolicy(ceiling=timedelta(seconds=45))
    assert all(22.5 <= backoff(3, low, rng).total_seconds() <= 45 for _ in range(100))


@pytest.mark.parametrize(
    ("now", "end"),
    [
        (datetime(2026, 11, 21, 21, 0, tzinfo=UTC), datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),  # evening: tomorrow
        (datetime(2026, 11, 22, 7, 59, tzinfo=UTC), datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),  # early: today
        (datetime(2026, 11, 22, 8, 0, tzinfo=UTC), datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),  # just over: the next
        (datetime(2026, 6, 21, 20, 0, tzinfo=UTC), datetime(2026, 6, 22, 7, 0, tzinfo=UTC)),  # BST: 08:00 London
    ],
)
def test_quiet_hours_end_at_the_next_end_hour_in_london(now: datetime, end: datetime) -> None:
    assert next_quiet_end(now, start=20, end=8) == end
    assert next_quiet_end(now, start=20, end=8).tzinfo == UTC


def test_no_quiet_hours_end_now() -> None:
    assert next_quiet_end(NOW, start=9, end=9) == NOW


def test_a_message_about_an_appointment_before_the_quiet_hours_end_is_urgent() -> None:
    evening = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)  # the quiet hours end at 08:00 tomorrow
    margin = timedelta(hours=1)
    assert is_urgent(datetime(2026, 11, 22, 8, 59, tzinfo=UTC), evening, start=20, end=8, margin=margin)
    assert not is_urgent(datetime(2026, 11, 22, 9, 0, tzinfo=UTC), evening, start=20, end=8, margin=margin)


def test_what_a_new_message_withdraws() -> None:
    assert message_to_queue(MessageKind.CANCELLED, set()) == (MessageKind.CANCELLED, SUPERSEDES[MessageKind.CANCELLED])
    assert message_to_queue(MessageKind.CHANGED, {"changed"}) == (
        MessageKind.CHANGED,
        frozenset({MessageKind.CHANGED, MessageKind.APPOINTMENT_REMINDER}),
    )
    # A change while the invitation still waits is a new invitation, and the old one goes.
    assert message_to_queue(MessageKind.CHANGED, {"invitation"}) == (
        MessageKind.INVITATION,
        frozenset({MessageKind.CHANGED, MessageKind.APPOINTMENT_REMINDER, MessageKind.INVITATION}),
    )
    assert message_to_queue(MessageKind.APPOINTMENT_REMINDER, {"invitation"}) == (
        MessageKind.APPOINTMENT_REMINDER,
        frozenset(),
    )


def test_a_postal_address_is_the_name_up_to_six_lines_and_the_postcode_last() -> None:
    assert postal_address(" Ann Smith ", ["1 Pond Street", " ", "London"], "nw32qg") == [
        "Ann Smith",
        "1 Pond Street",
        "London",
        "NW3 2QG",
    ]
    many = postal_address("Ann", [f"line {n}" for n in range(1, 9)], "NW3 2QG")
    assert many == ["Ann", "line 1", "line 2", "line 3", "line 4", "line 5", "NW3 2QG"]  # Notify's 7 lines


def test_notify_refuses_an_address_of_fewer_than_three_lines_or_without_a_postcode() -> None:
    assert postal_address("Ann", ["London"], "NW3 2QG") == ["Ann", "London", "NW3 2QG"]
    assert postal_address("Ann", [""], "NW3 2QG") is None
    assert postal_address("Ann", ["London"], "") is None
    assert postal_address("Ann", ["London"], "not a postcode") is None


def test_notifys_midnight_is_utcs_whatever_the_machines_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/London")
    time.tzset()
    try:
        # 23:30 UTC on 30 June is 00:30 on 1 July in London: Notify resets at 00:00 UTC on 1 July all the same.
        assert next_utc_midnight(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == datetime(2026, 7, 1, tzinfo=UTC)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_with_no_quiet_hours_only_the_margin_makes_a_message_urgent() -> None:
    margin = timedelta(hours=1)
    assert is_urgent(NOW + timedelta(minutes=59), NOW, start=9, end=9, margin=margin)
    assert not is_urgent(NOW + timedelta(hours=2), NOW, start=9, end=9, margin=margin)


@pytest.mark.parametrize(
    ("zone", "now", "end"),
    [
        ("Asia/Tokyo", datetime(2026, 11, 21, 21, 0, tzinfo=UTC), datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
        # 09:00 in London is 23:00 the day before in Honolulu: the quiet hours end tomorrow, not at 08:00 today.
        ("Pacific/Honolulu", datetime(2026, 11, 22, 9, 0, tzinfo=UTC), datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
    ],
)
def test_the_end_of_quiet_hours_is_londons_whatever_the_machines_time_zone(
    monkeypatch: pytest.MonkeyPatch, zone: str, now: datetime, end: datetime
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        found = next_quiet_end(now, start=20, end=8)
        assert found == end and found.utcoffset() == timedelta(0)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("kind", "status", "request_state", "days", "opened", "why"),
    [
        (MessageKind.INVITATION, "booked", "none", 3, False, None),
        (MessageKind.INVITATION, "cancelled", "none", 3, False, "appointment cancelled"),
        (MessageKind.CHANGED, "attended", "none", 3, False, "appointment attended"),
        (MessageKind.INVITATION, "booked", "none", -1, False, "appointment passed"),
        (MessageKind.INVITATION, "booked", "cancel_requested", 3, True, None),  # the invitation itself still stands
        (MessageKind.APPOINTMENT_REMINDER, "booked", "cancel_requested", 3, False, "cancel requested"),
        (MessageKind.INVITATION_REMINDER, "booked", "none", 3, True, "letter opened"),
        (MessageKind.INVITATION_POST, "booked", "none", 3, True, "letter opened"),
        (MessageKind.APPOINTMENT_REMINDER, "booked", "none", 3, True, None),
        (MessageKind.CANCELLED, "cancelled", "none", 3, False, None),
        (MessageKind.CANCELLED, "booked", "none", 3, False, "appointment booked again"),
        (MessageKind.EARLIER_OFFER, "cancelled", "none", 3, False, None),  # an offer has a life of its own
    ],
)
def test_what_makes_a_message_going_round_again_no_longer_true(
    kind: MessageKind, status: str, request_state: str, days: int, opened: bool, why: str | None
) -> None:
    starts_at = NOW + timedelta(days=days)
    assert (
        no_longer_true(kind, status=status, request_state=request_state, starts_at=starts_at, opened=opened, now=NOW)
        == why
    )
