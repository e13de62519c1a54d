"""When and how to send: pure rules for retries, quiet hours and Notify's limits. No I/O, no clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from hub.clock import LONDON


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=30)
    ceiling: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    rate_limited_wait: timedelta = timedelta(seconds=10)


@dataclass(frozen=True)
class Verdict:
    """What one failed attempt means for the message."""

    outcome: str  # retry | failed | hold_channel
    retry_at: datetime | None = None
    check_first: bool = False  # the attempt may have reached Notify: look it up by reference before resending
    counts: bool = True  # whether it uses up one of the message's attempts


def judge_failure(
    *, status: int | None, error: str, attempts: int, now: datetime, policy: RetryPolicy, rng: random.Random
) -> Verdict:
    if status == 429 and error == "TooManyRequestsError":
        return Verdict("hold_channel", retry_at=next_utc_midnight(now), counts=False)
    if status == 429:
        return Verdict("retry", retry_at=now + policy.rate_limited_wait, counts=False)
    if status in (400, 403):
        return Verdict("failed")
    # 5xx (a 500 after the commit, a gateway's 502 or 504), a timeout or a dropped connection: Notify may have
    # accepted it before the failure.
    if attempts >= policy.max_attempts:
        return Verdict("failed", check_first=True)
    return Verdict("retry", retry_at=now + backoff(attempts, policy, rng), check_first=True)


def backoff(attempts: int, policy: RetryPolicy, rng: random.Random) -> timedelta:
    """Exponential with full jitter: spreads retries out so a recovering Notify is not hit all at once."""
    # The exponent stops growing long after the ceiling is reached: a large one would overflow timedelta.
    cap = min(policy.ceiling, policy.base * (2 ** min(max(attempts - 1, 0), 32)))
    return timedelta(seconds=rng.uniform(cap.total_seconds() / 2, cap.total_seconds()))


def next_utc_midnight(now: datetime) -> datetime:
    tomorrow = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=UTC)


def in_quiet_hours(now: datetime, *, start: int, end: int) -> bool:
    """Quiet from `start` o'clock to `end` o'clock, London time (across midnight when start > end)."""
    hour = now.astimezone(LONDON).hour
    return (start <= hour or hour < end) if start > end else (start <= hour < end)
