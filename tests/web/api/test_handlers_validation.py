"""Bad input to the integration API: a 422 naming every bad field, nothing changed, never a 500.

Also the pure rules behind it: the NHS number check, which notice a change sends, which channel it goes by.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.rules.feed import (
    check_ref,
    choose_channel,
    new_verification_code,
    source_hash,
)
from hub.rules.validation import nhs_number_is_valid
from hub.store.api_keys import create_api_key
from tests.harness import Harness

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
TABLES = ("organisations", "sites", "patients", "appointments", "letters", "outbox_messages", "events", "api_keys")
SITE = {"name": "Royal Free Hospital", "postcode": "NW3 2QG", "latitude": 51.5533, "longitude": -0.1652}
PATIENT = {
    "nhs_number": "9434765919",
    "given_name": "Margaret",
    "family_name": "Jones",
    "date_of_birth": "1948-03-14",
    "mobile": "07700 900001",
    "email": "margaret@example.com",
    "contact_preference": "sms",
}
APPOINTMENT = {
    "patient_ref": "MRN1",
    "site_code": "RFH",
    "clinic": "Cardiology outpatients",
    "start": "2026-12-03T09:30:00+00:00",
    "duration_minutes": 30,
}


class Client:
    def __init__(self, hub: Harness, key: str) -> None:
        self.hub, self.key = hub, key

    async def put(self, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return await self.hub.client.put(f"/api/v1/{path}", headers=headers, **kwargs)


async def snapshot(hub: Harness) -> dict[str, list[dict[str, Any]]]:
    return {table: await hub.db.fetch_all(f"SELECT * FROM {table} ORDER BY id") for table in TABLES}


async def rejections(hub: Harness) -> list[str]:
    rows = await hub.db.fetch_all(
        "SELECT action FROM audit_events WHERE actor_type = 'api_key' AND action LIKE '%rejected' ORDER BY id"
    )
    return [r["action"] for r in rows]


@pytest.fixture
async def api(hub: Harness) -> Client:
    """A trust with a site RFH, a patient MRN1 and a booked appointment A1, and its API key."""
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    patient = await hub.create_patient(mrn="MRN1")
    await hub.create_appointment(patient_id=patient, ref="A1")
    return Client(hub, await create_api_key(hub.db, organisation_code="RAL", name="pas-live", now=hub.clock.now()))


async def refused(api: Client, path: str, status: int = 422, **kwargs: Any) -> list[dict[str, str]]:
    """PUT, expect the refusal, check nothing changed and the refusal was audited; returns the errors."""
    before = await snapshot(api.hub)
    audited = len(await rejections(api.hub))
    response = await api.put(path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert errors and all(set(e) == {"field", "message"} and e["message"] for e in errors)
    assert await snapshot(api.hub) == before
    assert len(await rejections(api.hub)) == audited + 1
    return errors


def fields(errors: list[dict[str, str]]) -> list[str]:
    return [e["field"] for e in errors]


# Patients


@pytest.mark.parametrize(
    ("patch", "field", "message"),
    [
        ({"nhs_number": "943476591"}, "nhs_number", "must be a valid 10-digit NHS number"),
        ({"nhs_number": "94347659190"}, "nhs_number", "must be a valid 10-digit NHS number"),
        ({"nhs_number": "9434765918"}, "nhs_number", "must be a valid 10-digit NHS number"),
        ({"nhs_number": "1000000010"}, "nhs_number", "must be a valid 10-digit NHS number"),  # check digit 10
        ({"nhs_number": "94347659AB"}, "nhs_number", "must be a valid 10-digit NHS number"),
        ({"nhs_number": "943-476-5919"}, "nhs_number", "must be a valid 10-digit NHS number"),
        ({"nhs_number": 9434765919}, "nhs_number", "must be a valid 10-digit NHS number"),
        ({"mobile": "020 7946 0000"}, "mobile", "must be a UK mobile number"),
        ({"mobile": "+33 6 12 34 56 78"}, "mobile", "must be a UK mobile number"),
        ({"mobile": "07700"}, "mobile", "must be a UK mobile number"),
        ({"mobile": 7700900001}, "mobile", "must be a UK mobile number"),
        ({"email": "margaret"}, "email", "must be an email address"),
        ({"email": "margaret@example"}, "email", "must be an email address"),
        ({"email": "mar garet@example.com"}, "email", "must be an email address"),
        ({"email": ["margaret@example.com"]}, "email", "must be an email address"),
        ({"date_of_birth": "14/03/1948"}, "date_of_birth", "must be a date like 1984-03-15"),
        ({"date_of_birth": "1948-3-14"}, "date_of_birth", "must be a date like 1984-03-15"),
        ({"date_of_birth": "1948-02-30"}, "date_of_birth", "must be a date like 1984-03-15"),
        ({"date_of_birth": "1948-03-14T00:00:00Z"}, "date_of_birth", "must be a date like 1984-03-15"),
        ({"date_of_birth": 19480314}, "date_of_birth", "must be a date like 1984-03-15"),
        ({"date_of_birth": "2026-11-22"}, "date_of_birth", "must not be in the future"),
        ({"date_of_birth": "1889-12-31"}, "date_of_birth", "must be 1890-01-01 or later"),
        ({"date_of_birth": "0001-01-01"}, "date_of_birth", "must be 1890-01-01 or later"),
        ({"date_of_birth": None}, "date_of_birth", "is required"),
        ({"given_name": ""}, "given_name", "is required"),
        ({"given_name": "   "}, "given_name", "is required"),
        ({"given_name": 7}, "given_name", "must be a string"),
        ({"given_name": "x" * 101}, "given_name", "must be 100 characters or fewer"),
        ({"family_name": "Jo\x00nes"}, "family_name", "must not contain control characters"),
        ({"contact_preference": "post"}, "contact_preference", "must be one of: sms, email"),
        ({"contact_preference": "SMS"}, "contact_preference", "must be one of: sms, email"),
        ({"mobile": None}, "contact_preference", "is sms but there is no mobile"),
        ({"postal_address": "1 Pond Street"}, "postal_address", "must be an object with lines and postcode"),
        (
            {"postal_address": {"lines": [], "postcode": "NW3 2QG"}},
            "postal_address.lines",
            "must be a list of 1 to 6 address lines",
        ),
        (
            {"postal_address": {"lines": ["1 Pond Street", ""], "postcode": "NW3 2QG"}},
            "postal_address.lines[1]",
            "must be a non-empty string of 100 characters or fewer",
        ),
        ({"postal_address": {"lines": ["1 Pond Street"], "postcode": "12345"}}, "postal_address.postcode", None),
        ({"postal_address": {"lines": ["1 Pond Street"]}}, "postal_address.postcode", "is required"),
    ],
)
async def test_patient_field_is_checked(api: Client, patch: dict[str, Any], field: str, message: str | None) -> None:
    errors = await refused(api, "patients/MRN9", json={**PATIENT, **patch})
    assert fields(errors) == [field]
    if message:
        assert errors[0]["message"] == message


async def test_a_patient_refused_on_update_keeps_what_it_had(api: Client) -> None:
    assert (await api.put("patients/MRN9", json=PATIENT)).status_code == 201
    await refused(api, "patients/MRN9", json={**PATIENT, "family_name": "Smith", "nhs_number": "9434765918"})
    row = await api.hub.db.fetch_one("SELECT family_name FROM patients WHERE mrn = 'MRN9'")
    assert row == {"family_name": "Jones"}


async def test_every_bad_patient_field_is_listed_at_once(api: Client) -> None:
    body = {
        "nhs_number": "1234567890",
        "given_name": "",
        "family_name": "Jones",
        "date_of_birth": "2099-01-01",
        "mobile": "020 7946 0000",
        "email": "nope",
        "contact_preference": "fax",
    }
    errors = await refused(api, "patients/bad%20ref", json=body)
    assert fields(errors) == [
        "patient_ref",
        "nhs_number",
        "given_name",
        "date_of_birth",
        "mobile",
        "email",
        "contact_preference",
    ]


async def test_valid_numbers_and_formats_are_accepted(api: Client) -> None:
    body = {
        **PATIENT,
        "nhs_number": "401 023 2137",
        "mobile": "+44 7700 900002",
        "email": " Someone@Example.COM ",
        "postal_address": {"lines": ["Flat 2", "1 Pond Street"], "postcode": "nw32qg"},
    }
    response = await api.put("patients/MRN9", json=body)
    assert response.status_code == 201, response.text
    row = await api.hub.db.fetch_one("SELECT nhs_number, mobile, email, postcode FROM patients WHERE mrn = 'MRN9'")
    assert row == {
        "nhs_number": "4010232137",
        "mobile": "+447700900002",
        "email": "someone@example.com",
        "postcode": "NW3 2QG",
    }


async def test_oldest_date_of_birth_and_today_are_accepted(api: Client) -> None:
    assert (await api.put("patients/OLD", json={**PATIENT, "date_of_birth": "1890-01-01"})).status_code == 201
    assert (await api.put("patients/NEW", json={**PATIENT, "date_of_birth": "2026-11-21"})).status_code == 201


# Appointments


OFFSET = "must include a UTC offset, like +00:00 or +01:00"
NOT_A_TIME = "must be an ISO 8601 date and time with an offset, like 2026-03-15T09:30:00+00:00"
DURATION = "must be a whole number from 1 to 1440"


@pytest.mark.parametrize(
    ("patch", "field", "message"),
    [
        ({"start": "2026-12-03T09:30:00"}, "start", OFFSET),
        ({"start": "2026-12-03 09:30"}, "start", OFFSET),
        ({"start": "2026-12-03"}, "start", OFFSET),
        ({"start": "next Tuesday"}, "start", NOT_A_TIME),
        ({"start": "2026-13-03T09:30:00Z"}, "start", NOT_A_TIME),
        ({"start": "2026-12-03T25:30:00Z"}, "start", NOT_A_TIME),
        ({"start": "2026-12-03T09:30:00+25:00"}, "start", NOT_A_TIME),
        ({"start": "2026-12-03T09:30:00Z" + " " * 30}, "start", NOT_A_TIME),
        ({"start": 1796290200}, "start", NOT_A_TIME),
        ({"start": "9999-12-31T23:59:59-01:00"}, "start", "must be in the years 1900 to 2999"),
        ({"start": "0001-01-01T00:00:00+00:00"}, "start", "must be in the years 1900 to 2999"),
        ({"start": None}, "start", "is required"),
        ({"duration_minutes": 0}, "duration_minutes", DURATION),
        ({"duration_minutes": -30}, "duration_minutes", DURATION),
        ({"duration_minutes": 1441}, "duration_minutes", DURATION),
        ({"duration_minutes": 10**30}, "duration_minutes", DURATION),
        ({"duration_minutes": 30.5}, "duration_minutes", DURATION),
        ({"duration_minutes": 30.0}, "duration_minutes", DURATION),
        ({"duration_minutes": "30"}, "duration_minutes", DURATION),
        ({"duration_minutes": True}, "duration_minutes", DURATION),
        ({"duration_minutes": None}, "duration_minutes", "is required"),
        ({"mode": "in person"}, "mode", "must be one of: in_person, telephone, video"),
        ({"mode": ["video"]}, "mode", "must be one of: in_person, telephone, video"),
        ({"status": "CANCELLED"}, "status", "must be one of: booked, cancelled, attended, did_not_attend"),
        ({"status": "did-not-attend"}, "status", "must be one of: booked, cancelled, attended, did_not_attend"),
        ({"transport_booked": "yes"}, "transport_booked", "must be true or false"),
        ({"interpreter_booked": 1}, "interpreter_booked", "must be true or false"),
        ({"clinic": "x" * 201}, "clinic", "must be 200 characters or fewer"),
        ({"clinic": {"name": "Cardiology"}}, "clinic", "must be a string"),
        ({"patient_ref": None}, "patient_ref", "is required"),
        ({"patient_ref": 1}, "patient_ref", "must be a string"),
        ({"patient_ref": "NOPE"}, "patient_ref", "no patient with this reference: PUT the patient first"),
        ({"site_code": "NOWHERE"}, "site_code", "no site with this code in your organisation"),
        ({"site_code": "x" * 41}, "site_code", "must be 40 characters or fewer"),
    ],
)
async def test_appointment_field_is_checked(api: Client, patch: dict[str, Any], field: str, message: str) -> None:
    # A1 already exists: a refused update must leave it, and send nothing.
    errors = await refused(api, "appointments/A1", json={**APPOINTMENT, **patch})
    assert errors == [{"field": field, "message": message}]


async def test_every_bad_appointment_field_is_listed_at_once(api: Client) -> None:
    body = {
        "patient_ref": "MRN1",
        "site_code": "RFH",
        "start": "2026-12-03T09:30:00",
        "duration_minutes": 0,
        "mode": "carrier pigeon",
        "status": "maybe",
        "transport_booked": "no",
    }
    errors = await refused(api, "appointments/A2", json=body)
    assert fields(errors) == ["start", "duration_minutes", "mode", "status", "transport_booked"]


async def test_unknown_site_and_patient_are_both_listed(api: Client) -> None:
    errors = await refused(api, "appointments/A2", json={**APPOINTMENT, "site_code": "X", "patient_ref": "Y"})
    assert fields(errors) == ["patient_ref", "site_code"]


async def test_times_without_an_offset_are_refused_but_any_offset_is_kept_as_utc(api: Client) -> None:
    await refused(api, "appointments/A2", json={**APPOINTMENT, "start": "2027-03-28T01:30:00"})
    response = await api.put("appointments/A2", json={**APPOINTMENT, "start": "2027-03-28T02:30:00+01:00"})
    assert response.status_code == 201
    row = await api.hub.db.fetch_one("SELECT starts_at FROM appointments WHERE ref = 'A2'")
    assert row == {"starts_at": "2027-03-28T01:30:00.000000Z"}


# Sites


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SITE, "name": None}, "name"),
        ({**SITE, "postcode": "ABC"}, "postcode"),
        ({**SITE, "latitude": 91}, "latitude"),
        ({**SITE, "longitude": "-0.16"}, "longitude"),
        ({**SITE, "latitude": True}, "latitude"),
        ({**SITE, "longitude": None}, "longitude"),
        ({**SITE, "phone": "0" * 31}, "phone"),
        ({**SITE, "organisation": 7}, "organisation"),
    ],
)
async def test_site_field_is_checked(api: Client, body: dict[str, Any], field: str) -> None:
    errors = await refused(api, "sites/NEW", json=body)
    assert fields(errors) == [field]


async def test_not_a_number_is_not_a_latitude(api: Client) -> None:
    body = json.dumps(SITE).replace("51.5533", "NaN").replace("-0.1652", "Infinity")
    errors = await refused(api, "sites/NEW", content=body, headers={"content-type": "application/json"})
    assert fields(errors) == ["latitude", "longitude"]


# Bodies and paths


@pytest.mark.parametrize("path", ["sites/NEW", "patients/MRN9", "appointments/A2"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"42", "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"", "must be valid JSON"),
        (b"{", "must be valid JSON"),
        (b"{'name': 'single quotes'}", "must be valid JSON"),
        (b'{"name": "\xff"}', "must be valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "must be valid JSON"),
        (b"1" * 5000, "must be valid JSON"),
    ],
)
async def test_body_must_be_a_json_object(api: Client, path: str, body: bytes, message: str) -> None:
    errors = await refused(api, path, content=body, headers={"content-type": "application/json"})
    assert errors[0] == {"field": "body", "message": message}


@pytest.mark.parametrize("path", ["sites/NEW", "patients/MRN9", "appointments/A2"])
async def test_body_over_a_megabyte_is_too_large(api: Client, path: str) -> None:
    body = json.dumps({**PATIENT, "padding": "x" * 1_000_000}).encode()
    errors = await refused(api, path, status=413, content=body, headers={"content-type": "application/json"})
    assert errors == [{"field": "body", "message": "must be 1000000 bytes or fewer"}]


@pytest.mark.parametrize(
    "ref",
    ["a%20b", "x" * 65, "-starts-with-a-dash", ".hidden", "caf%C3%A9", "semi%3Bcolon", "a%2Fb", "%00", "a%0A"],
)
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("sites", SITE, "site_code"),
        ("patients", PATIENT, "patient_ref"),
        ("appointments", APPOINTMENT, "appointment_ref"),
    ],
)
async def test_bad_refs_in_the_path_are_refused(
    api: Client, ref: str, path: str, body: dict[str, Any], field: str
) -> None:
    before = await snapshot(api.hub)
    response = await api.put(f"{path}/{ref}", json=body)
    # A slash in a ref never reaches the handler: no route matches.
    assert response.status_code == (404 if ref == "a%2Fb" else 422)
    if response.status_code == 422:
        assert response.json()["errors"][0] == {
            "field": field,
            "message": "must be 1 to 64 letters, digits, dots, dashes or underscores",
        }
    assert await snapshot(api.hub) == before


async def test_longest_ref_is_accepted(api: Client) -> None:
    ref = "A" + "b.c-d_e" * 9
    assert len(ref) == 64
    assert (await api.put(f"sites/{ref}", json=SITE)).status_code == 201


# Unknown fields, and text that cannot be stored


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        ("appointments/A1", {**APPOINTMENT, "statuss": "cancelled"}, "statuss", "is not a field of an appointment"),
        ("patients/MRN9", {**PATIENT, "nickname": "Peggy"}, "nickname", "is not a field of a patient"),
        ("sites/NEW", {**SITE, "colour": "blue"}, "colour", "is not a field of a site"),
        (
            "patients/MRN9",
            {**PATIENT, "postal_address": {"lines": ["1 Pond Street"], "postcode": "NW3 2QG", "county": "London"}},
            "postal_address.county",
            "is not a field of a postal address",
        ),
        # A name that is no text at all: a lone surrogate and a NUL, sent as JSON escapes, named back escaped.
        ("appointments/A1", {**APPOINTMENT, "\ud800\u0000": 1}, "\\ud800\\u0000", "is not a field of an appointment"),
    ],
)
async def test_an_unknown_field_is_refused_not_ignored(
    api: Client, path: str, body: dict[str, Any], field: str, message: str
) -> None:
    errors = await refused(api, path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert errors == [{"field": field, "message": message}]


# Every field stored as sent: a lone surrogate there was a 500 (the databases cannot store it), or went unchecked.
SURROGATE_IN_TEXT = [
    ("sites/NEW", SITE, "name", "Royal Free\ud800 Hospital"),
    ("sites/NEW", SITE, "address", "Pond\ud800 Street"),
    ("sites/NEW", SITE, "directions", "Main\ud800 entrance"),
    ("sites/NEW", SITE, "parking", "Pay\ud800 and display"),
    ("sites/NEW", SITE, "phone", "020 7794\ud800 0500"),
    ("patients/MRN9", PATIENT, "mrn", "MRN9\ud800"),
    ("patients/MRN9", PATIENT, "given_name", "Marg\ud800aret"),
    ("patients/MRN9", PATIENT, "family_name", "Jo\ud800nes"),
    ("patients/MRN9", PATIENT, "email", "marg\ud800aret@example.com"),
    ("appointments/A1", APPOINTMENT, "patient_ref", "MRN1\ud800"),
    ("appointments/A1", APPOINTMENT, "site_code", "RFH\ud800"),
    ("appointments/A1", APPOINTMENT, "clinic", "Cardio\ud800logy"),
    ("appointments/A1", APPOINTMENT, "specialty", "Cardio\ud800logy"),
    ("appointments/A1", APPOINTMENT, "clinician", "Dr\ud800 A Example"),
]


@pytest.mark.parametrize(("path", "body", "field", "value"), SURROGATE_IN_TEXT)
async def test_a_lone_surrogate_in_text_is_refused(
    api: Client, path: str, body: dict[str, Any], field: str, value: str
) -> None:
    # json.dumps writes the lone surrogate as the escape \ud800: valid JSON, but no character, and unstorable.
    content = json.dumps({**body, field: value})
    errors = await refused(api, path, content=content, headers={"content-type": "application/json"})
    assert errors == [{"field": field, "message": "must be valid Unicode text (no lone surrogates such as \\ud800)"}]


async def test_a_lone_surrogate_in_an_address_line_is_refused(api: Client) -> None:
    address = {"lines": ["1 Pond \ud800Street"], "postcode": "NW3 2QG"}
    content = json.dumps({**PATIENT, "postal_address": address})
    errors = await refused(api, "patients/MRN9", content=content, headers={"content-type": "application/json"})
    assert fields(errors) == ["postal_address.lines[0]"]


@pytest.mark.parametrize("control", ["\x00", "\r", "\n", "\r\n", "\t", "\x1b", "\x7f"])
async def test_control_characters_in_address_lines_are_refused(api: Client, control: str) -> None:
    body = {**PATIENT, "postal_address": {"lines": ["1 Pond Street", f"Hamp{control}stead"], "postcode": "NW3 2QG"}}
    errors = await refused(api, "patients/MRN9", json=body)
    assert errors == [{"field": "postal_address.lines[1]", "message": "must not contain control characters"}]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("after=1.5", "after"),
        ("after=" + "9" * 19, "after"),
        ("after=%D9%A3", "after"),  # an Arabic-Indic digit: a digit, but not one a cursor has
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=1000000000000", "limit"),
        ("limit=", "limit"),
    ],
)
async def test_event_feed_parameters_are_checked(api: Client, query: str, field: str) -> None:
    response = await api.hub.client.get(f"/api/v1/events?{query}", headers={"Authorization": f"Bearer {api.key}"})
    assert response.status_code == 422
    assert fields(response.json()["errors"]) == [field]
    assert await rejections(api.hub) == ["get_events_rejected"]


# Pure rules


@pytest.mark.parametrize("number", ["9434765919", "4010232137", "9990000018"])
def test_nhs_number_is_valid(number: str) -> None:
    assert nhs_number_is_valid(number)


@pytest.mark.parametrize(
    "number",
    [
        "9434765918",  # wrong check digit
        "4010232138",
        "1000000010",  # the check digit would be 10: no such NHS number
        "1000000011",
        "943476591",
        "94347659190",
        "",
        "943476591X",
        "943 476 5919",  # spaces are the caller's to remove
        "٩٤٣٤٧٦٥٩١٩",  # digits, but not ASCII ones
    ],
)
def test_nhs_number_is_invalid(number: str) -> None:
    assert not nhs_number_is_valid(number)


def test_check_ref() -> None:
    assert check_ref("x", "A1") == []
    assert check_ref("x", "a" * 64) == []
    assert check_ref("x", "a" * 65) != []
    assert check_ref("x", "") != []
    assert check_ref("x", "a\n") != []


def test_source_hash_ignores_key_order_and_sees_every_value() -> None:
    assert source_hash({"a": 1, "b": 2}) == source_hash({"b": 2, "a": 1})
    assert source_hash({"a": 1, "b": 2}) != source_hash({"a": 1, "b": 3})
    assert source_hash({"start": NOW}) != source_hash({"start": NOW + timedelta(minutes=1)})


def test_verification_code_avoids_letters_misread_on_paper() -> None:
    codes = {new_verification_code() for _ in range(200)}
    assert len(codes) > 190
    assert all(len(c) == 6 and not set(c) & set("01OIL") for c in codes)


def patient(**fields: Any) -> dict[str, Any]:
    return {"opted_out": 0, "contact_preference": "sms", "mobile": "+447700900001", "email": "a@example.com", **fields}


@pytest.mark.parametrize(
    ("fields", "channel"),
    [
        ({}, "sms"),
        ({"contact_preference": "email"}, "email"),
        ({"contact_preference": "email", "email": None}, "sms"),
        ({"contact_preference": "sms", "mobile": None}, "email"),
        ({"mobile": None, "email": None}, "letter"),
        ({"mobile": "", "email": ""}, "letter"),
        ({"opted_out": 1}, "letter"),
        ({"opted_out": 1, "contact_preference": "email"}, "letter"),
    ],
)
def test_choose_channel(fields: dict[str, Any], channel: str) -> None:
    assert choose_channel(patient(**fields)) == channel
