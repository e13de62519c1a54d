"""The building blocks of the hospital feed's schema, at their edges: NHS numbers, postcodes and the kinds of field
(the text rule and field names shown back are in test_text.py). The models built from them are tested in
test_feed.py."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import pytest

from hub.rules.feed import Appointment, EventsQuery, LetterQuery, Patient, PostalAddress, Record, Site, read
from hub.rules.validation import (
    Choice,
    Line,
    Lines,
    NhsNumber,
    Number,
    Text,
    nhs_number_is_valid,
    uk_postcode,
    without_none,
)
from hub.vocabulary import Mode


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("9434765919", True),
        ("9434765080", True),  # check digit 0: 11 - total % 11 is 11
        ("9434765081", False),
        ("4010232137", True),
        ("4010232138", False),
        ("943476591", False),  # 9 digits
        ("94347659190", False),  # 11 digits
        ("943476591a", False),
        ("９４３４７６５９１９", False),  # full-width digits are digits to str.isdigit()
        ("", False),
    ],
)
def test_nhs_numbers(number: str, valid: bool) -> None:
    assert nhs_number_is_valid(number) is valid


def test_an_nhs_number_whose_check_digit_would_be_10_is_never_valid() -> None:
    # 1*10 + 1*2 = 12; 11 - 12 % 11 = 10: no digit can be its check digit, so no number starting so is issued.
    assert not any(nhs_number_is_valid(f"100000001{digit}") for digit in range(10))


@pytest.mark.parametrize(
    ("text", "postcode"),
    [("nw32qg", "NW3 2QG"), ("NW3 2QG", "NW3 2QG"), ("M1 1AE", "M1 1AE"), ("EC1A 1BB", "EC1A 1BB"), ("NW3", None)],
)
def test_uk_postcodes(text: str, postcode: str | None) -> None:
    assert uk_postcode(text) == postcode


def _schema(model: type[Record], name: str) -> dict[str, Any]:
    found = dict(model.model_json_schema()["properties"][name])
    for key in ("title", "default"):
        found.pop(key, None)
    return found


def test_each_kind_describes_the_limits_it_checks() -> None:
    # The OpenAPI document's schemas come from these: the same numbers as the checks, and null where it is allowed.
    assert _schema(Patient, "given_name") == {"type": "string", "minLength": 1, "maxLength": 100}
    assert _schema(Site, "address") == {"type": ["string", "null"], "maxLength": 500}
    assert _schema(Site, "postcode") == {"type": ["string", "null"], "maxLength": 10, "examples": ["NW3 2QG"]}
    assert _schema(PostalAddress, "postcode") == {"type": "string", "maxLength": 10, "examples": ["NW3 2QG"]}
    assert _schema(PostalAddress, "lines") == {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 100},
        "minItems": 1,
        "maxItems": 6,
    }
    assert _schema(Site, "latitude") == {"type": ["number", "null"], "minimum": -90, "maximum": 90}
    assert Number(-180, 180).describe(False) == {"type": "number", "minimum": -180, "maximum": 180}
    assert _schema(Appointment, "duration_minutes") == {"type": "integer", "minimum": 1, "maximum": 1440}
    assert _schema(Appointment, "mode") == {"type": "string", "enum": ["in_person", "telephone", "video"]}
    assert _schema(Patient, "contact_preference") == {"type": ["string", "null"], "enum": ["sms", "email", None]}
    assert _schema(Appointment, "transport_booked") == {"type": "boolean"}
    assert _schema(Patient, "date_of_birth") == {
        "type": "string",
        "format": "date",
        "description": "From 1890-01-01 to today",
    }
    assert _schema(Appointment, "start") == {
        "type": "string",
        "format": "date-time",
        "description": "ISO 8601 with a UTC offset, in the years 1900 to 2999; times without an offset are refused",
    }
    assert _schema(Patient, "nhs_number") == {
        "type": ["string", "null"],
        "pattern": "^[0-9]{10}$",
        "description": "10 digits with a valid modulus 11 check digit",
    }
    assert NhsNumber().describe(False)["type"] == "string"
    assert _schema(Patient, "mobile") == {
        "type": ["string", "null"],
        "maxLength": 30,
        "description": "A UK mobile number, any format",
    }
    assert _schema(Patient, "email") == {"type": ["string", "null"], "format": "email", "maxLength": 254}
    assert _schema(EventsQuery, "after") == {
        "type": "string",
        "pattern": "^[0-9]+$",
        "description": "next_cursor from the page before",
    }
    assert _schema(EventsQuery, "limit") == {"type": "integer", "minimum": 1}
    assert _schema(LetterQuery, "patient_ref") == {
        "type": "string",
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        "description": "The patient the letter is for, when it is about no one appointment",
    }


def test_kinds_serve_a_record_declared_at_any_time() -> None:
    # The records in feed.py are built on import; a kind must work the same for one built later.
    class Probe(Record):
        noun = "a probe"

        mode: Annotated[Mode, Choice()]
        lines: Annotated[list[Annotated[str, Line(20)]], Lines(1, 2)]
        nhs_number: Annotated[str | None, NhsNumber()] = None

    found, errors = read(Probe, {"mode": "video", "lines": [" 1 Pond St "], "nhs_number": "943 476 5919"})
    assert errors == [] and found == Probe(mode=Mode.VIDEO, lines=["1 Pond St"], nhs_number="9434765919")
    assert read(Probe, {"mode": "post", "lines": ["a", "b", "c"]})[1] == [
        {"field": "mode", "message": "must be one of: in_person, telephone, video"},
        {"field": "lines", "message": "must be a list of 1 to 2 address lines"},
    ]
    assert read(Probe, {})[1] == [
        {"field": "mode", "message": "must be one of: in_person, telephone, video"},
        {"field": "lines", "message": "is required"},
    ]
    schema = Probe.model_json_schema()["properties"]
    assert schema["nhs_number"]["type"] == ["string", "null"] and schema["lines"]["maxItems"] == 2
    assert schema["mode"] == {"title": "Mode", "type": "string", "enum": ["in_person", "telephone", "video"]}


def test_without_none() -> None:
    assert without_none(int | None) == (int, True)
    assert without_none(Optional[int]) == (int, True)  # noqa: UP045 - the old spelling is a Union too
    assert without_none(int | str) == (int, False)
    assert without_none(int) == (int, False)


def test_a_text_with_one_message_says_it_when_missing_too() -> None:
    assert Text(10, required=True, message="is required, 10 characters or fewer").missing == (
        "is required, 10 characters or fewer"
    )
    assert Text(10, required=True).missing == "is required"
