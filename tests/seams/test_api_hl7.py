"""The JSON API and HL7 over MLLP sending the same appointment: one lifecycle, the newer change wins, nothing is
doubled; and a slot the hospital frees after its cancel is offered as an earlier appointment, outside quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.store.offers import OfferRound, run_offers, set_earlier_request
from tests.harness import Harness
from tests.hl7_samples import PDF, Client, mdm, siu
from tests.seams.conftest import rows
from tests.web.api.test_handlers import Api

pytestmark = pytest.mark.anyio
V2 = PDF + b"% v2\n"

BODY = {
    "patient_ref": "RF1234567",
    "site_code": "RFH",
    "clinic": "Cardiology outpatients",
    "specialty": "Cardiology",
    "clinician": "Dr Anita Patel",
    "start": "2026-12-14T09:30:00+00:00",
    "duration_minutes": 30,
    "mode": "in_person",
    "status": "booked",
    "transport_booked": False,
    "interpreter_booked": False,
}


async def api(trust: Harness) -> Api:
    return Api(trust, await trust.create_api_key(organisation_code="RAL", name="pas"), "pas")


async def state(trust: Harness) -> dict[str, Any]:
    return {
        "appointments": await rows(trust, "SELECT ref, starts_at, status, sequence FROM appointments"),
        "messages": [
            (r["kind"], r["status"]) for r in await rows(trust, "SELECT kind, status FROM outbox_messages ORDER BY id")
        ],
        "events": [r["kind"] for r in await rows(trust, "SELECT kind FROM events ORDER BY id")],
    }


async def test_api_and_hl7_share_one_appointment_and_nothing_is_doubled(trust: Harness, port: int) -> None:
    pas = await api(trust)
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"
        booked = await state(trust)
        # The same booking through the API: nothing new.
        assert (await pas.put("appointments/APT-1001", BODY)).status_code in (200, 201)
        assert await state(trust) == booked
        # The API moves it; then HL7 sends a newer move: it wins.
        moved = await pas.put("appointments/APT-1001", {**BODY, "start": "2026-12-15T14:00:00+00:00"})
        assert moved.status_code == 200
        newer = siu("S13", control_id="N1", start="202612161000", sent="20261121100500")
        assert (await client.send(newer)).code == "AA"
        # An HL7 message older than the last one applied changes nothing.
        older = siu("S13", control_id="O1", start="202612171000", sent="20261121100000")
        assert (await client.send(older)).code == "AA"
    after = await state(trust)
    assert after["appointments"] == [
        {"ref": "APT-1001", "starts_at": "2026-12-16T10:00:00.000000Z", "status": "booked", "sequence": 2}
    ]
    assert await rows(trust, "SELECT mrn FROM patients") == [{"mrn": "RF1234567"}]
    # The invitation not yet sent is re-planned at each change: one stays queued, for the newest time.
    assert after["messages"] == [("invitation", "cancelled"), ("invitation", "cancelled"), ("invitation", "queued")]


async def test_a_slot_freed_after_a_hospital_cancel_is_offered_outside_quiet_hours(trust: Harness, port: int) -> None:
    pas = await api(trust)
    slot = {k: BODY[k] for k in ("site_code", "clinic", "specialty", "clinician", "duration_minutes", "mode")}
    slot |= {"start": "2026-11-26T09:30:00+00:00", "status": "busy", "appointment_ref": "APT-2"}
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"  # APT-1001 on 14 December
    assert (await pas.put("appointments/APT-2", {**BODY, "start": "2026-11-26T09:30:00+00:00"})).status_code == 201
    assert (await pas.put("slots/S-1", slot)).status_code == 201
    [waiting] = await rows(trust, "SELECT id, patient_id FROM appointments WHERE ref = 'APT-1001'")
    now = trust.clock.now()
    assert await set_earlier_request(
        trust.db, patient_id=waiting["patient_id"], appointment_id=waiting["id"], wanted=True, now=now
    )
    trust.clock.set(datetime(2026, 11, 21, 21, 0, tzinfo=UTC))  # 9pm in London
    cancelled = await pas.put("appointments/APT-2", {**BODY, "start": slot["start"], "status": "cancelled"})
    assert cancelled.status_code == 200
    assert (await pas.put("slots/S-1", {**slot, "status": "free", "appointment_ref": None})).status_code == 200
    assert await run_offers(trust.db, settings=trust.settings, now=trust.clock.now()) == OfferRound(0, 0)
    trust.clock.advance(hours=11, minutes=30)  # 08:30 the next morning
    assert trust.clock.now() - now < timedelta(days=1)
    assert await run_offers(trust.db, settings=trust.settings, now=trust.clock.now()) == OfferRound(0, 1)
    assert await rows(trust, "SELECT appointment_id, status FROM slot_offers") == [
        {"appointment_id": waiting["id"], "status": "offered"}
    ]


async def test_the_api_naming_a_document_number_an_hl7_t10_replaced_is_refused(trust: Harness, port: int) -> None:
    # Before, PUT /letters/DOC-77 after a T10 filed DOC-77 as DOC-78 made a second letter for the patient.
    pas = await api(trust)
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"
        assert (await client.send(mdm(document="DOC-77"))).code == "AA"
        replaced = await client.send(mdm("T10", control_id="M2", document="DOC-78", replaces="DOC-77", content=V2))
        assert replaced.code == "AA"
    answer = await pas.put_letter("DOC-77", appointment_ref="APT-1001")
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {"field": "letter_ref", "message": "document DOC-77 was replaced by DOC-78 (an MDM T10): send DOC-78"}
    ]
    letters = await rows(trust, "SELECT ref, content FROM letters")
    assert [(r["ref"], bytes(r["content"])) for r in letters] == [("DOC-78", V2)]
    # The letter's number now is the API's way to it.
    assert (await pas.put_letter("DOC-78", appointment_ref="APT-1001")).status_code == 200
    assert len(await rows(trust, "SELECT id FROM letters")) == 1
