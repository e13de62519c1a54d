from datetime import UTC, datetime, timedelta

import pytest

from hub.rules.appointments import ActionPolicy, Allowed, allowed_actions, group_of, past_horizon
from hub.vocabulary import CancelMode, Mode, WhyNot
from tests.rules.facts import booked

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)


def allowed(
    *,
    status: str = "booked",
    request_state: str = "none",
    starts_at: datetime = NOW + timedelta(days=10),
    rebook_requests: int = 0,
    policy: ActionPolicy = POLICY,
) -> Allowed:
    return allowed_actions(
        status=status,
        request_state=request_state,
        starts_at=starts_at,
        now=NOW,
        rebook_requests=rebook_requests,
        policy=policy,
    )


def test_booked_appointment_in_good_time_allows_everything() -> None:
    assert allowed() == Allowed(confirm=True, rebook=True, cancel=True, why_not=WhyNot.NONE)
    assert allowed().any


def test_confirmed_appointment_can_still_be_confirmed_rebooked_and_cancelled() -> None:
    assert allowed(request_state="confirmed") == Allowed(True, True, True, WhyNot.NONE)


def test_rebook_requested_appointment_cannot_be_confirmed_but_can_be_cancelled() -> None:
    assert allowed(request_state="rebook_requested", rebook_requests=1) == Allowed(False, True, True, WhyNot.NONE)


@pytest.mark.parametrize(("requests", "rebook"), [(0, True), (1, True), (2, False), (3, False)])
def test_rebook_limit(requests: int, rebook: bool) -> None:
    result = allowed(rebook_requests=requests)
    assert result.rebook is rebook
    assert result.confirm and result.cancel
    assert result.why_not == ""


def test_rebook_limit_comes_from_the_policy() -> None:
    policy = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=5, cancel_mode=CancelMode.REQUEST)
    assert allowed(rebook_requests=4, policy=policy).rebook
    assert not allowed(rebook_requests=5, policy=policy).rebook


@pytest.mark.parametrize(
    ("hours_ahead", "why_not"),
    [
        (24 * 10, ""),
        (24, ""),  # exactly the cut-off: still in time
        (23.99, "cutoff"),
        (1, "cutoff"),
        (0.01, "cutoff"),
        (0, "past"),
        (-1, "past"),
    ],
)
def test_cutoff_and_past(hours_ahead: float, why_not: str) -> None:
    result = allowed(starts_at=NOW + timedelta(hours=hours_ahead))
    assert result.why_not == why_not
    assert (result.rebook, result.cancel) == (why_not == "", why_not == "")
    # Issue 13 (8): confirming stays possible until the appointment starts; the cut-off is for changes only.
    assert result.confirm is (why_not != "past")


def test_cutoff_comes_from_the_policy() -> None:
    policy = ActionPolicy(cutoff=timedelta(hours=48), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
    assert allowed(starts_at=NOW + timedelta(hours=47), policy=policy).why_not == "cutoff"
    assert allowed(starts_at=NOW + timedelta(hours=47)).why_not == ""


@pytest.mark.parametrize(
    ("status", "request_state", "starts_in", "why_not"),
    [
        ("cancelled", "none", timedelta(days=10), "cancelled"),
        ("cancelled", "cancel_requested", timedelta(days=10), "cancelled"),
        ("cancelled", "none", timedelta(days=-10), "cancelled"),
        ("attended", "none", timedelta(days=-1), "past"),
        ("did_not_attend", "none", timedelta(days=-1), "past"),
        # The hospital's status wins even when the recorded start is still ahead.
        ("attended", "none", timedelta(days=3), "past"),
        ("booked", "cancel_requested", timedelta(days=10), "pending"),
        ("booked", "cancel_requested", timedelta(hours=2), "cutoff"),
        ("booked", "cancel_requested", timedelta(hours=24), "pending"),  # exactly the cut-off: not yet inside it
        ("booked", "cancel_requested", timedelta(hours=24) - timedelta(microseconds=1), "cutoff"),
    ],
)
def test_nothing_allowed(status: str, request_state: str, starts_in: timedelta, why_not: str) -> None:
    result = allowed(status=status, request_state=request_state, starts_at=NOW + starts_in)
    assert result == Allowed(False, False, False, WhyNot(why_not))
    assert not result.any


@pytest.mark.parametrize(
    ("status", "starts_in", "duration", "group"),
    [
        ("booked", timedelta(days=1), 30, "upcoming"),
        ("booked", timedelta(minutes=-29), 30, "upcoming"),  # still going on
        ("booked", timedelta(minutes=-30), 30, "past"),
        ("booked", timedelta(days=-1), 30, "past"),
        ("cancelled", timedelta(days=1), 30, "cancelled"),
        ("cancelled", timedelta(days=-1), 30, "cancelled"),
        ("attended", timedelta(days=1), 30, "past"),
        ("did_not_attend", timedelta(days=-1), 30, "past"),
    ],
)
def test_group_of(status: str, starts_in: timedelta, duration: int, group: str) -> None:
    assert group_of(status=status, starts_at=NOW + starts_in, duration_minutes=duration, now=NOW) == group


@pytest.mark.parametrize(
    ("now", "months", "horizon"),
    [
        (NOW, 24, datetime(2024, 11, 21, 10, 0, tzinfo=UTC)),  # across a leap year: calendar months, not days
        (NOW, 12, datetime(2025, 11, 21, 10, 0, tzinfo=UTC)),
        (NOW, 11, datetime(2025, 12, 21, 10, 0, tzinfo=UTC)),
        (NOW, 0, NOW),
        (datetime(2026, 3, 31, 8, 0, tzinfo=UTC), 1, datetime(2026, 2, 28, 8, 0, tzinfo=UTC)),
        (datetime(2026, 2, 28, 8, 0, tzinfo=UTC), 24, datetime(2024, 2, 28, 8, 0, tzinfo=UTC)),
        (datetime(2028, 2, 29, 8, 0, tzinfo=UTC), 12, datetime(2027, 2, 28, 8, 0, tzinfo=UTC)),
    ],
)
def test_past_horizon_is_whole_calendar_months_back(now: datetime, months: int, horizon: datetime) -> None:
    assert past_horizon(now, months) == horizon


def test_an_events_data_is_what_the_hospitals_record_would_need_to_say() -> None:
    facts = booked(datetime(2026, 12, 3, 9, 30, tzinfo=UTC), mode=Mode.VIDEO)
    data = {"start": "2026-12-03T09:30:00+00:00", "status": "booked", "clinic": "Cardiology", "clinician": "Dr A"}
    assert facts.as_data() == {**data, "mode": "video"}
    assert facts.as_data("RFH") == {**data, "site_code": "RFH", "mode": "video"}
    assert [type(v) for v in facts.as_data().values()] == [str] * 5  # plain strings, not enums, for JSON
