"""The night the clocks change (UK: back on the last Sunday of October at 01:00 UTC, forward on the last Sunday of
March at 01:00 UTC) meeting the hospital feed's times without an offset, which are London time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.harness import Harness
from tests.hl7_samples import Client, siu
from tests.seams.conftest import rows
from tests.staff_harness import set_up_staff
from tests.web.staff.test_patients import _found, _pas_patient
from tests.web.staff.test_queue import _claim, _outcome, _rebook_task

pytestmark = pytest.mark.anyio


async def test_a_cancellation_sent_in_the_repeated_hour_is_not_taken_for_an_older_message(
    trust: Harness, port: int
) -> None:
    # 01:50 BST (00:50 UTC): the PAS books the appointment, MSH-7 in London time without an offset, as most do.
    trust.clock.set(datetime(2026, 10, 25, 0, 50, tzinfo=UTC))
    async with Client(port) as client:
        booked = await client.send(siu(sent="20261025015000"))
        assert (booked.code, booked.text) == ("AA", "created")
        # 20 minutes later the clocks have gone back: 01:10 GMT (01:10 UTC). The hospital cancels.
        trust.clock.set(datetime(2026, 10, 25, 1, 10, tzinfo=UTC))
        cancelled = await client.send(siu("S15", control_id="MSG00002", sent="20261025011000"))
    assert (cancelled.code, cancelled.text) == ("AA", "updated")
    assert await rows(trust, "SELECT status FROM appointments") == [{"status": "cancelled"}]


@pytest.mark.parametrize(
    ("start", "why"),
    [
        ("202610250130", "01:30 on 2026-10-25 happens twice in London (the clocks go back)"),
        ("202703280130", "01:30 on 2027-03-28 does not exist in London (the clocks go forward)"),
    ],
)
async def test_an_appointment_time_the_clock_change_repeats_or_skips_is_refused_not_guessed(
    trust: Harness, port: int, start: str, why: str
) -> None:
    async with Client(port) as client:
        refused = await client.send(siu(start=start))
        # With the offset, the same time is booked as sent.
        booked = await client.send(siu(start=f"{start}00+0000", control_id="MSG00002"))
    assert (refused.code, refused.errors) == ("AE", [f"SCH^1^11^1^4: {why}: send it with its offset"])
    assert booked.code == "AA"
    iso = f"{start[:4]}-{start[4:6]}-{start[6:8]}T01:30:00.000000Z"
    assert await rows(trust, "SELECT starts_at FROM appointments") == [{"starts_at": iso}]


async def test_an_agents_rebook_to_a_time_the_clocks_skip_is_refused_and_nothing_moves(hub: Harness) -> None:
    task_id, _ = await _rebook_task(hub)
    await set_up_staff(hub)
    await _claim(hub, task_id)
    [before] = await rows(hub, "SELECT starts_at, sequence FROM appointments")
    form = {"outcome": "rebooked", "day": "28", "month": "3", "year": "2027", "time": "1:30am", "site": "RFH"}
    page = await _outcome(hub, task_id, form)
    assert "There is no 1:30am that night: the clocks go forward an hour. Enter another time" in page
    assert 'href="#time"' in page  # the error summary leads to the time field
    assert await rows(hub, "SELECT starts_at, sequence FROM appointments") == [before]


async def test_a_baby_born_today_is_found_by_date_of_birth_in_the_hour_after_midnight_in_summer(
    hub: Harness,
) -> None:
    hub.clock.set(datetime(2026, 6, 14, 23, 30, tzinfo=UTC))  # 00:30 BST on 15 June: still 14 June in UTC
    baby = await _pas_patient(hub, "BABY1", family_name="Jones", date_of_birth="2026-06-15")
    await set_up_staff(hub)
    found = await _found(hub, family_name="Jones", **{"dob-day": "15", "dob-month": "6", "dob-year": "2026"})
    assert found == [baby]
