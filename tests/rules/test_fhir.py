"""The Wayfinder mapping: our rows as FHIR R4 resources, checked against FHIR's own models (fhir.resources, R4B)
and, field by field, against the shape of the producer API standard's examples (WF-NFR-10, contract tests)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from hub.rules.fhir import (
    CONSULTATION_MEDIUM_URL,
    PORTAL_LINK_URL,
    READ_RECEIPT_URL,
    REQUEST_STATUS_URL,
    Hidden,
    Portal,
    appointment_resource,
    document_resource,
    is_under_16,
    latest_adult_birth_date,
    operation_outcome,
    read_patient_identifier,
    resource_id,
    searchset,
    visible_appointments,
    visible_letters,
)

PORTAL = Portal("https://hub.example.nhs.uk", "appointment-hub", "c93e2449-a2ef-4476-ad15-13491036be22")
NHS_NUMBER = "9434765919"

# The field paths of the standard's examples (specification/components/examples/GetAppointmentResponseHappyPath.json
# and GetDocumentReferencesResponseHappyPath.json, NHSDigital/patient-care-aggregator-api), written out here.
BUNDLE_PATHS = {"resourceType", "type", "total", "entry[].fullUrl", "entry[].search.mode", "entry[].resource"}
APPOINTMENT_PATHS = {
    "resourceType",
    "id",
    "extension[].url",
    "extension[].valueCoding.system",
    "extension[].valueCoding.code",
    "extension[].valueCode",
    "extension[].valueUrl",
    "identifier[].system",
    "identifier[].value",
    "status",
    "description",
    "start",
    "end",
    "basedOn[].identifier[].system",
    "basedOn[].identifier[].value",
    "participant[].actor.type",
    "participant[].actor.identifier.system",
    "participant[].actor.identifier.value",
    "participant[].actor.display",
    "participant[].status",
}
# The standard's schema has specialty (required there, absent from the example); the hub has no referral data.
APPOINTMENT_EXTRA = {"specialty[].coding[].system", "specialty[].coding[].code", "specialty[].coding[].display"}
APPOINTMENT_EXTRA |= {"specialty[].text"}
APPOINTMENT_NOT_HELD = {
    "extension[].valueCoding.system",  # the e-RS priority: the hub is not told it
    "extension[].valueCoding.code",
    "basedOn[].identifier[].system",  # UBRN, referral and pathway ids: likewise
    "basedOn[].identifier[].value",
}
DOCUMENT_PATHS = {
    "resourceType",
    "id",
    "extension[].url",
    "extension[].valueCode",
    "identifier[].system",
    "identifier[].value",
    "status",
    "docStatus",
    "subject.type",
    "subject.identifier.system",
    "subject.identifier.value",
    "context.related[].type",
    "context.related[].reference",
    "date",
    "custodian.type",
    "custodian.identifier.system",
    "custodian.identifier.value",
    "custodian.display",
    "description",
    "content[].attachment.contentType",
    "content[].attachment.url",
}


def paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        found: set[str] = set()
        for key, inner in value.items():
            name = f"{prefix}.{key}" if prefix else key
            found |= paths(inner, name) if isinstance(inner, dict | list) else {name}
        return found
    if isinstance(value, list):
        return set().union(*(paths(item, prefix + "[]") for item in value)) if value else set()
    return {prefix}


def appointment(**changes: Any) -> dict[str, Any]:
    row = {
        "id": 42,
        "ref": "A1001",
        "organisation_code": "RAL",
        "organisation_name": "Royal Free London NHS Foundation Trust",
        "status": "booked",
        "request_state": "none",
        "mode": "in_person",
        "starts_at": datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        "duration_minutes": 30,
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
        "site_name": "Royal Free Hospital",
    }
    return {**row, **changes}


def letter(**changes: Any) -> dict[str, Any]:
    row = {
        "id": 7,
        "ref": "L1001",
        "organisation_code": "RAL",
        "organisation_name": "Royal Free London NHS Foundation Trust",
        "kind": "appointment_letter",
        "created_at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        "first_viewed_at": None,
        "seen_at": None,
        "appointment_id": 42,
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
    }
    return {**row, **changes}


def extension(resource: dict[str, Any], url: str) -> Any:
    found = [e for e in resource["extension"] if e["url"] == url]
    return (found[0].get("valueCode") or found[0].get("valueUrl")) if found else None


def test_an_appointment_bundle_has_the_standards_fields_and_no_others() -> None:
    bundle = searchset([appointment_resource(appointment(), nhs_number=NHS_NUMBER, portal=PORTAL)], PORTAL)
    assert paths(bundle) - {p for p in paths(bundle) if p.startswith("entry[].resource.")} == BUNDLE_PATHS - {
        "entry[].resource"
    }
    resource = bundle["entry"][0]["resource"]
    assert paths(resource) - APPOINTMENT_EXTRA == APPOINTMENT_PATHS - APPOINTMENT_NOT_HELD
    assert bundle["entry"][0]["search"] == {"mode": "match"}
    assert bundle["entry"][0]["fullUrl"] == f"https://hub.example.nhs.uk/fhir/r4/Appointment/{resource['id']}"
    Bundle.model_validate(bundle)


def test_an_appointment_carries_the_patient_the_trusts_ods_code_and_the_site() -> None:
    resource = appointment_resource(appointment(), nhs_number=NHS_NUMBER, portal=PORTAL)
    assert resource["participant"] == [
        {
            "actor": {
                "type": "Patient",
                "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER},
            },
            "status": "accepted",
        },
        {
            "actor": {
                "type": "Location",
                "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RAL"},
                "display": "Royal Free London NHS Foundation Trust",
            },
            "status": "accepted",
        },
        {"actor": {"type": "Location", "display": "Royal Free Hospital"}, "status": "accepted"},
    ]
    assert resource["start"] == "2026-12-03T09:30:00+00:00" and resource["end"] == "2026-12-03T10:00:00+00:00"
    assert resource["description"] == "Cardiology"
    assert resource["specialty"][0]["coding"][0] == {
        "system": "https://fhir.nhs.uk/CodeSystem/Specialty-1",
        "code": "320",
        "display": "Cardiology",
    }
    assert resource["identifier"] == [
        {"system": "https://hub.example.nhs.uk/id/RAL/Appointment", "value": "A1001"},
        {"system": "https://hub.example.nhs.uk/fhir/r4/Appointment", "value": "42"},
    ]
    assert resource["id"] == resource_id("https://hub.example.nhs.uk", "Appointment", 42)


def test_the_portal_link_is_the_appointments_deep_link_with_the_tracking_parameters() -> None:
    resource = appointment_resource(appointment(), nhs_number=NHS_NUMBER, portal=PORTAL)
    assert extension(resource, PORTAL_LINK_URL) == (
        "https://hub.example.nhs.uk/nhs-app/appointments/42?extSystemName=appointment-hub"
        "&trackingId=c93e2449-a2ef-4476-ad15-13491036be22"
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [("booked", "booked"), ("cancelled", "cancelled"), ("attended", "fulfilled"), ("did_not_attend", "noshow")],
)
def test_the_hospital_status_maps_to_the_fhir_status(status: str, expected: str) -> None:
    assert appointment_resource(appointment(status=status), nhs_number=NHS_NUMBER, portal=PORTAL)["status"] == expected


@pytest.mark.parametrize(
    ("request_state", "expected"),
    [
        ("none", None),
        ("confirmed", "Confirmed Attendance"),
        ("rebook_requested", "Pending Reschedule"),
        ("cancel_requested", "Pending Cancellation"),
    ],
)
def test_the_patients_request_is_the_request_status(request_state: str, expected: str | None) -> None:
    resource = appointment_resource(appointment(request_state=request_state), nhs_number=NHS_NUMBER, portal=PORTAL)
    assert extension(resource, REQUEST_STATUS_URL) == expected


def test_a_cancelled_appointment_has_no_pending_request() -> None:
    row = appointment(status="cancelled", request_state="cancel_requested")
    assert extension(appointment_resource(row, nhs_number=NHS_NUMBER, portal=PORTAL), REQUEST_STATUS_URL) is None


@pytest.mark.parametrize(
    ("mode", "medium", "locations"),
    [("in_person", "FACE_TO_FACE", 2), ("video", "VIDEO_CONSULTATION", 1), ("telephone", "TELEPHONE", 1)],
)
def test_the_mode_is_the_medium_and_only_a_visit_has_a_place(mode: str, medium: str, locations: int) -> None:
    resource = appointment_resource(appointment(mode=mode), nhs_number=NHS_NUMBER, portal=PORTAL)
    assert extension(resource, CONSULTATION_MEDIUM_URL) == medium
    assert [p["actor"]["type"] for p in resource["participant"]].count("Location") == locations
    Bundle.model_validate(searchset([resource], PORTAL))


def test_an_unknown_specialty_goes_as_text_and_none_is_left_out() -> None:
    odd = appointment_resource(appointment(specialty="Memory clinic"), nhs_number=NHS_NUMBER, portal=PORTAL)
    assert odd["specialty"] == [{"text": "Memory clinic"}] and odd["description"] == "Memory clinic"
    bare = appointment_resource(appointment(specialty="", clinic=""), nhs_number=NHS_NUMBER, portal=PORTAL)
    assert "specialty" not in bare and bare["description"] == "Hospital appointment"
    Bundle.model_validate(searchset([odd, bare], PORTAL))


def test_a_document_bundle_has_the_standards_fields() -> None:
    bundle = searchset([document_resource(letter(), nhs_number=NHS_NUMBER, portal=PORTAL)], PORTAL)
    resource = bundle["entry"][0]["resource"]
    assert paths(resource) == DOCUMENT_PATHS
    assert resource["context"]["related"][0]["reference"] == PORTAL.fhir_url(
        "Appointment", resource_id(PORTAL.base_url, "Appointment", 42)
    )
    assert resource["content"][0]["attachment"]["url"].startswith("https://hub.example.nhs.uk/nhs-app/letters/7?")
    Bundle.model_validate(bundle)


def test_a_letter_about_no_appointment_has_no_context() -> None:
    resource = document_resource(letter(appointment_id=None, specialty=None), nhs_number=NHS_NUMBER, portal=PORTAL)
    assert "context" not in resource and resource["description"] == "Appointment letter"
    Bundle.model_validate(searchset([resource], PORTAL))


def test_a_documents_description_never_carries_its_title() -> None:
    resource = document_resource(
        letter(title="Letter for Margaret Jones, born 14/03/1948"), nhs_number=NHS_NUMBER, portal=PORTAL
    )
    assert resource["description"] == "Cardiology appointment letter"
    assert "Margaret" not in str(resource)


@pytest.mark.parametrize(
    ("seen", "viewed", "receipt"),
    [(None, None, "Unread"), (datetime(2026, 11, 20, tzinfo=UTC), None, "Seen"), (None, datetime.now(UTC), "Read")],
)
def test_the_read_receipt(seen: datetime | None, viewed: datetime | None, receipt: str) -> None:
    resource = document_resource(letter(seen_at=seen, first_viewed_at=viewed), nhs_number=NHS_NUMBER, portal=PORTAL)
    assert extension(resource, READ_RECEIPT_URL) == receipt


def test_no_data_is_total_zero_with_no_entries() -> None:
    bundle = searchset([], PORTAL)
    assert bundle == {"resourceType": "Bundle", "type": "searchset", "total": 0}
    Bundle.model_validate(bundle)


def test_operation_outcomes_are_valid_fhir() -> None:
    OperationOutcome.model_validate(operation_outcome("exception", '"patient:identifier" is required'))
    denied = operation_outcome("forbidden", "Invalid access token", access_denied=True)
    OperationOutcome.model_validate(denied)
    assert denied["issue"][0]["details"]["coding"][0]["code"] == "ACCESS_DENIED"


@pytest.mark.parametrize(
    ("value", "nhs_number"),
    [
        ("https://fhir.nhs.uk/Id/nhs-number|9434765919", "9434765919"),
        ("https://fhir.nhs.uk/Id/nhs-number|9434765918", None),  # check digit wrong
        ("9434765919", None),
        ("https://fhir.nhs.uk/Id/nhs-number|0434765919", None),
        ("https://fhir.nhs.uk/Id/nhs-number|9434765919\n", None),
        ("", None),
        (None, None),
    ],
)
def test_the_patient_identifier(value: str | None, nhs_number: str | None) -> None:
    found, problem = read_patient_identifier(value)
    assert found == nhs_number
    assert bool(problem) == (nhs_number is None)


def test_sixteen_from_the_birthday_on() -> None:
    today = date(2026, 11, 21)
    assert not is_under_16(date(2010, 11, 21), today)
    assert is_under_16(date(2010, 11, 22), today)
    assert latest_adult_birth_date(today) == date(2010, 11, 21)
    assert is_under_16(date(2012, 2, 29), date(2028, 2, 28))
    assert not is_under_16(date(2012, 2, 29), date(2028, 2, 29))
    assert latest_adult_birth_date(date(2028, 2, 29)) == date(2012, 2, 29)


def test_hidden_clinics_and_specialties_are_per_trust() -> None:
    hidden = Hidden.from_settings(["ral:Sexual health "], ["RAL:Genitourinary medicine"])
    rows = [
        appointment(id=1, clinic="Sexual Health"),
        appointment(id=2, specialty="Genitourinary Medicine"),
        appointment(id=3, organisation_code="RVL", clinic="Sexual health"),
        appointment(id=4),
    ]
    assert [r["id"] for r in visible_appointments(rows, hidden)] == [3, 4]
    letters = [letter(id=1, clinic="Sexual health"), letter(id=2, appointment_id=None, clinic=None), letter(id=3)]
    assert [r["id"] for r in visible_letters(letters, hidden)] == [2, 3]


def test_sixteen_across_a_century_that_has_no_29_february() -> None:
    # 16 years from a 29 February is another 29 February, except across 2100 (and 1900), which is not a leap year.
    assert is_under_16(date(2084, 2, 29), date(2100, 2, 28))
    assert not is_under_16(date(2084, 2, 29), date(2100, 3, 1))
    assert latest_adult_birth_date(date(2116, 2, 29)) == date(2100, 2, 28)


def test_a_birth_date_whose_sixteenth_birthday_is_past_the_calendar_is_under_16() -> None:
    assert is_under_16(date(9990, 1, 1), date(2026, 11, 21))  # date(10006, 1, 1) raised ValueError
    assert not is_under_16(date(2100, 2, 28), date(2116, 2, 29))
    assert is_under_16(date(2100, 3, 1), date(2116, 2, 29))


def test_an_operation_outcome_is_the_standards_error_body() -> None:
    assert operation_outcome("exception", "Something went wrong") == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": "Something went wrong"}],
    }
    assert operation_outcome("forbidden", "Invalid access token", access_denied=True)["issue"][0]["details"] == {
        "coding": [
            {
                "system": "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode",
                "version": "1",
                "code": "ACCESS_DENIED",
                "display": "Invalid access token",
            }
        ]
    }


def test_a_hidden_clinics_name_may_hold_a_colon() -> None:
    hidden = Hidden.from_settings(["RAL:Ear, nose: and throat"], [])
    assert hidden.hides("RAL", "ear, nose: and throat", "")
    assert not hidden.hides("RAL:Ear, nose", "and throat", "")


def test_the_patient_identifiers_problem_says_what_was_sent_when_it_can_be_shown() -> None:
    assert read_patient_identifier("") == (None, '"patient:identifier" is required')
    wanted = "must be https://fhir.nhs.uk/Id/nhs-number|<a valid 10-digit NHS number>"
    assert read_patient_identifier("x" * 81) == (None, f'"patient:identifier" with value "{"x" * 80}" {wanted}')
    assert read_patient_identifier("9434765919\n") == (
        None,
        f'"patient:identifier" with value "(unprintable)" {wanted}',
    )


def test_a_letter_as_a_document_reference_whole() -> None:
    base = PORTAL.base_url
    assert document_resource(letter(), nhs_number=NHS_NUMBER, portal=PORTAL) == {
        "resourceType": "DocumentReference",
        "id": resource_id(base, "DocumentReference", 7),
        "extension": [{"url": READ_RECEIPT_URL, "valueCode": "Unread"}],
        "identifier": [
            {"system": f"{base}/id/RAL/DocumentReference", "value": "L1001"},
            {"system": f"{base}/fhir/r4/DocumentReference", "value": "7"},
        ],
        "status": "current",
        "docStatus": "final",
        "subject": {
            "type": "Patient",
            "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER},
        },
        "date": "2026-11-20T09:00:00+00:00",
        "custodian": {
            "type": "Organization",
            "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RAL"},
            "display": "Royal Free London NHS Foundation Trust",
        },
        "description": "Cardiology appointment letter",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "url": f"{base}/nhs-app/letters/7?extSystemName=appointment-hub&trackingId={PORTAL.tracking_id}",
                }
            }
        ],
        "context": {
            "related": [
                {
                    "type": "Appointment",
                    "reference": f"{base}/fhir/r4/Appointment/{resource_id(base, 'Appointment', 42)}",
                }
            ]
        },
    }


def test_resource_ids_are_stable_guids_that_differ_between_hubs() -> None:
    found = resource_id("https://hub.example.nhs.uk", "Appointment", 42)
    assert found == str(uuid.uuid5(uuid.NAMESPACE_URL, "https://hub.example.nhs.uk/Appointment/42"))
    assert found != resource_id("https://other.example.nhs.uk", "Appointment", 42)


def test_instants_are_written_in_utc_whatever_the_machines_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        resource = document_resource(letter(), nhs_number=NHS_NUMBER, portal=PORTAL)
        assert resource["date"] == "2026-11-20T09:00:00+00:00"
    finally:
        monkeypatch.undo()
        time.tzset()
