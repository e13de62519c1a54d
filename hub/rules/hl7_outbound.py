"""The hospital's events as HL7 v2 messages for the PAS (SRM^S03 request modification, SRM^S04 request
cancellation), and how the PAS's answer is read.

Every event about an appointment has an HL7 form: S04 for a cancellation (asked for, or made by the patient or an
agent), S03 for everything else (confirmed, asked to rebook, moved, letter viewed or posted, a conflict...). ARQ-6,
the request event reason, carries the event kind as a code of our own (coding system HUB) so the PAS can route each
kind; the event's `data` travels in NTE segments, one `name: value` each. Events not about an appointment (contact
preferences, opt-outs, texts received, merges) have no SRM form: they stay on GET /api/v1/events.

MSH-10, the control id, is the event's id (`HUBE<id>`) and MSH-7 the event's time, so a resend after a crash or a
lost ACK is the same message, byte for byte: the PAS's duplicate detection (same sender, same control id) drops it,
as HL7 v2's original-mode rules ask of a receiver.

Pure functions: no database, no clock of their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.rules.hl7_message import Hl7Error, Message, escape, parse
from hub.rules.text import printable
from hub.vocabulary import EventKind

CANCELLATION = "S04"
MODIFICATION = "S03"
CANCEL_KINDS = frozenset(
    {EventKind.APPOINTMENT_CANCEL_REQUESTED, EventKind.APPOINTMENT_CANCELLED_BY_PATIENT, EventKind.TASK_CANCELLED}
)
# ARQ-6's text: what a person reading the PAS's message log sees beside the code.
LABELS: Mapping[str, str] = {
    EventKind.APPOINTMENT_CONFIRMED: "Patient confirmed",
    EventKind.APPOINTMENT_REBOOK_REQUESTED: "Patient asked to rebook",
    EventKind.APPOINTMENT_REBOOK_UPDATED: "Patient changed a request to rebook",
    EventKind.APPOINTMENT_CANCEL_REQUESTED: "Patient asked to cancel",
    EventKind.APPOINTMENT_CANCELLED_BY_PATIENT: "Patient cancelled",
    EventKind.APPOINTMENT_RESCHEDULED_BY_PATIENT: "Patient moved the appointment",
    EventKind.TASK_REBOOKED: "Booking centre moved the appointment",
    EventKind.TASK_CANCELLED: "Booking centre cancelled the appointment",
    EventKind.LETTER_VIEWED: "Patient viewed a letter",
    EventKind.LETTER_ESCALATED_TO_POST: "Letter posted",
    EventKind.APPOINTMENT_CONFLICT: "Update held: it disagrees with the hub",
}
CONTROL_PREFIX = "HUBE"
ACCEPTED, ERROR, REJECTED = "AA", "AE", "AR"
# Commit-accept and commit-reject (enhanced mode) read as their original-mode peers.
_CODES = {"AA": ACCEPTED, "CA": ACCEPTED, "AE": ERROR, "CE": ERROR, "AR": REJECTED, "CR": REJECTED}


@dataclass(frozen=True)
class Envelope:
    """MSH-3 to MSH-6 of every message sent, and the assigning authority of the MRN in PID-3."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str


@dataclass(frozen=True)
class OutboundEvent:
    """An event and what the message needs of its appointment and patient, as they are when it is sent."""

    id: int
    kind: str
    occurred_at: datetime
    patient_id: int
    appointment_id: int
    data: Mapping[str, Any]
    appointment_ref: str
    placer_id: str  # SCH-1 as the appointment came in over HL7 (components and all), else ""
    filler_id: str  # SCH-2 likewise; else the appointment's reference
    starts_at: datetime
    duration_minutes: int
    clinic: str
    location: str  # the PAS's location code of the site (hl7.locations read backwards), else the site code
    mrn: str
    nhs_number: str
    family_name: str
    given_name: str
    date_of_birth: str  # YYYY-MM-DD


@dataclass(frozen=True)
class Answer:
    """The PAS's acknowledgement: AA, AE or AR, and its text (MSA-3 and each ERR-8) for the booking centre."""

    code: str
    text: str


def control_id(event_id: int) -> str:
    return f"{CONTROL_PREFIX}{event_id}"


