"""After the hospital merged two records (HL7 ADT^A40), the API refuses the merged record's reference: its updates,
appointments and letters go to the surviving record, never to a record no patient can reach any more."""

from __future__ import annotations

import pytest

from hub.store.patient_merge import merge_patients
from tests.web.api.test_handlers import APPOINTMENT, PATIENT, Api, api

pytestmark = pytest.mark.anyio
__all__ = ["api"]  # the fixture, shared with test_handlers.py


async def test_the_merged_reference_is_refused_everywhere(api: Api) -> None:
    await api.setup(patient="KEEP")
    assert (await api.put("patients/GONE", PATIENT)).status_code == 201
    hub = api.hub
    ids = {r["mrn"]: r["id"] for r in await hub.db.fetch_all("SELECT id, mrn FROM patients")}
    async with hub.db.write() as tx:
        await merge_patients(
            tx,
            organisation_id=1,
            surviving_id=ids["KEEP"],
            merged_id=ids["GONE"],
            actor="hl7:PAS",
            now=hub.clock.now(),
            templates=hub.settings.notify.templates,
        )
    expected = {
        "errors": [
            {
                "field": "patient_ref",
                "message": "was merged into another patient's record (HL7 ADT^A40): use the surviving record's"
                " reference",
            }
        ]
    }
    patient = await api.put("patients/GONE", PATIENT)
    booked = await api.put("appointments/A1", {**APPOINTMENT, "patient_ref": "GONE"})
    letter = await api.put_letter("L1", appointment_ref="", patient_ref="GONE")
    assert (patient.status_code, patient.json()) == (422, expected)
    assert (booked.status_code, booked.json()) == (422, expected)
    assert (letter.status_code, letter.json()) == (422, expected)
    assert await hub.db.fetch_all("SELECT mobile FROM patients WHERE mrn = 'GONE'") == [{"mobile": None}]
