"""From HL7 v2 to the JSON API's records: each trust's tables (which sending facility is which organisation, which
identifier type codes mean MRN and NHS number, location, service, appointment and document type codes), and the
PID, SCH/AIS/AIL/AIP and TXA/OBX of a message read into the same bodies `hub.rules.feed` checks for the API.

HL7's own rule for updates holds: a field left empty leaves what we hold as it is; a field sent as `""` clears it.
Pure functions: no database, no clock of their own.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from hub.rules.contacts import normalise_mobile
from hub.rules.hl7_message import Hl7Error, Message, Problem, birth_date, timestamp
from hub.rules.text import text_problem
from hub.vocabulary import HospitalStatus, LetterKind, Mode

# What each trigger says of the appointment's status; S13 and S14 say nothing new of it.
SIU_STATUS = {
    "S12": HospitalStatus.BOOKED,
    "S13": None,
    "S14": None,
    "S15": HospitalStatus.CANCELLED,
    "S17": HospitalStatus.CANCELLED,
    "S26": HospitalStatus.DID_NOT_ATTEND,
}
ADT_PATIENT = ("A04", "A08", "A28", "A31")
ADT_MERGE = "A40"
MDM_LETTER = ("T02", "T10")
CLEAR = '""'  # HL7's null: "delete what you hold"

# Where each field of the API's records comes from, to name it in an ERR segment.
PATIENT_FIELDS = {
    "nhs_number": "PID-3",
    "given_name": "PID-5.2",
    "family_name": "PID-5.1",
    "date_of_birth": "PID-7",
    "mobile": "PID-13",
    "email": "PID-13",
    "contact_preference": "PID-13",
    "postal_address": "PID-11",
}
APPOINTMENT_FIELDS = {
    "patient_ref": "PID-3",
    "site_code": "AIL-3",
    "clinic": "AIS-3",
    "specialty": "AIS-3",
    "clinician": "AIP-3",
    "start": "SCH-11.4",
    "duration_minutes": "SCH-9",
    "mode": "SCH-8",
    "status": "MSH-9",
}
LETTER_FIELDS = {
    "letter_ref": "TXA-12",
    "appointment_ref": "PV1-19",
    "patient_ref": "PID-3",
    "title": "TXA-2",
    "kind": "TXA-2",
    "body": "OBX-5",
}


@dataclass(frozen=True)
class Trust:
    """One organisation's tables, as settings give them."""

    organisation: str
    mrn_types: frozenset[str] = frozenset({"MR"})
    nhs_number_types: frozenset[str] = frozenset({"NH"})
    locations: dict[str, str] = field(default_factory=dict)
    services: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (clinic, specialty)
    modes: dict[str, Mode] = field(default_factory=dict)
    document_kinds: dict[str, LetterKind] = field(default_factory=dict)


