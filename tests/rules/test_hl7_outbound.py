"""The SRM builder and the reading of the PAS's answers, without a database or a network."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import hl7

from hub.rules.hl7_message import parse
from hub.rules.hl7_outbound import (
    Answer,
    Envelope,
    OutboundEvent,
    control_id,
    entity_id,
    read_answer,
    retry_wait,
    srm,
    trigger,
)
from hub.settings import ROOT
from hub.vocabulary import EventKind

ENVELOPE = Envelope("HUB", "HUB_RAL", "MEDWAY", "RFH_PAS")
EVENT = OutboundEvent(
    id=42,
    kind=EventKind.APPOINTMENT_CONFIRMED,
    occurred_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
    patient_id=1,
    appointment_id=2,
    data={"appointment_ref": "APT-1001"},
    appointment_ref="APT-1001",
    placer_id="P-1^RFH",
    filler_id="APT-1001^RFH",
    starts_at=datetime(2026, 12, 14, 9, 30, tzinfo=UTC),
    duration_minutes=30,
    clinic="Cardiology outpatients",
    location="RFH-OPD",
    mrn="RF1234567",
    nhs_number="9434765919",
    family_name="O'Brien|Jones",
    given_name="Margaret",
    date_of_birth="1948-03-14",
)


def _segments(text: str) -> dict[str, list[str]]:
    return {line.split("|")[0]: line.split("|") for line in text.rstrip("\r").split("\r")}


def test_a_confirmation_is_an_srm_s03_whose_control_id_is_the_events() -> None:
    text = srm(EVENT, ENVELOPE)
    message = hl7.parse(text)
    assert [str(s[0]) for s in message] == ["MSH", "ARQ", "PID", "RGS", "AIS", "AIL"]
    msh = message.segment("MSH")
    assert str(msh[9]) == "SRM^S03^SRM_S01" and str(msh[10]) == "HUBE42" == control_id(42)
    assert (str(msh[3]), str(msh[4]), str(msh[5]), str(msh[6])) == ("HUB", "HUB_RAL", "MEDWAY", "RFH_PAS")
    assert str(msh[7]) == "20261121100000+0000"  # the event's time: a resend is the same message
    assert str(msh[18]) == "UNICODE UTF-8"
    arq = _segments(text)["ARQ"]
    assert arq[1:3] == ["P-1^RFH", "APT-1001^RFH"]
    assert arq[6] == "appointment.confirmed^Patient confirmed^HUB"
    assert arq[9:] == ["30", "MIN"]  # no ARQ-11: not a move
    # A delimiter in a name is escaped, and reads back as it was.
    assert parse(text.encode()).get("PID", 5) == "O'Brien|Jones"
    assert srm(EVENT, ENVELOPE) == text


def test_cancellations_are_s04_and_moves_carry_the_new_start() -> None:
    for kind in (
        EventKind.APPOINTMENT_CANCEL_REQUESTED,
        EventKind.APPOINTMENT_CANCELLED_BY_PATIENT,
        EventKind.TASK_CANCELLED,
    ):
        assert trigger(kind) == "S04"
        assert "|SRM^S04^SRM_S01|" in srm(replace(EVENT, kind=kind), ENVELOPE)
    moved = replace(
        EVENT,
        kind=EventKind.APPOINTMENT_RESCHEDULED_BY_PATIENT,
        data={"start": "2026-12-10T09:30:00+00:00", "slot_ref": "S-9", "how": "patient"},
    )
    segments = _segments(srm(moved, ENVELOPE))
    assert segments["ARQ"][11] == "20261210093000+0000"
    notes = [line for line in srm(moved, ENVELOPE).split("\r") if line.startswith("NTE")]
    assert notes == ["NTE|1|P|how: patient", "NTE|2|P|slot_ref: S-9", "NTE|3|P|start: 2026-12-10T09:30:00+00:00"]


def test_an_appointment_that_came_in_by_the_api_is_named_by_its_reference_as_the_filler_id() -> None:
    arq = _segments(srm(replace(EVENT, placer_id="", filler_id=""), ENVELOPE))["ARQ"]
    assert arq[1:3] == ["", "APT-1001"]


def test_answers_are_read_from_msa_and_err() -> None:
    ok = b"MSH|^~\\&|PAS|RFH|HUB|HUB|20261121||ACK^S03^ACK|A1|P|2.5.1\rMSA|AA|HUBE42\r"
    assert read_answer(ok, "HUBE42") == Answer("AA", "")
    refused = ok.replace(b"MSA|AA|HUBE42", b"MSA|AE|HUBE42|bad\rERR||ARQ^1^2|204|E||||unknown appointment")
    assert read_answer(refused, "HUBE42") == Answer("AE", "bad; unknown appointment")
    assert read_answer(ok.replace(b"MSA|AA", b"MSA|CR"), "HUBE42") == Answer("AR", "")
    # An ACK of another message, or none at all, is no answer: the message goes again.
    assert read_answer(ok, "HUBE41") is None
    assert read_answer(b"garbage", "HUBE42") is None
    assert read_answer(ok.replace(b"MSA|AA", b"MSA|XX"), "HUBE42") is None


def test_retries_wait_longer_each_time_up_to_the_most() -> None:
    first, most = timedelta(seconds=5), timedelta(seconds=300)
    assert [retry_wait(n, first=first, most=most).total_seconds() for n in (1, 2, 3, 7, 100)] == [
        5,
        10,
        20,
        300,
        300,
    ]


def test_entity_ids_keep_their_components() -> None:
    message = parse(b"MSH|^~\\&|A|B|C|D|20261121||SIU^S12|1|P|2.5.1\rSCH|P-1^RFH|F\\S\\1^RFH^X^ISO\r")
    assert entity_id(message, "SCH", 1) == "P-1^RFH"
    assert entity_id(message, "SCH", 2) == "F\\S\\1^RFH^X^ISO"
    assert entity_id(message, "SCH", 3) == ""


def test_the_readmes_worked_example_is_what_the_hub_sends() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("MSH|^~\\&|HUB|HUB_RAL|")
    example = readme[start : readme.index("```", start)].strip().split("\n")
    event = replace(
        EVENT,
        id=5021,
        kind=EventKind.APPOINTMENT_REBOOK_REQUESTED,
        occurred_at=datetime(2026, 11, 26, 18, 42, 10, tzinfo=UTC),
        data={"appointment_ref": "APT-1001", "reason": "I am away that week", "preferred_times": "Weekday mornings"},
        placer_id="APT-1001^RFH",
        family_name="Jones",
    )
    assert srm(event, ENVELOPE).rstrip("\r").split("\r") == example
