"""An earlier time offered to a patient whose appointment the hospital then cancels, or moves to that time or before
it: the offer can no longer be taken, so the worker's next round ends it, withdraws its text still waiting to go, and
offers the slot to the next patient waiting (before, the offer held the slot until it lapsed, and its text went)."""

from __future__ import annotations

from typing import Any

import pytest

from hub.store.offers import OfferRound, run_offers, set_earlier_request
from tests.harness import Harness
from tests.pas import PATIENT
from tests.seams.conftest import EARLIER, rows
from tests.seams.test_api_hl7 import BODY, api

pytestmark = pytest.mark.anyio


async def offered(trust: Harness) -> tuple[Any, int]:
    """APT-1001 (14 December) and APT-1002 (15 December) both wait for an earlier time; the slot freed on 28 November
    is offered to APT-1001 first (a batch of one). Returns the PAS and APT-1002's id."""
    pas = await api(trust)
    assert (await pas.put(f"patients/{BODY['patient_ref']}", PATIENT)).status_code == 201
    assert (await pas.put("appointments/APT-1001", BODY)).status_code == 201
    assert (await pas.put("appointments/APT-1002", {**BODY, "start": "2026-12-15T09:30:00+00:00"})).status_code == 201
    for a in await rows(trust, "SELECT id, patient_id FROM appointments ORDER BY id"):
        now = trust.clock.now()
        assert await set_earlier_request(
            trust.db, patient_id=a["patient_id"], appointment_id=a["id"], wanted=True, now=now
        )
    await trust.create_slot(starts_at=EARLIER, ref="FREED", clinician="Dr Anita Patel")
    assert await run_offers(trust.db, settings=trust.settings, now=trust.clock.now()) == OfferRound(0, 1)
    [second] = await rows(trust, "SELECT id FROM appointments WHERE ref = 'APT-1002'")
    return pas, int(second["id"])


async def the_offer_moves_on(trust: Harness, second: int) -> None:
    assert await run_offers(trust.db, settings=trust.settings, now=trust.clock.now()) == OfferRound(0, 1)
    offers = await rows(
        trust, "SELECT a.ref, o.status FROM slot_offers o JOIN appointments a ON a.id = o.appointment_id ORDER BY o.id"
    )
    assert offers == [{"ref": "APT-1001", "status": "gone"}, {"ref": "APT-1002", "status": "offered"}]
    texts = await rows(
        trust,
        "SELECT a.ref, m.status, m.error FROM outbox_messages m JOIN appointments a ON a.id = m.appointment_id"
        " WHERE m.kind = 'earlier_offer' ORDER BY m.id",
    )
    assert texts == [
        {"ref": "APT-1001", "status": "cancelled", "error": "offer ended"},
        {"ref": "APT-1002", "status": "queued", "error": ""},
    ]
    audit = await rows(trust, "SELECT action FROM audit_events WHERE record_type = 'slot_offer' ORDER BY id")
    assert [r["action"] for r in audit] == ["earlier_offered", "earlier_ended", "earlier_offered"]


async def test_an_offer_of_an_appointment_the_hospital_cancelled_ends(trust: Harness) -> None:
    pas, second = await offered(trust)
    answer = await pas.put("appointments/APT-1001", {**BODY, "status": "cancelled"})
    assert answer.status_code == 200 and answer.json()["notice"] == "cancelled"
    await the_offer_moves_on(trust, second)


async def test_an_offer_of_an_appointment_the_hospital_moved_before_the_slot_ends(trust: Harness) -> None:
    pas, second = await offered(trust)
    answer = await pas.put("appointments/APT-1001", {**BODY, "start": "2026-11-27T09:30:00+00:00"})
    assert answer.status_code == 200 and answer.json()["notice"] == "changed"
    await the_offer_moves_on(trust, second)
