"""The integration API over HTTP: upserts, the notices they queue, letters, API keys and their audit."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hub.settings import ROOT
from hub.store.api_keys import create_api_key, revoke_api_key
from hub.vocabulary import EVENT_KINDS, EventKind
from tests.conftest import SECRET, MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
SITE = {
    "name": "Royal Free Hospital",
    "address": "Pond Street, London",
    "postcode": "nw3 2qg",
    "latitude": 51.5533,
    "longitude": -0.1652,
    "directions": "Main entrance on Pond Street.",
    "parking": "Pay and display.",
    "phone": "020 7794 0500",
}
PATIENT = {
    "nhs_number": "943 476 5919",
    "given_name": "Margaret",
    "family_name": "Jones",
    "date_of_birth": "1948-03-14",
    "mobile": "07700 900001",
    "email": "Margaret.Jones@example.com",
    "postal_address": {"lines": ["1 Pond Street", "London"], "postcode": "NW3 2QG"},
    "contact_preference": "sms",
}
APPOINTMENT = {
    "patient_ref": "MRN1",
    "site_code": "RFH",
    "clinic": "Cardiology outpatients",
    "specialty": "Cardiology",
    "clinician": "Dr A Example",
    "start": "2026-12-03T09:30:00+00:00",
    "duration_minutes": 30,
    "mode": "in_person",
    "status": "booked",
    "transport_booked": False,
    "interpreter_booked": False,
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Api:
    """The hospital system's side: one trust's key, and helpers to PUT what it sends."""

    def __init__(self, hub: Harness, key: str, name: str) -> None:
        self.hub, self.key, self.name = hub, key, name

    async def put(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {**bearer(self.key), **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["json"] = body
        return await self.hub.client.put(f"/api/v1/{path}", headers=headers, **kwargs)

    async def put_letter(self, ref: str, content: bytes = PDF, **params: str) -> httpx.Response:
        query = {"appointment_ref": "A1", "kind": "appointment_letter", "title": "Your appointment", **params}
        return await self.put(f"letters/{ref}", content=content, params=query)

    async def setup(self, *, site: str = "RFH", patient: str = "MRN1", **patient_fields: Any) -> None:
        assert (await self.put(f"sites/{site}", SITE)).status_code == 201
        assert (await self.put(f"patients/{patient}", {**PATIENT, **patient_fields})).status_code == 201


async def rows(hub: Harness, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await hub.db.fetch_all(sql, params)


async def count(hub: Harness, table: str, where: str = "1 = 1", params: tuple[Any, ...] = ()) -> int:
    row = await hub.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", params)
    assert row is not None
    return int(row["n"])


async def outbox(hub: Harness) -> list[dict[str, Any]]:
    found = await rows(hub, "SELECT * FROM outbox_messages ORDER BY id")
    for row in found:
        row["personalisation"] = json.loads(row["personalisation"])
    return found


async def appointment(hub: Harness, ref: str = "A1") -> dict[str, Any]:
    row = await hub.db.fetch_one("SELECT * FROM appointments WHERE ref = ?", (ref,))
    assert row is not None
    return row


async def audit(hub: Harness, actor: str) -> list[str]:
    found = await rows(
        hub, "SELECT action FROM audit_events WHERE actor_type = 'api_key' AND actor_id = ? ORDER BY id", (actor,)
    )
    return [r["action"] for r in found]


async def api_for(hub: Harness, code: str, name: str) -> Api:
    if await hub.db.fetch_one("SELECT id FROM organisations WHERE code = ?", (code,)) is None:
        await hub.create_organisation(code=code, name=f"Trust {code}")
    return Api(hub, await create_api_key(hub.db, organisation_code=code, name=name, now=hub.clock.now()), name)


@pytest.fixture
async def api(hub: Harness) -> Api:
    return await api_for(hub, "RAL", "pas-live")


@pytest.fixture
async def other(api: Api) -> Api:
    """A second trust's key on the same hub."""
    return await api_for(api.hub, "RVL", "other-pas")


# Sites


async def test_site_is_created_then_unchanged_then_updated(api: Api) -> None:
    response = await api.put("sites/RFH", SITE)
    assert response.status_code == 201
    assert response.json() == {"site_code": "RFH", "outcome": "created"}
    site = await api.hub.db.fetch_one("SELECT * FROM sites WHERE code = 'RFH'")
    assert site is not None
    assert site["organisation_id"] == await api.hub.organisation_id()
    assert (site["name"], site["postcode"], site["latitude"]) == ("Royal Free Hospital", "NW3 2QG", 51.5533)

    response = await api.put("sites/RFH", SITE)
    assert response.status_code == 200
    assert response.json() == {"site_code": "RFH", "outcome": "unchanged"}

    response = await api.put("sites/RFH", {**SITE, "name": "Royal Free London", "latitude": None, "longitude": None})
    assert response.status_code == 200
    assert response.json() == {"site_code": "RFH", "outcome": "updated"}
    site = await api.hub.db.fetch_one("SELECT name, latitude FROM sites WHERE code = 'RFH'")
    assert site == {"name": "Royal Free London", "latitude": None}
    assert await audit(api.hub, "pas-live") == ["site_created", "put_site_unchanged", "site_updated"]


