"""The OpenAPI 3.1 description of /api/v1, complete enough to generate a client from."""

from __future__ import annotations

from typing import Any

from hub.settings import Settings
from hub.vocabulary import ContactPreference as CHANNELS
from hub.vocabulary import HospitalStatus as STATUSES
from hub.vocabulary import LetterKind as LETTER_KINDS
from hub.vocabulary import Mode as MODES

_REF = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
# One consistent example set: the appointment books the example patient into the example site.
EXAMPLE_REFS = {"site_code": "RFH", "patient_ref": "RF1234567", "appointment_ref": "RF-A-000123", "letter_ref": "L-1"}
EXAMPLES: dict[str, dict[str, Any]] = {
    "Site": {
        "name": "Royal Free Hospital",
        "address": "Pond Street, London",
        "postcode": "NW3 2QG",
        "latitude": 51.5533,
        "longitude": -0.1652,
        "directions": "The main entrance is on Pond Street.",
        "parking": "Pay and display in the multi-storey car park.",
        "phone": "020 7794 0500",
    },
    "Patient": {
        "nhs_number": "9434765919",
        "given_name": "Margaret",
        "family_name": "Jones",
        "date_of_birth": "1948-03-14",
        "mobile": "07700 900001",
        "email": "margaret.jones@example.com",
        "postal_address": {"lines": ["1 Example Street", "London"], "postcode": "NW3 2QG"},
        "contact_preference": "sms",
    },
    "Appointment": {
        "patient_ref": EXAMPLE_REFS["patient_ref"],
        "site_code": EXAMPLE_REFS["site_code"],
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
        "clinician": "Dr A Example",
        "start": "2030-01-07T09:30:00+00:00",
        "duration_minutes": 30,
        "mode": "in_person",
        "status": "booked",
        "transport_booked": False,
        "interpreter_booked": False,
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Errors")}}}


_COMMON_ERRORS = {
    "401": _errors("Missing, wrong or revoked API key"),
    "413": _errors("Body too large"),
    "422": _errors("Invalid input: every problem as {field, message}; nothing was changed"),
    "400": _errors("The request body ended early"),
}


def _path_ref(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _REF, "example": EXAMPLE_REFS[name]}


def _put(summary: str, param: str, schema: str, result: str, description: str) -> dict[str, Any]:
    return {
        "put": {
            "operationId": f"put{schema}",
            "summary": summary,
            "description": description,
            "parameters": [_path_ref(param)],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(schema)}}},
            "responses": {
                "200": {
                    "description": "Updated, or unchanged when the same body was sent before",
                    "content": {"application/json": {"schema": _ref(result)}},
                },
                "201": {"description": "Created", "content": {"application/json": {"schema": _ref(result)}}},
                **_COMMON_ERRORS,
            },
        }
    }


