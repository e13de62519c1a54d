"""Checking what the hospital system sends: pure functions that collect every problem as {field, message}."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from hub.rules.contacts import normalise_email, normalise_mobile

_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIRST_YEAR, _LAST_YEAR = 1900, 2999


def printable(text: str) -> str:
    """Text without control characters other than tab and line breaks (PostgreSQL refuses NUL in text)."""
    return "".join(ch for ch in text if ch >= " " or ch in "\t\n\r")


def nhs_number_is_valid(text: str) -> bool:
    """10 digits whose last is the modulus 11 check digit of the first 9."""
    if len(text) != 10 or not text.isascii() or not text.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(text[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(text[9])


@dataclass
class Checker:
    """Reads a JSON object field by field, keeping every error rather than stopping at the first."""

    data: dict[str, Any]
    prefix: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)

    def fail(self, name: str, message: str) -> None:
        self.errors.append({"field": self.prefix + name, "message": message})

    def _get(self, name: str, required: bool) -> Any:
        value = self.data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(name, "is required")
            return None
        return value

    def text(self, name: str, *, required: bool = False, max_length: int = 200) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None if required else ""
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return None
        value = value.strip()
        if len(value) > max_length:
            self.fail(name, f"must be {max_length} characters or fewer")
            return None
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
            self.fail(name, "must not contain control characters")
            return None
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = False, default: str = "") -> str | None:
        value = self._get(name, required)
        if value is None:
            return None if required else default
        if value not in choices:
            self.fail(name, f"must be one of: {', '.join(choices)}")
            return None
        return str(value)

    def boolean(self, name: str) -> bool | None:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            self.fail(name, "must be true or false")
            return None
        return value

    def integer(self, name: str, *, required: bool = False, low: int, high: int) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(name, f"must be a whole number from {low} to {high}")
            return None
        return value

    def number(self, name: str, *, low: float, high: float) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
            self.fail(name, f"must be a number from {low} to {high}")
            return None
        return float(value)

    def day(
        self, name: str, *, required: bool = False, today: date | None = None, earliest: date | None = None
    ) -> date | None:
        value = self._get(name, required)
        if value is None:
            return None
        try:
            if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError
            parsed = date.fromisoformat(value)
        except ValueError:
            self.fail(name, "must be a date like 1984-03-15")
            return None
        if today is not None and parsed > today:
            self.fail(name, "must not be in the future")
            return None
        if earliest is not None and parsed < earliest:
            self.fail(name, f"must be {earliest.isoformat()} or later")
            return None
        return parsed

    def instant(self, name: str, *, required: bool = False) -> datetime | None:
        """ISO 8601 with an offset: a time without one is ambiguous across the clock change, so it is refused."""
        value = self._get(name, required)
        if value is None:
            return None
        try:
            if not isinstance(value, str) or len(value) > 40:
                raise ValueError
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail(name, "must be an ISO 8601 date and time with an offset, like 2026-03-15T09:30:00+00:00")
            return None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(name, "must include a UTC offset, like +00:00 or +01:00")
            return None
        # Outside these years UTC can overflow (9999-12-31T23:00-05:00) or stop fitting the stored format.
        if not _FIRST_YEAR <= parsed.year <= _LAST_YEAR:
            self.fail(name, f"must be in the years {_FIRST_YEAR} to {_LAST_YEAR}")
            return None
        return parsed.astimezone(UTC)

    def nhs_number(self, name: str) -> str | None:
        value = self._get(name, False)
        if value is None:
            return None
        text = str(value).replace(" ", "") if isinstance(value, str) else ""
        if not nhs_number_is_valid(text):
            self.fail(name, "must be a valid 10-digit NHS number")
            return None
        return text

    def mobile(self, name: str) -> str | None:
        value = self._get(name, False)
        if value is None:
            return None
        normalised = normalise_mobile(value) if isinstance(value, str) else None
        if normalised is None:
            self.fail(name, "must be a UK mobile number")
        return normalised

    def email(self, name: str) -> str | None:
        value = self._get(name, False)
        if value is None:
            return None
        normalised = normalise_email(value) if isinstance(value, str) else None
        if normalised is None:
            self.fail(name, "must be an email address")
        return normalised

    def postcode(self, name: str, *, required: bool = False) -> str | None:
        value = self.text(name, required=required, max_length=10)
        if not value:
            return value
        compact = value.upper().replace(" ", "")
        if not _POSTCODE.match(compact):
            self.fail(name, "must be a UK postcode")
            return None
        return f"{compact[:-3]} {compact[-3:]}"
