"""The OpenAPI 3.1 description of /api/v1, complete enough to generate a client from."""

from __future__ import annotations

from typing import Any

from hub.rules.feed import Appointment, EventsQuery, LetterQuery, Patient, Record, Site
from hub.rules.slots import Slot
from hub.rules.validation import REF
from hub.settings import Settings
from hub.vocabulary import EVENT_KINDS

_REF = {"type": "string", "pattern": REF.pattern}
_REF_TEMPLATE = "#/components/schemas/{model}"
# One consistent example set: the appointment books the example patient into the example site.
EXAMPLE_REFS = {
    "site_code": "RFH",
    "patient_ref": "RF1234567",
    "appointment_ref": "RF-A-000123",
    "letter_ref": "L-1",
    "slot_ref": "RF-S-2030-01-07-0930",
}
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
    "Slot": {
        "site_code": EXAMPLE_REFS["site_code"],
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
        "clinician": "Dr A Example",
        "start": "2030-01-07T09:30:00+00:00",
        "duration_minutes": 30,
        "mode": "in_person",
        "status": "free",
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


def _record_schemas() -> dict[str, Any]:
    """The bodies' schemas, from the models that check them (nested records, like PostalAddress, alongside)."""
    schemas: dict[str, Any] = {}
    for model in (Site, Patient, Appointment, Slot):
        schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = {**schema, "examples": [EXAMPLES[model.__name__]]}
    return schemas


def _query_parameters(model: type[Record]) -> list[dict[str, Any]]:
    """A query string's parameters, from the model that checks it."""
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    parameters = []
    for name, field in schema["properties"].items():
        described = {"description": field["description"]} if "description" in field else {}
        # A parameter left out is simply absent: a default of null would not match the parameter's type.
        kept = {k: v for k, v in field.items() if k not in ("title", "description") and (k, v) != ("default", None)}
        required = name in schema.get("required", ())
        parameters.append({"name": name, "in": "query", "required": required, "schema": kept, **described})
    return parameters


def _event_kinds() -> dict[str, Any]:
    """Every kind of event, with what it means, from the vocabulary."""
    lines = [f"- `{kind}` ({source}): {text}" for kind, (source, text) in EVENT_KINDS.items()]
    return {"type": "string", "enum": [str(kind) for kind in EVENT_KINDS], "description": "\n".join(lines)}


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


def _slot_paths() -> dict[str, Any]:
    paths = _put(
        "Create or update a bookable slot",
        "slot_ref",
        "Slot",
        "SlotResult",
        "A free slot of a clinic whose patients may choose their own time (the trust's `slots` settings) is offered"
        " to them, and to patients waiting for an earlier appointment. A patient's move is told through the"
        " `appointment.rescheduled_by_patient` event, with both slot references.",
    )
    paths["delete"] = {
        "operationId": "deleteSlot",
        "summary": "Withdraw a slot",
        "description": "The slot is no longer offered (its status becomes withdrawn). An appointment in it stays"
        " booked: move or cancel the appointment itself. Withdrawing twice is unchanged.",
        "parameters": [_path_ref("slot_ref")],
        "responses": {
            "200": {"description": "Withdrawn", "content": {"application/json": {"schema": _ref("SlotResult")}}},
            "401": _COMMON_ERRORS["401"],
            "422": _errors("No slot with this reference, or a bad reference"),
        },
    }
    return paths


def openapi_document(settings: Settings) -> dict[str, Any]:
    site_put = _put(
        "Create or update a site",
        "site_code",
        "Site",
        "SiteResult",
        "Sites belong to the API key's organisation, and their codes are its own: another organisation may use the"
        " same code for a site of its own.",
    )
    letter_query = _query_parameters(LetterQuery)
    for parameter in letter_query:
        if parameter["name"] == "appointment_ref":
            parameter["example"] = EXAMPLE_REFS["appointment_ref"]
    events_query = _query_parameters(EventsQuery)
    for parameter in events_query:
        if parameter["name"] == "limit":
            parameter["schema"]["maximum"] = settings.api_page_limit
    letter_put = {
        "put": {
            "operationId": "putLetter",
            "summary": "Create or replace a PDF letter",
            "description": "The body is the PDF itself. A replaced PDF counts as unread again.",
            "parameters": [_path_ref("letter_ref"), *letter_query],
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
    image = {"schema": {"type": "string", "format": "binary"}}
    site_map_put = {
        "put": {
            "operationId": "putSiteMap",
            "summary": "Create or replace a site's map",
            "description": "The body is the image itself: PNG, JPEG or SVG (told by its first bytes). Patients "
            "see it on the site's page and can download it. PUT the site first.",
            "parameters": [_path_ref("site_code")],
            "requestBody": {
                "required": True,
                "content": {"image/png": image, "image/jpeg": image, "image/svg+xml": image},
            },
            "responses": {
                "200": {
                    "description": "Updated or unchanged",
                    "content": {"application/json": {"schema": _ref("SiteResult")}},
                },
                "201": {"description": "Created", "content": {"application/json": {"schema": _ref("SiteResult")}}},
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
            "/api/v1/sites/{site_code}/map": site_map_put,
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
            "/api/v1/slots/{slot_ref}": _slot_paths(),
            "/api/v1/events": {
                "get": {
                    "operationId": "getEvents",
                    "summary": "Patient and system actions, oldest first",
                    "description": "Pass next_cursor back as `after` to read on. At least once: keep the cursor "
                    "only after you have stored the page.",
                    "parameters": events_query,
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
                **_record_schemas(),
                "SiteResult": _result("site_code"),
                "PatientResult": _result("patient_ref"),
                "AppointmentResult": _result("appointment_ref"),
                "LetterResult": _result("letter_ref"),
                "SlotResult": _result("slot_ref"),
                "Event": {
                    "type": "object",
                    "required": ["id", "kind", "occurred_at", "patient_ref", "appointment_ref", "data"],
                    "properties": {
                        "id": {"type": "string"},
                        "kind": _event_kinds(),
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
