"""An agent cancelling, from a patient's call-back, an appointment that holds a slot: the slot is freed, audited,
and offered to the next patient waiting for an earlier time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.store.offers import OfferRound, run_offers, set_earlier_request
from hub.store.task_outcomes import Outcome
from hub.store.tasks import claim_task
from hub.vocabulary import TaskOutcome
from tests.harness import Harness
from tests.seams.conftest import rows
from tests.store.test_task_outcomes import QUEUE, _outcome

pytestmark = pytest.mark.anyio
DAY = timedelta(days=1)


async def test_an_agents_cancel_frees_the_slot_for_an_earlier_offer(hub: Harness) -> None:
    now = hub.clock.now()
    caller = await hub.create_patient(mrn="MRN1")
    appointment = await hub.create_appointment(
        patient_id=caller, starts_at=now + 5 * DAY, request_state="rebook_requested"
    )
    slot = await hub.create_slot(starts_at=now + 5 * DAY, status="busy", appointment_id=appointment, ref="HELD")
    waiting = await hub.create_patient(mrn="MRN2", mobile="+447700900002")
    later = await hub.create_appointment(patient_id=waiting, starts_at=now + 30 * DAY)
    assert await set_earlier_request(hub.db, patient_id=waiting, appointment_id=later, wanted=True, now=now)
    task = await hub.create_task(patient_id=caller, appointment_id=appointment, reason="Cannot come")
    staff = await hub.create_staff_user(username="alice")
    assert await claim_task(hub.db, task_id=task, staff_id=staff, now=now, policy=QUEUE)

    await _outcome(hub, task, staff, Outcome(TaskOutcome.CANCELLED))
    assert await rows(hub, "SELECT status, appointment_id FROM slots WHERE id = ?", (slot,)) == [
        {"status": "free", "appointment_id": None}
    ]
    audit = await rows(hub, "SELECT actor_type, action, detail FROM audit_events WHERE record_type = 'slot'")
    assert audit == [{"actor_type": "agent", "action": "slot_updated", "detail": "free: its appointment was cancelled"}]
    assert await run_offers(hub.db, settings=hub.settings, now=now) == OfferRound(0, 1)
    assert await rows(hub, "SELECT appointment_id FROM slot_offers") == [{"appointment_id": later}]
