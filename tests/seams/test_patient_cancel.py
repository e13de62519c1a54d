"""A patient cancelling (immediate mode) an appointment that holds a slot, through the patient's pages: the slot is
freed and offered, as an earlier appointment, to the next patient asking; never in quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.store.offers import OfferRound, run_offers, set_earlier_request
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.seams.conftest import rows
from tests.web.patient.test_slots import post

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)


async def round_(hub: Harness) -> OfferRound:
    return await run_offers(hub.db, settings=hub.settings, now=hub.clock.now())


async def test_an_immediate_cancel_frees_the_slot_and_it_is_offered_outside_quiet_hours(make_hub: MakeHub) -> None:
    hub = await make_hub(cancel_mode="immediate", **{"slots.earlier_batch": 1})
    leaving = await hub.create_patient(mrn="MRN1", mobile="+447700900001")
    cancelled = await hub.create_appointment(patient_id=leaving, starts_at=NOW + 5 * DAY)
    slot = await hub.create_slot(starts_at=NOW + 5 * DAY, status="busy", appointment_id=cancelled, ref="HELD")
    waiting = await hub.create_patient(mrn="MRN2", mobile="+447700900002")
    later = await hub.create_appointment(patient_id=waiting, starts_at=NOW + 30 * DAY)
    assert await set_earlier_request(hub.db, patient_id=waiting, appointment_id=later, wanted=True, now=NOW)

    hub.clock.set(datetime(2026, 11, 21, 21, 0, tzinfo=UTC))  # 9pm in London: the patient cancels late at night
    await hub.sign_in()
    done = await post(hub, f"/appointments/{cancelled}/cancel", {"reason": "no_longer_needed"})
    assert done.status_code == 303
    assert await rows(hub, "SELECT status FROM appointments WHERE id = ?", (cancelled,)) == [{"status": "cancelled"}]
    assert await rows(hub, "SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "free", "appointment_id": None}
    ]
    assert await round_(hub) == OfferRound(0, 0)  # quiet hours: held back
    hub.clock.set(datetime(2026, 11, 22, 8, 30, tzinfo=UTC))
    assert await round_(hub) == OfferRound(0, 1)
    assert await rows(hub, "SELECT patient_id, appointment_id FROM slot_offers") == [
        {"patient_id": waiting, "appointment_id": later}
    ]
