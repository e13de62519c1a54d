"""The hospital's system in tests: one trust's API key, one site and one patient, driven through the real
integration API, and the outbox rows its changes leave."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from tests.harness import Harness

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
SITE = {"name": "Royal Free Hospital", "address": "Pond Street, London", "postcode": "NW3 2QG"}
PATIENT = {
    "given_name": "Margaret",
    "family_name": "Jones",
    "date_of_birth": "1948-03-14",
    "mobile": "07700 900001",
    "email": "margaret.jones@example.com",
    "postal_address": {"lines": ["1 Pond Street", "Hampstead", "London"], "postcode": "NW3 2QG"},
    "contact_preference": "sms",
}
ESCALATION_KINDS = ("invitation_reminder", "invitation_post")


class Pas:
    """The hospital system: one trust's API key, one site, one patient (MRN1)."""

    def __init__(self, hub: Harness, key: str) -> None:
        self.hub, self.key = hub, key

    async def put(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        return await self.hub.client.put(f"/api/v1/{path}", headers={"Authorization": f"Bearer {self.key}"}, **kwargs)

    async def put_patient(self, **fields: Any) -> int:
        response = await self.put("patients/MRN1", {**PATIENT, **fields})
        assert response.status_code in (200, 201), response.text
        row = await self.hub.db.fetch_one("SELECT id FROM patients WHERE mrn = 'MRN1'")
        assert row is not None
        return int(row["id"])

    async def book(
        self, ref: str = "A1", *, start: datetime, status: str = "booked", expect: str | None = None, **fields: Any
    ) -> int:
        body = {
            "patient_ref": "MRN1",
            "site_code": "RFH",
            "clinic": "Cardiology outpatients",
            "start": start.isoformat(),
            "duration_minutes": 30,
            "status": status,
            **fields,
        }
        response = await self.put(f"appointments/{ref}", body)
        assert response.status_code in (200, 201), response.text
        assert response.json().get("notice") == expect or expect is None, response.json()
        row = await self.hub.db.fetch_one("SELECT id FROM appointments WHERE ref = ?", (ref,))
        assert row is not None
        return int(row["id"])

    async def letter(self, ref: str = "L1", appointment_ref: str = "A1") -> int:
        params = {"appointment_ref": appointment_ref, "kind": "appointment_letter", "title": "Your appointment"}
        response = await self.put(f"letters/{ref}", content=PDF, params=params)
        assert response.status_code == 201, response.text
        row = await self.hub.db.fetch_one("SELECT id FROM letters WHERE ref = ?", (ref,))
        assert row is not None
        return int(row["id"])


async def pas_for(hub: Harness, **patient_fields: Any) -> Pas:
    await hub.create_organisation(code="RAL")
    pas = Pas(hub, await hub.create_api_key(organisation_code="RAL"))
    assert (await pas.put("sites/RFH", SITE)).status_code == 201
    await pas.put_patient(**patient_fields)
    return pas


async def set_patient(hub: Harness, **columns: Any) -> None:
    async with hub.db.write() as tx:
        for column, value in columns.items():
            await tx.execute(f"UPDATE patients SET {column} = ? WHERE mrn = 'MRN1'", (value,))


async def messages(hub: Harness, *kinds: str) -> list[dict[str, Any]]:
    sql, params = "SELECT * FROM outbox_messages WHERE lane = 'bulk'", list(kinds)
    if kinds:
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
    found = await hub.db.fetch_all(sql + " ORDER BY id", params)
    for row in found:
        row["personalisation"] = json.loads(row["personalisation"])
    return found
