"""The listener's own records: answers by facility and control id, the newest message time per record, and the
records read back as the API's bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.rules.feed import read_appointment, read_patient
from hub.store import hl7 as store
from tests.conftest import MakeHub

pytestmark = pytest.mark.anyio
AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


async def test_answers_are_kept_per_facility_and_control_id(make_hub: MakeHub) -> None:
    hub = await make_hub()
    async with hub.db.write() as tx:
        assert await store.get_answer(tx, "PAS", "1") is None
        await store.record_answer(
            tx, facility="PAS", control_id="1", message_type="SIU^S12", code="AA", ack="A", now=AT
        )
        await store.record_answer(
            tx, facility="LAB", control_id="1", message_type="SIU^S12", code="AE", ack="B", now=AT
        )
    async with hub.db.write() as tx:
        assert (await store.get_answer(tx, "PAS", "1"), await store.get_answer(tx, "LAB", "1")) == ("A", "B")


async def test_only_a_newer_message_time_is_kept(make_hub: MakeHub) -> None:
    hub = await make_hub()
    org = await hub.organisation_id("RAL")
    async with hub.db.write() as tx:
        assert not await store.is_outdated(tx, org, "appointment", "A1", AT)
        await store.mark_applied(tx, org, "appointment", "A1", AT)
        await store.mark_applied(tx, org, "appointment", "A1", AT - timedelta(hours=1))  # never moves back
        assert await store.is_outdated(tx, org, "appointment", "A1", AT - timedelta(seconds=1))
        assert not await store.is_outdated(tx, org, "appointment", "A1", AT)  # the same time: a resend, applied
        assert not await store.is_outdated(tx, org, "patient", "A1", AT - timedelta(days=1))
        assert not await store.is_outdated(tx, org, "appointment", "A1", None)


async def test_records_read_back_as_bodies_the_api_accepts(make_hub: MakeHub) -> None:
    hub = await make_hub()
    org = await hub.organisation_id("RAL")
    await hub.create_site(code="RFH")
    patient_id = await hub.create_patient(mrn="M1", nhs_number="9434765919")
    await hub.create_appointment(patient_id=patient_id, ref="A1", starts_at=AT + timedelta(days=3))
    async with hub.db.write() as tx:
        patient = await store.patient_body(tx, org, "M1")
        appointment = await store.appointment_body(tx, org, "A1")
        assert await store.patient_body(tx, org, "M2") is None and await store.appointment_body(tx, org, "A2") is None
    assert patient is not None and appointment is not None
    assert read_patient(patient, today=AT.date())[1] == []
    assert read_appointment(appointment)[1] == []
    assert (appointment["patient_ref"], appointment["site_code"], appointment["start"]) == (
        "M1",
        "RFH",
        "2026-11-24T09:00:00+00:00",
    )