def trigger(kind: str) -> str:
    return CANCELLATION if kind in CANCEL_KINDS else MODIFICATION


def _dtm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def _label(kind: str) -> str:
    return LABELS.get(kind) or kind.rpartition(".")[2].replace("_", " ").capitalize()


def _notes(data: Mapping[str, Any]) -> list[str]:
    notes = []
    for name in sorted(data):
        value = data[name]
        if name == "appointment_ref" or value in (None, "", [], {}):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        notes.append(escape(f"{name}: {shown}")[:5000])
    return notes


def srm(event: OutboundEvent, envelope: Envelope) -> str:
    """The SRM^S03 or SRM^S04 for one event about an appointment (segments end `\\r`)."""
    code = trigger(event.kind)
    msh = [
        "MSH",
        "^~\\&",
        escape(envelope.sending_application),
        escape(envelope.sending_facility),
        escape(envelope.receiving_application),
        escape(envelope.receiving_facility),
        _dtm(event.occurred_at),
        "",
        f"SRM^{code}^SRM_S01",
        control_id(event.id),
        "P",
        "2.5.1",
        "",
        "",
        "",
        "",
        "GBR",
        "UNICODE UTF-8",
    ]
    moved_to = event.data.get("start") if event.kind in _MOVES else None
    arq = [
        "ARQ",
        event.placer_id,
        event.filler_id or escape(event.appointment_ref),
        "",
        "",
        "",
        f"{escape(event.kind)}^{escape(_label(event.kind))}^HUB",
        f"^{escape(str(event.data['reason']))}" if event.data.get("reason") else "",
        "",
        str(event.duration_minutes),
        "MIN",
        _dtm(datetime.fromisoformat(str(moved_to))) if moved_to else "",
    ]
    ids = [f"{escape(event.mrn)}^^^{escape(envelope.receiving_facility)}^MR"]
    if event.nhs_number:
        ids.append(f"{escape(event.nhs_number)}^^^NHS^NH")
    born = event.date_of_birth.replace("-", "")
    pid = ["PID", "1", "", "~".join(ids), "", f"{escape(event.family_name)}^{escape(event.given_name)}", "", born]
    segments = ["|".join(msh), "|".join(arq).rstrip("|")]
    segments += [f"NTE|{n}|P|{note}" for n, note in enumerate(_notes(event.data), start=1)]
    segments += [
        "|".join(pid),
        "RGS|1|U",
        "|".join(
            [
                "AIS",
                "1",
                "U",
                f"^{escape(event.clinic)}",
                _dtm(event.starts_at),
                "",
                "",
                str(event.duration_minutes),
                "MIN",
            ]
        ),
        "|".join(["AIL", "1", "U", escape(event.location), "", "", _dtm(event.starts_at)]),
    ]
    return "\r".join(segments) + "\r"


_MOVES = frozenset({EventKind.TASK_REBOOKED, EventKind.APPOINTMENT_RESCHEDULED_BY_PATIENT})


def read_answer(block: bytes, sent_control_id: str) -> Answer | None:
    """The PAS's ACK, or None when it is not one for this message (unreadable, or MSA-2 names another): the
    message is then treated as unanswered and sent again."""
    try:
        message = parse(block)
    except Hl7Error:
        return None
    code = _CODES.get(message.get("MSA", 1).upper())
    if code is None or message.get("MSA", 2) != sent_control_id:
        return None
    texts = [message.get("MSA", 3)]
    texts += [
        message.get("ERR", 8, index=n) or message.get("ERR", 1, index=n) for n in range(1, message.count("ERR") + 1)
    ]
    # Stored and shown to the booking centre: a PAS's control characters (a NUL PostgreSQL cannot store) are dropped.
    return Answer(code, printable("; ".join(t for t in texts if t))[:500])


def retry_wait(attempts: int, *, first: timedelta, most: timedelta) -> timedelta:
    """After `attempts` sends with no answer: doubling from `first`, never more than `most`."""
    return min(most, first * (2 ** min(max(attempts - 1, 0), 20)))


def entity_id(message: Message, segment: str, field: int) -> str:
    """An EI field (SCH-1, SCH-2) as sent, its four components escaped again: the SRM names it the same way."""
    parts = [escape(message.get(segment, field, component=n)) for n in range(1, 5)]
    return "^".join(parts).rstrip("^")
