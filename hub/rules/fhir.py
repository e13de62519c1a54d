"""Our appointments and letters as the NHS App's Wayfinder wants them: FHIR R4 resources shaped as the Patient Care
Aggregator's producer API standard (v3.12) and its examples, and the standard's inclusion rules.

Pure functions over rows: no database, no clock of their own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from hub.rules.validation import nhs_number_is_valid
from hub.vocabulary import (
    LETTER_KIND_LABELS,
    ConsultationMedium,
    FhirAppointmentStatus,
    HospitalStatus,
    LetterKind,
    Mode,
    ReadReceipt,
    RequestState,
    WayfinderRequestStatus,
)

Row = Mapping[str, Any]
Resource = dict[str, Any]

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SPECIALTY_SYSTEM = "https://fhir.nhs.uk/CodeSystem/Specialty-1"
_EXTENSION = "https://fhir.nhs.uk/StructureDefinition/Extension-"
REQUEST_STATUS_URL = _EXTENSION + "Appointment-RequestStatus"
CONSULTATION_MEDIUM_URL = _EXTENSION + "Consultation-Medium"
PORTAL_LINK_URL = _EXTENSION + "Portal-Link"
READ_RECEIPT_URL = _EXTENSION + "Document-ReadReceipt"
_IDENTIFIER = re.compile(r"https://fhir\.nhs\.uk/Id/nhs-number\|([1-9][0-9]{9})")
ADULT_AGE = 16  # the standard: nothing for patients under 16, and their NHS numbers never go to the Record Service
# Every letter kind the hub holds is written to the patient; a kind for others (a GP's copy) would be left out here.
PATIENT_FACING = frozenset(LetterKind)

STATUS = {
    HospitalStatus.BOOKED: FhirAppointmentStatus.BOOKED,
    HospitalStatus.CANCELLED: FhirAppointmentStatus.CANCELLED,
    HospitalStatus.ATTENDED: FhirAppointmentStatus.FULFILLED,
    HospitalStatus.DID_NOT_ATTEND: FhirAppointmentStatus.NOSHOW,
}
MEDIUM = {
    Mode.IN_PERSON: ConsultationMedium.FACE_TO_FACE,
    Mode.VIDEO: ConsultationMedium.VIDEO_CONSULTATION,
    Mode.TELEPHONE: ConsultationMedium.TELEPHONE,
}
# Only while the hospital has not acted on it: a cancelled or past appointment has no pending request.
REQUEST_STATUS = {
    RequestState.CONFIRMED: WayfinderRequestStatus.CONFIRMED_ATTENDANCE,
    RequestState.REBOOK_REQUESTED: WayfinderRequestStatus.PENDING_RESCHEDULE,
    RequestState.CANCEL_REQUESTED: WayfinderRequestStatus.PENDING_CANCELLATION,
}
# NHS Data Dictionary treatment function codes for the specialty names trusts send most; others go as text.
SPECIALTY_CODES = {
    "general surgery": "100",
    "urology": "101",
    "trauma and orthopaedics": "110",
    "orthopaedics": "110",
    "ear, nose and throat": "120",
    "ent": "120",
    "ophthalmology": "130",
    "oral surgery": "140",
    "plastic surgery": "160",
    "cardiothoracic surgery": "170",
    "general internal medicine": "300",
    "gastroenterology": "301",
    "endocrinology": "302",
    "clinical haematology": "303",
    "haematology": "303",
    "cardiology": "320",
    "dermatology": "330",
    "respiratory medicine": "340",
    "nephrology": "361",
    "medical oncology": "370",
    "neurology": "400",
    "rheumatology": "410",
    "paediatrics": "420",
    "geriatric medicine": "430",
    "obstetrics": "501",
    "gynaecology": "502",
    "physiotherapy": "650",
    "clinical oncology": "800",
}


@dataclass(frozen=True)
class Portal:
    """Where the hub is, and the request being answered: links carry the deep link's tracking parameters."""

    base_url: str
    ext_system_name: str
    tracking_id: str  # the Aggregator's X-Correlation-ID, as the standard asks for a Wayfinder page journey

    def fhir_url(self, resource_type: str, resource_id: str) -> str:
        return f"{self.base_url}/fhir/r4/{resource_type}/{resource_id}"

    def deep_link(self, path: str) -> str:
        # The NHS App appends &assertedLoginIdentity=... to this.
        query = urlencode({"extSystemName": self.ext_system_name, "trackingId": self.tracking_id})
        return f"{self.base_url}{path}?{query}"


