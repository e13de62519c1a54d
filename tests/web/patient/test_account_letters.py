import json
from typing import Any

import pytest

from hub.clock import to_db
from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 3000 + b"\n%%EOF\n"


async def letter_row(hub: Harness, letter_id: int) -> dict[str, Any]:
    row = await hub.db.fetch_one("SELECT * FROM letters WHERE id = ?", (letter_id,))
    assert row is not None
    return row


async def counts(hub: Harness) -> tuple[int, int]:
    audit = await hub.db.fetch_all("SELECT id FROM audit_events")
    events = await hub.db.fetch_all("SELECT id FROM events")
    return len(audit), len(events)


async def test_letters_page_lists_the_patients_letters(hub: Harness) -> None:
    patient = await hub.create_patient()
    other = await hub.create_patient(mobile="+447700900002", verification_code="PX2B9Z")
    appointment_id = await hub.create_appointment(patient_id=patient)
    first = await hub.create_letter(patient_id=patient, appointment_id=appointment_id, title="Appointment invitation")
    hub.clock.advance(minutes=1)
    second = await hub.create_letter(
        patient_id=patient, title="Discharge summary from ward 5", content=PDF, kind="discharge_summary"
    )
    await hub.create_letter(patient_id=other, title="Someone else's letter")
    await hub.sign_in()

    response = await hub.client.get("/letters")
    assert response.status_code == 200
    check_page(response.text)
    html = response.text
    assert html.index(f'href="/letters/{second}"') < html.index(f'href="/letters/{first}"')  # newest first
    assert "Appointment invitation</a> (PDF, 1 KB)" in html
    assert "Discharge summary from ward 5</a> (PDF, 3 KB)" in html
    assert "Discharge summary, Saturday 21 November 2026" in html
    assert "Appointment letter, Saturday 21 November 2026" in html
    assert html.count("Unread") == 2
    assert "Someone else" not in html


async def test_letters_page_with_no_letters(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()
    response = await hub.client.get("/letters")
    check_page(response.text)
    assert "You have no letters." in response.text


async def test_viewing_a_letter_returns_the_pdf_and_records_the_first_view_once(hub: Harness) -> None:
    patient = await hub.create_patient()
    appointment_id = await hub.create_appointment(patient_id=patient)
    letter_id = await hub.create_letter(patient_id=patient, appointment_id=appointment_id, content=PDF)
    await hub.sign_in()
    assert (await letter_row(hub, letter_id))["first_viewed_at"] is None
    audit_before, events_before = await counts(hub)
    viewed_at = hub.clock.now()

    response = await hub.client.get(f"/letters/{letter_id}")
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'inline; filename="letter-{letter_id}.pdf"'
    assert response.headers["cache-control"] == "no-store"

    assert (await letter_row(hub, letter_id))["first_viewed_at"] == to_db(viewed_at)
    assert await counts(hub) == (audit_before + 1, events_before + 1)
    audit = await hub.db.fetch_all("SELECT * FROM audit_events WHERE record_type = 'letter'")
    assert [(a["actor_type"], a["actor_id"], a["action"], a["record_id"], a["at"]) for a in audit] == [
        ("patient", str(patient), "letter_viewed", str(letter_id), to_db(viewed_at))
    ]
    events = await hub.db.fetch_all("SELECT * FROM events")
    assert [(e["kind"], e["patient_id"], e["appointment_id"]) for e in events] == [
        ("letter.viewed", patient, appointment_id)
    ]
    assert json.loads(events[0]["data"]) == {"letter_id": letter_id}

    hub.clock.advance(minutes=5)
    again = await hub.client.get(f"/letters/{letter_id}")
    assert again.status_code == 200 and again.content == PDF
    assert (await letter_row(hub, letter_id))["first_viewed_at"] == to_db(viewed_at)
    assert await counts(hub) == (audit_before + 1, events_before + 1)

    listing = await hub.client.get("/letters")
    assert "Unread" not in listing.text


async def test_another_patients_letter_is_not_found_and_stays_unread(hub: Harness) -> None:
    await hub.create_patient()
    other = await hub.create_patient(mobile="+447700900002", verification_code="PX2B9Z")
    letter_id = await hub.create_letter(patient_id=other, content=PDF)
    await hub.sign_in()
    before = await counts(hub)

    response = await hub.client.get(f"/letters/{letter_id}")
    assert response.status_code == 404
    check_page(response.text)
    assert PDF not in response.content
    assert (await hub.client.get(f"/letters/{letter_id + 100}")).status_code == 404
    assert (await letter_row(hub, letter_id))["first_viewed_at"] is None
    assert await counts(hub) == before


async def test_signed_out_cannot_view_a_letter(hub: Harness) -> None:
    patient = await hub.create_patient()
    letter_id = await hub.create_letter(patient_id=patient, content=PDF)
    for path in (f"/letters/{letter_id}", "/letters"):
        response = await hub.client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/")
    assert (await letter_row(hub, letter_id))["first_viewed_at"] is None


async def test_the_list_page_links_the_newest_letters(hub: Harness) -> None:
    patient = await hub.create_patient()
    ids = []
    for n in range(6):
        ids.append(await hub.create_letter(patient_id=patient, title=f"Letter number {n}"))
        hub.clock.advance(seconds=1)
    await hub.sign_in()
    html = (await hub.client.get("/appointments")).text
    check_page(html)
    assert all(f'href="/letters/{i}"' in html for i in ids[1:])
    assert f'href="/letters/{ids[0]}"' not in html  # only the five newest, then a link to them all
    assert 'href="/letters">See all your letters' in html