def read_trusts(
    *,
    facilities: Sequence[str],
    mrn_types: Sequence[str] = (),
    nhs_number_types: Sequence[str] = (),
    locations: Sequence[str] = (),
    services: Sequence[str] = (),
    appointment_types: Sequence[str] = (),
    document_types: Sequence[str] = (),
) -> dict[str, Trust]:
    """Sending facility -> Trust, or ValueError saying which setting entry is wrong and how to write it."""
    by_facility: dict[str, str] = {}
    for entry in facilities:
        facility, _, org = (part.strip() for part in entry.partition("="))
        if not facility or not org:
            raise ValueError(f"hl7.facilities: {entry!r} must be FACILITY=ORG, e.g. RFH_PAS=RAL")
        by_facility[facility] = org
    orgs = set(by_facility.values())

    def entries(name: str, values: Sequence[str], *, pairs: bool) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for entry in values:
            org, _, rest = (part.strip() for part in entry.partition(":"))
            code, _, value = (part.strip() for part in rest.partition("="))
            if not org or not code or (pairs and not value) or (not pairs and "=" in rest):
                shape = "ORG:code=value" if pairs else "ORG:code"
                raise ValueError(f"hl7.{name}: {entry!r} must be {shape}")
            if org not in orgs:
                raise ValueError(f"hl7.{name}: {org} is not the organisation of any of hl7.facilities")
            out.setdefault(org, {})[code] = value
        return out

    def choices(name: str, values: Sequence[str], kind: type[Mode] | type[LetterKind]) -> dict[str, dict[str, str]]:
        table = entries(name, values, pairs=True)
        for codes in table.values():
            for value in codes.values():
                if value not in tuple(kind):
                    raise ValueError(f"hl7.{name}: {value!r} must be one of {', '.join(kind)}")
        return table

    mrn, nhs = entries("mrn_types", mrn_types, pairs=False), entries("nhs_number_types", nhs_number_types, pairs=False)
    sites, clinics = entries("locations", locations, pairs=True), entries("services", services, pairs=True)
    modes = choices("appointment_types", appointment_types, Mode)
    kinds = choices("document_types", document_types, LetterKind)
    trusts = {}
    for facility, org in by_facility.items():
        trusts[facility] = Trust(
            organisation=org,
            mrn_types=frozenset(mrn.get(org, {"MR": ""})),
            nhs_number_types=frozenset(nhs.get(org, {"NH": ""})),
            locations=sites.get(org, {}),
            services={code: _clinic(text) for code, text in clinics.get(org, {}).items()},
            modes={code: Mode(value) for code, value in modes.get(org, {}).items()},
            document_kinds={code: LetterKind(value) for code, value in kinds.get(org, {}).items()},
        )
    return trusts


def _clinic(text: str) -> tuple[str, str]:
    clinic, _, specialty = text.partition("|")
    return clinic.strip(), specialty.strip()


def _present(value: str, cleared: Any = None) -> dict[str, Any] | Any:
    return cleared if value == CLEAR else value


def patient_ref(message: Message, trust: Trust) -> str:
    """The MRN: the PID-3 identifier whose type code (CX-5) is one of the trust's MRN types."""
    for n in range(1, message.repetitions("PID", 3) + 1):
        if message.get("PID", 3, repetition=n, component=5).upper() in trust.mrn_types:
            mrn = message.get("PID", 3, repetition=n)
            if mrn and mrn != CLEAR:
                return _reference(mrn, "PID-3")
    types = " or ".join(sorted(trust.mrn_types))
    raise Hl7Error("PID-3", f"has no identifier of type {types} (the MRN)")


def merged_ref(message: Message, trust: Trust) -> str:
    """ADT^A40's MRG-1: the MRN of the record merged away (the identifier of an MRN type, else the first one)."""
    found = ""
    for n in range(message.repetitions("MRG", 1), 0, -1):
        value = message.get("MRG", 1, repetition=n)
        if value and (n == 1 or message.get("MRG", 1, repetition=n, component=5).upper() in trust.mrn_types):
            found = value
    if not found:
        raise Hl7Error("MRG-1", "the prior patient's MRN is required")
    return _reference(found, "MRG-1")


def patient_body(message: Message, trust: Trust) -> dict[str, Any]:
    """The fields of the API's patient record that PID sends; what it leaves empty is left out of the body."""
    body: dict[str, Any] = {}
    for n in range(1, message.repetitions("PID", 3) + 1):
        if message.get("PID", 3, repetition=n, component=5).upper() in trust.nhs_number_types:
            body["nhs_number"] = _present(message.get("PID", 3, repetition=n))
    family, given = message.get("PID", 5), message.get("PID", 5, component=2)
    if family:
        body["family_name"] = family
    if given:
        body["given_name"] = " ".join(filter(None, [given, message.get("PID", 5, component=3)]))
    born = message.get("PID", 7)
    if born:
        body["date_of_birth"] = birth_date(born, "PID-7")
    body.update(_address(message))
    body.update(_contacts(message))
    return body


def _address(message: Message) -> dict[str, Any]:
    first = message.get("PID", 11)
    if first == CLEAR:
        return {"postal_address": None}
    postcode = message.get("PID", 11, component=5)
    if not postcode:  # no fixed abode, or a partial address: keep what we hold
        return {}
    lines = [message.get("PID", 11, component=c) for c in (1, 2, 3, 4)]
    return {"postal_address": {"lines": [line for line in lines if line] or [postcode], "postcode": postcode}}


