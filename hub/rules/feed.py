"""What the hospital system feeds in: the schema of each record (the models that check it, name every problem as
{field, message}, and make the OpenAPI document), and which notice a change sends.

Pure functions: no database, no clock of their own.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from hub.rules.text import SURROGATES, escaped, text_problem
from hub.rules.validation import (
    ERROR,
    REF,
    Choice,
    Cursor,
    Day,
    Email,
    Errors,
    Flag,
    Instant,
    Kind,
    Line,
    Lines,
    Mobile,
    NhsNumber,
    Number,
    PageSize,
    Postcode,
    Ref,
    Text,
    Whole,
    fail,
    without_none,
)
from hub.vocabulary import Channel, ContactPreference, HospitalStatus, LetterKind, MessageKind, Mode

R = TypeVar("R", bound="Record")
# No 0/O, 1/I/L: the code is read off paper and typed on a phone.
_UVC_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
# The sign-in page refuses dates of birth before 1890: a patient entered with one could never sign in.
_EARLIEST_BIRTH = date(1890, 1, 1)


def new_verification_code() -> str:
    return "".join(secrets.choice(_UVC_ALPHABET) for _ in range(6))


@dataclass(frozen=True)
class Applied:
    """What applying one of the hospital's records came to."""

    outcome: str  # created | updated | unchanged | rejected
    record_id: int | None = None
    errors: tuple[dict[str, str], ...] = ()
    notice: MessageKind | None = None


