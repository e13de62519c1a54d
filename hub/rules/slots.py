"""Slots: the bookable times the hospital offers (the feed's record of one), and the pure rules of patients moving
themselves into them: which appointments may be moved online, which free slots suit an appointment, how the
patient's list is paged by day, and who is offered a freed slot first as an earlier appointment."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from hub.clock import london
from hub.rules.feed import Record, read
from hub.rules.validation import Choice, Errors, Instant, Ref, Text, Whole
from hub.vocabulary import EarlierOrder, HospitalStatus, Mode, OfferStatus, SlotStatus


class Slot(Record):
    noun = "a slot"

    site_code: Annotated[str, Text(40, required=True, single_line=True)]
    clinic: Annotated[str, Text(200)] = ""
    specialty: Annotated[str, Text(200)] = ""
    clinician: Annotated[str, Text(200)] = ""
    start: Annotated[datetime, Instant()]
    duration_minutes: Annotated[int, Whole(1, 24 * 60)]
    mode: Annotated[Mode, Choice()] = Mode.IN_PERSON
    status: Annotated[SlotStatus, Choice()] = Field(
        SlotStatus.FREE,
        description="free: patients may be moved into it; busy: taken; blocked: not bookable; withdrawn: taken back"
        " (as DELETE). A slot the hub has moved a patient into stays busy whatever this says, until you move or"
        " cancel that appointment",
    )
    appointment_ref: Annotated[str | None, Ref()] = Field(
        None, description="The appointment in this slot, when busy: the slot a patient's move frees"
    )

    def values(self) -> dict[str, Any]:
        """What the store keeps (and fingerprints: these keys and values must not change for the same body)."""
        return {**self.model_dump(), "mode": str(self.mode), "status": str(self.status)}


def read_slot(body: Any) -> tuple[Slot | None, Errors]:
    return read(Slot, body)


def _org_and_name(entry: str) -> tuple[str, str]:
    org, _, name = entry.partition(":")
    return org.strip().upper(), name.strip().casefold()


@dataclass(frozen=True)
class SelfService:
    """Which appointments patients may move themselves (by clinic or specialty, per trust); the rest keep the
    call-back route."""

    clinics: frozenset[tuple[str, str]] = frozenset()
    specialties: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def from_settings(cls, clinics: Sequence[str], specialties: Sequence[str]) -> SelfService:
        return cls(frozenset(map(_org_and_name, clinics)), frozenset(map(_org_and_name, specialties)))

    def allows(self, organisation_code: str, clinic: str, specialty: str) -> bool:
        org = organisation_code.strip().upper()
        return (
            (org, "*") in self.clinics
            or (org, clinic.strip().casefold()) in self.clinics
            or (org, specialty.strip().casefold()) in self.specialties
        )


@dataclass(frozen=True)
class Window:
    """Which free slots a patient may move into: from the change cut-off to `days` ahead."""

    cutoff: timedelta
    days: int

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        return now + self.cutoff, now + timedelta(days=self.days)

    def holds(self, starts_at: datetime, now: datetime) -> bool:
        first, last = self.bounds(now)
        return first <= starts_at <= last


@dataclass(frozen=True)
class Day:
    day: date
    slots: list[dict[str, Any]]


@dataclass(frozen=True)
class Page:
    days: list[Day]
    number: int  # from 1
    pages: int


def paged_by_day(slots: Iterable[dict[str, Any]], *, page: int, days_per_page: int) -> Page:
    """Free slots (in time order, `starts_at` aware) grouped by London day, `days_per_page` days a page. A page past
    the last shows the last."""
    days: list[Day] = []
    for slot in slots:
        day = london(slot["starts_at"]).date()
        if not days or days[-1].day != day:
            days.append(Day(day, []))
        days[-1].slots.append(slot)
    pages = max(1, -(-len(days) // days_per_page))
    number = min(max(page, 1), pages)
    start = (number - 1) * days_per_page
    return Page(days[start : start + days_per_page], number, pages)


def shown_start(raw: str) -> datetime | None:
    """The slot's time as a page showed it (the form's hidden `start`, ISO 8601 with its offset); None when it is not
    one."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def page_number(raw: str) -> int:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 6 else 1


@dataclass(frozen=True)
class Candidate:
    """A patient asking for an earlier appointment, and the appointment they would move from."""

    appointment_id: int
    starts_at: datetime
    booked_at: datetime


def offer_order(candidates: Iterable[Candidate], *, slot_start: datetime, order: str) -> list[Candidate]:
    """Who is offered a freed slot, first first: only those whose appointment is later than the slot."""
    later = [c for c in candidates if c.starts_at > slot_start]
    if order == EarlierOrder.LONGEST_WAIT:
        return sorted(later, key=lambda c: (c.booked_at, c.appointment_id))
    return sorted(later, key=lambda c: (c.starts_at, c.appointment_id))


def offer_open(offer: dict[str, Any], *, now: datetime) -> bool:
    """Whether an offer can still be taken: offered, not lapsed, and still earlier than the appointment it would
    replace (the hospital, or the patient, may have moved that since, or cancelled it)."""
    return (
        offer["status"] == OfferStatus.OFFERED
        and offer["expires_at"] > now
        and offer["appointment_status"] == HospitalStatus.BOOKED
        and offer["slot_start"] < offer["appointment_start"]
    )
