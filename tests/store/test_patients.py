"""Patients at the store: found by contact and date of birth, and their own preferences changed once, audited."""

from __future__ import annotations

import json
from datetime import date

import pytest

from hub.rules.contacts import Contact
from hub.store.patients import find_patients_by_contact, get_patient, update_preferences
from tests.harness import Harness

pytestmark = pytest.mark.anyio
BORN = date(1948, 3, 14)


async def test_patients_are_found_by_mobile_or_email_with_their_date_of_birth(hub: Harness) -> None:
    margaret = await hub.create_patient(email="margaret@example.com")
    twin_1 = await hub.create_patient(mobile="+447700900003", dob="2019-06-21", given_name="Amir")
    twin_2 = await hub.create_patient(mobile="+447700900003", dob="2019-06-21", given_name="Layla")
    async with hub.db.write() as tx:
        by_mobile = await find_patients_by_contact(tx, Contact("mobile", "+447700900001"), BORN)
        by_email = await find_patients_by_contact(tx, Contact("email", "margaret@example.com"), BORN)
        wrong_date = await find_patients_by_contact(tx, Contact("mobile", "+447700900001"), date(1948, 3, 15))
        twins = await find_patients_by_contact(tx, Contact("mobile", "+447700900003"), date(2019, 6, 21))
        one_twin = await find_patients_by_contact(
            tx, Contact("mobile", "+447700900003"), date(2019, 6, 21), only_patient_id=twin_2
        )
    assert [p["id"] for p in by_mobile] == [margaret] and [p["id"] for p in by_email] == [margaret]
    assert wrong_date == []
    assert [p["id"] for p in twins] == [twin_1, twin_2]
    assert [p["id"] for p in one_twin] == [twin_2]


async def test_a_patients_record_is_read_by_id(hub: Harness) -> None:
    patient = await hub.create_patient(mrn="MRN7", address_lines=["1 Pond Street"], postcode="NW3 2QG")
    row = await get_patient(hub.db, patient)
    assert row is not None and (row["mrn"], row["postcode"], row["paperless"], row["opted_out"]) == (
        "MRN7",
        "NW3 2QG",
        1,
        0,
    )
    assert json.loads(row["address_lines"]) == ["1 Pond Street"]
    assert await get_patient(hub.db, patient + 1) is None


async def test_changed_preferences_are_audited_and_told_to_the_hospital_and_the_same_again_is_not(
    hub: Harness,
) -> None:
    patient = await hub.create_patient(email="margaret@example.com")

    async def choose_email() -> bool:
        return await update_preferences(
            hub.db,
            patient,
            contact_preference="email",
            paperless=False,
            opted_out=False,
            templates=hub.settings.notify.templates,
            at=hub.clock.now(),
        )

    assert await choose_email()
    assert not await choose_email()  # the same again changes nothing
    row = await get_patient(hub.db, patient)
    assert row is not None and (row["contact_preference"], row["paperless"], row["opted_out"]) == ("email", 0, 0)
    [audit] = await hub.db.fetch_all("SELECT action, detail FROM audit_events")
    assert audit == {"action": "preferences_changed", "detail": "contact_preference,paperless"}
    [event] = await hub.db.fetch_all("SELECT kind, data FROM events")
    assert event["kind"] == "patient.preferences_changed"
    assert json.loads(event["data"]) == {"contact_preference": "email", "paperless": False, "opted_out": False}


async def test_preferences_of_nobody_change_nothing(hub: Harness) -> None:
    assert not await update_preferences(
        hub.db,
        999,
        contact_preference="sms",
        paperless=True,
        opted_out=True,
        templates=hub.settings.notify.templates,
        at=hub.clock.now(),
    )
    assert await hub.db.fetch_all("SELECT id FROM audit_events") == []
