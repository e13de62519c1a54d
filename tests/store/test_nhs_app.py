"""What the Wayfinder reads, on both databases: appointments and letters by NHS number, the exclusion flag, Seen."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.rules.fhir import read_receipt
from hub.store.nhs_app import (
    find_patients_by_nhs_number,
    list_wayfinder_appointments,
    list_wayfinder_letters,
    mark_letters_seen,
    set_nhs_app_excluded,
)
from tests.harness import Harness
from tests.holding import held_write, touch_patient
from tests.pas import PATIENT, PDF, pas_for

pytestmark = pytest.mark.anyio

NHS = "9434765919"


async def test_a_patient_is_found_by_nhs_number_in_every_trust(hub: Harness) -> None:
    first = await hub.create_patient(nhs_number=NHS)
    await hub.create_patient(nhs_number="9000000009")
    async with hub.db.write() as tx:
        from tests import factories

        other_org = await factories.create_organisation(tx, code="RVL", name="Other Trust")
        second = await factories.create_patient(tx, organisation_id=other_org, now=hub.clock.now(), nhs_number=NHS)
    rows = await find_patients_by_nhs_number(hub.db, NHS)
    assert [(r["id"], r["organisation_code"]) for r in rows] == [(first, "RAL"), (second, "RVL")]
    assert await find_patients_by_nhs_number(hub.db, "9876543210") == []


async def test_appointments_come_with_their_site_and_trust_in_time_order(hub: Harness) -> None:
    patient = await hub.create_patient(nhs_number=NHS)
    later = await hub.create_appointment(patient_id=patient, starts_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    earlier = await hub.create_appointment(patient_id=patient, starts_at=datetime(2025, 1, 3, 9, 30, tzinfo=UTC))
    rows = await list_wayfinder_appointments(hub.db, [patient])
    assert [r["id"] for r in rows] == [earlier, later]
    assert rows[1]["starts_at"] == datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    assert rows[1]["site_name"] == "Royal Free Hospital" and rows[1]["organisation_code"] == "RAL"
    assert await list_wayfinder_appointments(hub.db, []) == []


async def test_letters_carry_their_appointments_clinic_and_their_receipts(hub: Harness) -> None:
    patient = await hub.create_patient(nhs_number=NHS)
    appointment = await hub.create_appointment(patient_id=patient, specialty="Dermatology")
    about = await hub.create_letter(patient_id=patient, appointment_id=appointment)
    loose = await hub.create_letter(patient_id=patient, kind="discharge_summary")
    rows = {r["id"]: r for r in await list_wayfinder_letters(hub.db, [patient])}
    assert rows[about]["specialty"] == "Dermatology" and rows[about]["seen_at"] is None
    assert rows[loose]["appointment_id"] is None and rows[loose]["specialty"] is None
    assert "content" not in rows[about] and "title" not in rows[about]


async def test_opening_an_appointment_marks_its_letters_seen_once(hub: Harness) -> None:
    patient = await hub.create_patient(nhs_number=NHS)
    appointment = await hub.create_appointment(patient_id=patient)
    letter = await hub.create_letter(patient_id=patient, appointment_id=appointment)
    other = await hub.create_letter(patient_id=patient)
    assert await mark_letters_seen(hub.db, patient_id=patient, appointment_id=appointment, now=hub.clock.now()) == 1
    later = hub.clock.now() + timedelta(hours=1)
    assert await mark_letters_seen(hub.db, patient_id=patient, appointment_id=appointment, now=later) == 0
    audit = await hub.db.fetch_all("SELECT actor_type, actor_id, action, record_type, record_id FROM audit_events")
    assert [a for a in audit if a["action"] == "letter_seen"] == [
        {
            "actor_type": "patient",
            "actor_id": str(patient),
            "action": "letter_seen",
            "record_type": "letter",
            "record_id": str(letter),
        }
    ]  # once
    rows = {r["id"]: r for r in await list_wayfinder_letters(hub.db, [patient])}
    assert rows[letter]["seen_at"] is not None and rows[other]["seen_at"] is None


async def test_marking_letters_seen_waits_for_no_other_patients_write(hub: Harness, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    patient, other = await hub.create_patient(nhs_number=NHS), await hub.create_patient(mrn="OTHER")
    appointment = await hub.create_appointment(patient_id=patient)
    await hub.create_letter(patient_id=patient, appointment_id=appointment)
    async with held_write(hub.db, patient=other, doing=touch_patient(other)):
        seen = mark_letters_seen(hub.db, patient_id=patient, appointment_id=appointment, now=hub.clock.now())
        assert await asyncio.wait_for(seen, timeout=5) == 1


async def test_the_exclusion_flag_changes_once_and_is_audited(hub: Harness) -> None:
    patient = await hub.create_patient(nhs_number=NHS)
    async with hub.db.write() as tx:
        assert await set_nhs_app_excluded(tx, patient_id=patient, excluded=True, actor="pas", now=hub.clock.now())
        assert not await set_nhs_app_excluded(tx, patient_id=patient, excluded=True, actor="pas", now=hub.clock.now())
    rows = await find_patients_by_nhs_number(hub.db, NHS)
    assert rows[0]["nhs_app_excluded"] == 1
    audit = await hub.db.fetch_all("SELECT action, detail FROM audit_events WHERE record_id = ?", (str(patient),))
    assert audit == [{"action": "nhs_app_exclusion_changed", "detail": "excluded"}]


async def test_a_letter_the_hospital_gives_to_another_patient_is_unseen_for_them(hub: Harness) -> None:
    # Seen in the NHS App because its first patient opened the appointment that listed it; filed again on another
    # patient's appointment, it is a letter they have never seen (before, it arrived marked Seen; found by a seam hunt).
    pas = await pas_for(hub)
    start = hub.clock.now() + timedelta(days=10)
    first = await pas.book("A1", start=start)
    peters = {**PATIENT, "given_name": "Peter", "mobile": "07700 900002"}
    assert (await pas.put("patients/MRN2", peters)).status_code == 201
    await pas.book("A2", start=start, patient_ref="MRN2")
    letter = await pas.letter("L1", "A1")
    owner = await hub.db.fetch_one("SELECT patient_id FROM appointments WHERE id = ?", (first,))
    assert owner is not None
    assert await mark_letters_seen(hub.db, patient_id=owner["patient_id"], appointment_id=first, now=hub.clock.now())
    params = {"appointment_ref": "A2", "kind": "appointment_letter", "title": "Your appointment"}
    assert (await pas.put("letters/L1", content=PDF, params=params)).status_code == 200
    peter = await hub.db.fetch_one("SELECT id FROM patients WHERE mrn = 'MRN2'")
    assert peter is not None
    [row] = await list_wayfinder_letters(hub.db, [int(peter["id"])])
    assert (row["id"], str(read_receipt(row))) == (letter, "Unread")
