"""The building blocks of the hospital feed's schema: kinds of field that both check a value and describe it in JSON
Schema (`hub.rules.text` holds the one rule for text at the boundary). Pure: no I/O.

Each kind is pydantic metadata (`given_name: Annotated[str, Text(100, required=True)]`) with its own plain validator,
so the messages are ours, never pydantic's, and the OpenAPI document shows the same limits the check applies.
"""

from __future__ import annotations

import re
import types
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, NoReturn, Union, get_args, get_origin

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationInfo
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from hub.rules.contacts import normalise_email, normalise_mobile
from hub.rules.text import text_problem

Errors = list[dict[str, str]]

_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")


def uk_postcode(text: str) -> str | None:
    """A UK postcode written as Royal Mail writes it ("NW3 2QG"), or None when it is not one."""
    compact = text.upper().replace(" ", "")
    return f"{compact[:-3]} {compact[-3:]}" if _POSTCODE.match(compact) else None


REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIRST_YEAR, _LAST_YEAR = 1900, 2999
ERROR = "hub"  # the type of every error our kinds raise


def nhs_number_is_valid(text: str) -> bool:
    """10 digits whose last is the modulus 11 check digit of the first 9."""
    if len(text) != 10 or not text.isascii() or not text.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(text[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(text[9])


def fail(message: str, *, field: str = "") -> NoReturn:
    """Refuse the value being checked; `field` names a field when a check on the whole record finds the problem."""
    raise PydanticCustomError(ERROR, "{message}", {"message": message, "field": field})


def _checked_text(value: str, *, newlines: bool = False) -> str:
    if problem := text_problem(value, newlines=newlines):
        fail(problem)
    return value


def without_none(source: Any) -> tuple[Any, bool]:
    """`X | None` as (X, True); anything else as (it, False)."""
    if get_origin(source) in (Union, types.UnionType):
        args = [a for a in get_args(source) if a is not type(None)]
        return args[0], len(args) < len(get_args(source))
    return source, False


class Kind(ABC):
    """A kind of field: a plain validator (`check`) and its JSON Schema (`describe`), from the same few numbers."""

    # Whether null and blank text count as not given (so the field's default, or "is required").
    blank_is_missing = True
    # What a required field of this kind says when it is not given.
    missing: str = "is required"

    @abstractmethod
    def check(self, value: Any, info: ValidationInfo) -> Any: ...

    @abstractmethod
    def describe(self, nullable: bool) -> dict[str, Any]: ...

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        # Kept for describe(): a kind serves the one field it is declared on.
        self._source, self._nullable = without_none(source)
        return core_schema.with_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return self.describe(self._nullable)


def _types(base: str, nullable: bool) -> str | list[str]:
    return [base, "null"] if nullable else base


@dataclass
class Text(Kind):
    """Free text, trimmed; tab and line feed allowed unless `single_line`. Not given is "" unless `required`."""

    max_length: int = 200
    required: bool = False
    single_line: bool = False
    message: str = ""  # one message for every problem, where the API has always given one

    def __post_init__(self) -> None:
        if self.message:
            self.missing = self.message

    def check(self, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str):
            fail(self.message or "must be a string")
        value = value.strip()
        if len(value) > self.max_length:
            fail(self.message or f"must be {self.max_length} characters or fewer")
        return _checked_text(value, newlines=not self.single_line)

    def describe(self, nullable: bool) -> dict[str, Any]:
        if self.required:
            return {"type": "string", "minLength": 1, "maxLength": self.max_length}
        return {"type": ["string", "null"], "maxLength": self.max_length}


@dataclass
class Line(Kind):
    """One line of a postal address: a single line of text."""

    max_length: int = 100
    blank_is_missing = False  # a blank line in a list is a mistake, not a line left out

    def check(self, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > self.max_length:
            fail(f"must be a non-empty string of {self.max_length} characters or fewer")
        return _checked_text(value.strip())

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length}


@dataclass
class Lines(Kind):
    """A list of `Line`s: each bad line is reported with its index."""

    low: int = 1
    high: int = 6

    def check(self, value: Any, info: ValidationInfo) -> list[Any]:
        """The list's own shape; each line is checked by the `Line` it holds."""
        if not isinstance(value, list) or not self.low <= len(value) <= self.high:
            fail(f"must be a list of {self.low} to {self.high} address lines")
        return value

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"minItems": self.low, "maxItems": self.high}  # beside the items' own schema

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.with_info_wrap_validator_function(self._wrap, handler(source))

    def _wrap(self, value: Any, handler: core_schema.ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        return handler(self.check(value, info))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {**handler(schema), **self.describe(False)}


class Choice(Kind):
    """One of a StrEnum's values, exactly as written."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        found = super().__get_pydantic_core_schema__(source, handler)
        self.enum: type[StrEnum] = self._source
        self.missing = f"must be one of: {', '.join(self.enum)}"
        return found

    def check(self, value: Any, info: ValidationInfo) -> StrEnum:
        if not isinstance(value, str) or value not in set(self.enum):
            fail(self.missing)
        return self.enum(value)

    def describe(self, nullable: bool) -> dict[str, Any]:
        values: list[str | None] = list(self.enum)
        return {"type": _types("string", nullable), "enum": [*values, None] if nullable else values}


@dataclass
class Whole(Kind):
    """A JSON integer (not 30.0, not "30", not true) from `low` to `high`."""

    low: int
    high: int

    def check(self, value: Any, info: ValidationInfo) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not self.low <= value <= self.high:
            fail(f"must be a whole number from {self.low} to {self.high}")
        return value

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass
class Number(Kind):
    """A finite JSON number from `low` to `high`, as a float; null is not given, but "" is a mistake."""

    low: int
    high: int
    blank_is_missing = False

    def check(self, value: Any, info: ValidationInfo) -> float | None:
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not self.low <= value <= self.high:
            fail(f"must be a number from {self.low} to {self.high}")  # NaN and Infinity fail the range
        return float(value)

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": _types("number", nullable), "minimum": self.low, "maximum": self.high}


class Flag(Kind):
    """true or false; null is a mistake, leaving it out is false."""

    blank_is_missing = False

    def check(self, value: Any, info: ValidationInfo) -> bool:
        if not isinstance(value, bool):
            fail("must be true or false")
        return value

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass
class Day(Kind):
    """A date written YYYY-MM-DD, from `earliest` to the `today` in the validation context."""

    earliest: date

    def check(self, value: Any, info: ValidationInfo) -> date:
        try:
            if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
                raise ValueError
            parsed = date.fromisoformat(value)
        except ValueError:
            fail("must be a date like 1984-03-15")
        if parsed > (info.context or {})["today"]:
            fail("must not be in the future")
        if parsed < self.earliest:
            fail(f"must be {self.earliest.isoformat()} or later")
        return parsed

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": "string", "format": "date", "description": f"From {self.earliest.isoformat()} to today"}


def parse_instant(value: Any, *, naive_is_utc: bool = False) -> datetime | str:
    """ISO 8601 with an offset, as UTC; or what is wrong with it. The one rule wherever a date and time comes in."""
    try:
        if not isinstance(value, str) or len(value) > 40 or text_problem(value):
            raise ValueError
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "must be an ISO 8601 date and time with an offset, like 2026-03-15T09:30:00+00:00"
    if naive_is_utc and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return "must include a UTC offset, like +00:00 or +01:00"
    # Outside these years UTC can overflow (9999-12-31T23:00-05:00) or stop fitting the stored format.
    if not _FIRST_YEAR <= parsed.year <= _LAST_YEAR:
        return f"must be in the years {_FIRST_YEAR} to {_LAST_YEAR}"
    return parsed.astimezone(UTC)


class Instant(Kind):
    """ISO 8601 with an offset, kept as UTC: a time without one is ambiguous across the clock change."""

    def check(self, value: Any, info: ValidationInfo) -> datetime:
        parsed = parse_instant(value)
        if isinstance(parsed, str):
            fail(parsed)
        return parsed

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {
            "type": "string",
            "format": "date-time",
            "description": f"ISO 8601 with a UTC offset, in the years {_FIRST_YEAR} to {_LAST_YEAR}; times without "
            "an offset are refused",
        }


class NhsNumber(Kind):
    def check(self, value: Any, info: ValidationInfo) -> str:
        text = value.replace(" ", "") if isinstance(value, str) else ""
        if not nhs_number_is_valid(text):
            fail("must be a valid 10-digit NHS number")
        return text

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {
            "type": _types("string", nullable),
            "pattern": "^[0-9]{10}$",
            "description": "10 digits with a valid modulus 11 check digit",
        }


class Mobile(Kind):
    """A UK mobile number in any common format, kept as E.164."""

    def check(self, value: Any, info: ValidationInfo) -> str:
        normalised = normalise_mobile(_checked_text(value)) if isinstance(value, str) else None
        if normalised is None:
            fail("must be a UK mobile number")
        return normalised

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": _types("string", nullable), "maxLength": 30, "description": "A UK mobile number, any format"}


class Email(Kind):
    def check(self, value: Any, info: ValidationInfo) -> str:
        normalised = normalise_email(_checked_text(value)) if isinstance(value, str) else None
        if normalised is None:
            fail("must be an email address")
        return normalised

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": _types("string", nullable), "format": "email", "maxLength": 254}


@dataclass
class Postcode(Kind):
    """A UK postcode, kept upper case with one space before the last three characters. Not given is ""."""

    required: bool = False

    def check(self, value: Any, info: ValidationInfo) -> str:
        compact = Text(10, single_line=True).check(value, info).upper().replace(" ", "")
        if not _POSTCODE.match(compact):
            fail("must be a UK postcode")
        return f"{compact[:-3]} {compact[-3:]}"

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": "string" if self.required else ["string", "null"], "maxLength": 10, "examples": ["NW3 2QG"]}


def _whole(value: Any) -> int | None:
    """A query string's whole number, parsed whole: ASCII digits only, leading zeros allowed, never cut short."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    significant = value.lstrip("0")
    return int(significant or "0") if len(significant) <= 20 else None  # longer is past every range here


class Cursor(Kind):
    """GET /api/v1/events?after=: a next_cursor from an earlier page, or 0 to start (as is leaving it out)."""

    high = 2**63 - 1  # event ids are 64-bit

    def check(self, value: Any, info: ValidationInfo) -> int:
        number = _whole(value)
        if number is None or number > self.high:
            fail("must be a cursor from next_cursor (or 0 to start)")
        return number

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": "string", "pattern": "^[0-9]+$", "description": "next_cursor from the page before"}


class PageSize(Kind):
    """GET /api/v1/events?limit=: from 1 to the `page_limit` in the validation context; blank is a mistake."""

    blank_is_missing = False

    def check(self, value: Any, info: ValidationInfo) -> int:
        number, high = _whole(value), (info.context or {})["page_limit"]
        if number is None or not 1 <= number <= high:
            fail(f"must be a whole number from 1 to {high}")
        return number

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1}  # the maximum is a setting: the OpenAPI document adds it


class Ref(Kind):
    """The hospital's own reference for a record, as in the URL's path."""

    def check(self, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not REF.fullmatch(value):  # match() would let a trailing newline through
            fail("must be 1 to 64 letters, digits, dots, dashes or underscores")
        return value

    def describe(self, nullable: bool) -> dict[str, Any]:
        return {"type": "string", "pattern": REF.pattern}
