"""A patient takes an earlier-time offer just as the hospital moves the appointment to the offered time or before it:
the acceptance read the offer open, then waited for the hospital's write. It must find the offer no longer earlier
and move nothing (before, it moved the patient to the slot, later than the time the hospital had just given)."""

from __future__ import annotations

import asyncio

import pytest

from hub.store.offers import OfferRound, accept_offer, run_offers, set_earlier_request
from hub.store.slot_moves import Moved
from hub.vocabulary import WhyNot
from tests.harness import Harness
from tests.holding import held_write, touch_patient
from tests.pas import PATIENT
from tests.seams.conftest import EARLIER, POLICY, WINDOW, rows
from tests.seams.test_api_hl7 import BODY, api

pytestmark = pytest.mark.anyio

SOONER = "2026-11-26T09:30:00+00:00"  # the hospital's new time: before the offered slot (28 November)


async def test_an_offer_taken_as_the_hospital_moves_the_appointment_before_it_moves_nothing(trust: Harness) -> None:
    pas = await api(trust)
    assert (await pas.put(f"patients/{BODY['patient_ref']}", PATIENT)).status_code == 201
    assert (await pas.put("appointments/APT-1001", BODY)).status_code == 201
    [appt] = await rows(trust, "SELECT id, patient_id FROM appointments")
    patient, now = appt["patient_id"], trust.clock.now()
    assert await set_earlier_request(trust.db, patient_id=patient, appointment_id=appt["id"], wanted=True, now=now)
    slot = await trust.create_slot(starts_at=EARLIER, ref="FREED", clinician="Dr Anita Patel")
    assert await run_offers(trust.db, settings=trust.settings, now=now) == OfferRound(0, 1)
    [offer] = await rows(trust, "SELECT id FROM slot_offers")

    async with held_write(trust.db, patient=patient, doing=touch_patient(patient)):
        moving = asyncio.create_task(pas.put("appointments/APT-1001", {**BODY, "start": SOONER}))
        await asyncio.sleep(0.3)
        taking = asyncio.create_task(
            accept_offer(
                trust.db,
                patient_id=patient,
                offer_id=offer["id"],
                now=now,
                policy=POLICY,
                window=WINDOW,
                settings=trust.settings,
            )
        )
        await asyncio.sleep(0.3)
        assert not moving.done() and not taking.done()
    assert (await asyncio.wait_for(moving, timeout=10)).status_code == 200
    assert await asyncio.wait_for(taking, timeout=10) == Moved(False, WhyNot.GONE)
    assert await rows(trust, "SELECT starts_at FROM appointments") == [{"starts_at": "2026-11-26T09:30:00.000000Z"}]
    assert await rows(trust, "SELECT status FROM slots WHERE id = ?", (slot,)) == [{"status": "free"}]
    # Nothing of the acceptance stayed; the worker's next round ends the offer.
    assert await run_offers(trust.db, settings=trust.settings, now=now) == OfferRound(0, 0)
    assert await rows(trust, "SELECT status FROM slot_offers") == [{"status": "gone"}]
    kinds = [r["kind"] for r in await rows(trust, "SELECT kind FROM events ORDER BY id")]
    assert "appointment.rescheduled_by_patient" not in kinds