def source_hash(values: dict[str, Any]) -> str:
    """A fingerprint of what the hospital sent, to tell an identical resend from a change."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def check_ref(name: str, ref: str) -> Errors:
    if not REF.fullmatch(ref):  # match() would let a trailing newline through
        return [{"field": name, "message": "must be 1 to 64 letters, digits, dots, dashes or underscores"}]
    return []


class Record(BaseModel):
    """A record the hospital sends: unknown fields are refused, every problem is reported at once."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    noun: ClassVar[str]  # "a site": for "is not a field of a site"
    not_an_object: ClassVar[str] = "must be a JSON object"

    @model_validator(mode="before")
    @classmethod
    def _blank_is_missing(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            fail(cls.not_an_object)
        for key in data:
            if text_problem(key) == SURROGATES:  # no field has such a name, and pydantic cannot even read it
                fail(f"is not a field of {cls.noun}", field=escaped(key))
        return {key: value for key, value in data.items() if not (_blank(value) and cls._blank_is_missing_for(key))}

    @classmethod
    def _blank_is_missing_for(cls, name: str) -> bool:
        found = cls.model_fields.get(name)
        return found is not None and any(isinstance(m, Kind) and m.blank_is_missing for m in found.metadata)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read(model: type[R], data: Any, **context: Any) -> tuple[R | None, Errors]:
    """The record, or every problem with it as {field, message}."""
    try:
        return model.model_validate(data, context=context), []
    except ValidationError as exc:
        return None, [_error(model, error) for error in exc.errors(include_url=False)]


def _error(model: type[Record], error: Any) -> dict[str, str]:
    loc, kind, context = tuple(error["loc"]), error["type"], error.get("ctx") or {}
    owner, declared = _field_at(model, loc)
    if kind == ERROR:
        message = context["message"]
        loc += (context["field"],) if context["field"] else ()
    elif kind == "missing":
        message = next((m.missing for m in getattr(declared, "metadata", ()) if isinstance(m, Kind)), "is required")
    elif kind == "extra_forbidden":
        message = f"is not a field of {owner.noun}"
    else:  # not expected: our kinds check every field; never pass on pydantic's own wording
        message = "is not valid"
    return {"field": _path(loc) or "body", "message": message}


def _field_at(model: type[Record], loc: tuple[str | int, ...]) -> tuple[type[Record], Any]:
    """The record that holds the field at `loc`, and the field's declaration (None for an unknown field)."""
    owner: type[Record] = model
    for part in loc[:-1]:
        declared = owner.model_fields.get(part) if isinstance(part, str) else None
        inner = without_none(declared.annotation)[0] if declared else None
        if isinstance(inner, type) and issubclass(inner, Record):
            owner = inner
    name = loc[-1] if loc else None
    return owner, owner.model_fields.get(name) if isinstance(name, str) else None


def _path(loc: tuple[str | int, ...]) -> str:
    path = escaped("".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip("."))
    return path if len(path) <= 100 else path[:99] + "…"


class Site(Record):
    noun = "a site"

    name: Annotated[str, Text(200, required=True)]
    address: Annotated[str, Text(500)] = ""
    postcode: Annotated[str, Postcode()] = ""
    latitude: Annotated[float | None, Number(-90, 90)] = None
    longitude: Annotated[float | None, Number(-180, 180)] = None
    directions: Annotated[str, Text(2000)] = ""
    parking: Annotated[str, Text(2000)] = ""
    phone: Annotated[str, Text(30)] = ""
    organisation: Annotated[str, Text(64, single_line=True)] = Field("", description="Your organisation's code")

    @field_validator("organisation")
    @classmethod
    def _own_organisation(cls, value: str, info: ValidationInfo) -> str:
        code = (info.context or {})["organisation_code"]
        if value and value != code:
            fail(f"must be your organisation's code, {code}")
        return value

    @model_validator(mode="after")
    def _latitude_with_longitude(self) -> Site:
        if (self.latitude is None) != (self.longitude is None):
            fail("latitude and longitude go together", field="longitude" if self.longitude is None else "latitude")
        return self

    def values(self) -> dict[str, Any]:
        """What the store keeps (and fingerprints: these keys and values must not change for the same body)."""
        return self.model_dump(exclude={"organisation"})


class PostalAddress(Record):
    noun = "a postal address"
    not_an_object = "must be an object with lines and postcode"

    lines: Annotated[list[Annotated[str, Line(100)]], Lines(1, 6)]
    postcode: Annotated[str, Postcode(required=True)]


class ContactOptOut(Record):
    noun = "contact_opt_out"
    not_an_object = 'must be an object like {"sms": true, "email": false}'

    sms: Annotated[bool | None, Flag()] = Field(None, description="true: no texts to this patient; false: texts again")
    email: Annotated[bool | None, Flag()] = Field(None, description="true: no emails; false: emails again")


class Patient(Record):
    noun = "a patient"

    mrn: Annotated[str, Text(64, single_line=True)] = Field(
        "", description="Ignored: the path's patient_ref is the MRN"
    )
    nhs_number: Annotated[str | None, NhsNumber()] = None
    given_name: Annotated[str, Text(100, required=True)]
    family_name: Annotated[str, Text(100, required=True)]
    date_of_birth: Annotated[date, Day(_EARLIEST_BIRTH)]
    mobile: Annotated[str | None, Mobile()] = None
    email: Annotated[str | None, Email()] = None
    contact_preference: Annotated[ContactPreference | None, Choice()] = None
    postal_address: PostalAddress | None = None
    contact_opt_out: ContactOptOut | None = Field(
        None, description="Stop (true) or restart (false) texts or emails; leave out to keep what is set now"
    )
    paper_letters: Annotated[bool | None, Flag()] = Field(
        None, description="true: letters by post as well as texts or emails; leave out to keep the patient's choice"
    )
    nhs_app_excluded: Annotated[bool | None, Flag()] = Field(
        None,
        description="true: nothing of this patient's is shown in the NHS App (the trust's own exclusion); false: shown"
        " again; leave out to keep what is set now",
    )

    @field_validator("contact_preference")
    @classmethod
    def _contact_given(cls, value: ContactPreference | None, info: ValidationInfo) -> ContactPreference | None:
        # Only when that contact was left out: a contact that was given but bad has its own error already.
        for preference, contact in ((ContactPreference.SMS, "mobile"), (ContactPreference.EMAIL, "email")):
            if value == preference and contact in info.data and not info.data[contact]:
                fail(f"is {preference} but there is no {contact}")
        return value

    def values(self) -> dict[str, Any]:
        """What the store keeps (and fingerprints: these keys and values must not change for the same body)."""
        address = self.postal_address
        return {
            "nhs_number": self.nhs_number,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth,
            "mobile": self.mobile,
            "email": self.email,
            "contact_preference": str(self.contact_preference or ""),
            "address_lines": list(address.lines) if address else [],
            "postcode": address.postcode if address else "",
            # Only when sent: an older body keeps its fingerprint, and what is left out is left as it is.
            **({"contact_opt_out": self.contact_opt_out.model_dump(exclude_none=True)} if self.contact_opt_out else {}),
            **({"paper_letters": self.paper_letters} if self.paper_letters is not None else {}),
        }


class Appointment(Record):
    noun = "an appointment"

    patient_ref: Annotated[str, Text(64, required=True, single_line=True)]
    site_code: Annotated[str, Text(40, required=True, single_line=True)]
    clinic: Annotated[str, Text(200)] = ""
    specialty: Annotated[str, Text(200)] = ""
    clinician: Annotated[str, Text(200)] = ""
    start: Annotated[datetime, Instant()]
    duration_minutes: Annotated[int, Whole(1, 24 * 60)]
    mode: Annotated[Mode, Choice()] = Mode.IN_PERSON
    status: Annotated[HospitalStatus, Choice()] = HospitalStatus.BOOKED
    transport_booked: Annotated[bool, Flag()] = False
    interpreter_booked: Annotated[bool, Flag()] = False
    acknowledged_event: Annotated[int | None, Whole(1, 2**63 - 1)] = Field(
        None,
        description="The id of the newest hub event about this appointment your system has applied: an update that"
        " acknowledges the event of a change the hub made settles it, even where your record differs",
    )

    def values(self) -> dict[str, Any]:
        """What the store keeps (and fingerprints: these keys and values must not change for the same body)."""
        left_out = {"acknowledged_event"} if self.acknowledged_event is None else set()
        return {**self.model_dump(exclude=left_out), "mode": str(self.mode), "status": str(self.status)}


class LetterQuery(Record):
    """PUT /api/v1/letters/{letter_ref}?kind=..&title=..: the body is the PDF, so the rest is in the query string."""

    model_config = ConfigDict(extra="ignore")  # a query string may carry more, as a cache-buster
    noun = "a letter's query"

    kind: Annotated[LetterKind, Choice()]
    title: Annotated[str, Text(200, required=True, single_line=True, message="is required, 200 characters or fewer")]
    appointment_ref: Annotated[str | None, Ref()] = Field(
        None, description="The appointment the letter is about; give this or patient_ref"
    )
    patient_ref: Annotated[str | None, Ref()] = Field(
        None, description="The patient the letter is for, when it is about no one appointment"
    )


class EventsQuery(Record):
    model_config = ConfigDict(extra="ignore")
    noun = "the events query"

    after: Annotated[int, Cursor()] = Field(0, json_schema_extra={"default": "0"})  # a cursor is text
    limit: Annotated[int, PageSize()] = 100


def read_site(body: Any, *, organisation_code: str) -> tuple[Site | None, Errors]:
    return read(Site, body, organisation_code=organisation_code)


def read_patient(body: Any, *, today: date) -> tuple[Patient | None, Errors]:
    return read(Patient, body, today=today)


def read_appointment(body: Any) -> tuple[Appointment | None, Errors]:
    return read(Appointment, body)


def read_letter_query(query: Mapping[str, str]) -> tuple[LetterQuery | None, Errors]:
    return read(LetterQuery, dict(query))


def read_events_query(query: Mapping[str, str], *, page_limit: int) -> tuple[EventsQuery | None, Errors]:
    return read(EventsQuery, dict(query), page_limit=page_limit)


def choose_channel(patient: dict[str, Any]) -> Channel:
    """Text or email as the patient prefers; the other when we lack it or they stopped it; post when they opted out
    of digital messages or we have no way to reach them."""
    if patient["opted_out"]:
        return Channel.LETTER
    texts = bool(patient["mobile"]) and not patient.get("sms_opted_out")  # they texted STOP
    emails = bool(patient["email"]) and not patient.get("email_opted_out")
    if patient["contact_preference"] == ContactPreference.EMAIL and emails:
        return Channel.EMAIL
    if texts:
        return Channel.SMS
    return Channel.EMAIL if emails else Channel.LETTER
