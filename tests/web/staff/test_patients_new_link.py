"""An admin sends a patient a new stable link from their record: the old link stops working, the new one goes
to the patient by their usual channel. Confirmed first, a POST with the CSRF token, audited; admins only."""

from __future__ import annotations

import json

import pytest

from hub.links import link_token
from hub.store.links import patient_for_link
from tests.harness import Harness
from tests.pages import check_page
from tests.staff_harness import set_up_staff
from tests.web.patient.test_stable_link import _is_bad_link, _signs_in_as

pytestmark = pytest.mark.anyio


async def _link_id(hub: Harness, patient: int) -> str:
    row = await hub.db.fetch_one("SELECT link_id FROM patients WHERE id = ?", (patient,))
    assert row is not None
    return str(row["link_id"])


async def _links_sent(hub: Harness) -> list[tuple[str, str, str]]:
    rows = await hub.db.fetch_all(
        "SELECT channel, recipient, personalisation FROM outbox_messages WHERE kind = 'patient_link' ORDER BY id"
    )
    return [(r["channel"], r["recipient"], json.loads(r["personalisation"])["link"]) for r in rows]


async def _rotations(hub: Harness) -> list[dict[str, str]]:
    return await hub.db.fetch_all(
        "SELECT actor_type, actor_id, record_id, detail FROM audit_events WHERE action = 'patient_link_rotated'"
    )


async def test_an_admin_confirms_and_the_patient_gets_a_new_link_and_the_old_one_stops(hub: Harness) -> None:
    patient = await hub.create_patient(dob="2016-05-09")
    old = await hub.link_token(patient)
    admin = await set_up_staff(hub, "root", "admin")

    record = await hub.client.get(f"/staff/patients/{patient}")
    check_page(record.text)
    assert f'href="/staff/patients/{patient}/new-link"' in record.text and "Send a new link" in record.text
    confirm = await hub.client.get(f"/staff/patients/{patient}/new-link")
    assert confirm.status_code == 200
    check_page(confirm.text)
    assert "Their old link will stop working" in confirm.text
    assert await _link_id(hub, patient) != "" and await hub.link_token(patient) == old  # looking changes nothing

    hub.clock.advance(minutes=1)
    response = await hub.post_form(f"/staff/patients/{patient}/new-link", {}, csrf_from=f"/staff/patients/{patient}")
    assert (response.status_code, response.headers["location"]) == (
        303,
        f"/staff/patients/{patient}?done=new_link_sent",
    )
    new_id = await _link_id(hub, patient)
    new = link_token(hub.settings, new_id)
    assert new != old
    assert await _links_sent(hub) == [("sms", "+447700900001", f"{hub.settings.base_url}/p/{new}")]
    assert await _rotations(hub) == [
        {"actor_type": "agent", "actor_id": str(admin.id), "record_id": str(patient), "detail": "sms"}
    ]
    page = await hub.client.get(response.headers["location"])
    assert "A new link is on its way to the patient. Their old link no longer works." in page.text
    await _is_bad_link(hub, old)
    assert await patient_for_link(hub.db, new_id) == patient
    assert await _signs_in_as(hub, new) == "Margaret Jones"


async def test_with_no_way_to_reach_them_the_link_is_still_changed_and_the_admin_is_told(hub: Harness) -> None:
    patient = await hub.create_patient(mobile=None)
    old = await hub.link_token(patient)
    await set_up_staff(hub, "root", "admin")
    response = await hub.post_form(f"/staff/patients/{patient}/new-link", {}, csrf_from=f"/staff/patients/{patient}")
    assert response.headers["location"] == f"/staff/patients/{patient}?done=new_link_not_sent"
    assert await hub.link_token(patient) != old and await _links_sent(hub) == []
    assert [r["detail"] for r in await _rotations(hub)] == ["not sent"]
    page = await hub.client.get(response.headers["location"])
    assert "Their old link no longer works. The new link was not sent" in page.text


async def test_agents_cannot_send_a_new_link(hub: Harness) -> None:
    patient = await hub.create_patient()
    old = await hub.link_token(patient)
    await set_up_staff(hub, "alice", "agent")
    record = await hub.client.get(f"/staff/patients/{patient}")
    assert "/new-link" not in record.text
    assert (await hub.client.get(f"/staff/patients/{patient}/new-link")).status_code == 403
    response = await hub.post_form(f"/staff/patients/{patient}/new-link", {}, csrf_from=f"/staff/patients/{patient}")
    assert response.status_code == 403
    assert await hub.link_token(patient) == old and await _rotations(hub) == []


async def test_a_new_link_needs_the_csrf_token_and_a_patient_that_exists(hub: Harness) -> None:
    patient = await hub.create_patient()
    old = await hub.link_token(patient)
    await set_up_staff(hub, "root", "admin")
    for token in ("", "forged"):
        response = await hub.client.post(f"/staff/patients/{patient}/new-link", data={"csrf_token": token})
        assert response.status_code == 403
    token = await hub.csrf(f"/staff/patients/{patient}")
    response = await hub.client.post(f"/staff/patients/{patient + 1}/new-link", data={"csrf_token": token})
    assert response.status_code == 404
    assert (await hub.client.get(f"/staff/patients/{patient + 1}/new-link")).status_code == 404
    assert await hub.link_token(patient) == old and await _rotations(hub) == [] and await _links_sent(hub) == []
