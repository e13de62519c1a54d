"""Each trust's tables, and PID / SCH / AIS / AIL / AIP / TXA / OBX read into the JSON API's bodies: pure."""

from __future__ import annotations

from typing import Any

import pytest

from hub.rules.hl7_mapping import (
    Trust,
    appointment_body,
    appointment_ref,
    letter,
    patient_body,
    patient_ref,
    problems_from,
    read_trusts,
)
from hub.rules.hl7_message import Hl7Error, parse
from hub.vocabulary import LetterKind, Mode
from tests.hl7_samples import PDF, SETTINGS, adt, mdm, pid, siu


def trusts(**changes: Any) -> dict[str, Trust]:
    tables = {key.removeprefix("hl7."): value for key, value in {**SETTINGS, **changes}.items()}
    return read_trusts(**tables)


TRUST = trusts()["RFH_PAS"]


def test_the_tables_of_a_trust() -> None:
    assert TRUST.organisation == "RAL"
    assert TRUST.mrn_types == {"MR", "PAS"} and TRUST.nhs_number_types == {"NH", "NHS"}
    assert TRUST.locations == {"RFH-OPD": "RFH"}
    assert TRUST.services == {"CARD": ("Cardiology outpatients", "Cardiology")}
    assert TRUST.modes["TEL"] == Mode.TELEPHONE and TRUST.document_kinds["AL"] == LetterKind.APPOINTMENT_LETTER
    default = read_trusts(facilities=["X=ORG"])["X"]
    assert (default.mrn_types, default.nhs_number_types) == ({"MR"}, {"NH"})


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"hl7.facilities": ["RFH_PAS"]}, "hl7.facilities: 'RFH_PAS' must be FACILITY=ORG"),
        ({"hl7.mrn_types": ["RAL"]}, "hl7.mrn_types: 'RAL' must be ORG:code"),
        ({"hl7.locations": ["RAL:X"]}, "hl7.locations: 'RAL:X' must be ORG:code=value"),
        ({"hl7.locations": ["RXX:X=Y"]}, "hl7.locations: RXX is not the organisation of any of hl7.facilities"),
        ({"hl7.document_types": ["RAL:X=memo"]}, "hl7.document_types: 'memo' must be one of"),
    ],
)
def test_a_wrong_table_entry_is_named(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(")):
        trusts(**changes)


def test_pid_as_a_patient_body() -> None:
    message = parse(adt().encode())
    assert patient_ref(message, TRUST) == "RF1234567"
    assert patient_body(message, TRUST) == {
        "nhs_number": "9434765919",
        "family_name": "Jones",
        "given_name": "Margaret",
        "date_of_birth": "1948-03-14",
        "postal_address": {"lines": ["1 Pond Street", "Flat 2", "London"], "postcode": "NW3 2QG"},
        "mobile": "07700 900001",
        "email": "margaret.jones@example.com",
    }


@pytest.mark.parametrize(
    ("phones", "contacts"),
    [
        ("", {}),  # left empty: kept as held
        ('""', {"mobile": None, "email": None}),  # HL7's null: cleared
        ("020 7946 0000^PRN^PH", {"mobile": None, "email": None}),  # a landline is no mobile
        ("07700900002", {"mobile": "07700900002", "email": None}),  # 2.3 style: the number alone
        ("^ORN^CP^^^0770^0900003", {"mobile": "07700900003", "email": None}),  # 2.5 area code and local number
    ],
)
def test_pid_13_phones_and_email(phones: str, contacts: dict[str, Any]) -> None:
    body = patient_body(parse(adt(phones=phones).encode()), TRUST)
    assert {k: v for k, v in body.items() if k in ("mobile", "email")} == contacts


def test_an_address_without_a_postcode_is_left_as_held() -> None:
    assert "postal_address" not in patient_body(parse(adt(address="No fixed abode").encode()), TRUST)


def test_siu_as_an_appointment_body() -> None:
    message = parse(siu().encode())
    assert appointment_ref(message) == "APT-1001"
    assert appointment_body(message, TRUST) == {
        "status": "booked",
        "start": "2026-12-14T09:30:00+00:00",
        "duration_minutes": 30,
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
        "clinician": "Dr Anita Patel",
        "mode": "in_person",
    }


def test_unlisted_codes_fall_back_to_what_the_message_says() -> None:
    message = parse(siu(location="SITE2", kind="video").encode().replace(b"CARD^Cardiology clinic", b"X^Eye clinic"))
    body = appointment_body(message, TRUST)
    assert (body["site_code"], body["clinic"], body["specialty"], body["mode"]) == ("SITE2", "Eye clinic", "", "video")


def test_hours_and_unknown_units() -> None:
    assert (
        appointment_body(parse(siu(minutes="1").encode().replace(b"|MIN|", b"|HR|")), TRUST)["duration_minutes"] == 60
    )
    with pytest.raises(Hl7Error, match="SCH-9"):
        appointment_body(parse(siu(minutes="half").encode()), TRUST)


def test_mdm_letter() -> None:
    found = letter(parse(mdm().encode()), TRUST, max_bytes=10_000)
    assert (found.ref, found.appointment_ref, found.kind, found.title, found.content) == (
        "DOC-77",
        "APT-1001",
        LetterKind.CLINIC_LETTER,
        "Clinic letter",
        PDF,
    )
    with pytest.raises(Hl7Error, match="OBX-5: the letter must be 10 bytes or fewer"):
        letter(parse(mdm().encode()), TRUST, max_bytes=10)


def test_api_errors_name_the_hl7_field() -> None:
    problems = problems_from([{"field": "postal_address.postcode", "message": "bad"}], {"postal_address": "PID-11"})
    assert [(p.field, p.message) for p in problems] == [("PID-11", "bad")]
    assert pid()  # the sample PID is what these tests read
