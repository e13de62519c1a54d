from datetime import UTC, datetime, timedelta

import pytest

from hub.store.sessions import session_state

START = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
IDLE, ABSOLUTE = timedelta(minutes=15), timedelta(hours=2)


@pytest.mark.parametrize(
    ("last_seen_after", "now_after", "expected"),
    [
        (timedelta(0), timedelta(seconds=59), "fresh"),
        (timedelta(0), timedelta(seconds=60), "touch"),
        (timedelta(0), timedelta(minutes=14, seconds=59), "touch"),
        (timedelta(0), timedelta(minutes=15), "expired"),
        (timedelta(hours=1, minutes=59), timedelta(hours=1, minutes=59, seconds=59), "fresh"),
        (timedelta(hours=1, minutes=59), timedelta(hours=2), "expired"),  # active, but past the absolute limit
    ],
)
def test_idle_and_absolute_limits(last_seen_after: timedelta, now_after: timedelta, expected: str) -> None:
    state = session_state(
        created_at=START, last_seen=START + last_seen_after, now=START + now_after, idle=IDLE, absolute=ABSOLUTE
    )
    assert state == expected


def test_without_an_absolute_limit_only_idleness_ends_a_session() -> None:
    later = START + timedelta(days=3)
    assert session_state(created_at=START, last_seen=later, now=later + timedelta(minutes=1), idle=IDLE) == "touch"
