"""What the hospital system feeds in: validating each record, and deciding which notice a change sends.

Pure functions: no database, no clock of their own.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hub.rules.validation import REF, Checker
from hub.vocabulary import Channel, ContactPreference, HospitalStatus, MessageKind, Mode

# No 0/O, 1/I/L: the code is read off paper and typed on a phone.
_UVC_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_verification_code() -> str:
    return "".join(secrets.choice(_UVC_ALPHABET) for _ in range(6))


def source_hash(values: dict[str, Any]) -> str:
    """A fingerprint of what the hospital sent, to tell an identical resend from a change."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def check_ref(name: str, ref: str) -> list[dict[str, str]]:
    if not REF.fullmatch(ref):  # match() would let a trailing newline through
        return [{"field": name, "message": "must be 1 to 64 letters, digits, dots, dashes or underscores"}]
    return []


def _object(body: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    if not isinstance(body, dict):
        return {}, [{"field": "body", "message": "must be a JSON object"}]
    return body, []


def validate_site(body: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    data, errors = _object(body)
    c = Checker(data, errors=errors)
    values = {
        "name": c.text("name", required=True),
        "address": c.text("address", max_length=500),
        "postcode": c.postcode("postcode"),
        "latitude": c.number("latitude", low=-90, high=90),
        "longitude": c.number("longitude", low=-180, high=180),
        "directions": c.text("directions", max_length=2000),
        "parking": c.text("parking", max_length=2000),
        "phone": c.text("phone", max_length=30),
    }
    if (values["latitude"] is None) != (values["longitude"] is None) and not c.errors:
        c.fail("longitude" if values["longitude"] is None else "latitude", "latitude and longitude go together")
    organisation = data.get("organisation")
    if organisation is not None and not isinstance(organisation, str):
        c.fail("organisation", "must be a string")
    return values, c.errors


def validate_patient(body: Any, *, today: date) -> tuple[dict[str, Any], list[dict[str, str]]]:
    data, errors = _object(body)
    c = Checker(data, errors=errors)
    values: dict[str, Any] = {
        "nhs_number": c.nhs_number("nhs_number"),
        "given_name": c.text("given_name", required=True, max_length=100),
        "family_name": c.text("family_name", required=True, max_length=100),
        # The sign-in page refuses dates of birth before 1890: a patient entered with one could never sign in.
        "date_of_birth": c.day("date_of_birth", required=True, today=today, earliest=date(1890, 1, 1)),
        "mobile": c.mobile("mobile"),
        "email": c.email("email"),
        "contact_preference": c.choice("contact_preference", tuple(ContactPreference)),
    }
    address = data.get("postal_address")
    lines: list[str] = []
    postcode = ""
    if address is not None:
        if not isinstance(address, dict):
            c.fail("postal_address", "must be an object with lines and postcode")
        else:
            inner = Checker(address, prefix="postal_address.")
            raw_lines = address.get("lines", [])
            if not isinstance(raw_lines, list) or not 1 <= len(raw_lines) <= 6:
                inner.fail("lines", "must be a list of 1 to 6 address lines")
            else:
                for i, line in enumerate(raw_lines):
                    if not isinstance(line, str) or not line.strip() or len(line) > 100:
                        inner.fail(f"lines[{i}]", "must be a non-empty string of 100 characters or fewer")
                    else:
                        lines.append(line.strip())
            postcode = inner.postcode("postcode", required=True) or ""
            c.errors.extend(inner.errors)
    values["address_lines"] = lines
    values["postcode"] = postcode
    if values["contact_preference"] == "sms" and not values["mobile"] and "mobile" not in _fields(c):
        c.fail("contact_preference", "is sms but there is no mobile")
    if values["contact_preference"] == "email" and not values["email"] and "email" not in _fields(c):
        c.fail("contact_preference", "is email but there is no email")
    return values, c.errors


def validate_appointment(body: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    data, errors = _object(body)
    c = Checker(data, errors=errors)
    values = {
        "patient_ref": c.text("patient_ref", required=True, max_length=64),
        "site_code": c.text("site_code", required=True, max_length=40),
        "clinic": c.text("clinic", max_length=200),
        "specialty": c.text("specialty", max_length=200),
        "clinician": c.text("clinician", max_length=200),
        "start": c.instant("start", required=True),
        "duration_minutes": c.integer("duration_minutes", required=True, low=1, high=24 * 60),
        "mode": c.choice("mode", tuple(Mode), default="in_person"),
        "status": c.choice("status", tuple(HospitalStatus), default="booked"),
        "transport_booked": c.boolean("transport_booked"),
        "interpreter_booked": c.boolean("interpreter_booked"),
    }
    return values, c.errors


def _fields(c: Checker) -> set[str]:
    return {e["field"] for e in c.errors}


@dataclass(frozen=True)
class Change:
    notice: MessageKind | None  # invitation | changed | cancelled | None
    bump_sequence: bool  # calendars must replace their copy


def appointment_change(before: dict[str, Any] | None, after: dict[str, Any], *, now: datetime) -> Change:
    """Which notice a hospital change sends. Past appointments and records of attendance send nothing.

    `before` is the stored appointment when the hospital sent something different, None when it is new.
    """
    upcoming = after["start"] > now
    booked, cancelled = HospitalStatus.BOOKED, HospitalStatus.CANCELLED
    if before is None:
        return Change(MessageKind.INVITATION if after["status"] == booked and upcoming else None, False)
    moved = any(before[key] != after[key] for key in ("start", "site_id", "mode"))
    if after["status"] == cancelled and before["status"] != cancelled:
        return Change(MessageKind.CANCELLED if upcoming else None, True)
    if after["status"] == booked and before["status"] == cancelled:
        return Change(MessageKind.INVITATION if upcoming else None, True)  # re-instated: as good as a new booking
    if after["status"] == booked and moved:
        return Change(MessageKind.CHANGED if upcoming else None, True)
    # Any other change (duration, clinic, status) may alter the calendar entry: calendars must replace their copy.
    return Change(None, True)


def choose_channel(patient: dict[str, Any]) -> Channel:
    """Text or email as the patient prefers; the other when we lack it; post when they opted out or we have neither."""
    if patient["opted_out"]:
        return Channel.LETTER
    if patient["contact_preference"] == ContactPreference.EMAIL and patient["email"]:
        return Channel.EMAIL
    if patient["mobile"] and not patient.get("sms_opted_out"):  # they texted STOP
        return Channel.SMS
    if patient["email"]:
        return Channel.EMAIL
    return Channel.LETTER
