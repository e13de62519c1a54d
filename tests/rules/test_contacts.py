"""Contact details and dates of birth as patients type them."""

from __future__ import annotations

from datetime import date

import pytest

from hub.rules.contacts import (
    Contact,
    display_mobile,
    normalise_email,
    normalise_mobile,
    parse_contact,
    parse_date_of_birth,
)

TODAY = date(2026, 11, 21)


@pytest.mark.parametrize(
    "typed",
    [
        "07700 900001",
        "07700900001",
        "07700 900 001",
        "+44 7700 900001",
        "+447700900001",
        "447700900001",
        "44 7700 900001",
        "0044 7700 900001",
        "(07700) 900-001",
        "  07700 900001  ",
    ],
)
def test_normalise_mobile_accepts_common_formats(typed: str) -> None:
    assert normalise_mobile(typed) == "+447700900001"


@pytest.mark.parametrize(
    ("typed", "e164"),
    [("07400 123456", "+447400123456"), ("+44 (0)7400 123456", "+447400123456"), ("447400123456", "+447400123456")],
)
def test_normalise_mobile_accepts_real_uk_mobile_ranges(typed: str, e164: str) -> None:
    assert normalise_mobile(typed) == e164


@pytest.mark.parametrize(
    ("typed", "e164"),
    [("07911 123456", "+447911123456"), ("07797 123456", "+447797123456"), ("07624 123456", "+447624123456")],
)
def test_normalise_mobile_accepts_guernsey_jersey_and_isle_of_man_mobiles(typed: str, e164: str) -> None:
    # +44 numbers outside Great Britain: patients from the islands are treated in English hospitals.
    assert normalise_mobile(typed) == e164


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "12345",
        "07700 90000",  # a digit short
        "07700 9000011",  # a digit long
        "020 7946 0000",  # London landline
        "0800 123 4567",  # freephone
        "+33 6 12 34 56 78",  # a French mobile
        "+1 202 555 0143",
        "not a number",
        "0" * 31,
    ],
)
def test_normalise_mobile_rejects_what_is_not_a_uk_mobile(typed: str) -> None:
    assert normalise_mobile(typed) is None


def test_normalise_email_trims_and_lower_cases() -> None:
    assert normalise_email("  Margaret.Jones@Example.NHS.uk ") == "margaret.jones@example.nhs.uk"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "margaret",
        "margaret@",
        "@example.com",
        "margaret@example",
        "margaret @example.com",
        "a@b@example.com",
        "margaret@example.com.",
        "m" * 250 + "@example.com",
    ],
)
def test_normalise_email_rejects_what_is_not_an_address(typed: str) -> None:
    assert normalise_email(typed) is None


def test_normalise_email_keeps_an_address_of_the_longest_allowed_length() -> None:
    longest = "m" * 242 + "@example.com"
    assert len(longest) == 254
    assert normalise_email(longest) == longest


@pytest.mark.parametrize(
    ("typed", "contact"),
    [
        ("07700 900001", Contact("mobile", "+447700900001")),
        ("Margaret@Example.com", Contact("email", "margaret@example.com")),
        ("rubbish", None),
        ("rubbish@", None),
    ],
)
def test_parse_contact_picks_email_or_mobile(typed: str, contact: Contact | None) -> None:
    assert parse_contact(typed) == contact


@pytest.mark.parametrize(
    ("day", "month", "year", "born"),
    [
        ("14", "3", "1948", date(1948, 3, 14)),
        ("01", "02", "1990", date(1990, 2, 1)),
        (" 1 ", " 2 ", " 1990 ", date(1990, 2, 1)),
        ("29", "2", "2000", date(2000, 2, 29)),  # leap year: divisible by 400
        ("29", "2", "2024", date(2024, 2, 29)),
        ("21", "11", "2026", TODAY),  # born today
        ("1", "1", "1890", date(1890, 1, 1)),
    ],
)
def test_parse_date_of_birth_accepts_real_past_dates(day: str, month: str, year: str, born: date) -> None:
    assert parse_date_of_birth(day, month, year, today=TODAY) == born


@pytest.mark.parametrize(
    ("day", "month", "year", "message"),
    [
        ("", "", "", "Enter your date of birth"),
        ("  ", " ", "", "Enter your date of birth"),
        ("", "3", "", "Date of birth must be a real date, in numbers"),  # some of it given: what is wrong with it
        ("14", "", "1948", "Date of birth must be a real date, in numbers"),
        ("-1", "3", "1948", "Date of birth must be a real date, in numbers"),
        ("14", "3", "48", "Year must include 4 numbers"),
        ("14", "3", "01948", "Year must include 4 numbers"),
        ("29", "2", "1900", "Date of birth must be a real date"),  # not a leap year: divisible by 100
        ("29", "2", "2023", "Date of birth must be a real date"),
        ("31", "4", "1990", "Date of birth must be a real date"),
        ("0", "1", "1990", "Date of birth must be a real date"),
        ("1", "13", "1990", "Date of birth must be a real date"),
        ("22", "11", "2026", "Date of birth must be in the past"),
        ("1", "1", "2100", "Date of birth must be in the past"),
        ("31", "12", "1889", "Date of birth must be in 1890 or later"),
        ("99999999999999999999", "1", "1990", "Date of birth must be a real date"),
    ],
)
def test_parse_date_of_birth_explains_what_is_wrong(day: str, month: str, year: str, message: str) -> None:
    assert parse_date_of_birth(day, month, year, today=TODAY) == message


@pytest.mark.parametrize(
    ("day", "month", "year"),
    [
        ("14", "March", "1948"),  # GOV.UK's date input accepts month names and their abbreviations
        ("14", "mar", "1948"),
        ("14", " March ", "1948"),
        ("14", "Mar.", "1948"),
        ("14", "MARCH", "1948"),
        ("14/03/1948", "", ""),  # the whole date typed in the day box, when the other boxes are empty
        ("14-3-1948", "", ""),
        ("14.03.1948", "", ""),
        ("14 3 1948", "", ""),
        ("14 March 1948", "", ""),
    ],
)
def test_parse_date_of_birth_is_forgiving(day: str, month: str, year: str) -> None:
    assert parse_date_of_birth(day, month, year, today=TODAY) == date(1948, 3, 14)


@pytest.mark.parametrize(
    ("day", "month", "year", "message"),
    [
        ("14/03/1948", "3", "", "Enter the day, month and year in their own boxes, for example 14, 3 and 1948"),
        ("14/03", "", "", "Enter the day, month and year in their own boxes, for example 14, 3 and 1948"),
        ("14", "Marchember", "1948", "Month must be a number from 1 to 12, or a month name like March"),
        ("30", "Feb", "1990", "Date of birth must be a real date"),
    ],
)
def test_parse_date_of_birth_says_what_to_do_with_a_whole_date(day: str, month: str, year: str, message: str) -> None:
    assert parse_date_of_birth(day, month, year, today=TODAY) == message


def test_mobiles_are_shown_as_people_write_them() -> None:
    assert display_mobile("+447700900001") == "07700 900001"
    assert display_mobile("+33612345678") == "+33612345678"  # not a UK mobile: as stored
