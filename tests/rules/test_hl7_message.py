"""Reading HL7 v2 as feeds send it, and the ACKs we answer with: pure, no sockets, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.rules.hl7_message import Hl7Error, Problem, ack, birth_date, escape, parse, timestamp
from tests.hl7_samples import adt, siu

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_segments_end_with_any_line_end(sep: str) -> None:
    message = parse(siu(sep=sep).encode())
    assert message.header.kind == "SIU^S12"
    assert message.get("AIP", 3, component=2) == "Patel"
    assert message.has("ZPV") and message.get("ZPV", 2) == "local extension"


def test_missing_segments_fields_and_components_read_as_empty() -> None:
    message = parse(adt().encode())
    assert message.get("SCH", 2) == "" and message.get("PID", 40) == "" and message.get("PID", 5, component=9) == ""
    assert message.repetitions("PID", 3) == 2 and message.repetitions("PID", 39) == 0


def test_escapes_and_repetitions() -> None:
    message = parse(adt(family="O\\X27\\Brien\\F\\Smith\\S\\Jr\\E\\", phones="1~2~3").encode())
    assert message.get("PID", 5) == "O'Brien|Smith^Jr\\"
    assert [message.get("PID", 13, repetition=n) for n in (1, 2, 3)] == ["1", "2", "3"]


def test_a_bad_escape_is_dropped_and_the_text_around_it_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    message = parse(adt(family="Pemberton\\Q7\\Smythe\\XZZ\\\\C2842\\x").encode())
    assert message.get("PID", 5) == "PembertonSmythex"
    assert "Pemberton" not in caplog.text and "Smythe" not in caplog.text


def test_a_formatting_escapes_count_is_capped() -> None:
    # Uncapped, \.in999999999\ built a 4 GB string from one field.
    block = b"MSH|^~\\&|A|B|C|D|20261121||SIU^S12|1|P|2.5.1\rPID|1||x||Jo\\.in999999999\\nes"
    assert parse(block).get("PID", 5) == "Jo" + " " * 400 + "nes"


def test_formatting_escapes_and_other_separators() -> None:
    text = siu().replace("MSH|^~\\&|", "MSH|!*#@|").replace("^", "!").replace("~", "*")
    text = text.replace("Please bring", "Please#.br#bring#.sp2##T#")
    message = parse(text.encode())
    assert message.get("AIP", 3, component=2) == "Patel" and message.get("MSH", 2) == "!*#@"
    assert message.get("NTE", 3) == "Please\rbring\r\r@ a list of your medicines"


def test_the_header() -> None:
    header = parse(siu(control_id="X-1").encode()).header
    assert (header.sending_facility, header.control_id, header.trigger, header.version) == (
        "RFH_PAS",
        "X-1",
        "S12",
        "2.5.1",
    )
    assert header.sent_at == datetime(2026, 11, 21, 9, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    ("block", "field"),
    [
        (b"", "MSH"),
        (b"PID|1||x", "MSH"),
        (b"MSH|^~\\&|A|B|C|D|20261121||SIU^S12|||P|2.5.1", "MSH-10"),
        (b"MSH|^~\\&|A|B|C|D|20261121|||1|P|2.5.1", "MSH-9"),
        (b"MSH|^~\\&|A|B|C|D|20261121||SIU^S12|1|P|2.5.1\rnot a segment", "segment 2"),
        (b"MSH|^~\\&|A|B|C|D|2026||SIU^S12|1|P|2.5.1", "MSH-7"),
        (b"MSH|^~\\&|A|B|C|D|20261121||SIU^S12|1|P|2.5.1||||||EBCDIC", "MSH-18"),
        (b"MSH|^^\\&|A|B|C|D|20261121||SIU^S12|1|P|2.5.1\rPID|1", "MSH-2"),
        (b"MSH|^~\\&|A|B|C|D|20261121||SIU^S12|1|P|2.5.1||||||UNICODE UTF-8\rPID|\xff", "MSH-18"),
    ],
)
def test_unreadable_messages_name_the_field(block: bytes, field: str) -> None:
    with pytest.raises(Hl7Error) as raised:
        parse(block)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("202612140930", datetime(2026, 12, 14, 9, 30, tzinfo=UTC)),  # GMT
        ("20260714093000", datetime(2026, 7, 14, 8, 30, tzinfo=UTC)),  # BST: local time in London
        ("20260714093000.1234+0000", datetime(2026, 7, 14, 9, 30, tzinfo=UTC)),
        ("20261214093000-0500", datetime(2026, 12, 14, 14, 30, tzinfo=UTC)),
    ],
)
def test_timestamps(text: str, utc: datetime) -> None:
    assert timestamp(text, "SCH-11.4") == utc


@pytest.mark.parametrize(
    ("text", "near", "utc"),
    [
        # The hour the clocks go back: whichever reading is nearer the time the message came.
        ("20261025013000", datetime(2026, 10, 25, 0, 31, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("20261025013000", datetime(2026, 10, 25, 1, 31, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
        ("20261025013000", None, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # BST, the first, with nothing to go by
        # The hour that never happens (a sender's clock a little out): either reading, the nearer.
        ("20270328013000", datetime(2027, 3, 28, 1, 20, tzinfo=UTC), datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),
    ],
)
def test_a_message_sent_in_the_hour_the_clocks_change_is_read_near_when_it_came(
    text: str, near: datetime | None, utc: datetime
) -> None:
    assert timestamp(text, "MSH-7", day_will_do=True, near=near) == utc


@pytest.mark.parametrize(("text", "why"), [("20261025013000", "happens twice"), ("20270328013000", "does not exist")])
def test_an_appointment_time_the_clocks_repeat_or_skip_needs_an_offset(text: str, why: str) -> None:
    with pytest.raises(Hl7Error, match=why):
        timestamp(text, "SCH-11.4", near=datetime(2026, 10, 25, 0, 31, tzinfo=UTC))
    assert timestamp(f"{text}+0100", "SCH-11.4").hour == 0


@pytest.mark.parametrize(
    "text", ["2026", "20261314093000", "tomorrow", "20261214093000+2500", "99991231235959-1400", "000101010000+1400"]
)
def test_bad_timestamps(text: str) -> None:
    with pytest.raises(Hl7Error, match="SCH-11.4"):
        timestamp(text, "SCH-11.4")


def test_birth_dates() -> None:
    assert birth_date("19480314", "PID-7") == "1948-03-14"
    assert birth_date("194803140000", "PID-7") == "1948-03-14"
    with pytest.raises(Hl7Error):
        birth_date("19480230", "PID-7")


def test_ack_answers_in_original_mode_with_an_err_per_problem() -> None:
    header = parse(siu(control_id="C9").encode()).header
    text = ack(
        header, "AE", control_id="HUB1", now=NOW, text="nothing|applied", problems=(Problem("PID-7", "bad & late"),)
    )
    msh, msa, err = text.rstrip("\r").split("\r")
    assert msh == "MSH|^~\\&|HUB|HUB|MEDWAY|RFH_PAS|20261121100000+0000||ACK^S12^ACK|HUB1|P|2.5.1"
    assert msa == "MSA|AE|C9|nothing\\F\\applied"
    assert err == "ERR||PID^1^7^1|207|E||||bad \\T\\ late"


def test_escape_leaves_no_delimiter_or_line_end() -> None:
    assert escape("a|b^c&d~e\\f\rg") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f g"