def _result(ref_name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [ref_name, "outcome"],
        "properties": {
            ref_name: {"type": "string"},
            "outcome": {"type": "string", "enum": ["created", "updated", "unchanged"]},
            "notice": {
                "type": "string",
                "enum": ["invitation", "changed", "cancelled"],
                "description": "The notification this change queued for the patient",
            },
        },
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    nullable_text = {"type": ["string", "null"], "maxLength": 200}
    site_put = _put(
        "Create or update a site", "site_code", "Site", "SiteResult", "Sites belong to the API key's organisation."
    )
    site_put["put"]["responses"]["403"] = _errors("The site code belongs to another organisation")
    letter_put = {
        "put": {
            "operationId": "putLetter",
            "summary": "Create or replace a PDF letter",
            "description": "The body is the PDF itself. A replaced PDF counts as unread again.",
            "parameters": [
                _path_ref("letter_ref"),
                {
                    "name": "kind",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "enum": list(LETTER_KINDS)},
                },
                {
                    "name": "title",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                },
                {
                    "name": "appointment_ref",
                    "in": "query",
                    "required": False,
                    "schema": _REF,
                    "description": "The appointment the letter is about; give this or patient_ref",
                    "example": EXAMPLE_REFS["appointment_ref"],
                },
                {
                    "name": "patient_ref",
                    "in": "query",
                    "required": False,
                    "schema": _REF,
                    "description": "The patient the letter is for, when it is about no one appointment",
                },
            ],
            "requestBody": {
                "required": True,
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "200": {
                    "description": "Updated or unchanged",
                    "content": {"application/json": {"schema": _ref("LetterResult")}},
                },
                "201": {"description": "Created", "content": {"application/json": {"schema": _ref("LetterResult")}}},
                **_COMMON_ERRORS,
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Appointment hub integration API",
            "version": "1.0.0",
            "description": "For the hospital's patient administration system: idempotent upserts keyed by the "
            "hospital's own references, and the feed of patient actions.",
        },
        "servers": [{"url": settings.base_url}],
        "security": [{"apiKey": []}],
        "paths": {
            "/api/v1/sites/{site_code}": site_put,
            "/api/v1/patients/{patient_ref}": _put(
                "Create or update a patient",
                "patient_ref",
                "Patient",
                "PatientResult",
                "patient_ref is the hospital number (MRN).",
            ),
            "/api/v1/appointments/{appointment_ref}": _put(
                "Create or update an appointment",
                "appointment_ref",
                "Appointment",
                "AppointmentResult",
                "A new appointment sends the invitation; a new time, site or mode sends the changed notice; "
                "status cancelled sends the cancelled notice. The same body twice changes and sends nothing.",
            ),
            "/api/v1/letters/{letter_ref}": letter_put,
            "/api/v1/events": {
                "get": {
                    "operationId": "getEvents",
                    "summary": "Patient and system actions, oldest first",
                    "description": "Pass next_cursor back as `after` to read on. At least once: keep the cursor "
                    "only after you have stored the page.",
                    "parameters": [
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": settings.api_page_limit,
                                "default": 100,
                            },
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of events",
                            "content": {"application/json": {"schema": _ref("EventPage")}},
                        },
                        "401": _COMMON_ERRORS["401"],
                        "422": _COMMON_ERRORS["422"],
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Created with `python -m hub create-api-key --org CODE --name NAME`",
                }
            },
            "schemas": {
                "Errors": {
                    "type": "object",
                    "required": ["errors"],
                    "properties": {
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["field", "message"],
                                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                            },
                        }
                    },
                },
                "Site": {
                    "type": "object",
                    "required": ["name"],
                    "examples": [EXAMPLES["Site"]],
                    "properties": {
                        "organisation": {"type": "string", "description": "Your organisation's code, if given"},
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "address": {"type": ["string", "null"], "maxLength": 500},
                        "postcode": {"type": ["string", "null"], "examples": ["NW3 2QG"]},
                        "latitude": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
                        "longitude": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
                        "directions": {"type": ["string", "null"], "maxLength": 2000},
                        "parking": {"type": ["string", "null"], "maxLength": 2000},
                        "phone": {"type": ["string", "null"], "maxLength": 30},
                    },
                },
                "Patient": {
                    "type": "object",
                    "required": ["given_name", "family_name", "date_of_birth"],
                    "examples": [EXAMPLES["Patient"]],
                    "properties": {
                        "mrn": {"type": "string", "description": "Ignored: the path's patient_ref is the MRN"},
                        "nhs_number": {
                            "type": ["string", "null"],
                            "pattern": "^[0-9]{10}$",
                            "description": "10 digits with a valid modulus 11 check digit",
                        },
                        "given_name": {"type": "string", "minLength": 1, "maxLength": 100},
                        "family_name": {"type": "string", "minLength": 1, "maxLength": 100},
                        "date_of_birth": {
                            "type": "string",
                            "format": "date",
                            "description": "From 1890-01-01 to today",
                        },
                        "mobile": {"type": ["string", "null"], "description": "A UK mobile number, any common format"},
                        "email": {"type": ["string", "null"], "format": "email"},
                        "postal_address": {
                            "type": ["object", "null"],
                            "required": ["lines", "postcode"],
                            "properties": {
                                "lines": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 6,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 100},
                                },
                                "postcode": {"type": "string"},
                            },
                        },
                        "contact_preference": {"type": ["string", "null"], "enum": [*CHANNELS, None]},
                    },
                },
                "Appointment": {
                    "type": "object",
                    "required": ["patient_ref", "site_code", "start", "duration_minutes"],
                    "examples": [EXAMPLES["Appointment"]],
                    "properties": {
                        "patient_ref": _REF,
                        "site_code": {"type": "string", "maxLength": 40},
                        "clinic": nullable_text,
                        "specialty": nullable_text,
                        "clinician": nullable_text,
                        "start": {
                            "type": "string",
                            "format": "date-time",
                            "description": "ISO 8601 with a UTC offset, in the years 1900 to 2999; times without "
                            "an offset are refused",
                        },
                        "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                        "mode": {"type": "string", "enum": list(MODES), "default": "in_person"},
                        "status": {"type": "string", "enum": list(STATUSES), "default": "booked"},
                        "transport_booked": {"type": "boolean", "default": False},
                        "interpreter_booked": {"type": "boolean", "default": False},
                    },
                },
                "SiteResult": _result("site_code"),
                "PatientResult": _result("patient_ref"),
                "AppointmentResult": _result("appointment_ref"),
                "LetterResult": _result("letter_ref"),
                "Event": {
                    "type": "object",
                    "required": ["id", "kind", "occurred_at", "patient_ref", "appointment_ref", "data"],
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {
                            "type": "string",
                            "examples": [
                                "appointment.confirmed",
                                "appointment.rebook_requested",
                                "appointment.cancel_requested",
                                "letter.viewed",
                                "patient.preferences_changed",
                            ],
                        },
                        "occurred_at": {"type": "string", "format": "date-time"},
                        "patient_ref": {"type": ["string", "null"]},
                        "appointment_ref": {"type": ["string", "null"]},
                        "data": {"type": "object"},
                    },
                },
                "EventPage": {
                    "type": "object",
                    "required": ["events", "next_cursor"],
                    "properties": {
                        "events": {"type": "array", "items": _ref("Event")},
                        "next_cursor": {"type": "string"},
                    },
                },
            },
        },
    }
