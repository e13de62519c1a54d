"""When and how to send: what a failed attempt means, backoff, quiet hours, Notify's daily reset. No I/O."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from hub.rules.sending import (
    RetryPolicy,
    Verdict,
    attempts_used_up,
    backoff,
    in_quiet_hours,
    judge_failure,
    next_utc_midnight,
)

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


@pytest.mark.parametrize("status", [400, 403])
def test_a_refusal_fails_at_once_and_is_never_looked_up(status: int) -> None:
    assert judge(status, "BadRequestError", attempts=1) == Verdict("failed")


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
    assert in_quiet_hours(datetime(2026, 11, 21, 13, 0, tzinfo=UTC), start=12, end=14)
    assert not in_quiet_hours(datetime(2026, 11, 21, 14, 0, tzinfo=UTC), start=12, end=14)
    assert not any(in_quiet_hours(NOW + timedelta(hours=h), start=0, end=0) for h in range(24))
