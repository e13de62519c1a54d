"""The MLLP listener over real TCP, driven by the hl7 package's own MLLP client: each message type applied through
the JSON API's feed code, the ACK codes, repeats and late messages, the framing faults, many peers at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hl7.mllp import open_hl7_connection

from hub.jobs.hl7_listener import make_receiver, start_listener
from hub.settings import ROOT, SettingsError
from tests.conftest import SECRET, MakeHub
from tests.harness import Harness
from tests.hl7_samples import PDF, SETTINGS, Client, adt, mdm, merge, pid, read_ack, siu

pytestmark = pytest.mark.anyio


async def rows(trust: Harness, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await trust.db.fetch_all(sql, params)


async def snapshot(trust: Harness) -> dict[str, Any]:
    tables = ("patients", "appointments", "letters", "outbox_messages", "events", "tasks")
    return {t: await rows(trust, f"SELECT * FROM {t} ORDER BY id") for t in tables}


async def test_siu_s12_creates_the_patient_from_pid_and_books_the_appointment(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        ack = await client.send(siu())
    assert (ack.code, ack.control_id, ack.errors) == ("AA", "MSG00001", [])
    [patient] = await rows(
        trust, "SELECT mrn, nhs_number, given_name, family_name, date_of_birth, mobile, email, postcode FROM patients"
    )
    assert patient == {
        "mrn": "RF1234567",
        "nhs_number": "9434765919",
        "given_name": "Margaret",
        "family_name": "Jones",
        "date_of_birth": "1948-03-14",
        "mobile": "+447700900001",
        "email": "margaret.jones@example.com",
        "postcode": "NW3 2QG",
    }
    [appointment] = await rows(
        trust, "SELECT ref, starts_at, duration_minutes, clinic, specialty, clinician, mode, status FROM appointments"
    )
    assert appointment == {
        "ref": "APT-1001",
        "starts_at": "2026-12-14T09:30:00.000000Z",  # 09:30 in London in December is 09:30 UTC
        "duration_minutes": 30,
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
        "clinician": "Dr Anita Patel",
        "mode": "in_person",
        "status": "booked",
    }
    messages = await rows(trust, "SELECT kind, channel FROM outbox_messages")
    assert messages == [{"kind": "invitation", "channel": "sms"}]


async def test_siu_reschedule_modify_cancel_and_no_show_go_through_the_lifecycle(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"
        moved = await client.send(siu("S13", control_id="M2", start="202612151400", sent="20261121100000"))
        assert moved.code == "AA"
        [row] = await rows(trust, "SELECT starts_at, status FROM appointments")
        assert row == {"starts_at": "2026-12-15T14:00:00.000000Z", "status": "booked"}
        phone = await client.send(siu("S14", control_id="M3", start="202612151400", kind="TEL", sent="20261121100100"))
        assert phone.code == "AA"
        assert (await rows(trust, "SELECT mode FROM appointments")) == [{"mode": "telephone"}]
        header = siu("S15", control_id="M4", sent="20261121100200").split("\r")[0]
        cancel = "\r".join([header, "SCH|APT-1001^RFH|APT-1001^RFH", pid()]) + "\r"
        assert (await client.send(cancel)).code == "AA"  # a cancel with no timing keeps the time it had
        assert (await rows(trust, "SELECT status, starts_at FROM appointments")) == [
            {"status": "cancelled", "starts_at": "2026-12-15T14:00:00.000000Z"}
        ]
    kinds = [r["kind"] for r in await rows(trust, "SELECT kind FROM outbox_messages ORDER BY id")]
    assert kinds[0] == "invitation" and kinds[-1] == "cancelled"


async def test_s26_records_a_no_show(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        await client.send(siu(start="202611200930"))
        assert (
            await client.send(siu("S26", control_id="M2", start="202611200930", sent="20261121100000"))
        ).code == "AA"
    assert (await rows(trust, "SELECT status FROM appointments")) == [{"status": "did_not_attend"}]


async def test_adt_creates_then_updates_only_what_it_sends(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        assert (await client.send(adt("A28"))).code == "AA"
        # A08 with a new address, PID-13 left empty (kept) and a family name with an escaped ampersand
        update = adt(
            "A08",
            control_id="ADT2",
            sent="20261121100000",
            family="Smith\\T\\Jones",
            phones="",
            address="2 Heath Street^^London^^NW3 6TE",
        )
        assert (await client.send(update)).code == "AA"
    [patient] = await rows(trust, "SELECT family_name, mobile, postcode, address_lines FROM patients")
    assert patient == {
        "family_name": "Smith&Jones",
        "mobile": "+447700900001",
        "postcode": "NW3 6TE",
        "address_lines": '["2 Heath Street", "London"]',
    }


@pytest.mark.parametrize("trigger", ["A04", "A31"])
async def test_other_adt_triggers_register_the_patient(trust: Harness, port: int, trigger: str) -> None:
    async with Client(port) as client:
        assert (await client.send(adt(trigger))).code == "AA"
    assert len(await rows(trust, "SELECT id FROM patients")) == 1


@pytest.mark.parametrize("trigger", ["T02", "T10"])
async def test_mdm_attaches_the_pdf_to_the_appointment(trust: Harness, port: int, trigger: str) -> None:
    async with Client(port) as client:
        await client.send(siu())
        ack = await client.send(mdm(trigger))
    assert (ack.code, ack.errors) == ("AA", [])
    [letter] = await rows(
        trust,
        "SELECT l.ref, l.kind, l.title, l.content, a.ref AS appointment FROM letters l"
        " JOIN appointments a ON a.id = l.appointment_id",
    )
    assert letter == {
        "ref": "DOC-77",
        "kind": "clinic_letter",
        "title": "Clinic letter",
        "content": PDF,
        "appointment": "APT-1001",
    }


async def test_a_replacement_of_a_replacement_replaces_the_one_letter(trust: Harness, port: int) -> None:
    # A T10 files the new version under its own number (TXA-12), so the next T10, naming that number as the one it
    # replaces, finds it; before, the first was kept under the old number and the second made a second letter.
    v2, v3 = PDF + b"% v2\n", PDF + b"% v3\n"
    async with Client(port) as client:
        await client.send(siu())
        assert (await client.send(mdm(document="DOC-77"))).text == "created"
        first = await client.send(mdm("T10", control_id="M2", document="DOC-78", replaces="DOC-77", content=v2))
        second = await client.send(mdm("T10", control_id="M3", document="DOC-79", replaces="DOC-78", content=v3))
    assert (first.text, second.text) == ("updated", "updated")
    letters = await rows(trust, "SELECT ref, content FROM letters")
    assert [(r["ref"], bytes(r["content"])) for r in letters] == [("DOC-79", v3)]


async def test_a_document_number_a_t10_replaced_is_refused_naming_the_letter_it_became(
    trust: Harness, port: int
) -> None:
    # Before, a T02 naming the old number found no letter under it and made a second one: the patient and the NHS
    # App saw the old version beside the new. Applied instead, it would put the old version back: refused.
    v2 = PDF + b"% v2\n"
    async with Client(port) as client:
        await client.send(siu())
        await client.send(mdm(document="DOC-77"))
        await client.send(mdm("T10", control_id="M2", document="DOC-78", replaces="DOC-77", content=v2))
        before = await snapshot(trust)
        again = await client.send(mdm(control_id="M3", document="DOC-77"))
        # A T10 giving a replaced number as its own is refused the same way.
        reused = await client.send(mdm("T10", control_id="M4", document="DOC-77", replaces="DOC-78"))
    for ack in (again, reused):
        assert ack.code == "AE"
        assert ack.errors == ["TXA^1^12^1: document DOC-77 was replaced by DOC-78 (an MDM T10): send DOC-78"]
    assert await snapshot(trust) == before
    letters = await rows(trust, "SELECT ref, content FROM letters")
    assert [(r["ref"], bytes(r["content"])) for r in letters] == [("DOC-78", v2)]


async def test_a_t10_replacing_a_replaced_number_replaces_the_letter_it_became(trust: Harness, port: int) -> None:
    # A PAS that names the original document as the parent of every new version: each replaces the one letter.
    v2, v3 = PDF + b"% v2\n", PDF + b"% v3\n"
    async with Client(port) as client:
        await client.send(siu())
        await client.send(mdm(document="DOC-77"))
        first = await client.send(mdm("T10", control_id="M2", document="DOC-78", replaces="DOC-77", content=v2))
        second = await client.send(mdm("T10", control_id="M3", document="DOC-79", replaces="DOC-77", content=v3))
        # Both earlier numbers now name the letter filed as DOC-79.
        old = await client.send(mdm(control_id="M4", document="DOC-78"))
    assert (first.text, second.text) == ("updated", "updated")
    assert old.errors == ["TXA^1^12^1: document DOC-78 was replaced by DOC-79 (an MDM T10): send DOC-79"]
    letters = await rows(trust, "SELECT ref, content FROM letters")
    assert [(r["ref"], bytes(r["content"])) for r in letters] == [("DOC-79", v3)]


async def test_a40_merges_the_prior_record_into_the_surviving_one(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        await client.send(siu(patient=pid("RF0000002", phones="07700 900002^ORN^CP")))  # booked on a duplicate
        await client.send(adt("A28", control_id="ADT1"))  # the patient's real record, RF1234567
        merged = await client.send(merge("RF1234567", "RF0000002"))
        again = await client.send(merge("RF1234567", "RF0000002", control_id="A40002"))
        stale = await client.send(siu("S14", control_id="S3", patient=pid("RF0000002"), sent="20261121110000"))
    assert (merged.code, merged.text, again.code, again.text) == ("AA", "merged", "AA", "nothing to merge")
    assert (stale.code, stale.errors) == ("AE", ["PID^1^3^1: this MRN was merged into another patient's (an A40)"])
    [owner] = await rows(trust, "SELECT p.mrn FROM appointments a JOIN patients p ON p.id = a.patient_id")
    assert owner == {"mrn": "RF1234567"}
    events = await rows(trust, "SELECT kind FROM events")
    assert events == [{"kind": "patient.merged"}]


async def test_a40_for_a_survivor_the_hub_has_not_met_starts_from_the_prior_record(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        await client.send(siu(patient=pid("RF0000002")))
        assert (await client.send(merge("RF0000009", "RF0000002"))).text == "merged"
    survivor = await rows(trust, "SELECT mobile, date_of_birth FROM patients WHERE mrn = 'RF0000009'")
    assert survivor == [{"mobile": "+447700900001", "date_of_birth": "1948-03-14"}]


async def test_invalid_content_is_ae_naming_the_field_and_applies_nothing(trust: Harness, port: int) -> None:
    before = await snapshot(trust)
    async with Client(port) as client:
        bad_date = await client.send(siu(patient=pid(born="19481399")))
        bad_nhs = await client.send(siu(control_id="M2", patient=pid(nhs="9434765918")))
        no_mrn = await client.send(siu(control_id="M3", patient=pid().replace("^MR~", "^XX~")))
        bad_type = await client.send(siu(control_id="M4", kind="ZZZ"))
        bad_pdf = await client.send(mdm(control_id="M5", content=b"not a pdf"))
    assert (bad_date.code, bad_date.errors) == ("AE", ["PID^1^7^1: must be a real date like 19480314"])
    assert (bad_nhs.code, bad_nhs.errors) == ("AE", ["PID^1^3^1: must be a valid 10-digit NHS number"])
    assert (no_mrn.code, no_mrn.errors) == ("AE", ["PID^1^3^1: has no identifier of type MR or PAS (the MRN)"])
    assert bad_type.code == "AE" and bad_type.errors[0].startswith("SCH^1^8^1: appointment type 'ZZZ'")
    assert (bad_pdf.code, bad_pdf.errors) == ("AE", ["OBX^1^5^1: must be a PDF file"])
    assert await snapshot(trust) == before


@pytest.mark.parametrize(
    ("minutes", "error"),
    [
        ("²", "must be a whole number of minutes (or hours, with the units as HR)"),  # isdigit(), yet not for int()
        ("9" * 5000, "must be a whole number from 1 to 1440"),  # more digits than int() reads
    ],
)
async def test_a_duration_int_cannot_read_is_ae_naming_the_field(
    trust: Harness, port: int, minutes: str, error: str
) -> None:
    async with Client(port) as client:
        ack = await client.send(siu(minutes=minutes))
    assert (ack.code, ack.errors) == ("AE", [f"SCH^1^9^1: {error}"])
    assert await rows(trust, "SELECT id FROM appointments") == []


async def test_unknown_facility_and_unknown_type_are_ar(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        stranger = await client.send(siu().replace("RFH_PAS", "OTHER_PAS", 1))
        order = await client.send(siu().replace("SIU^S12^SIU_S12", "ORM^O01^ORM_O01", 1))
        garbage = await client.send(b"this is not HL7")
    assert (stranger.code, stranger.errors) == ("AR", ["MSH^1^4^1: is not in hl7.facilities"])
    assert (order.code, order.errors) == ("AR", ["MSH^1^9^1: ORM O01 is not accepted"])
    assert garbage.code == "AR"
    assert await rows(trust, "SELECT id FROM patients") == []


async def test_a_repeated_control_id_gets_the_same_answer_and_changes_nothing(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        first = await client.send(siu())
        after_first = await snapshot(trust)
        # The same control id again, even with other content (a PAS resending after a lost ACK)
        again = await client.send(siu(start="202612180900"))
        rejected = await client.send(siu(control_id="BAD1", patient=pid("RF7654321", born="x")))
        rejected_again = await client.send(siu(control_id="BAD1"))
    assert again.raw == first.raw
    assert rejected_again.raw == rejected.raw and rejected.code == "AE"
    assert await snapshot(trust) == after_first


async def test_an_older_message_never_undoes_a_newer_one(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        await client.send(siu(sent="20261121090000"))
        await client.send(siu("S13", control_id="NEW", start="202612151400", sent="20261121100000"))
        late = await client.send(siu("S13", control_id="OLD", start="202612160900", sent="20261121093000"))
    assert late.code == "AA" and "not applied" in late.text
    assert (await rows(trust, "SELECT starts_at FROM appointments")) == [{"starts_at": "2026-12-15T14:00:00.000000Z"}]


async def test_an_older_adt_never_undoes_a_newer_one(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        await client.send(adt("A08", control_id="NEW", sent="20261121100000", family="Newer"))
        late = await client.send(adt("A08", control_id="OLD", sent="20261121090000", family="Older"))
    assert late.code == "AA" and "not applied" in late.text
    assert await rows(trust, "SELECT family_name FROM patients") == [{"family_name": "Newer"}]


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
async def test_any_segment_end_is_read(trust: Harness, port: int, sep: str) -> None:
    async with Client(port) as client:
        assert (await client.send(siu(sep=sep))).code == "AA"
    assert len(await rows(trust, "SELECT id FROM appointments")) == 1


async def test_escapes_repetitions_and_character_sets(trust: Harness, port: int) -> None:
    name = "O\\X27\\Brien"  # hex escape for the apostrophe
    message = siu(patient=pid(family=name, given="Zoë")).replace("|2.5.1|", "|2.5.1||||||8859/1|", 1)
    async with Client(port) as client:
        ack = await client.send(message.encode("latin-1"))
    assert ack.code == "AA"
    assert await rows(trust, "SELECT family_name, given_name FROM patients") == [
        {"family_name": "O'Brien", "given_name": "Zoë"}
    ]


async def test_an_unknown_character_set_is_refused(trust: Harness, port: int) -> None:
    async with Client(port) as client:
        ack = await client.send(siu().replace("|2.5.1|", "|2.5.1||||||KLINGON|", 1))
    assert ack.code == "AR" and ack.errors[0].startswith("MSH^1^18^1:")


async def test_an_msh7_from_the_future_is_refused_so_it_never_freezes_the_record(trust: Harness, port: int) -> None:
    """A year typed wrong (3026): applied, it made every later message about the appointment "older", answered AA
    and never applied (the hospital's cancellation included)."""
    async with Client(port) as client:
        typo = await client.send(siu(sent="30261121095500"))
        assert (typo.code, typo.errors) == (
            "AR",
            ["MSH^1^7^1: is more than a day after the message came: check the sending system's clock"],
        )
        assert (await client.send(siu(control_id="M2", sent="20261122095500"))).code == "AA"  # within the day
        cancel = await client.send(siu("S15", control_id="M3", sent="20261122095600"))
    assert (cancel.code, cancel.text) == ("AA", "updated")
    assert await rows(trust, "SELECT status FROM appointments") == [{"status": "cancelled"}]


async def test_a_formatting_escape_with_a_huge_count_is_answered(trust: Harness, port: int) -> None:
    # \.sp<5,000 digits>\ in MSH-10: int() refused it, a ValueError out of parse, and the connection dropped.
    async with Client(port) as client:
        ack = await client.send(siu(control_id="\\.sp" + "9" * 5000 + "\\"))
        assert (ack.code, ack.errors) == ("AR", ["MSH^1^10^1: the message control id is required"])
        assert (await client.send(siu(control_id="AFTER"))).code == "AA"


@pytest.mark.parametrize("sent", ["99991231235959-1400", "00010101000000+1400"])
async def test_an_msh7_beyond_the_calendar_is_refused_and_the_connection_carries_on(
    trust: Harness, port: int, sent: str
) -> None:
    # Its offset takes it past year 9999 (or before year 1): an AR naming MSH-7, not a dropped connection.
    async with Client(port) as client:
        ack = await client.send(siu(sent=sent))
        assert (ack.code, ack.errors) == ("AR", ["MSH^1^7^1: is not a real date and time"])
        late = await client.send(siu(control_id="M2", start="99991231235959-1400"))
        assert (late.code, late.errors) == ("AE", ["SCH^1^11^1^4: is not a real date and time"])
        assert (await client.send(siu(control_id="AFTER"))).code == "AA"


async def test_an_oversized_message_is_refused_and_the_listener_carries_on(make_hub: MakeHub) -> None:
    trust = await make_hub(**SETTINGS, **{"hl7.max_message_bytes": 4000})
    await trust.create_organisation(code="RAL")
    await trust.create_site(code="RFH")
    server = await start_listener(await make_receiver(trust.db, trust.settings, trust.clock), host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Client(port) as client:
            ack = await client.send(mdm(content=PDF + b"x" * 6000))
        assert ack.code == "AR" and "4000 bytes or fewer" in ack.errors[0]
        async with Client(port) as client:
            assert (await client.send(siu())).code == "AA"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_field_of_many_repetitions_is_read_in_linear_time(trust: Harness, port: int) -> None:
    """Mapping reads PID-3's repetitions one by one: splitting the field again for each took a 20 KB message some
    twenty seconds of the one event loop every connection shares (and a 16 MB one, days)."""
    patient = pid("~" * 20_000 + "RF1234567")  # 20,000 empty repetitions of PID-3 before the MRN
    async with Client(port) as client:
        started = time.perf_counter()
        ack = await client.send(siu(patient=patient))
        took = time.perf_counter() - started
    assert ack.code == "AA"
    assert took < 3
    assert await rows(trust, "SELECT mrn FROM patients") == [{"mrn": "RF1234567"}]


async def test_bad_frames_and_dropped_connections_never_crash_it(trust: Harness, port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"junk before the frame\x1c\r")  # no <VT>: rejected, the connection stays
    await writer.drain()
    assert b"MSA|AR" in await reader.readuntil(b"\x1c\r")
    writer.write(b"\x0b" + siu().encode()[:200])  # then the peer goes away mid-message
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    async with Client(port) as client:
        assert (await client.send(siu(control_id="AFTER"))).code == "AA"
    assert [r["ref"] for r in await rows(trust, "SELECT ref FROM appointments")] == ["APT-1001"]


async def test_a_silent_peer_never_blocks_another(trust: Harness, port: int) -> None:
    silent_reader, silent = await asyncio.open_connection("127.0.0.1", port)
    silent.write(b"\x0bMSH|^~\\&|")  # starts a message and stops
    await silent.drain()

    async def patient(n: int) -> str:
        async with Client(port) as client:
            message = siu(control_id=f"C{n}", ref=f"APT-{n}", patient=pid(f"RF{n:07d}", nhs="9434765919"))
            return (await client.send(message)).code

    codes = await asyncio.wait_for(asyncio.gather(*(patient(n) for n in range(1, 11))), 30)
    assert codes == ["AA"] * 10
    assert len(await rows(trust, "SELECT id FROM appointments")) == 10
    silent.close()
    await silent.wait_closed()


async def test_messages_committed_together_still_stand_or_fall_alone(trust: Harness, port: int) -> None:
    """Messages from many connections share a commit, each in a savepoint: a rejected one takes nothing with it."""

    async def send(n: int) -> tuple[int, str]:
        born = "19480314" if n % 2 else "19481399"  # every even one is refused
        message = siu(control_id=f"C{n}", ref=f"APT-{n}", patient=pid(f"RF{n:07d}", born=born))
        async with Client(port) as client:
            return n, (await client.send(message)).code

    results = await asyncio.gather(*(send(n) for n in range(1, 21)))
    assert {n: code for n, code in results} == {n: "AA" if n % 2 else "AE" for n in range(1, 21)}
    refs = {r["ref"] for r in await rows(trust, "SELECT ref FROM appointments")}
    mrns = {r["mrn"] for r in await rows(trust, "SELECT mrn FROM patients")}
    assert refs == {f"APT-{n}" for n in range(1, 21, 2)} and mrns == {f"RF{n:07d}" for n in range(1, 21, 2)}
    answers = await rows(trust, "SELECT control_id, ack_code FROM hl7_messages ORDER BY control_id")
    assert len(answers) == 20


async def test_pipelined_frames_from_one_peer_commit_together_and_are_answered_in_order(
    trust: Harness, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that sends frames without waiting for each ACK: they are applied in the order sent, each whole or not
    at all, share commits, and are answered in order, each only once committed."""
    messages = [siu(control_id="P0", sent="20261121090000")]
    messages += [
        siu(control_id=f"P{n}", ref=f"APT-{n}", patient=pid(f"RF{n:07d}"), sent="20261121090000") for n in range(1, 21)
    ]
    messages.append(siu("S13", control_id="MOVE", start="202612151400", sent="20261121100000"))
    messages.append(siu(control_id="BAD", ref="APT-BAD", patient=pid("RF9999999", born="19481399")))
    header = siu("S15", control_id="CANCEL", sent="20261121100200").split("\r")[0]
    messages.append("\r".join([header, "SCH|APT-1001^RFH|APT-1001^RFH", pid()]) + "\r")
    messages.append(siu(control_id="P0", start="202612180900"))  # a repeat: the first answer, nothing changed
    caplog.set_level("DEBUG", logger="hub.jobs.hl7_receive")
    async with Client(port) as client:
        for text in messages:
            client.writer.writeblock(text.encode())
        await client.writer.drain()
        acks = [read_ack(await asyncio.wait_for(client.reader.readblock(), 30)) for _ in messages]
    assert [a.control_id for a in acks] == ["P0", *(f"P{n}" for n in range(1, 21)), "MOVE", "BAD", "CANCEL", "P0"]
    assert [a.code for a in acks] == ["AA"] * 22 + ["AE", "AA", "AA"]
    assert acks[-1].raw == acks[0].raw
    [first] = await rows(trust, "SELECT status, starts_at FROM appointments WHERE ref = 'APT-1001'")
    assert first == {"status": "cancelled", "starts_at": "2026-12-15T14:00:00.000000Z"}
    assert len(await rows(trust, "SELECT id FROM appointments")) == 21
    assert not await rows(trust, "SELECT id FROM patients WHERE mrn = 'RF9999999'")
    batches = [int(r.getMessage().split()[3]) for r in caplog.records if r.msg == "HL7 batch of %d committed"]
    assert sum(batches) == len(messages) and max(batches) > 1  # fewer commits than messages


async def test_a_nul_in_an_id_or_reference_is_refused_alone_not_with_its_batch(trust: Harness, port: int) -> None:
    """PostgreSQL stores no NUL, and the control id and references are read before a message's savepoint (for the
    batch's locks and the repeat check): refused by the parser, the messages committed beside them still stand."""
    messages = [
        siu(control_id="GOOD1", ref="APT-1", patient=pid("RF0000001")),
        siu(control_id="C\x00ID"),
        siu(control_id="NUL2", ref="APT\\X00\\2"),  # an HL7 hex escape for NUL
        siu(control_id="NUL3", patient=pid("RF\x000003")),
        merge("RF0000001", "RF\x00", control_id="NUL4"),
        mdm(control_id="NUL5", appointment="APT\x00"),
        siu(control_id="GOOD2", ref="APT-2", patient=pid("RF0000002")),
    ]
    async with Client(port) as client:
        for text in messages:  # pipelined: read ahead, so they share one commit
            client.writer.writeblock(text.encode())
        await client.writer.drain()
        acks = [read_ack(await asyncio.wait_for(client.reader.readblock(), 30)) for _ in messages]
    assert [(a.code, a.errors) for a in acks] == [
        ("AA", []),
        ("AR", ["MSH^1^10^1: must not contain control characters"]),
        ("AE", ["SCH^1^2^1: must not contain control characters"]),
        ("AE", ["PID^1^3^1: must not contain control characters"]),
        ("AE", ["MRG^1^1^1: must not contain control characters"]),
        ("AE", ["PV1^1^19^1: must not contain control characters"]),
        ("AA", []),
    ]
    assert {r["ref"] for r in await rows(trust, "SELECT ref FROM appointments")} == {"APT-1", "APT-2"}


async def test_a_nul_in_a_header_field_the_ack_echoes_fails_no_batch(trust: Harness, port: int) -> None:
    """MSH-3, 5, 6, 11 and 12 go back in the ACK, which is stored beside the batch's records (PostgreSQL stores no
    NUL): the ACK leaves control characters out, and the messages committed beside it stand."""
    careless = siu(control_id="NUL1", ref="APT-9").replace("|MEDWAY|", "|MED\x00WAY|", 1)
    careless = careless.replace("|HUB|HUB|", "|HUB\x01|HUB|", 1).replace("|P|2.5.1|", "|P\x00|2.5\x00.1|", 1)
    messages = [siu(control_id="GOOD1", ref="APT-1"), careless, siu(control_id="GOOD2", ref="APT-2")]
    async with Client(port) as client:
        for text in messages:
            client.writer.writeblock(text.encode())
        await client.writer.drain()
        acks = [read_ack(await asyncio.wait_for(client.reader.readblock(), 30)) for _ in messages]
    assert [a.code for a in acks] == ["AA", "AA", "AA"]
    assert "\x00" not in acks[1].raw and "\x01" not in acks[1].raw and "|MEDWAY|" in acks[1].raw
    assert len(await rows(trust, "SELECT id FROM appointments")) == 3


async def test_start_up_checks_the_tables(make_hub: MakeHub) -> None:
    hub = await make_hub(**SETTINGS)
    with pytest.raises(SettingsError, match="organisations the hub does not have: RAL"):
        await make_receiver(hub.db, hub.settings, hub.clock)
    hub = await make_hub(**{**SETTINGS, "hl7.appointment_types": ["RAL:TEL=by pigeon"]})
    with pytest.raises(SettingsError, match="hl7.appointment_types: 'by pigeon' must be one of"):
        await make_receiver(hub.db, hub.settings, hub.clock)


def _hub_command(database: Path, *args: str, port: int = 0) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HUB_DATABASE_URL": f"sqlite:///{database}",
        "HUB_SECRET_KEY": SECRET,
        "HUB_HL7__FACILITIES": "RFH_PAS=RAL",
        "HUB_HL7__PORT": str(port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hub", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(database: Path, *args: str) -> tuple[int, str]:
    with _hub_command(database, *args) as process:
        _, err = process.communicate(timeout=120)
    return process.returncode, err


async def test_python_m_hub_hl7_listens_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    database = tmp_path / "hub.sqlite3"
    assert _run(database, "migrate")[0] == 0
    code, err = _run(database, "hl7")
    assert (code, err.strip().splitlines()[-1]) == (
        2,
        "Settings error: hl7.facilities names organisations the hub does not have: RAL",
    )
    assert _run(database, "create-organisation", "--code", "RAL", "--name", "Test Trust")[0] == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with _hub_command(database, "hl7", port=free) as process:
        try:
            for _ in range(200):
                with contextlib.suppress(OSError):
                    async with Client(free) as client:
                        ack = await client.send(adt("A28"))
                    break
                await asyncio.sleep(0.1)
            assert ack.code == "AA"
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
    assert process.returncode == 0


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "hl7.crt", folder / "hl7.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def test_mllp_over_tls(make_hub: MakeHub, tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    trust = await make_hub(**SETTINGS, **{"hl7.tls_cert_file": str(cert_file), "hl7.tls_key_file": str(key_file)})
    await trust.create_organisation(code="RAL")
    await trust.create_site(code="RFH")
    server = await start_listener(await make_receiver(trust.db, trust.settings, trust.clock), host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    try:
        context = ssl.create_default_context(cafile=str(cert_file))
        reader, writer = await open_hl7_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
        writer.writeblock(siu().encode())
        await writer.drain()
        assert read_ack(await reader.readblock()).code == "AA"
        writer.close()
        await writer.wait_closed()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):  # plain TCP to a TLS listener
            async with Client(port) as client:
                await asyncio.wait_for(client.send(siu(control_id="PLAIN")), 30)
    finally:
        server.close()
        await server.wait_closed()