async def test_site_needs_only_a_name(api: Api) -> None:
    response = await api.put("sites/BARNET", {"name": "Barnet Hospital"})
    assert response.status_code == 201
    site = await api.hub.db.fetch_one("SELECT address, postcode, latitude FROM sites WHERE code = 'BARNET'")
    assert site == {"address": "", "postcode": "", "latitude": None}


async def test_site_organisation_must_be_the_keys_own(api: Api) -> None:
    assert (await api.put("sites/RFH", {**SITE, "organisation": "RAL"})).status_code == 201
    response = await api.put("sites/RFH", {**SITE, "organisation": "RVL", "name": "Taken over"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "organisation", "message": "must be your organisation's code, RAL"}]
    assert await count(api.hub, "sites", "name = 'Taken over'") == 0


# Patients


async def test_patient_is_created_then_unchanged_then_updated(api: Api) -> None:
    response = await api.put("patients/MRN1", PATIENT)
    assert response.status_code == 201
    assert response.json() == {"patient_ref": "MRN1", "outcome": "created"}
    patient = await api.hub.db.fetch_one("SELECT * FROM patients WHERE mrn = 'MRN1'")
    assert patient is not None
    assert patient["nhs_number"] == "9434765919"
    assert patient["mobile"] == "+447700900001"
    assert patient["email"] == "margaret.jones@example.com"
    assert json.loads(patient["address_lines"]) == ["1 Pond Street", "London"]
    assert patient["postcode"] == "NW3 2QG"
    assert patient["date_of_birth"] == "1948-03-14"
    assert len(patient["verification_code"]) == 6

    api.hub.clock.advance(hours=1)
    response = await api.put("patients/MRN1", PATIENT)
    assert (response.status_code, response.json()["outcome"]) == (200, "unchanged")
    unchanged = await api.hub.db.fetch_one("SELECT * FROM patients WHERE mrn = 'MRN1'")
    assert unchanged == patient

    changed = {**PATIENT, "family_name": "Smith", "mobile": None, "contact_preference": "email"}
    response = await api.put("patients/MRN1", changed)
    assert (response.status_code, response.json()["outcome"]) == (200, "updated")
    updated = await api.hub.db.fetch_one("SELECT * FROM patients WHERE mrn = 'MRN1'")
    assert updated is not None
    assert (updated["family_name"], updated["mobile"], updated["contact_preference"]) == ("Smith", None, "email")
    assert updated["verification_code"] == patient["verification_code"]  # printed on letters: it stays
    assert updated["id"] == patient["id"]
    assert await audit(api.hub, "pas-live") == ["patient_created", "put_patient_unchanged", "patient_updated"]


async def test_patient_refs_are_scoped_to_the_trust(api: Api, other: Api) -> None:
    assert (await api.put("patients/MRN1", PATIENT)).status_code == 201
    response = await other.put("patients/MRN1", {**PATIENT, "given_name": "Peggy"})
    assert response.status_code == 201  # the other trust's MRN1 is another person
    found = await rows(api.hub, "SELECT organisation_id, given_name FROM patients WHERE mrn = 'MRN1' ORDER BY id")
    assert [r["given_name"] for r in found] == ["Margaret", "Peggy"]
    assert found[0]["organisation_id"] != found[1]["organisation_id"]


# Appointments and the notices they send


async def test_new_appointment_sends_the_invitation_once(make_hub: MakeHub) -> None:
    hub = await make_hub(**{"notify.templates.invitation_sms": "tpl-invitation-sms"})
    api = await api_for(hub, "RAL", "pas-live")
    await api.setup()
    response = await api.put("appointments/A1", APPOINTMENT)
    assert response.status_code == 201
    assert response.json() == {"appointment_ref": "A1", "outcome": "created", "notice": "invitation"}
    row = await appointment(hub)
    assert (row["status"], row["request_state"], row["sequence"], row["starts_at"]) == (
        "booked",
        "none",
        0,
        "2026-12-03T09:30:00.000000Z",
    )
    [message] = await outbox(hub)
    patient = await hub.db.fetch_one("SELECT id, verification_code FROM patients WHERE mrn = 'MRN1'")
    assert patient is not None
    assert message["kind"] == "invitation"
    assert (message["channel"], message["recipient"]) == ("sms", "+447700900001")
    assert message["template_id"] == "tpl-invitation-sms"
    assert (message["patient_id"], message["appointment_id"], message["status"]) == (patient["id"], row["id"], "queued")
    assert message["personalisation"] == {
        "link": message["personalisation"]["link"],
        "verification_code": patient["verification_code"],
        "date": "Thursday 3 December 2026",
        "time": "9:30am",
        "site": "Royal Free Hospital",
        "clinic": "Cardiology outpatients",
    }
    link = message["personalisation"]["link"]
    assert link.startswith(f"{hub.settings.base_url}/p/")
    assert link == f"{hub.settings.base_url}/p/{await hub.link_token(patient['id'])}"

    response = await api.put("appointments/A1", APPOINTMENT)
    assert response.status_code == 200
    assert response.json() == {"appointment_ref": "A1", "outcome": "unchanged"}
    assert len(await outbox(hub)) == 1
    assert (await appointment(hub))["sequence"] == 0
    assert await audit(hub, "pas-live") == [
        "site_created",
        "patient_created",
        "appointment_created",
        "put_appointment_unchanged",
    ]