@dataclass(frozen=True)
class Hidden:
    """Clinics and specialties a trust keeps out of the NHS App (SRCBR2, SRCBR4), by organisation code."""

    clinics: frozenset[tuple[str, str]] = frozenset()
    specialties: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def from_settings(cls, clinics: Sequence[str], specialties: Sequence[str]) -> Hidden:
        return cls(frozenset(_org_and_name(v) for v in clinics), frozenset(_org_and_name(v) for v in specialties))

    def hides(self, organisation_code: str, clinic: str, specialty: str) -> bool:
        org = organisation_code.strip().upper()
        return (org, clinic.strip().casefold()) in self.clinics or (
            org,
            specialty.strip().casefold(),
        ) in self.specialties


def _org_and_name(entry: str) -> tuple[str, str]:
    org, _, name = entry.partition(":")
    return org.strip().upper(), name.strip().casefold()


def read_patient_identifier(value: str | None) -> tuple[str | None, str]:
    """The NHS number from `patient:identifier`, or why not (the standard's 400 diagnostics)."""
    if not value:
        return None, '"patient:identifier" is required'
    match = _IDENTIFIER.fullmatch(value)
    if match is None or not nhs_number_is_valid(match.group(1)):
        shown = value[:80] if value.isprintable() else "(unprintable)"
        return None, (
            f'"patient:identifier" with value "{shown}" must be {NHS_NUMBER_SYSTEM}|<a valid 10-digit NHS number>'
        )
    return match.group(1), ""


def sixteenth_birthday(born: date) -> date:
    if born.year + ADULT_AGE > date.max.year:  # a birth date in the last sixteen years of the calendar: never 16
        return date.max
    try:
        return born.replace(year=born.year + ADULT_AGE)
    except ValueError:  # born on 29 February: 16 on 1 March
        return date(born.year + ADULT_AGE, 3, 1)


def is_under_16(born: date, today: date) -> bool:
    return today < sixteenth_birthday(born)


def latest_adult_birth_date(today: date) -> date:
    """Patients born on or before this day are 16 or over today."""
    try:
        return today.replace(year=today.year - ADULT_AGE)
    except ValueError:  # 29 February, in a year whose sixteen-years-before was not a leap year
        return date(today.year - ADULT_AGE, 2, 28)


def resource_id(base_url: str, resource_type: str, record_id: int) -> str:
    """A GUID, as the standard prefers, stable for a record and different between hubs."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{base_url}/{resource_type}/{record_id}"))


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _identifiers(portal: Portal, row: Row, resource_type: str) -> list[Resource]:
    return [
        # The hospital system's own reference, under one URI per trust and resource type.
        {"system": f"{portal.base_url}/id/{row['organisation_code']}/{resource_type}", "value": str(row["ref"])},
        {"system": f"{portal.base_url}/fhir/r4/{resource_type}", "value": str(row["id"])},
    ]


def specialty_concept(specialty: str) -> Resource | None:
    name = specialty.strip()
    if not name:
        return None
    code = SPECIALTY_CODES.get(name.casefold())
    if code is None:
        return {"text": name}
    return {"coding": [{"system": SPECIALTY_SYSTEM, "code": code, "display": name}], "text": name}


def appointment_description(row: Row) -> str:
    """What the patient is shown, as the standard structures it: {Specialty name}."""
    return str(row["specialty"]).strip() or str(row["clinic"]).strip() or "Hospital appointment"


def appointment_resource(row: Row, *, nhs_number: str, portal: Portal) -> Resource:
    """One appointment: id, organisation_code, organisation_name, ref, status, request_state, mode, starts_at,
    duration_minutes, clinic, specialty, site_name."""
    extensions: list[Resource] = []
    request = REQUEST_STATUS.get(row["request_state"]) if row["status"] == HospitalStatus.BOOKED else None
    if request is not None:
        extensions.append({"url": REQUEST_STATUS_URL, "valueCode": str(request)})
    extensions.append({"url": CONSULTATION_MEDIUM_URL, "valueCode": str(MEDIUM[Mode(row["mode"])])})
    extensions.append({"url": PORTAL_LINK_URL, "valueUrl": portal.deep_link(f"/nhs-app/appointments/{row['id']}")})
    participants: list[Resource] = [
        {
            "actor": {"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs_number}},
            "status": "accepted",
        },
        {
            "actor": {
                "type": "Location",
                "identifier": {"system": ODS_SYSTEM, "value": str(row["organisation_code"])},
                "display": str(row["organisation_name"]),
            },
            "status": "accepted",
        },
    ]
    if row["mode"] == Mode.IN_PERSON:  # the standard: a location only for appointments the patient travels to
        participants.append({"actor": {"type": "Location", "display": str(row["site_name"])}, "status": "accepted"})
    resource: Resource = {
        "resourceType": "Appointment",
        "id": resource_id(portal.base_url, "Appointment", row["id"]),
        "extension": extensions,
        "identifier": _identifiers(portal, row, "Appointment"),
        "status": str(STATUS[HospitalStatus(row["status"])]),
        "description": appointment_description(row),
        "start": _instant(row["starts_at"]),
        "end": _instant(row["starts_at"] + timedelta(minutes=row["duration_minutes"])),
        "participant": participants,
    }
    concept = specialty_concept(str(row["specialty"]))
    if concept is not None:
        resource["specialty"] = [concept]
    return resource


def read_receipt(row: Row) -> ReadReceipt:
    if row["first_viewed_at"] is not None:
        return ReadReceipt.READ
    return ReadReceipt.SEEN if row["seen_at"] is not None else ReadReceipt.UNREAD


def document_description(row: Row) -> str:
    """{Specialty name} {Document type}: never the letter's own title, which may hold a name (WF-NFR-17)."""
    kind = LETTER_KIND_LABELS[LetterKind(row["kind"])]
    specialty = str(row["specialty"] or "").strip()
    return f"{specialty} {kind.lower()}" if specialty else kind


