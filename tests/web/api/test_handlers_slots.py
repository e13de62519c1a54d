"""PUT /api/v1/slots/{slot_ref} and DELETE (withdraw) over HTTP: validation, idempotence, audit, scoping."""

from __future__ import annotations

import pytest

from tests.harness import Harness
from tests.web.api.test_handlers import APPOINTMENT, Api, api_for, audit, rows

pytestmark = pytest.mark.anyio

SLOT = {
    "site_code": "RFH",
    "clinic": "Cardiology outpatients",
    "specialty": "Cardiology",
    "clinician": "Dr A Example",
    "start": "2026-12-10T09:30:00+00:00",
    "duration_minutes": 30,
    "mode": "in_person",
    "status": "free",
}


@pytest.fixture
async def api(hub: Harness) -> Api:
    made = await api_for(hub, "RAL", "pas-live")
    await made.setup()
    return made


async def test_slot_is_created_then_unchanged_then_updated(api: Api) -> None:
    first = await api.put("slots/S-1", SLOT)
    assert (first.status_code, first.json()) == (201, {"slot_ref": "S-1", "outcome": "created"})
    assert (await api.put("slots/S-1", SLOT)).json()["outcome"] == "unchanged"
    blocked = await api.put("slots/S-1", {**SLOT, "status": "blocked"})
    assert (blocked.status_code, blocked.json()["outcome"]) == (200, "updated")
    [slot] = await rows(api.hub, "SELECT ref, status, starts_at FROM slots")
    assert slot == {"ref": "S-1", "status": "blocked", "starts_at": "2026-12-10T09:30:00.000000Z"}
    assert await audit(api.hub, "pas-live") == [
        "site_created",
        "patient_created",
        "slot_created",
        "put_slot_unchanged",
        "slot_updated",
    ]


async def test_busy_slot_names_its_appointment(api: Api) -> None:
    assert (await api.put("appointments/A1", APPOINTMENT)).status_code == 201
    response = await api.put("slots/S-1", {**SLOT, "status": "busy", "appointment_ref": "A1"})
    assert response.status_code == 201
    [slot] = await rows(api.hub, "SELECT status, appointment_id FROM slots")
    assert slot["status"] == "busy" and slot["appointment_id"] is not None


async def test_bad_slots_are_refused_with_every_problem_and_change_nothing(api: Api) -> None:
    response = await api.put(
        "slots/bad ref", {**SLOT, "status": "open", "duration_minutes": "30", "start": "2026-12-10T09:30"}
    )
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["duration_minutes", "slot_ref", "start", "status"]
    unknown = await api.put("slots/S-2", {**SLOT, "site_code": "NOPE", "appointment_ref": "A9"})
    assert unknown.status_code == 422
    assert sorted(e["field"] for e in unknown.json()["errors"]) == ["appointment_ref", "site_code"]
    assert await rows(api.hub, "SELECT id FROM slots") == []
    assert (await audit(api.hub, "pas-live"))[-2:] == ["put_slot_rejected", "put_slot_rejected"]


async def test_delete_withdraws_a_slot_once(api: Api) -> None:
    await api.put("slots/S-1", SLOT)
    headers = {"Authorization": f"Bearer {api.key}"}
    first = await api.hub.client.delete("/api/v1/slots/S-1", headers=headers)
    assert (first.status_code, first.json()) == (200, {"slot_ref": "S-1", "outcome": "updated"})
    again = await api.hub.client.delete("/api/v1/slots/S-1", headers=headers)
    assert again.json()["outcome"] == "unchanged"
    missing = await api.hub.client.delete("/api/v1/slots/S-9", headers=headers)
    assert missing.status_code == 422
    assert (await api.hub.client.delete("/api/v1/slots/S-1")).status_code == 401
    [slot] = await rows(api.hub, "SELECT status FROM slots")
    assert slot["status"] == "withdrawn"
    # Sent again as free, it is offered again.
    assert (await api.put("slots/S-1", SLOT)).json()["outcome"] == "updated"


async def test_slots_are_scoped_to_the_keys_trust(api: Api) -> None:
    other = await api_for(api.hub, "RVL", "other-pas")
    await api.put("slots/S-1", SLOT)
    refused = await other.put("slots/S-1", SLOT)  # its trust has no site RFH
    assert refused.status_code == 422
    headers = {"Authorization": f"Bearer {other.key}"}
    assert (await api.hub.client.delete("/api/v1/slots/S-1", headers=headers)).status_code == 422
    [slot] = await rows(api.hub, "SELECT status FROM slots")
    assert slot["status"] == "free"