async def test_equivalent_start_in_another_offset_is_unchanged(api: Api) -> None:
    await api.setup()
    assert (await api.put("appointments/A1", APPOINTMENT)).status_code == 201
    response = await api.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-03T09:30:00Z"})
    assert response.json()["outcome"] == "unchanged"
    response = await api.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-03T10:30:00+01:00"})
    assert response.json()["outcome"] == "unchanged"
    assert len(await outbox(api.hub)) == 1


async def test_time_in_summer_is_shown_in_london_time(api: Api) -> None:
    api.hub.clock.set(datetime(2026, 1, 10, 9, 0, tzinfo=UTC))
    await api.setup()
    response = await api.put("appointments/A1", {**APPOINTMENT, "start": "2026-06-15T08:30:00Z"})
    assert response.json()["notice"] == "invitation"
    [message] = await outbox(api.hub)
    assert message["personalisation"]["date"] == "Monday 15 June 2026"
    assert message["personalisation"]["time"] == "9:30am"
    assert (await appointment(api.hub))["starts_at"] == "2026-06-15T08:30:00.000000Z"


async def test_changed_time_sends_the_changed_notice_and_bumps_the_sequence(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    await api.hub.send_queued()  # the invitation went before the change
    response = await api.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-10T14:00:00+00:00"})
    assert response.status_code == 200
    assert response.json() == {"appointment_ref": "A1", "outcome": "updated", "notice": "changed"}
    row = await appointment(api.hub)
    assert (row["starts_at"], row["sequence"]) == ("2026-12-10T14:00:00.000000Z", 1)
    invitation, changed = await outbox(api.hub)
    assert invitation["kind"] == "invitation"
    assert (changed["kind"], changed["channel"], changed["appointment_id"]) == ("changed", "sms", row["id"])
    assert (changed["personalisation"]["date"], changed["personalisation"]["time"]) == (
        "Thursday 10 December 2026",
        "2pm",
    )
    assert (await api.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-10T14:00:00+00:00"})).json() == {
        "appointment_ref": "A1",
        "outcome": "unchanged",
    }
    assert len(await outbox(api.hub)) == 2


async def test_changed_site_sends_the_changed_notice(api: Api) -> None:
    await api.setup()
    assert (await api.put("sites/BARNET", {"name": "Barnet Hospital"})).status_code == 201
    await api.put("appointments/A1", APPOINTMENT)
    await api.hub.send_queued()  # the invitation went before the change
    response = await api.put("appointments/A1", {**APPOINTMENT, "site_code": "BARNET"})
    assert response.json() == {"appointment_ref": "A1", "outcome": "updated", "notice": "changed"}
    messages = await outbox(api.hub)
    assert [m["kind"] for m in messages] == ["invitation", "changed"]
    assert messages[1]["personalisation"]["site"] == "Barnet Hospital"
    assert (await appointment(api.hub))["sequence"] == 1


async def test_changed_mode_sends_the_changed_notice(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    await api.hub.send_queued()  # the invitation went before the change
    response = await api.put("appointments/A1", {**APPOINTMENT, "mode": "telephone"})
    assert response.json()["notice"] == "changed"
    assert [m["kind"] for m in await outbox(api.hub)] == ["invitation", "changed"]


async def test_other_changes_send_nothing_but_the_calendar_sees_them(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    response = await api.put("appointments/A1", {**APPOINTMENT, "duration_minutes": 45, "clinician": "Dr B"})
    assert response.status_code == 200
    assert response.json() == {"appointment_ref": "A1", "outcome": "updated"}
    row = await appointment(api.hub)
    assert (row["duration_minutes"], row["clinician"]) == (45, "Dr B")
    assert row["sequence"] == 1  # the calendar entry's end time moved: calendars must replace their copy
    assert len(await outbox(api.hub)) == 1


async def test_cancelled_status_sends_the_cancelled_notice_once(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    cancelled = {**APPOINTMENT, "status": "cancelled"}
    response = await api.put("appointments/A1", cancelled)
    assert response.json() == {"appointment_ref": "A1", "outcome": "updated", "notice": "cancelled"}
    row = await appointment(api.hub)
    assert (row["status"], row["sequence"]) == ("cancelled", 1)
    assert [m["kind"] for m in await outbox(api.hub)] == ["invitation", "cancelled"]

    response = await api.put("appointments/A1", cancelled)
    assert response.json() == {"appointment_ref": "A1", "outcome": "unchanged"}
    assert [m["kind"] for m in await outbox(api.hub)] == ["invitation", "cancelled"]
    assert (await appointment(api.hub))["sequence"] == 1


async def test_reinstated_appointment_sends_a_new_invitation(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    await api.put("appointments/A1", {**APPOINTMENT, "status": "cancelled"})
    response = await api.put("appointments/A1", APPOINTMENT)
    assert response.json()["notice"] == "invitation"
    assert [m["kind"] for m in await outbox(api.hub)] == ["invitation", "cancelled", "invitation"]
    assert (await appointment(api.hub))["sequence"] == 2


async def test_appointment_created_cancelled_sends_nothing(api: Api) -> None:
    await api.setup()
    response = await api.put("appointments/A1", {**APPOINTMENT, "status": "cancelled"})
    assert response.json() == {"appointment_ref": "A1", "outcome": "created"}
    assert await outbox(api.hub) == []


async def test_past_appointment_sends_nothing(api: Api) -> None:
    await api.setup()
    past = {**APPOINTMENT, "start": "2026-11-20T09:30:00+00:00"}
    response = await api.put("appointments/A1", past)
    assert (response.status_code, response.json()) == (201, {"appointment_ref": "A1", "outcome": "created"})
    response = await api.put("appointments/A1", {**past, "start": "2026-11-19T09:30:00+00:00"})
    assert response.json() == {"appointment_ref": "A1", "outcome": "updated"}
    response = await api.put("appointments/A1", {**past, "status": "attended"})
    assert response.json() == {"appointment_ref": "A1", "outcome": "updated"}
    assert await outbox(api.hub) == []


@pytest.mark.parametrize(
    ("fields", "opted_out", "channel", "recipient"),
    [
        ({"contact_preference": "sms"}, False, "sms", "+447700900001"),
        ({"contact_preference": "email"}, False, "email", "margaret.jones@example.com"),
        ({"contact_preference": None, "mobile": None}, False, "email", "margaret.jones@example.com"),
        ({"contact_preference": "email", "email": None}, False, None, None),  # refused: no email to prefer
        ({"contact_preference": None, "mobile": None, "email": None}, False, "letter", "post"),
        ({"contact_preference": "sms"}, True, "letter", "post"),
    ],
)
async def test_invitation_goes_by_the_patients_channel(
    api: Api, fields: dict[str, Any], opted_out: bool, channel: str | None, recipient: str | None
) -> None:
    assert (await api.put("sites/RFH", SITE)).status_code == 201
    response = await api.put("patients/MRN1", {**PATIENT, **fields})
    if channel is None:
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"field": "contact_preference", "message": "is email but there is no email"}
        ]
        return
    assert response.status_code == 201
    if opted_out:
        async with api.hub.db.write() as tx:
            await tx.execute("UPDATE patients SET opted_out = 1 WHERE mrn = 'MRN1'")
    assert (await api.put("appointments/A1", APPOINTMENT)).status_code == 201
    [message] = await outbox(api.hub)
    assert (message["kind"], message["channel"], message["recipient"]) == ("invitation", channel, recipient)


async def test_new_time_answers_the_patients_rebook_request(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    async with api.hub.db.write() as tx:
        await tx.execute("UPDATE appointments SET request_state = 'rebook_requested' WHERE ref = 'A1'")
    await api.put("appointments/A1", {**APPOINTMENT, "clinician": "Dr B"})
    assert (await appointment(api.hub))["request_state"] == "rebook_requested"  # not a new time
    await api.put("appointments/A1", {**APPOINTMENT, "clinician": "Dr B", "start": "2026-12-17T11:00:00+00:00"})
    assert (await appointment(api.hub))["request_state"] == "none"


async def test_a_new_time_clears_the_confirmation_of_the_old_one(api: Api) -> None:
    # Issue 13 (2): the patient confirmed one time; the hospital moved it. "You confirmed you will attend" would be
    # for a time she never saw, and the 7-day reminder would be skipped as if she had confirmed the new one.
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    async with api.hub.db.write() as tx:
        await tx.execute("UPDATE appointments SET request_state = 'confirmed' WHERE ref = 'A1'")
    await api.put("appointments/A1", {**APPOINTMENT, "start": "2026-12-17T11:00:00+00:00"})
    assert (await appointment(api.hub))["request_state"] == "none"
    reminders = await rows(
        api.hub, "SELECT kind, due_at FROM scheduled_notices WHERE kind LIKE 'reminder_%' AND done_at IS NULL"
    )
    assert {(r["kind"], r["due_at"]) for r in reminders} == {
        ("reminder_7d", "2026-12-10T11:00:00.000000Z"),
        ("reminder_1d", "2026-12-16T11:00:00.000000Z"),
    }


async def test_appointment_cannot_move_to_another_patient(api: Api) -> None:
    await api.setup()
    assert (await api.put("patients/MRN2", {**PATIENT, "given_name": "Tom"})).status_code == 201
    await api.put("appointments/A1", APPOINTMENT)
    response = await api.put("appointments/A1", {**APPOINTMENT, "patient_ref": "MRN2"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["patient_ref"]
    row = await appointment(api.hub)
    patient = await api.hub.db.fetch_one("SELECT id FROM patients WHERE mrn = 'MRN1'")
    assert patient is not None and row["patient_id"] == patient["id"]
    assert len(await outbox(api.hub)) == 1


async def test_unknown_patient_and_site_are_both_listed(api: Api) -> None:
    response = await api.put("appointments/A1", {**APPOINTMENT, "patient_ref": "NOPE", "site_code": "NOWHERE"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"patient_ref", "site_code"}
    assert await count(api.hub, "appointments") == 0
    assert await outbox(api.hub) == []


# Letters


async def test_letter_is_created_then_unchanged_then_updated(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    response = await api.put_letter("L1")
    assert response.status_code == 201
    assert response.json() == {"letter_ref": "L1", "outcome": "created"}
    letter = await api.hub.db.fetch_one("SELECT * FROM letters WHERE ref = 'L1'")
    row = await appointment(api.hub)
    assert letter is not None
    assert (letter["patient_id"], letter["appointment_id"]) == (row["patient_id"], row["id"])
    assert (letter["kind"], letter["title"], bytes(letter["content"]), letter["size_bytes"]) == (
        "appointment_letter",
        "Your appointment",
        PDF,
        len(PDF),
    )
    assert letter["first_viewed_at"] is None

    response = await api.put_letter("L1")
    assert (response.status_code, response.json()["outcome"]) == (200, "unchanged")
    response = await api.put_letter("L1", title="Your new appointment", kind="clinic_letter")
    assert (response.status_code, response.json()["outcome"]) == (200, "updated")
    letter = await api.hub.db.fetch_one("SELECT kind, title FROM letters WHERE ref = 'L1'")
    assert letter == {"kind": "clinic_letter", "title": "Your new appointment"}
    assert await count(api.hub, "letters") == 1
    assert (await audit(api.hub, "pas-live"))[-3:] == ["letter_created", "put_letter_unchanged", "letter_updated"]


async def test_replaced_pdf_counts_as_unread_again(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    await api.put_letter("L1")
    async with api.hub.db.write() as tx:
        await tx.execute("UPDATE letters SET first_viewed_at = '2026-11-21T10:00:00.000000Z' WHERE ref = 'L1'")
    await api.put_letter("L1")  # the same PDF: still read
    assert await count(api.hub, "letters", "first_viewed_at IS NOT NULL") == 1
    response = await api.put_letter("L1", PDF + b"% revised\n")
    assert response.json()["outcome"] == "updated"
    letter = await api.hub.db.fetch_one("SELECT first_viewed_at, content FROM letters WHERE ref = 'L1'")
    assert letter is not None
    assert letter["first_viewed_at"] is None
    assert bytes(letter["content"]) == PDF + b"% revised\n"


async def test_letter_for_a_patient_without_an_appointment(api: Api) -> None:
    await api.setup()
    response = await api.put_letter("L1", appointment_ref="", patient_ref="MRN1", kind="discharge_summary")
    assert response.status_code == 201
    letter = await api.hub.db.fetch_one("SELECT appointment_id, kind FROM letters WHERE ref = 'L1'")
    assert letter == {"appointment_id": None, "kind": "discharge_summary"}


async def test_letter_must_be_a_pdf(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    for content in (b"", b"<html>not a pdf</html>", b"PDF-1.4", b" %PDF-1.4"):
        response = await api.put_letter("L1", content)
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "body", "message": "must be a PDF file"}]
    assert await count(api.hub, "letters") == 0


async def test_letter_over_the_size_limit_is_refused(make_hub: MakeHub) -> None:
    hub = await make_hub(letter_max_bytes=1000)
    api = await api_for(hub, "RAL", "pas-live")
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    exactly = PDF + b"x" * (1000 - len(PDF))
    assert (await api.put_letter("L1", exactly)).status_code == 201
    response = await api.put_letter("L2", exactly + b"x")
    assert response.status_code == 413
    assert response.json()["errors"] == [{"field": "body", "message": "must be 1000 bytes or fewer"}]

    async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
        yield exactly
        yield b"xxxx"

    response = await api.put(
        "letters/L3", content=chunks(), params={"patient_ref": "MRN1", "kind": "clinic_letter", "title": "T"}
    )
    assert response.status_code == 413
    assert await count(api.hub, "letters") == 1
    assert "put_letter_rejected" in await audit(hub, "pas-live")


async def test_letter_kind_title_and_refs_are_checked_together(api: Api) -> None:
    await api.setup()
    response = await api.put_letter("L1", b"not a pdf", kind="postcard", title=" ", appointment_ref="a b")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "kind", "message": "must be one of: appointment_letter, clinic_letter, discharge_summary"},
        {"field": "title", "message": "is required, 200 characters or fewer"},
        {"field": "appointment_ref", "message": "must be 1 to 64 letters, digits, dots, dashes or underscores"},
        {"field": "body", "message": "must be a PDF file"},
    ]
    response = await api.put_letter("L1", title="x" * 201)
    assert [e["field"] for e in response.json()["errors"]] == ["title"]
    assert await count(api.hub, "letters") == 0


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"appointment_ref": "NOPE"}, "appointment_ref", "no appointment with this reference"),
        ({"appointment_ref": "", "patient_ref": "NOPE"}, "patient_ref", "no patient with this reference"),
        ({"appointment_ref": ""}, "appointment_ref", "give appointment_ref or patient_ref"),
        ({"patient_ref": "MRN2"}, "patient_ref", "is not the appointment's patient"),
    ],
)
async def test_letter_refs_must_resolve(api: Api, params: dict[str, str], field: str, message: str) -> None:
    await api.setup()
    assert (await api.put("patients/MRN2", {**PATIENT, "given_name": "Tom"})).status_code == 201
    await api.put("appointments/A1", APPOINTMENT)
    response = await api.put_letter("L1", PDF, **params)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "message": message}]
    assert await count(api.hub, "letters") == 0


