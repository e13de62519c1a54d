"""The hospital feed's schema at its edges: every limit at its maximum and one past it, unknown fields, the text
rule (no lone surrogates, no control characters), the query strings, and the store's values left as they were."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.rules.feed import (
    Appointment,
    Patient,
    Record,
    Site,
    check_ref,
    new_verification_code,
    read_appointment,
    read_events_query,
    read_letter_query,
    read_patient,
    read_site,
    source_hash,
)
from hub.rules.text import CONTROLS, SURROGATES
from hub.rules.validation import Errors, nhs_number_is_valid
from hub.vocabulary import HospitalStatus, LetterKind, Mode

TODAY = date(2026, 11, 21)
SITE: dict[str, Any] = {"name": "Royal Free Hospital", "postcode": "NW3 2QG", "latitude": 51.5, "longitude": -0.16}
PATIENT: dict[str, Any] = {
    "nhs_number": "9434765919",
    "given_name": "Margaret",
    "family_name": "Jones",
    "date_of_birth": "1948-03-14",
    "mobile": "07700 900001",
    "email": "margaret@example.com",
    "contact_preference": "sms",
    "postal_address": {"lines": ["1 Pond Street", "London"], "postcode": "NW3 2QG"},
}
APPOINTMENT: dict[str, Any] = {
    "patient_ref": "MRN1",
    "site_code": "RFH",
    "clinic": "Cardiology outpatients",
    "start": "2026-12-03T09:30:00+00:00",
    "duration_minutes": 30,
}
LETTER_QUERY = {"kind": "clinic_letter", "title": "Your clinic letter", "patient_ref": "MRN1"}


def site(**patch: Any) -> tuple[Site | None, Errors]:
    return read_site({**SITE, **patch}, organisation_code="RAL")


def patient(**patch: Any) -> tuple[Patient | None, Errors]:
    return read_patient({**PATIENT, **patch}, today=TODAY)


def appointment(**patch: Any) -> tuple[Appointment | None, Errors]:
    return read_appointment({**APPOINTMENT, **patch})


def address(*lines: Any, postcode: str = "NW3 2QG") -> dict[str, Any]:
    return {"lines": list(lines), "postcode": postcode}


def fields(errors: Errors) -> list[str]:
    return [e["field"] for e in errors]


def test_every_problem_is_reported_in_field_order() -> None:
    _, errors = read_patient({"given_name": 1, "nhs_number": "1"}, today=TODAY)
    assert fields(errors) == ["nhs_number", "given_name", "family_name", "date_of_birth"]
    _, errors = read_appointment({})
    assert fields(errors) == ["patient_ref", "site_code", "start", "duration_minutes"]
    _, errors = read_site({"latitude": 1}, organisation_code="RAL")
    assert fields(errors) == ["name"]  # the pair is judged once the fields themselves are good
    _, errors = read_site({"name": "x", "latitude": 1}, organisation_code="RAL")
    assert errors == [{"field": "longitude", "message": "latitude and longitude go together"}]
    _, errors = read_site({"name": "x", "longitude": 1}, organisation_code="RAL")
    assert errors == [{"field": "latitude", "message": "latitude and longitude go together"}]


@pytest.mark.parametrize("body", [None, [], "text", 42, True])
def test_a_body_must_be_a_json_object(body: Any) -> None:
    assert read_site(body, organisation_code="RAL") == (None, [{"field": "body", "message": "must be a JSON object"}])
    assert read_patient(body, today=TODAY)[1] == [{"field": "body", "message": "must be a JSON object"}]
    assert read_appointment(body)[1] == [{"field": "body", "message": "must be a JSON object"}]


def test_an_appointment_has_defaults_and_a_utc_start() -> None:
    found, errors = appointment(start="2026-06-15T09:30:00+01:00")
    assert errors == [] and found is not None
    values = found.values()
    assert values["start"] == datetime(2026, 6, 15, 8, 30, tzinfo=UTC)
    assert (values["mode"], values["status"], values["transport_booked"]) == ("in_person", "booked", False)
    assert found.mode is Mode.IN_PERSON and found.status is HospitalStatus.BOOKED


# Lengths: each limit at exactly its maximum, and one past it


@pytest.mark.parametrize(
    ("read", "name", "limit"),
    [
        (patient, "given_name", 100),
        (patient, "family_name", 100),
        (appointment, "clinic", 200),
        (appointment, "specialty", 200),
        (appointment, "clinician", 200),
        (appointment, "patient_ref", 64),
        (appointment, "site_code", 40),
        (site, "name", 200),
        (site, "address", 500),
        (site, "directions", 2000),
        (site, "parking", 2000),
        (site, "phone", 30),
    ],
)
def test_text_at_its_limit_is_kept_and_one_past_is_refused(read: Any, name: str, limit: int) -> None:
    found, errors = read(**{name: " " + "x" * limit + " "})  # trimmed first
    assert errors == [] and getattr(found, name) == "x" * limit
    assert read(**{name: "x" * (limit + 1)})[1] == [{"field": name, "message": f"must be {limit} characters or fewer"}]


def test_an_address_line_at_its_limit_is_kept_and_one_past_is_refused() -> None:
    found, errors = patient(postal_address=address("x" * 100))
    assert errors == [] and found is not None and found.values()["address_lines"] == ["x" * 100]
    assert patient(postal_address=address("x" * 101))[1] == [
        {"field": "postal_address.lines[0]", "message": "must be a non-empty string of 100 characters or fewer"}
    ]


def test_an_address_has_one_to_six_lines() -> None:
    assert patient(postal_address=address(*["x"] * 6))[1] == []
    for lines in ([], ["x"] * 7):
        assert patient(postal_address=address(*lines))[1] == [
            {"field": "postal_address.lines", "message": "must be a list of 1 to 6 address lines"}
        ]


def test_email_at_its_limit_is_kept_and_one_past_is_refused() -> None:
    email = "a" * 64 + "@" + "b" * 185 + ".com"
    assert len(email) == 254
    found, errors = patient(email=email)
    assert errors == [] and found is not None and found.email == email
    assert patient(email="a" + email)[1] == [{"field": "email", "message": "must be an email address"}]


def test_mobile_input_at_its_limit_is_kept_and_one_past_is_refused() -> None:
    spaced = "+44  (0)  7700  -  900  -  001"
    assert len(spaced) == 30
    found, errors = patient(mobile=spaced)
    assert errors == [] and found is not None and found.mobile == "+447700900001"
    assert patient(mobile=spaced.replace("  001", "   001"))[1] == [  # a valid number, one character too long
        {"field": "mobile", "message": "must be a UK mobile number"}
    ]


@pytest.mark.parametrize(("minutes", "ok"), [(1, True), (1440, True), (0, False), (1441, False)])
def test_duration_is_one_minute_to_a_day(minutes: int, ok: bool) -> None:
    errors = appointment(duration_minutes=minutes)[1]
    assert errors == ([] if ok else [{"field": "duration_minutes", "message": "must be a whole number from 1 to 1440"}])


@pytest.mark.parametrize(
    ("latitude", "longitude", "bad"),
    [
        (90, 180, None),
        (-90, -180, None),
        (90.0, -180.0, None),
        (90.000001, 0, "latitude"),
        (-90.000001, 0, "latitude"),
        (0, 180.000001, "longitude"),
        (0, -180.000001, "longitude"),
    ],
)
def test_latitude_and_longitude_bounds(latitude: float, longitude: float, bad: str | None) -> None:
    found, errors = site(latitude=latitude, longitude=longitude)
    if bad is None:
        assert errors == [] and found is not None
        assert (found.latitude, found.longitude) == (float(latitude), float(longitude))
    else:
        limit = 90 if bad == "latitude" else 180
        assert errors == [{"field": bad, "message": f"must be a number from -{limit} to {limit}"}]


@pytest.mark.parametrize("number", ["9434765080", "9434765110", "943 476 5250"])
def test_nhs_numbers_whose_check_digit_is_0(number: str) -> None:
    compact = number.replace(" ", "")
    assert compact.endswith("0") and nhs_number_is_valid(compact)
    found, errors = patient(nhs_number=number)
    assert errors == [] and found is not None and found.nhs_number == compact
    assert patient(nhs_number=compact[:-1] + "1")[1] == [
        {"field": "nhs_number", "message": "must be a valid 10-digit NHS number"}
    ]


def test_dates_of_birth_from_1890_to_today() -> None:
    assert patient(date_of_birth="1890-01-01")[1] == patient(date_of_birth="2026-11-21")[1] == []
    assert patient(date_of_birth="1889-12-31")[1] == [
        {"field": "date_of_birth", "message": "must be 1890-01-01 or later"}
    ]
    assert patient(date_of_birth="2026-11-22")[1] == [
        {"field": "date_of_birth", "message": "must not be in the future"}
    ]
    assert patient(date_of_birth="١٩٤٨-03-14")[1] == [  # digits, but not ASCII ones
        {"field": "date_of_birth", "message": "must be a date like 1984-03-15"}
    ]


@pytest.mark.parametrize(
    ("start", "ok"),
    [
        ("1900-01-01T00:00:00+00:00", True),
        ("2999-12-31T23:59:59+00:00", True),
        ("1899-12-31T23:59:59+00:00", False),
        ("3000-01-01T00:00:00+00:00", False),
    ],
)
def test_start_is_in_the_years_1900_to_2999(start: str, ok: bool) -> None:
    errors = appointment(start=start)[1]
    assert errors == ([] if ok else [{"field": "start", "message": "must be in the years 1900 to 2999"}])


# Unknown fields


def test_an_unknown_field_is_named() -> None:
    assert appointment(statuss="cancelled")[1] == [{"field": "statuss", "message": "is not a field of an appointment"}]
    assert site(colour="blue")[1] == [{"field": "colour", "message": "is not a field of a site"}]
    assert patient(postal_address={**address("1 Pond Street"), "county": "London"})[1] == [
        {"field": "postal_address.county", "message": "is not a field of a postal address"}
    ]


def test_an_unknown_field_is_reported_with_the_others() -> None:
    assert fields(patient(given_name="", nickname="Peggy", email="nope")[1]) == ["given_name", "email", "nickname"]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("\ud800", "\\ud800"),
        ("a\x00b", "a\\u0000b"),
        ("line\nbreak", "line\\u000abreak"),
        ("x" * 500, "x" * 99 + "…"),
    ],
)
def test_an_unknown_field_with_an_unstorable_name_is_named_safely(name: str, shown: str) -> None:
    [error] = appointment(**{name: 1})[1]
    assert error == {"field": shown, "message": "is not a field of an appointment"}
    error["field"].encode("utf-8")


def test_mrn_is_allowed_but_ignored() -> None:
    found, errors = patient(mrn="RF1234567")
    assert errors == [] and found is not None and "mrn" not in found.values()
    assert patient(mrn=7)[1] == [{"field": "mrn", "message": "must be a string"}]


def test_organisation_must_be_the_keys_own() -> None:
    assert site(organisation="RAL")[1] == []
    assert site(organisation="RVL")[1] == [
        {"field": "organisation", "message": "must be your organisation's code, RAL"}
    ]
    found, _ = site(organisation="RAL")
    assert found is not None and "organisation" not in found.values()


# The text rule: UTF-8 and no control characters


TEXT_FIELDS = [
    (site, "name"),
    (site, "address"),
    (site, "postcode"),
    (site, "directions"),
    (site, "parking"),
    (site, "phone"),
    (site, "organisation"),
    (patient, "mrn"),
    (patient, "given_name"),
    (patient, "family_name"),
    (patient, "mobile"),
    (patient, "email"),
    (appointment, "patient_ref"),
    (appointment, "site_code"),
    (appointment, "clinic"),
    (appointment, "specialty"),
    (appointment, "clinician"),
]


@pytest.mark.parametrize(("read", "name"), TEXT_FIELDS)
def test_a_lone_surrogate_in_text_is_refused(read: Any, name: str) -> None:
    assert read(**{name: "Jo\ud800nes"})[1] == [{"field": name, "message": SURROGATES}]


@pytest.mark.parametrize(("read", "name"), TEXT_FIELDS)
@pytest.mark.parametrize("control", ["\x00", "\r", "\x1b", "\x7f", "\x85"])
def test_control_characters_in_text_are_refused(read: Any, name: str, control: str) -> None:
    assert read(**{name: f"Jo{control}nes"})[1] == [{"field": name, "message": CONTROLS}]


@pytest.mark.parametrize(
    ("patch", "name"),
    [
        ({"nhs_number": "943476\ud8005919"}, "nhs_number"),
        ({"date_of_birth": "1948-03-1\ud800"}, "date_of_birth"),
        ({"contact_preference": "sms\ud800"}, "contact_preference"),
        ({"postal_address": address("1 Pond\ud800 Street")}, "postal_address.lines[0]"),
        ({"postal_address": address("1 Pond Street", postcode="NW3\ud8002QG")}, "postal_address.postcode"),
    ],
)
def test_a_lone_surrogate_in_a_coded_patient_field_is_refused(patch: dict[str, Any], name: str) -> None:
    assert fields(patient(**patch)[1]) == [name]


@pytest.mark.parametrize("name", ["start", "mode", "status"])
def test_a_lone_surrogate_in_a_coded_appointment_field_is_refused(name: str) -> None:
    assert fields(appointment(**{name: "booked\ud800"})[1]) == [name]


def test_free_text_keeps_tabs_and_line_breaks_as_it_always_has() -> None:
    found, errors = appointment(clinic="Cardiology\nOuter building\tfloor 2")
    assert errors == [] and found is not None and found.clinic == "Cardiology\nOuter building\tfloor 2"


@pytest.mark.parametrize("control", ["\x00", "\n", "\r", "\r\n", "\t", "\x1b", "\x7f", "\x9f"])
def test_control_characters_in_address_lines_are_refused(control: str) -> None:
    assert patient(postal_address=address("1 Pond Street", f"Hamp{control}stead"))[1] == [
        {"field": "postal_address.lines[1]", "message": CONTROLS}
    ]


def test_address_lines_and_postcode_are_tidied() -> None:
    found, errors = patient(postal_address=address(" Flat 2 ", "1 Pond Street", postcode=" nw32qg "))
    assert errors == [] and found is not None
    assert (found.values()["address_lines"], found.values()["postcode"]) == (["Flat 2", "1 Pond Street"], "NW3 2QG")


# Query strings


@pytest.mark.parametrize(
    ("query", "after", "limit"),
    [
        ({}, 0, 100),
        ({"after": ""}, 0, 100),
        ({"after": "0005", "limit": "0005"}, 5, 5),
        ({"limit": "1"}, 0, 1),
        ({"after": str(2**63 - 1), "limit": "500"}, 2**63 - 1, 500),
        ({"after": "0" * 30 + "7"}, 7, 100),
        ({"unknown": "ignored"}, 0, 100),
    ],
)
def test_events_query_numbers_are_read_whole(query: dict[str, str], after: int, limit: int) -> None:
    found, errors = read_events_query(query, page_limit=500)
    assert errors == [] and found is not None and (found.after, found.limit) == (after, limit)


@pytest.mark.parametrize(
    "limit", ["0005009999", "000500999999999999999999", "501", "0", "", " 5", "5 ", "+5", "5_0", "٥", "1e2", "9" * 5000]
)
def test_events_limit_is_range_checked_after_reading_it_whole(limit: str) -> None:
    assert read_events_query({"limit": limit}, page_limit=500) == (
        None,
        [{"field": "limit", "message": "must be a whole number from 1 to 500"}],
    )


@pytest.mark.parametrize("after", [str(2**63), "0009223372036854775808", "9" * 30, "-1", "1.5", "x", "٣"])
def test_events_cursor_is_range_checked_after_reading_it_whole(after: str) -> None:
    assert read_events_query({"after": after}, page_limit=500) == (
        None,
        [{"field": "after", "message": "must be a cursor from next_cursor (or 0 to start)"}],
    )


def test_letter_query() -> None:
    found, errors = read_letter_query({**LETTER_QUERY, "title": " Your letter ", "appointment_ref": "", "x": "y"})
    assert errors == [] and found is not None
    assert (found.kind, found.title, found.appointment_ref, found.patient_ref) == (
        LetterKind.CLINIC_LETTER,
        "Your letter",
        None,
        "MRN1",
    )


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"kind": "postcard"}, ("kind", "must be one of: appointment_letter, clinic_letter, discharge_summary")),
        ({"kind": ""}, ("kind", "must be one of: appointment_letter, clinic_letter, discharge_summary")),
        ({"title": ""}, ("title", "is required, 200 characters or fewer")),
        ({"title": "x" * 201}, ("title", "is required, 200 characters or fewer")),
        ({"title": "Your\x00letter"}, ("title", CONTROLS)),
        ({"title": "Your\tletter"}, ("title", CONTROLS)),
        ({"title": "Your\nletter"}, ("title", CONTROLS)),
        ({"title": "Your\ud800letter"}, ("title", SURROGATES)),
        ({"patient_ref": "a b"}, ("patient_ref", "must be 1 to 64 letters, digits, dots, dashes or underscores")),
        (
            {"appointment_ref": "A1\n"},
            ("appointment_ref", "must be 1 to 64 letters, digits, dots, dashes or underscores"),
        ),
    ],
)
def test_letter_query_is_checked(patch: dict[str, str], error: tuple[str, str]) -> None:
    assert read_letter_query({**LETTER_QUERY, **patch})[1] == [{"field": error[0], "message": error[1]}]


def test_letter_title_at_its_limit_is_kept() -> None:
    found, errors = read_letter_query({**LETTER_QUERY, "title": "x" * 200})
    assert errors == [] and found is not None and found.title == "x" * 200


def test_a_missing_letter_kind_and_title_say_what_is_wanted() -> None:
    assert read_letter_query({})[1] == [
        {"field": "kind", "message": "must be one of: appointment_letter, clinic_letter, discharge_summary"},
        {"field": "title", "message": "is required, 200 characters or fewer"},
    ]


# The store's values: the same body gives the same fingerprint as before the models (a resend stays "unchanged")


def test_fingerprints_are_those_of_the_checker_the_models_replaced() -> None:
    body = {"name": "Royal Free Hospital", "postcode": "nw3 2qg", "latitude": 51, "longitude": -0.1652}
    found_site, _ = read_site({**body, "phone": " 020 7794 0500 "}, organisation_code="RAL")
    assert found_site is not None
    assert source_hash(found_site.values()) == "18cb99225d19d55878ca89d1c920f4968e1ca4ef5db3cc302f3dd3e9f5685ac4"

    adult: dict[str, Any] = {
        "nhs_number": "943 476 5919",
        "given_name": " Margaret",
        "family_name": "Jones",
        "date_of_birth": "1948-03-14",
        "mobile": "07700 900001",
        "email": "Margaret@Example.com",
        "postal_address": {"lines": [" 1 Pond Street", "London"], "postcode": "nw32qg"},
    }
    child: dict[str, Any] = {
        "given_name": "Tom",
        "family_name": "Jones",
        "date_of_birth": "2020-01-01",
        "email": "t@example.com",
        "contact_preference": "email",
    }
    for body, expected in (
        (adult, "60a729ca2729b490d4a6f210e845a1fbcfa65ba47d5e1dba5c6e46be65de8fa0"),
        (child, "70de129d6e88f9427449c773547007d16b103e85de353782d942bb7f477fe7ec"),
    ):
        found_patient, _ = read_patient(body, today=TODAY)
        assert found_patient is not None
        values = found_patient.values()
        # As the store fingerprints a patient: the date as text.
        assert source_hash({**values, "date_of_birth": values["date_of_birth"].isoformat()}) == expected

    found_appointment, _ = read_appointment(
        {
            **APPOINTMENT,
            "clinic": "Cardiology\nouter building",
            "start": "2026-06-15T09:30:00+01:00",
            "mode": None,
            "transport_booked": True,
        }
    )
    assert found_appointment is not None
    assert source_hash(found_appointment.values()) == "68c7121f9a2def3ed479ff25ab3e3cf1ebe2279332e6819dbf57d40a3f29deae"


def test_values_are_plain_strings_not_enums() -> None:
    found, _ = patient()
    assert found is not None
    assert type(found.values()["contact_preference"]) is str
    found_appointment, _ = appointment(mode="video")
    assert found_appointment is not None
    assert [type(found_appointment.values()[k]) for k in ("mode", "status")] == [str, str]


# Anything at all: a list of {field, message} in our words, never an exception or pydantic's wording


# Any character, lone surrogates too (JSON can carry them as escapes), and often a control character.
_text = st.text(st.characters() | st.characters(categories=["Cs", "Cc"]), max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


def _bodies(model: type[Record]) -> st.SearchStrategy[Any]:
    known = st.sampled_from([*model.model_fields, "postal_address", "lines", "postcode"])
    return st.dictionaries(known | _text, _json, max_size=8) | _json


# make mutation runs this once per mutant of the feed's rules: fewer examples there, the same ones each time.
@settings(
    max_examples=int(os.environ.get("HUB_FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize="HUB_FUZZ_EXAMPLES" in os.environ,
)
@given(site_body=_bodies(Site), patient_body=_bodies(Patient), appointment_body=_bodies(Appointment))
def test_any_body_gets_an_answer_in_our_words(site_body: Any, patient_body: Any, appointment_body: Any) -> None:
    for found, errors in (
        read_site(site_body, organisation_code="RAL"),
        read_patient(patient_body, today=TODAY),
        read_appointment(appointment_body),
    ):
        assert (found is None) == bool(errors)
        for error in errors:
            assert set(error) == {"field", "message"} and error["field"] and error["message"]
            assert "Input should" not in error["message"] and "pydantic" not in error["message"]
            json.dumps(error, ensure_ascii=False).encode("utf-8")  # can be sent, and stored in the audit


def test_an_acknowledged_event_is_kept_only_when_sent() -> None:
    found, errors = appointment(acknowledged_event=12)
    assert errors == [] and found is not None and found.values()["acknowledged_event"] == 12
    found, _ = appointment()
    assert found is not None and "acknowledged_event" not in found.values()


@pytest.mark.parametrize(("ref", "ok"), [("a" * 64, True), ("a" * 65, False), ("RFH-1.2_x", True), ("-1", False)])
def test_a_path_reference_is_1_to_64_safe_characters(ref: str, ok: bool) -> None:
    assert check_ref("site_code", ref) == (
        []
        if ok
        else [{"field": "site_code", "message": "must be 1 to 64 letters, digits, dots, dashes or underscores"}]
    )
    assert check_ref("site_code", "RFH\n") != []  # match() would let a trailing newline through


def test_a_verification_code_is_6_characters_that_cannot_be_misread() -> None:
    codes = {new_verification_code() for _ in range(200)}
    assert all(len(code) == 6 and set(code) <= set("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for code in codes)
    assert len(codes) > 190 and len(set("".join(codes))) > 25  # random, from the whole alphabet


def test_opt_outs_and_paper_letters_are_kept_only_when_sent() -> None:
    found, errors = patient(contact_opt_out={"sms": True}, paper_letters=False)
    assert errors == [] and found is not None
    values = found.values()
    assert (values["contact_opt_out"], values["paper_letters"]) == ({"sms": True}, False)
    found, _ = patient()
    assert found is not None and not {"contact_opt_out", "paper_letters"} & set(found.values())


ISO = "must be an ISO 8601 date and time with an offset, like 2026-03-15T09:30:00+00:00"


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (20261203, ISO),
        ("3 December 2026 09:30", ISO),
        ("2026-12-03T09:30:00\x00+00:00", ISO),  # Python would read it: the text rule refuses it first
        ("2026-12-03T09:30:00.123456789012345+00:00", ISO),  # 41 characters, which Python would read
        ("2026-12-03T09:30:00", "must include a UTC offset, like +00:00 or +01:00"),
    ],
)
def test_a_start_that_is_not_an_instant_says_why(start: object, message: str) -> None:
    assert appointment(start=start)[1] == [{"field": "start", "message": message}]


def test_a_start_of_40_characters_or_with_z_is_read() -> None:
    found, errors = appointment(start="2026-12-03T09:30:00.12345678901234+00:00")  # 40 characters
    assert errors == [] and found is not None and found.start == datetime(2026, 12, 3, 9, 30, 0, 123456, tzinfo=UTC)
    found, errors = appointment(start="2026-12-03T09:30:00Z")
    assert errors == [] and found is not None and found.start == datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def test_a_start_is_kept_as_utc_whatever_the_machines_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        found, _ = appointment(start="2026-12-03T09:30:00+01:00")
        assert found is not None and found.start.utcoffset() == timedelta(0) and found.start.hour == 8
    finally:
        monkeypatch.undo()
        time.tzset()


def test_fields_of_the_wrong_json_type_are_refused_with_their_own_message() -> None:
    assert site(latitude=True, longitude="-0.16")[1] == [
        {"field": "latitude", "message": "must be a number from -90 to 90"},
        {"field": "longitude", "message": "must be a number from -180 to 180"},
    ]
    assert appointment(transport_booked="yes")[1] == [{"field": "transport_booked", "message": "must be true or false"}]
    assert patient(date_of_birth=19480314, mobile=7700900001, postal_address=address(1))[1] == [
        {"field": "date_of_birth", "message": "must be a date like 1984-03-15"},
        {"field": "mobile", "message": "must be a UK mobile number"},
        {"field": "postal_address.lines[0]", "message": "must be a non-empty string of 100 characters or fewer"},
    ]


@pytest.mark.parametrize(
    ("postcode", "kept"), [("ec1a1bb", "EC1A 1BB"), ("M11AE", "M1 1AE"), ("NW3    2QG", "NW3 2QG")]
)
def test_a_postcode_is_kept_as_royal_mail_writes_it(postcode: str, kept: str) -> None:
    found, errors = site(postcode=postcode)
    assert errors == [] and found is not None and found.postcode == kept


@pytest.mark.parametrize(
    ("postcode", "message"),
    [
        ("NW3 2Q", "must be a UK postcode"),
        ("NW3     2QG", "must be 10 characters or fewer"),
        ("NW3\t2QG", CONTROLS),
    ],
)
def test_a_postcode_that_is_not_one_says_why(postcode: str, message: str) -> None:
    assert site(postcode=postcode)[1] == [{"field": "postcode", "message": message}]


@pytest.mark.parametrize(("name", "shown"), [("x" * 100, "x" * 100), ("x" * 101, "x" * 99 + "…"), ("Xray", "Xray")])
def test_an_unknown_fields_name_is_shown_up_to_100_characters(name: str, shown: str) -> None:
    assert patient(**{name: 1})[1] == [{"field": shown, "message": "is not a field of a patient"}]