def _contacts(message: Message) -> dict[str, Any]:
    """PID-13 (home) and PID-14 (business): the first mobile (CX-3 CP, or a number that is a UK mobile) and the
    first email (CP-3 Internet, or CP-2 NET). PID-13 sent says what the patient has now: what it lacks is cleared."""
    if not message.get("PID", 13) and message.repetitions("PID", 13) == 0:
        return {}
    if message.get("PID", 13) == CLEAR:
        return {"mobile": None, "email": None}
    found: dict[str, Any] = {"mobile": None, "email": None}
    for place in (13, 14):
        for n in range(1, message.repetitions("PID", place) + 1):
            number = message.get("PID", place, repetition=n)
            use = message.get("PID", place, repetition=n, component=2).upper()
            equipment = message.get("PID", place, repetition=n, component=3).upper()
            address = message.get("PID", place, repetition=n, component=4) or (number if "@" in number else "")
            if not number:
                number = message.get("PID", place, repetition=n, component=6) + message.get(
                    "PID", place, repetition=n, component=7
                )
            if (equipment in ("INTERNET", "X.400") or use == "NET") and address:
                found["email"] = found["email"] or address
            elif equipment == "CP" or (number and normalise_mobile(number) is not None):
                found["mobile"] = found["mobile"] or number
    return found


def appointment_ref(message: Message) -> str:
    ref = message.get("SCH", 2) or message.get("SCH", 1)
    if not ref:
        raise Hl7Error("SCH-2", "the filler appointment id (or SCH-1, the placer's) is required")
    return _reference(ref, "SCH-2" if message.get("SCH", 2) else "SCH-1")


def _reference(value: str, field: str) -> str:
    """A reference the hub keys a record by, as an HL7 identifier may be (EI-1: 199 characters), holding nothing a
    database cannot store or look up (PostgreSQL refuses NUL): read before the batch's locks, which use it."""
    if problem := text_problem(value):
        raise Hl7Error(field, problem)
    if len(value) > 199:
        raise Hl7Error(field, "must be 199 characters or fewer")
    return value


def appointment_body(message: Message, trust: Trust) -> dict[str, Any]:
    """The fields of the API's appointment record that SCH, AIS, AIL and AIP send (status from the trigger)."""
    body: dict[str, Any] = {}
    status = SIU_STATUS[message.header.trigger]
    if status is not None:
        body["status"] = str(status)
    for source, place, name in (("SCH", 11, "SCH-11.4"), ("AIS", 4, "AIS-4"), ("AIL", 6, "AIL-6"), ("AIP", 6, "AIP-6")):
        value = message.get(source, place, component=4 if source == "SCH" else 1)
        if value:
            body["start"] = timestamp(value, name).astimezone(UTC).isoformat()
            break
    body.update(_duration(message))
    location = message.get("AIL", 3) or message.get("AIL", 3, component=4)
    location = location or message.get("PV1", 3) or message.get("PV1", 3, component=4)
    if location:
        body["site_code"] = trust.locations.get(location, location)
    service, service_text = message.get("AIS", 3), message.get("AIS", 3, component=2)
    if service or service_text:
        clinic, specialty = trust.services.get(service, (service_text or service, ""))
        body["clinic"], body["specialty"] = clinic, specialty
    clinician = _clinician(message)
    if clinician:
        body["clinician"] = clinician
    kind = message.get("SCH", 8)
    if kind:
        mode = trust.modes.get(kind) or (Mode(kind.lower()) if kind.lower() in tuple(Mode) else None)
        if mode is None:
            raise Hl7Error("SCH-8", f"appointment type {kind[:20]!r} is not in hl7.appointment_types")
        body["mode"] = str(mode)
    return body