async def test_letter_title_must_be_one_line_of_text(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    for title in ("Your\x00letter", "Your\nletter", "Your\x1bletter"):
        response = await api.put_letter("L1", title=title)
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "title", "message": "must not contain control characters"}]
    assert await count(api.hub, "letters") == 0


# Authentication and trusts


ENDPOINTS = [
    ("PUT", "/api/v1/sites/RFH", {"json": SITE}),
    ("PUT", "/api/v1/patients/MRN1", {"json": PATIENT}),
    ("PUT", "/api/v1/appointments/A1", {"json": APPOINTMENT}),
    ("PUT", "/api/v1/letters/L1", {"content": PDF, "params": {"patient_ref": "MRN1", "kind": "clinic_letter"}}),
    ("GET", "/api/v1/events", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer hub_not-a-real-key", "Bearer not-even-the-prefix", "Basic cGFzOmxpdmU="],
)
async def test_every_endpoint_needs_a_valid_key(
    api: Api, method: str, path: str, kwargs: dict[str, Any], authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    before = await count(api.hub, "audit_events")
    response = await api.hub.client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="hub"'
    assert response.json() == {
        "errors": [{"field": "authorization", "message": "a valid API key is required: Authorization: Bearer <key>"}]
    }
    assert await count(api.hub, "sites") == 0
    assert await count(api.hub, "audit_events") == before


async def test_key_in_lower_case_scheme_works(api: Api) -> None:
    response = await api.hub.client.put("/api/v1/sites/RFH", json=SITE, headers={"authorization": f"bearer {api.key}"})
    assert response.status_code == 201


async def test_revoked_key_is_refused(api: Api) -> None:
    assert (await api.put("sites/RFH", SITE)).status_code == 201
    assert await revoke_api_key(api.hub.db, organisation_code="RAL", name="pas-live", now=api.hub.clock.now())
    response = await api.put("sites/RFH", {**SITE, "name": "Changed"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="hub"'
    assert await count(api.hub, "sites", "name = 'Changed'") == 0
    assert (await api.hub.client.get("/api/v1/events", headers=bearer(api.key))).status_code == 401
    # Revoking twice, or a key that never was, is refused.
    assert not await revoke_api_key(api.hub.db, organisation_code="RAL", name="pas-live", now=api.hub.clock.now())
    assert not await revoke_api_key(api.hub.db, organisation_code="RAL", name="nobody", now=api.hub.clock.now())
    # A new key with a new name works at once.
    fresh = await api_for(api.hub, "RAL", "pas-live-2")
    assert (await fresh.put("sites/RFH", {**SITE, "name": "Changed"})).status_code == 200


async def test_key_names_are_unique_per_trust(api: Api) -> None:
    with pytest.raises(ValueError, match="already has a key named pas-live"):
        await create_api_key(api.hub.db, organisation_code="RAL", name="pas-live", now=api.hub.clock.now())
    with pytest.raises(LookupError):
        await create_api_key(api.hub.db, organisation_code="NOPE", name="x", now=api.hub.clock.now())


async def test_another_trusts_key_cannot_touch_this_trusts_site(api: Api, other: Api) -> None:
    assert (await api.put("sites/RFH", SITE)).status_code == 201
    response = await other.put("sites/RFH", {**SITE, "name": "Its own"})  # its own site of the same code
    assert response.status_code == 201
    assert await count(api.hub, "sites", "name = ?", (SITE["name"],)) == 1
    assert await count(api.hub, "sites", "name = 'Its own'") == 1
    assert await audit(api.hub, "other-pas") == ["site_created"]


async def test_another_trusts_key_cannot_see_this_trusts_patients_or_appointments(api: Api, other: Api) -> None:
    await api.setup()
    assert (await api.put("appointments/A1", APPOINTMENT)).status_code == 201
    assert (await other.put("sites/RVL1", {"name": "Other hospital"})).status_code == 201

    response = await other.put("appointments/B1", {**APPOINTMENT, "site_code": "RVL1"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "patient_ref", "message": "no patient with this reference: PUT the patient first"}
    ]
    response = await other.put("appointments/B1", {**APPOINTMENT, "site_code": "RFH"})
    assert {e["field"] for e in response.json()["errors"]} == {"patient_ref", "site_code"}

    # The same appointment ref at the other trust is its own appointment, not this trust's.
    assert (await other.put("patients/MRN1", {**PATIENT, "given_name": "Other"})).status_code == 201
    response = await other.put("appointments/A1", {**APPOINTMENT, "site_code": "RVL1", "status": "cancelled"})
    assert (response.status_code, response.json()["outcome"]) == (201, "created")
    assert (await appointment(api.hub))["status"] == "booked"

    response = await other.put_letter("L1", appointment_ref="NOT-THERE", patient_ref="")
    assert response.json()["errors"] == [{"field": "appointment_ref", "message": "no appointment with this reference"}]
    assert await count(api.hub, "letters") == 0
    assert [m["kind"] for m in await outbox(api.hub)] == ["invitation"]


async def test_another_trusts_key_cannot_read_this_trusts_events(api: Api, other: Api) -> None:
    from hub.store.events import record_event
    from hub.vocabulary import EventKind

    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    row = await appointment(api.hub)
    async with api.hub.db.write() as tx:
        await record_event(
            tx,
            at=api.hub.clock.now(),
            kind=EventKind.APPOINTMENT_CONFIRMED,
            organisation_id=row["organisation_id"],
            patient_id=row["patient_id"],
            appointment_id=row["id"],
        )
    mine = await api.hub.client.get("/api/v1/events", headers=bearer(api.key))
    theirs = await api.hub.client.get("/api/v1/events", headers=bearer(other.key))
    assert [e["appointment_ref"] for e in mine.json()["events"]] == ["A1"]
    assert theirs.json() == {"events": [], "next_cursor": "0"}


async def test_every_call_is_audited_by_key_name(api: Api) -> None:
    await api.setup()
    await api.put("appointments/A1", APPOINTMENT)
    await api.put("appointments/A1", APPOINTMENT)
    await api.put("appointments/A2", {**APPOINTMENT, "duration_minutes": 0})
    await api.put("sites/a b", SITE)
    await api.put_letter("L1", b"nope")
    await api.hub.client.get("/api/v1/events?limit=0", headers=bearer(api.key))
    await api.hub.client.get("/api/v1/events", headers=bearer(api.key))
    found = await rows(api.hub, "SELECT * FROM audit_events WHERE actor_type = 'api_key' ORDER BY id")
    assert {r["actor_id"] for r in found} == {"pas-live"}
    assert [(r["action"], r["record_id"]) for r in found] == [
        ("site_created", "RFH"),
        ("patient_created", found[1]["record_id"]),
        ("appointment_created", found[2]["record_id"]),
        ("put_appointment_unchanged", "A1"),
        ("put_appointment_rejected", "A2"),
        ("put_site_rejected", "a b"),
        ("put_letter_rejected", "L1"),
        ("get_events_rejected", "events"),
        ("events_read", "events"),
    ]
    assert found[4]["detail"] == "duration_minutes"
    assert found[2]["detail"] == "notice invitation"
    # The audit never holds the patient's details.
    text = json.dumps(found)
    assert "07700" not in text and "Margaret" not in text and "9434765919" not in text


async def test_unknown_api_paths_and_methods_answer_in_json(api: Api) -> None:
    response = await api.hub.client.get("/api/v1/nothing-here", headers=bearer(api.key))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"errors": [{"field": "path", "message": "Not Found"}]}
    response = await api.hub.client.get("/api/v1/sites/RFH", headers=bearer(api.key))
    assert response.status_code == 405
    assert response.json()["errors"][0]["field"] == "path"
    response = await api.hub.client.put("/api/v1/sites/", headers=bearer(api.key), json=SITE)
    assert response.status_code == 404
    assert "errors" in response.json()


async def test_openapi_document_describes_every_endpoint(api: Api) -> None:
    response = await api.hub.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/v1/sites/{site_code}",
        "/api/v1/patients/{patient_ref}",
        "/api/v1/appointments/{appointment_ref}",
        "/api/v1/letters/{letter_ref}",
        "/api/v1/events",
        "/api/v1/slots/{slot_ref}",
        "/api/v1/sites/{site_code}/map",
    }
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert len({op["operationId"] for op in operations}) == 8
    for op in operations:
        assert {"200", "401", "422"} <= set(op["responses"])
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Created with `python -m hub create-api-key --org CODE --name NAME`",
    }
    appointment_schema = document["components"]["schemas"]["Appointment"]["properties"]
    assert appointment_schema["status"]["enum"] == ["booked", "cancelled", "attended", "did_not_attend"]
    assert appointment_schema["mode"]["enum"] == ["in_person", "telephone", "video"]
    assert document["paths"]["/api/v1/events"]["get"]["parameters"][1]["schema"]["maximum"] == 500


async def test_openapi_document_lists_every_event_kind_with_its_meaning(api: Api) -> None:
    document = (await api.hub.client.get("/api/v1/openapi.json")).json()
    kind = document["components"]["schemas"]["Event"]["properties"]["kind"]
    assert kind["enum"] == [str(k) for k in EventKind] == [str(k) for k in EVENT_KINDS]
    for event, (source, meaning) in EVENT_KINDS.items():
        assert f"- `{event}` ({source}): {meaning}" in kind["description"]


async def test_openapi_document_describes_the_bodies_the_api_checks(api: Api) -> None:
    schemas = (await api.hub.client.get("/api/v1/openapi.json")).json()["components"]["schemas"]
    for name in ("Site", "Patient", "PostalAddress", "Appointment"):
        assert schemas[name]["additionalProperties"] is False  # an unknown field is refused
    assert schemas["Patient"]["properties"]["postal_address"]["anyOf"][0] == {
        "$ref": "#/components/schemas/PostalAddress"
    }
    assert schemas["Patient"]["properties"]["given_name"]["maxLength"] == 100
    assert schemas["Site"]["properties"]["phone"]["maxLength"] == 30
    assert schemas["PostalAddress"]["properties"]["lines"]["maxItems"] == 6
    # The examples are bodies the API takes as they are.
    for path, name in (("sites/RFH", "Site"), ("patients/MRN1", "Patient")):
        assert (await api.put(path, schemas[name]["examples"][0])).status_code == 201


# The command line


def run_hub(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HUB_DATABASE_URL": database_url,
        "HUB_SECRET_KEY": SECRET,
        "HUB_NOTIFY_API_KEY": "x",
    }
    return subprocess.run(
        [sys.executable, "-m", "hub", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


async def test_command_line_creates_shows_once_stores_hashed_and_revokes_a_key(hub: Harness) -> None:
    done = run_hub(hub.database_url, "create-organisation", "--code", "RAL", "--name", "Royal Free London")
    assert (done.returncode, done.stdout.strip()) == (0, "Created organisation RAL"), done.stderr
    done = run_hub(hub.database_url, "create-api-key", "--org", "RAL", "--name", "pas-live")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("hub_") and len(key) > 40
    assert "shown only now" in done.stdout

    # Only its hash is stored: the key is in no column of any table.
    for table in await hub.tables():
        for row in await hub.db.fetch_all(f"SELECT * FROM {table}"):
            assert not any(key in str(value) for value in row.values()), table
    stored = await hub.db.fetch_one("SELECT key_hash, prefix FROM api_keys WHERE name = 'pas-live'")
    assert stored == {"key_hash": hashlib.sha256(key.encode()).hexdigest(), "prefix": key[:8]}

    response = await hub.client.put("/api/v1/sites/RFH", json=SITE, headers=bearer(key))
    assert response.status_code == 201

    done = run_hub(hub.database_url, "create-api-key", "--org", "RAL", "--name", "pas-live")
    assert done.returncode == 2
    assert "already has a key named pas-live" in done.stderr
    assert key not in done.stdout
    done = run_hub(hub.database_url, "create-api-key", "--org", "NOPE", "--name", "pas-live")
    assert (done.returncode, done.stderr.strip()) == (2, "Error: no organisation with code NOPE")

    done = run_hub(hub.database_url, "revoke-api-key", "--org", "RAL", "--name", "pas-live")
    assert (done.returncode, done.stdout.strip()) == (0, "Revoked pas-live"), done.stderr
    response = await hub.client.put("/api/v1/sites/RFH", json=SITE, headers=bearer(key))
    assert response.status_code == 401
    done = run_hub(hub.database_url, "revoke-api-key", "--org", "RAL", "--name", "pas-live")
    assert done.returncode == 1
    assert "No live key named pas-live for RAL" in done.stderr

    actions = await rows(hub, "SELECT action, detail FROM audit_events WHERE actor_type = 'system' ORDER BY id")
    assert actions == [
        {"action": "api_key_created", "detail": "pas-live"},
        {"action": "api_key_revoked", "detail": "pas-live"},
    ]
