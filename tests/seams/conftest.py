"""A trust whose PAS talks HL7 over TCP (the hl7 package's MLLP client) and the JSON API, with helpers the seams
tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.rules.appointments import ActionPolicy
from hub.rules.slots import Window
from hub.store.offers import accept_offer, run_offers, set_earlier_request
from hub.store.slot_moves import Moved
from hub.vocabulary import CancelMode
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.hl7_listening import hl7_trust, listening

POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.IMMEDIATE)
WINDOW = Window(cutoff=timedelta(hours=24), days=42)
EARLIER = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


@pytest.fixture
async def trust(make_hub: MakeHub) -> Harness:
    return await hl7_trust(make_hub, **{"slots.earlier_batch": 1})


@pytest.fixture
async def port(trust: Harness) -> AsyncIterator[int]:
    async with listening(trust) as [port]:
        yield port


async def rows(trust: Harness, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await trust.db.fetch_all(sql, params)


async def take_earlier_slot(trust: Harness) -> tuple[int, int]:
    """The trust's one appointment (14 December): the patient asks for earlier and takes a freed slot on 28 November.
    Returns the appointment's id and the slot's."""
    [appt] = await rows(trust, "SELECT id, patient_id FROM appointments")
    assert await set_earlier_request(
        trust.db, patient_id=appt["patient_id"], appointment_id=appt["id"], wanted=True, now=trust.clock.now()
    )
    slot = await trust.create_slot(starts_at=EARLIER, ref="FREED", clinician="Dr Anita Patel")
    assert (await run_offers(trust.db, settings=trust.settings, now=trust.clock.now())).offered == 1
    [offer] = await rows(trust, "SELECT id FROM slot_offers")
    moved = await accept_offer(
        trust.db,
        patient_id=appt["patient_id"],
        offer_id=offer["id"],
        now=trust.clock.now(),
        policy=POLICY,
        window=WINDOW,
        settings=trust.settings,
    )
    assert moved == Moved(True)
    return int(appt["id"]), slot


async def held(trust: Harness, appointment_id: int, slot: int) -> None:
    """The hospital's stale update is held: the patient's move stands, the slot stays theirs, one conflict task and
    one `appointment.conflict` event."""
    [appt] = await rows(trust, "SELECT status, starts_at FROM appointments WHERE id = ?", (appointment_id,))
    assert appt == {"status": "booked", "starts_at": "2026-11-28T09:30:00.000000Z"}  # the patient's move stands
    assert await rows(trust, "SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "busy", "appointment_id": appointment_id}
    ]
    tasks = await rows(trust, "SELECT kind, status FROM tasks WHERE appointment_id = ?", (appointment_id,))
    assert tasks == [{"kind": "conflict", "status": "open"}]
    kinds = [r["kind"] for r in await rows(trust, "SELECT kind FROM events ORDER BY id")]
    assert kinds.count("appointment.conflict") == 1
