"""Patients' contact details and dates of birth as typed: parsed, normalised, or a plain-English error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import phonenumbers

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_MAX_CONTACT = 254


@dataclass(frozen=True)
class Contact:
    kind: str  # "mobile" or "email"
    value: str  # E.164 mobile, or lower-case email


def normalise_mobile(text: str) -> str | None:
    """A UK mobile number in any common format, as E.164; None if it is not one."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > 30:
        return None
    if cleaned.startswith("44"):
        cleaned = "+" + cleaned
    try:
        number = phonenumbers.parse(cleaned, "GB")
    except phonenumbers.NumberParseException:
        return None
    if not _is_uk_mobile(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_mobile(e164: str) -> str:
    """'+447700900001' -> '07700 900001', as people write and dial it; anything else as it is."""
    if re.fullmatch(r"\+447\d{9}", e164):
        return f"0{e164[3:7]} {e164[7:]}"
    return e164


def _is_uk_mobile(number: phonenumbers.PhoneNumber) -> bool:
    if number.country_code != 44:
        return False
    # Ofcom keeps 07700 900000-900999 for drama and GOV.UK Notify uses it for test numbers; phonenumbers
    # calls it invalid, but it is a mobile range in form, and the demo and tests rely on it.
    if str(number.national_number).startswith("7700900") and len(str(number.national_number)) == 10:
        return True
    return (
        phonenumbers.is_valid_number(number)
        # Guernsey, Jersey and the Isle of Man share +44 mobiles; their patients are treated in English hospitals.
        and phonenumbers.region_code_for_number(number) in ("GB", "GG", "JE", "IM")
        and phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    )


def normalise_email(text: str) -> str | None:
    cleaned = text.strip().lower()
    if len(cleaned) > _MAX_CONTACT or not _EMAIL.match(cleaned):
        return None
    return cleaned


def parse_contact(text: str) -> Contact | None:
    if "@" in text:
        email = normalise_email(text)
        return Contact("email", email) if email else None
    mobile = normalise_mobile(text)
    return Contact("mobile", mobile) if mobile else None


_MONTHS = "january february march april may june july august september october november december".split()
_WHOLE_DATE = re.compile(r"^(\d{1,2})[\s/.\-]+([A-Za-z]+\.?|\d{1,2})[\s/.\-]+(\d+)$")
_PART_DATE = re.compile(r"\d[\s/.\-]+\w")
_SEPARATE_BOXES = "Enter the day, month and year in their own boxes, for example 14, 3 and 1948"


def _month_number(text: str) -> str:
    """'3', 'March', 'mar', 'Sept.' -> '3' (GOV.UK's date input takes month names and abbreviations); any other
    text as it was."""
    word = text.rstrip(".").lower()
    if len(word) >= 3 and word.isalpha():
        for number, name in enumerate(_MONTHS, start=1):
            if name.startswith(word):
                return str(number)
    return text


def parse_date_of_birth(day: str, month: str, year: str, *, today: date) -> date | str:
    """The date, or the error message to show beside the date input."""
    day, month, year = day.strip(), month.strip(), year.strip()
    if not (day or month or year):
        return "Enter your date of birth"
    # The whole date typed in the day box: taken whole when the other boxes are empty.
    whole = _WHOLE_DATE.match(day)
    if whole is not None and not (month or year):
        day, month, year = whole.groups()
    elif _PART_DATE.search(day):
        return _SEPARATE_BOXES
    month = _month_number(month)
    if month and not month.isdecimal() and month.rstrip(".").isalpha():
        return "Month must be a number from 1 to 12, or a month name like March"
    if not (day.isdecimal() and month.isdecimal() and year.isdecimal()):
        return "Date of birth must be a real date, in numbers"
    if len(year) != 4:
        return "Year must include 4 numbers"
    try:
        born = date(int(year), int(month), int(day))
    except (ValueError, OverflowError):  # a day like 99999999999999999999 overflows a C long
        return "Date of birth must be a real date"
    if born > today:
        return "Date of birth must be in the past"
    if born.year < 1890:
        return "Date of birth must be in 1890 or later"
    return born
