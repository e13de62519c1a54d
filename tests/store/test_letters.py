"""Letters: PDFs for a patient or an appointment, kept by the hospital's reference; the first view is recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.rules.feed import Applied
from hub.store.letters import list_letters_for_patient, open_letter, upsert_letter
from tests.harness import Harness

pytestmark = pytest.mark.anyio
PDF = b"%PDF-1.4\n% a letter\n%%EOF\n"


async def test_opening_a_letter_gives_its_pdf_and_records_the_first_view_once(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient)
    letter = await hub.create_letter(patient_id=patient, appointment_id=appointment, content=PDF)
    await hub.create_scheduled_notice(
        appointment_id=appointment, kind="escalation_post", due_at=hub.clock.now() + timedelta(days=3)
    )
    for _ in range(2):
        opened = await open_letter(hub.db, patient_id=patient, letter_id=letter, at=hub.clock.now())
        assert opened is not None
        row, content = opened
        assert content == PDF and row["size_bytes"] == len(PDF)
        hub.clock.advance(minutes=1)
    [viewed] = await hub.db.fetch_all("SELECT first_viewed_at FROM letters")
    assert viewed == {"first_viewed_at": "2026-11-21T10:00:00.000000Z"}
    assert [e["kind"] for e in await hub.db.fetch_all("SELECT kind FROM events")] == ["letter.viewed"]
    assert [a["action"] for a in await hub.db.fetch_all("SELECT action FROM audit_events")] == ["letter_viewed"]
    pending = await hub.db.fetch_all("SELECT id FROM scheduled_notices WHERE done_at IS NULL")
    assert pending == []  # reading the letter stops the escalation to post


async def test_another_patients_letter_does_not_open(hub: Harness) -> None:
    patient = await hub.create_patient()
    other = await hub.create_patient(mobile="+447700900002")
    letter = await hub.create_letter(patient_id=other)
    assert await open_letter(hub.db, patient_id=patient, letter_id=letter, at=hub.clock.now()) is None
    assert await hub.db.fetch_all("SELECT id FROM letters WHERE first_viewed_at IS NOT NULL") == []


async def test_a_patients_letters_newest_first_and_an_appointments_alone(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment = await hub.create_appointment(patient_id=patient)
    first = await hub.create_letter(patient_id=patient, title="First")
    hub.clock.advance(hours=1)
    second = await hub.create_letter(patient_id=patient, appointment_id=appointment, title="Second")
    await hub.create_letter(patient_id=await hub.create_patient(mobile="+447700900002"))
    listed = await list_letters_for_patient(hub.db, patient)
    assert [(r["id"], r["unread"]) for r in listed] == [(second, True), (first, True)]
    assert [r["id"] for r in await list_letters_for_patient(hub.db, patient, appointment_id=appointment)] == [second]


async def test_the_same_pdf_twice_changes_nothing_and_a_new_one_is_unread_again(hub: Harness) -> None:
    org = await hub.organisation_id()
    patient = await hub.create_patient(mrn="MRN1")
    await hub.create_appointment(patient_id=patient, ref="A1")

    async def put(content: bytes, title: str = "Your appointment") -> Applied:
        async with hub.db.write() as tx:
            applied = await upsert_letter(
                tx,
                organisation_id=org,
                ref="L1",
                patient_ref=None,
                appointment_ref="A1",
                kind="appointment_letter",
                title=title,
                content=content,
                actor="1",
                now=hub.clock.now(),
            )
        return applied

    created = await put(PDF)
    assert created.outcome == "created" and created.record_id is not None
    assert await put(PDF) == Applied("unchanged", created.record_id)
    await open_letter(hub.db, patient_id=patient, letter_id=created.record_id, at=hub.clock.now())
    changed = PDF + b"%changed\n"
    assert await put(changed) == Applied("updated", created.record_id)
    [row] = await hub.db.fetch_all("SELECT patient_id, first_viewed_at, size_bytes FROM letters")
    assert row == {"patient_id": patient, "first_viewed_at": None, "size_bytes": len(changed)}
    actions = [a["action"] for a in await hub.db.fetch_all("SELECT action FROM audit_events ORDER BY id")]
    assert actions == ["letter_created", "letter_viewed", "letter_updated"]


@pytest.mark.parametrize(
    ("patient_ref", "appointment_ref", "errors"),
    [
        (None, None, [{"field": "appointment_ref", "message": "give appointment_ref or patient_ref"}]),
        (None, "A9", [{"field": "appointment_ref", "message": "no appointment with this reference"}]),
        ("MRN9", None, [{"field": "patient_ref", "message": "no patient with this reference"}]),
        ("MRN2", "A1", [{"field": "patient_ref", "message": "is not the appointment's patient"}]),
    ],
)
async def test_a_letter_for_nobody_we_know_is_refused(
    hub: Harness, patient_ref: str | None, appointment_ref: str | None, errors: list[dict[str, str]]
) -> None:
    org = await hub.organisation_id()
    await hub.create_appointment(patient_id=await hub.create_patient(mrn="MRN1"), ref="A1")
    await hub.create_patient(mrn="MRN2", mobile="+447700900002")
    async with hub.db.write() as tx:
        applied = await upsert_letter(
            tx,
            organisation_id=org,
            ref="L1",
            patient_ref=patient_ref,
            appointment_ref=appointment_ref,
            kind="clinic_letter",
            title="Clinic letter",
            content=PDF,
            actor="1",
            now=hub.clock.now(),
        )
    assert (applied.outcome, list(applied.errors)) == ("rejected", errors)
    assert await hub.db.fetch_all("SELECT id FROM letters") == []
