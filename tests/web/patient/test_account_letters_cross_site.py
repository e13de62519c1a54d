"""A letter opened by another site's page in the patient's browser is served but not recorded as read."""

import pytest

from tests.harness import Harness

pytestmark = pytest.mark.anyio
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 3000 + b"\n%%EOF\n"


async def _viewed(hub: Harness, letter_id: int) -> object:
    row = await hub.db.fetch_one("SELECT first_viewed_at FROM letters WHERE id = ?", (letter_id,))
    assert row is not None
    return row["first_viewed_at"]


async def test_a_cross_site_request_does_not_mark_the_letter_viewed(hub: Harness) -> None:
    # SameSite=Lax sends the cookie with another site's top-level GET: that stopped reminders and the posted copy.
    patient = await hub.create_patient()
    letter_id = await hub.create_letter(
        patient_id=patient, appointment_id=await hub.create_appointment(patient_id=patient), content=PDF
    )
    await hub.sign_in()
    response = await hub.client.get(f"/letters/{letter_id}", headers={"sec-fetch-site": "cross-site"})
    assert response.status_code == 200 and response.content == PDF
    assert await _viewed(hub, letter_id) is None
    assert await hub.db.fetch_all("SELECT id FROM events WHERE kind = 'letter.viewed'") == []
    for site in ("same-origin", "none"):  # a link on our own page; a bookmark or the address bar
        await hub.client.get(f"/letters/{letter_id}", headers={"sec-fetch-site": site})
        assert await _viewed(hub, letter_id) is not None
