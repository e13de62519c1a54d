"""The reminder and escalation rules on plain data: no database, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from hub.rules.reminders import DueState, Schedule, decide, escalation_notices, reminder_notices

LEEDS = Schedule(escalation_hours=(24, 48, 72), reminder_days=(7, 1), reminder_days_after_confirm=(1,))
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
STARTS = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # ten days out
DUE = DueState(
    kind="escalation_reminder_1",
    status="booked",
    request_state="none",
    starts_at=STARTS,
    opened=False,
    digital_ok=True,
)


def test_escalation_is_reminder_1_at_24h_reminder_2_at_48h_and_post_at_72h() -> None:
    assert escalation_notices(NOW, LEEDS) == [
        ("escalation_reminder_1", datetime(2026, 11, 22, 10, 0, tzinfo=UTC)),
        ("escalation_reminder_2", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        ("escalation_post", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
    ]


def test_escalation_hours_come_from_the_schedule() -> None:
    other_trust = replace(LEEDS, escalation_hours=(12, 24, 36))
    assert [at - NOW for _, at in escalation_notices(NOW, other_trust)] == [
        timedelta(hours=12),
        timedelta(hours=24),
        timedelta(hours=36),
    ]


def test_escalation_counts_elapsed_hours_across_the_clock_change() -> None:
    # Invited at 21:00 BST on the Saturday the clocks go back: 24 hours later is 20:00 GMT, not 21:00.
    invited = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    [(_, first), *_] = escalation_notices(invited, LEEDS)
    assert first == datetime(2026, 10, 25, 20, 0, tzinfo=UTC)


def test_reminders_fall_7_days_and_1_day_before() -> None:
    assert reminder_notices(STARTS, NOW, LEEDS) == [
        ("reminder_7d", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("reminder_1d", datetime(2026, 11, 30, 9, 30, tzinfo=UTC)),
    ]


def test_an_appointment_3_days_out_gets_only_the_day_before_reminder() -> None:
    starts = NOW + timedelta(days=3)
    assert reminder_notices(starts, NOW, LEEDS) == [("reminder_1d", starts - timedelta(days=1))]


def test_a_reminder_due_exactly_now_is_not_planned() -> None:
    starts = NOW + timedelta(days=7)
    assert [kind for kind, _ in reminder_notices(starts, NOW, LEEDS)] == ["reminder_1d"]


def test_an_appointment_within_a_day_gets_no_reminder() -> None:
    assert reminder_notices(NOW + timedelta(hours=20), NOW, LEEDS) == []


def test_reminder_days_come_from_the_schedule() -> None:
    schedule = replace(LEEDS, reminder_days=(14, 3))
    assert [kind for kind, _ in reminder_notices(STARTS + timedelta(days=10), NOW, schedule)] == [
        "reminder_14d",
        "reminder_3d",
    ]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("escalation_reminder_1", "invitation_reminder"),
        ("escalation_reminder_2", "invitation_reminder"),
        ("escalation_post", "invitation_post"),
        ("reminder_7d", "appointment_reminder"),
        ("reminder_1d", "appointment_reminder"),
    ],
)
def test_a_due_notice_for_a_booked_unread_appointment_is_sent(kind: str, expected: str) -> None:
    assert decide(replace(DUE, kind=kind), now=NOW, schedule=LEEDS) == expected


@pytest.mark.parametrize("kind", ["escalation_reminder_1", "escalation_reminder_2", "escalation_post"])
def test_reading_the_letter_stops_every_escalation_step(kind: str) -> None:
    assert decide(replace(DUE, kind=kind, opened=True), now=NOW, schedule=LEEDS) == "skip:opened"


def test_reading_the_letter_does_not_stop_pre_appointment_reminders() -> None:
    state = replace(DUE, kind="reminder_1d", opened=True)
    assert decide(state, now=NOW, schedule=LEEDS) == "appointment_reminder"


@pytest.mark.parametrize("status", ["cancelled", "attended", "did_not_attend"])
@pytest.mark.parametrize("kind", ["escalation_reminder_1", "escalation_post", "reminder_7d", "reminder_1d"])
def test_nothing_goes_for_an_appointment_that_is_no_longer_booked(kind: str, status: str) -> None:
    assert decide(replace(DUE, kind=kind, status=status), now=NOW, schedule=LEEDS) == f"skip:{status}"


@pytest.mark.parametrize("kind", ["escalation_reminder_1", "escalation_post", "reminder_7d", "reminder_1d"])
def test_nothing_goes_after_the_patient_asked_to_cancel(kind: str) -> None:
    state = replace(DUE, kind=kind, request_state="cancel_requested")
    assert decide(state, now=NOW, schedule=LEEDS) == "skip:cancel_requested"


@pytest.mark.parametrize("kind", ["escalation_post", "reminder_1d"])
def test_nothing_goes_once_the_appointment_has_started(kind: str) -> None:
    state = replace(DUE, kind=kind, starts_at=NOW)
    assert decide(state, now=NOW, schedule=LEEDS) == "skip:past"


def test_after_confirming_only_the_day_before_reminder_goes() -> None:
    confirmed = replace(DUE, request_state="confirmed")
    assert decide(replace(confirmed, kind="reminder_7d"), now=NOW, schedule=LEEDS) == "skip:confirmed"
    assert decide(replace(confirmed, kind="reminder_1d"), now=NOW, schedule=LEEDS) == "appointment_reminder"


def test_the_reminders_kept_after_confirming_come_from_the_schedule() -> None:
    schedule = replace(LEEDS, reminder_days_after_confirm=(7, 1))
    confirmed = replace(DUE, request_state="confirmed", kind="reminder_7d")
    assert decide(confirmed, now=NOW, schedule=schedule) == "appointment_reminder"
    assert decide(confirmed, now=NOW, schedule=replace(LEEDS, reminder_days_after_confirm=())) == "skip:confirmed"


def test_a_request_to_rebook_does_not_stop_reminders() -> None:
    state = replace(DUE, kind="reminder_1d", request_state="rebook_requested")
    assert decide(state, now=NOW, schedule=LEEDS) == "appointment_reminder"


def test_with_no_digital_contact_reminders_are_skipped_but_the_post_still_goes() -> None:
    offline = replace(DUE, digital_ok=False)
    assert decide(replace(offline, kind="escalation_reminder_1"), now=NOW, schedule=LEEDS) == "skip:no_digital"
    assert decide(replace(offline, kind="reminder_1d"), now=NOW, schedule=LEEDS) == "skip:no_digital"
    assert decide(replace(offline, kind="escalation_post"), now=NOW, schedule=LEEDS) == "invitation_post"


def test_an_invitation_that_went_by_post_after_all_is_not_posted_again() -> None:
    posted = replace(DUE, posted=True)
    assert decide(replace(posted, kind="escalation_post"), now=NOW, schedule=LEEDS) == "skip:posted"
    assert decide(replace(posted, kind="escalation_reminder_2"), now=NOW, schedule=LEEDS) == "invitation_reminder"


def test_an_unknown_kind_is_skipped() -> None:
    assert decide(replace(DUE, kind="mystery"), now=NOW, schedule=LEEDS) == "skip:unknown"


def test_an_escalation_schedule_without_every_step_is_refused_not_cut_short() -> None:
    # Three steps, three hours: a schedule of two would otherwise never post the letter.
    short = replace(LEEDS, escalation_hours=cast(tuple[int, int, int], (24, 48)))
    with pytest.raises(ValueError):
        escalation_notices(NOW, short)
