"""The JSON API's PUT of an appointment meeting a patient's own move into a slot (an accepted earlier-appointment
offer): a cancel for the old time is held as a conflict, never cancelling the time the patient took; a cancel naming
that time, or acknowledging the hub's event, is the hospital's own decision and applies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import Harness
from tests.pas import PATIENT
from tests.seams.conftest import held, rows, take_earlier_slot
from tests.seams.test_api_hl7 import BODY, api

pytestmark = pytest.mark.anyio

TAKEN = "2026-11-28T09:30:00+00:00"  # the slot the patient took (tests.seams.conftest.EARLIER)


async def moved_by_offer(trust: Harness) -> tuple[Any, int, int]:
    """APT-1001 booked through the API for 14 December; the patient takes an earlier slot on 28 November."""
    pas = await api(trust)
    assert (await pas.put(f"patients/{BODY['patient_ref']}", PATIENT)).status_code == 201
    assert (await pas.put("appointments/APT-1001", BODY)).status_code == 201
    appointment, slot = await take_earlier_slot(trust)
    return pas, appointment, slot


async def cancellations(trust: Harness) -> list[dict[str, Any]]:
    return await rows(trust, "SELECT kind FROM outbox_messages WHERE kind = 'cancelled'")


async def test_a_cancel_for_the_old_time_after_the_patient_took_an_earlier_slot_is_held(trust: Harness) -> None:
    pas, appointment, slot = await moved_by_offer(trust)
    stale = {**BODY, "status": "cancelled"}  # the PAS's own record: still 14 December
    assert (await pas.put("appointments/APT-1001", stale)).status_code == 200
    assert (await pas.put("appointments/APT-1001", stale)).status_code == 200  # again: nothing held twice
    await held(trust, appointment, slot)
    assert await cancellations(trust) == []  # the patient is not told of a cancel the booking centre must settle


async def test_a_cancel_naming_the_time_the_patient_took_cancels_it(trust: Harness) -> None:
    pas, appointment, _ = await moved_by_offer(trust)
    answer = await pas.put("appointments/APT-1001", {**BODY, "start": TAKEN, "status": "cancelled"})
    assert answer.status_code == 200 and answer.json()["notice"] == "cancelled"
    assert await rows(trust, "SELECT status, starts_at FROM appointments") == [
        {"status": "cancelled", "starts_at": "2026-11-28T09:30:00.000000Z"}
    ]
    assert await rows(trust, "SELECT kind FROM tasks WHERE status = 'open'") == []
    assert await cancellations(trust) != []


async def test_a_cancel_acknowledging_the_hubs_event_applies_whatever_time_it_names(trust: Harness) -> None:
    pas, appointment, _ = await moved_by_offer(trust)
    told = await rows(trust, "SELECT MAX(id) AS id FROM events WHERE appointment_id = ?", (appointment,))
    stale = {**BODY, "status": "cancelled", "acknowledged_event": int(told[0]["id"])}
    assert (await pas.put("appointments/APT-1001", stale)).status_code == 200
    assert await rows(trust, "SELECT status, starts_at FROM appointments") == [
        {"status": "cancelled", "starts_at": "2026-12-14T09:30:00.000000Z"}
    ]
    assert await cancellations(trust) != []
