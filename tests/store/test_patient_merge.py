"""Merging two records of one patient: everything moves to the survivor, the merged record's sessions end and it
can no longer be found, its stable link reaches the survivor; audited, with an event for the hospital."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.store.patient_merge import merge_patients
from hub.store.sessions import create_session
from tests.conftest import MakeHub

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


async def test_the_survivor_takes_everything_and_the_old_link_still_signs_in(make_hub: MakeHub) -> None:
    hub = await make_hub()
    org = await hub.organisation_id("RAL")
    await hub.create_site(code="RFH")
    survivor = await hub.create_patient(mrn="KEEP", mobile="+447700900001", nhs_number="9434765919")
    merged = await hub.create_patient(mrn="GONE", mobile="+447700900002", nhs_number="9434765919")
    appointment = await hub.create_appointment(patient_id=merged, ref="A1", starts_at=NOW + timedelta(days=5))
    letter = await hub.create_letter(patient_id=merged, appointment_id=appointment)
    task = await hub.create_task(patient_id=merged, appointment_id=appointment)
    message = await hub.create_message(patient_id=merged)
    async with hub.db.write() as tx:
        await create_session(tx, secret=hub.settings.secret_key, patient_id=merged, at=NOW, idle=timedelta(hours=1))
        assert await merge_patients(
            tx,
            organisation_id=org,
            surviving_id=survivor,
            merged_id=merged,
            actor="hl7:PAS",
            now=NOW,
            templates=hub.settings.notify.templates,
        )
        # Once is enough: merging again changes nothing.
        assert not await merge_patients(
            tx,
            organisation_id=org,
            surviving_id=survivor,
            merged_id=merged,
            actor="hl7:PAS",
            now=NOW,
            templates=hub.settings.notify.templates,
        )
    for table, row_id in (("appointments", appointment), ("letters", letter), ("tasks", task)):
        assert await hub.db.fetch_all(f"SELECT patient_id FROM {table} WHERE id = ?", (row_id,)) == [
            {"patient_id": survivor}
        ]
    assert await hub.db.fetch_all("SELECT patient_id FROM outbox_messages WHERE id = ?", (message,)) == [
        {"patient_id": survivor}
    ]
    assert await hub.db.fetch_all("SELECT ended_at FROM sessions WHERE patient_id = ?", (merged,)) == [
        {"ended_at": "2026-11-21T10:00:00.000000Z"}
    ]
    assert await hub.db.fetch_all(
        "SELECT merged_into, mobile, email, nhs_number FROM patients WHERE id = ?", (merged,)
    ) == [{"merged_into": survivor, "mobile": None, "email": None, "nhs_number": None}]
    [event] = await hub.db.fetch_all("SELECT kind, patient_id, data FROM events")
    assert event == {"kind": "patient.merged", "patient_id": survivor, "data": '{"merged_mrn": "GONE"}'}
    [audit] = await hub.db.fetch_all("SELECT action, record_id FROM audit_events WHERE action = 'patient_merged'")
    assert audit == {"action": "patient_merged", "record_id": str(survivor)}

    # The merged record's old link, with the survivor's details, signs in to the survivor.
    response = await hub.submit_details("07700 900001", "1948-03-14", link=await hub.link_token(merged))
    assert response.status_code == 303, response.text
    response = await hub.submit_code((await hub.sent_codes())[-1])
    assert response.headers["location"] == "/appointments"
    page = await hub.client.get("/appointments")
    assert "Cardiology" in page.text