def document_resource(row: Row, *, nhs_number: str, portal: Portal) -> Resource:
    """One letter: id, organisation_code, organisation_name, ref, kind, created_at, first_viewed_at, seen_at,
    appointment_id, specialty (its appointment's, or empty)."""
    resource: Resource = {
        "resourceType": "DocumentReference",
        "id": resource_id(portal.base_url, "DocumentReference", row["id"]),
        "extension": [{"url": READ_RECEIPT_URL, "valueCode": str(read_receipt(row))}],
        "identifier": _identifiers(portal, row, "DocumentReference"),
        "status": "current",
        "docStatus": "final",
        "subject": {"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs_number}},
        "date": _instant(row["created_at"]),
        "custodian": {
            "type": "Organization",
            "identifier": {"system": ODS_SYSTEM, "value": str(row["organisation_code"])},
            "display": str(row["organisation_name"]),
        },
        "description": document_description(row),
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "url": portal.deep_link(f"/nhs-app/letters/{row['id']}"),
                }
            }
        ],
    }
    if row["appointment_id"] is not None:
        appointment = resource_id(portal.base_url, "Appointment", row["appointment_id"])
        resource["context"] = {
            "related": [{"type": "Appointment", "reference": portal.fhir_url("Appointment", appointment)}]
        }
    return resource


def visible_appointments(rows: Iterable[Row], hidden: Hidden) -> list[Row]:
    return [r for r in rows if not hidden.hides(r["organisation_code"], r["clinic"], r["specialty"])]


def visible_letters(rows: Iterable[Row], hidden: Hidden) -> list[Row]:
    """Patient-facing letters, less those about an appointment at a hidden clinic or specialty."""
    return [
        r
        for r in rows
        if r["kind"] in PATIENT_FACING
        and not (r["appointment_id"] is not None and hidden.hides(r["organisation_code"], r["clinic"], r["specialty"]))
    ]


def searchset(resources: Sequence[Resource], portal: Portal) -> Resource:
    """A searchset Bundle; with nothing found, total 0 and no entries (WF-NFR-07; FHIR JSON has no empty arrays)."""
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        bundle["entry"] = [
            {
                "fullUrl": portal.fhir_url(r["resourceType"], r["id"]),
                "search": {"mode": "match"},
                "resource": r,
            }
            for r in resources
        ]
    return bundle


def operation_outcome(code: str, diagnostics: str, *, access_denied: bool = False) -> Resource:
    """The standard's error body; a bad access token also carries Spine's ACCESS_DENIED coding, as its example."""
    issue: Resource = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if access_denied:
        issue["details"] = {
            "coding": [
                {
                    "system": "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode",
                    "version": "1",
                    "code": "ACCESS_DENIED",
                    "display": "Invalid access token",
                }
            ]
        }
    return {"resourceType": "OperationOutcome", "issue": [issue]}