def _duration(message: Message) -> dict[str, Any]:
    for value, unit, name in (
        (message.get("SCH", 9), message.get("SCH", 10), "SCH-9"),
        (message.get("AIS", 7), message.get("AIS", 8), "AIS-7"),
    ):
        if not value:
            continue
        minutes = {"": 1, "MIN": 1, "M": 1, "MINUTES": 1, "H": 60, "HR": 60, "HOURS": 60}.get(unit.upper())
        # ASCII digits: isdigit() alone passes "²", which int() refuses.
        if not (value.isascii() and value.isdigit()) or minutes is None:
            raise Hl7Error(name, "must be a whole number of minutes (or hours, with the units as HR)")
        if len(value.lstrip("0")) > 9:  # beyond any appointment, and int() refuses over 4,300 digits
            raise Hl7Error(name, "must be a whole number from 1 to 1440")
        return {"duration_minutes": int(value) * minutes}
    start, end = message.get("SCH", 11, component=4), message.get("SCH", 11, component=5)
    if start and end:
        span = timestamp(end, "SCH-11.5") - timestamp(start, "SCH-11.4")
        return {"duration_minutes": int(span.total_seconds() // 60)}
    return {}


def _clinician(message: Message) -> str:
    """AIP-3 (XCN): prefix, given name and family name, as "Dr A Patel"; only the id when no name is sent."""
    family, given, prefix = (message.get("AIP", 3, component=c) for c in (2, 3, 6))
    return " ".join(filter(None, [prefix, given, family])) or message.get("AIP", 3)


@dataclass(frozen=True)
class Letter:
    ref: str
    appointment_ref: str | None
    kind: LetterKind
    title: str
    content: bytes
    replaces: str | None = None  # a T10's: the document it replaces, filed from now on under `ref`


def letter_refs(message: Message) -> tuple[str, str | None, str | None]:
    """An MDM's document number (TXA-12), for a T10 the one it replaces (TXA-13; with no number of its own, the
    replacement keeps that one), and its appointment's (PV1-19)."""
    ref, replaces = message.get("TXA", 12), None
    if message.header.trigger == "T10":
        parent = message.get("TXA", 13)
        ref = ref or parent
        replaces = parent if parent and parent != ref else None
    if not ref:
        raise Hl7Error("TXA-12", "the unique document number is required")
    appointment = message.get("PV1", 19)
    return (
        _reference(ref, "TXA-12" if message.get("TXA", 12) else "TXA-13"),
        _reference(replaces, "TXA-13") if replaces else None,
        _reference(appointment, "PV1-19") if appointment else None,
    )


def letter(message: Message, trust: Trust, *, max_bytes: int) -> Letter:
    """TXA and OBX of an MDM^T02 or T10: the document number (T10: and the one it replaces), its type and the PDF."""
    ref, replaces, appointment_ref = letter_refs(message)
    code, text = message.get("TXA", 2), message.get("TXA", 2, component=2)
    kind = trust.document_kinds.get(code) or (
        LetterKind(code.lower()) if code.lower() in tuple(LetterKind) else LetterKind.CLINIC_LETTER
    )
    data = "".join(
        message.get("OBX", 5, component=5, index=n)
        for n in range(1, message.count("OBX") + 1)
        if message.get("OBX", 2, index=n).upper() == "ED"
    )
    if not data:
        raise Hl7Error("OBX-5", "the letter is required: an OBX of type ED with the PDF in base64 in OBX-5.5")
    if len(data) > (max_bytes * 4) // 3 + 4:
        raise Hl7Error("OBX-5", f"the letter must be {max_bytes} bytes or fewer")
    try:
        content = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Hl7Error("OBX-5", "must be base64") from exc
    if not content.startswith(b"%PDF-"):
        raise Hl7Error("OBX-5", "must be a PDF file")
    return Letter(ref, appointment_ref, kind, (text or code or "Letter")[:200], content, replaces)


def problems_from(errors: Sequence[dict[str, str]], fields: dict[str, str]) -> tuple[Problem, ...]:
    """The API's {field, message} errors as ERR problems naming the HL7 field each came from."""
    return tuple(
        Problem(fields.get(e["field"].split(".")[0].split("[")[0], e["field"]), e["message"], "102") for e in errors
    )
