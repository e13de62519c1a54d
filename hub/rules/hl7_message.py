"""HL7 v2 messages as real feeds send them: the bytes of an MLLP block decoded by MSH-18, segments split on `\\r`,
`\\n` or `\\r\\n`, split and unescaped as the `hl7` package would (`\\F\\ \\S\\ \\T\\ \\R\\ \\E\\` and `\\X..\\`) but
only as far as each field is read, read field by field with nothing missing ever an error, and answered with an
original-mode ACK.

Pure functions: no database, no clock of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.rules.text import text_problem

LONDON = ZoneInfo("Europe/London")
# MSH-18 character sets (HL7 table 0211) and the codec of each; an empty MSH-18 means UTF-8 (ASCII's superset).
CHARSETS = {
    "": "utf-8",
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/1": "iso-8859-1",
    "8859/15": "iso-8859-15",
    "ISO-8859-1": "iso-8859-1",
    "WINDOWS-1252": "cp1252",
}
SENT_AHEAD = timedelta(days=1)  # how far MSH-7 may be ahead of the time a message came (a sender's clock, a zone)
_SEGMENT_ENDS = re.compile(r"\r\n|\n|\r")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_TIMESTAMP = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?")


class Hl7Error(Exception):
    """A message that cannot be read: `field` names where (MSH-9, PID-7.1), `message` says what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Header:
    """What MSH says about a message: enough to route it and to answer it."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    sent_at: datetime | None
    message_type: str  # SIU
    trigger: str  # S12
    control_id: str
    processing_id: str
    version: str
    charset: str

    @property
    def kind(self) -> str:
        return f"{self.message_type}^{self.trigger}"


class Message:
    """A parsed message: `get("PID", 5, component=2)` is the given name, "" when any part of the way is missing.

    Segments are split into fields once; a field is split into repetitions, components and subcomponents only when
    read, and unescaped only when it holds the escape character (most fields are read once or not at all)."""

    def __init__(self, segments: list[str], separators: Separators, header: Header) -> None:
        self.header = header
        self._separators = separators
        self._segments: dict[str, list[list[str]]] = {}
        # A field's repetitions, split once: mapping reads a field's repetitions one by one, and splitting the whole
        # field again for each would take a time growing with the square of their number (a sender's `~~~~...`).
        self._repetitions: dict[tuple[str, int, int], list[str]] = {}
        for segment in segments:
            fields = separators.fields(segment)
            self._segments.setdefault(fields[0], []).append(fields)

    def has(self, segment: str) -> bool:
        return segment in self._segments

    def count(self, segment: str) -> int:
        return len(self._segments.get(segment, ()))

    def get(self, segment: str, field: int, *, component: int = 1, repetition: int = 1, index: int = 1) -> str:
        """One component of one field (repetition and segment occurrence counted from 1), unescaped."""
        found = self._segments.get(segment, ())
        if len(found) < index:
            return ""
        fields = found[index - 1]
        field, repetition, component = field or 1, repetition or 1, component or 1  # 0 reads as 1, as in `hl7`
        if field >= len(fields):
            return ""
        value, seps = fields[field], self._separators
        if field in (1, 2) and fields[0] in _HEADERS:  # the separators themselves, as sent
            return value.strip() if repetition == 1 and component == 1 else ""
        repetitions = self._repetitions.get((segment, index, field))
        if repetitions is None:
            repetitions = self._repetitions[segment, index, field] = value.split(seps.repetition)
        if repetition > len(repetitions):
            return ""
        components = repetitions[repetition - 1].split(seps.component)
        if component > len(components):
            return ""
        return seps.unescape(components[component - 1].split(seps.subcomponent, 1)[0]).strip()

    def repetitions(self, segment: str, field: int, *, index: int = 1) -> int:
        if self.count(segment) < index:
            return 0
        fields = self._segments[segment][index - 1]
        if field >= len(fields) or not fields[field]:
            return 0
        if field in (1, 2) and fields[0] in _HEADERS:
            return 1
        return fields[field].count(self._separators.repetition) + 1


_HEADERS = ("MSH", "BHS", "FHS")  # segments whose first fields are the separators (MSH-1, MSH-2)


@dataclass(frozen=True)
class Separators:
    """MSH-1 and MSH-2, read as the `hl7` package reads them (its defaults for any MSH-2 leaves out)."""

    field: str
    component: str
    repetition: str
    escape: str
    subcomponent: str

    @classmethod
    def of(cls, msh: str) -> Separators:
        field = msh[3]
        encoding = msh[4 : msh.find(field, 4)]
        chars = [encoding[n] if len(encoding) > n else default for n, default in enumerate("^~\\&")]
        separators = cls(field, *chars)
        if len({field, separators.component, separators.repetition, separators.subcomponent}) < 4:
            raise Hl7Error("MSH-2", "the encoding characters could not be read")
        return separators

    def fields(self, segment: str) -> list[str]:
        """A segment's fields, [0] its name; MSH's [1] is the field separator and [2] the encoding characters, so
        that MSH-n is [n] as for every other segment."""
        if segment[:3] not in _HEADERS:
            return segment.split(self.field)
        end = segment.find(self.field, 4)
        rest = segment[end + 1 :]  # as the `hl7` package has it: no second separator leaves the whole segment
        head = [segment[:3], self.field, segment[4:end]]
        return head + rest.split(self.field) if rest else head

    def unescape(self, text: str) -> str:
        """HL7's escapes undone: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\, \\Xhh..\\, the formatting ones (\\.br\\ as a line end);
        one not known, or a character set switch, is dropped (as the `hl7` package does, without logging the text)."""
        if self.escape not in text:
            return text
        known = {
            "H": "_",
            "N": "_",
            "F": self.field,
            "R": self.repetition,
            "S": self.component,
            "T": self.subcomponent,
            "E": self.escape,
            **_FORMATTING,
        }
        out: list[str] = []
        parts = text.split(self.escape)
        # Even parts are text, odd parts escape sequences; an unclosed one at the end (an even count) is dropped.
        closed = len(parts) if len(parts) % 2 else len(parts) - 1
        for n, part in enumerate(parts[:closed]):
            if n % 2 == 0:
                out.append(part)
            elif part in known:
                out.append(known[part])
            elif part.startswith(".") and part[:3] in _FORMATTING and part[3:].isascii() and part[3:].isdigit():
                # At most _MOST_REPEATS: \.in999999999\ would be 4 GB, and int() refuses over 4,300 digits.
                count = int(part[3:]) if len(part) <= 6 else _MOST_REPEATS
                out.append(_FORMATTING[part[:3]] * min(count, _MOST_REPEATS))
            elif part.startswith("X"):
                out.append(_hex(part[1:]))
        return "".join(out)


_MOST_REPEATS = 100  # of one formatting escape (\.sp3\: three line ends), far more than any letter's layout needs
_FORMATTING = {".br": "\r", ".sp": "\r", ".fi": "", ".nf": "", ".in": "    ", ".ti": "    ", ".sk": " ", ".ce": "\r"}


def _hex(digits: str) -> str:
    out = []
    for at in range(0, len(digits), 2):
        try:
            out.append(chr(int(digits[at : at + 2], 16)))
        except ValueError:
            break
    return "".join(out)


def charset_of(block: bytes) -> str:
    """MSH-18 read straight off the bytes (every character set HL7 allows keeps MSH's ASCII as ASCII)."""
    first = _SEGMENT_ENDS.split(block.decode("latin-1"), maxsplit=1)[0]
    if not first.startswith("MSH") or len(first) < 4:
        return ""
    fields = first.split(first[3])
    # MSH-1 is the separator itself, so MSH-n is fields[n - 1].
    return fields[17].split(first[4] if len(first) > 4 else "^")[0].strip().upper() if len(fields) > 17 else ""


def decode(block: bytes) -> tuple[str, str]:
    """The message's text and its character set's name, or Hl7Error naming MSH-18."""
    charset = charset_of(block)
    codec = CHARSETS.get(charset)
    if codec is None:
        raise Hl7Error("MSH-18", f"character set {charset[:20]!r} is not supported: use UNICODE UTF-8 or 8859/1")
    try:
        return block.decode(codec), charset
    except UnicodeDecodeError as exc:
        raise Hl7Error("MSH-18", f"the message is not valid {charset or 'UTF-8'} (byte {exc.start})") from exc


def parse(block: bytes, *, received_at: datetime | None = None) -> Message:
    """A message from an MLLP block's bytes, or Hl7Error: MSH must be there and say who sent what. `received_at`
    tells which of the two readings a London MSH-7 in the hour the clocks go back is."""
    text, charset = decode(block)
    segments = [s for s in _SEGMENT_ENDS.split(text.lstrip("\ufeff")) if s.strip()]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 8:
        raise Hl7Error("MSH", "the message must start with an MSH segment")
    separator = segments[0][3]
    if separator.isalnum() or separator.isspace():
        raise Hl7Error("MSH-1", "is not a field separator")
    for n, segment in enumerate(segments[1:], start=2):
        if not _SEGMENT_ID.fullmatch(segment.split(separator, 1)[0]):
            raise Hl7Error(f"segment {n}", "does not start with a segment name such as PID")
    segments[-1] = segments[-1].rstrip()  # as the `hl7` package strips the message's end
    separators = Separators.of(segments[0])
    shell = Message(segments, separators, _EMPTY_HEADER)
    control_id = shell.get("MSH", 10)
    message_type, trigger = shell.get("MSH", 9), shell.get("MSH", 9, component=2)
    if not control_id:
        raise Hl7Error("MSH-10", "the message control id is required")
    if len(control_id) > 199:
        raise Hl7Error("MSH-10", "the message control id must be 199 characters or fewer")
    if problem := text_problem(control_id):  # it is looked up before the message's savepoint (PostgreSQL: no NUL)
        raise Hl7Error("MSH-10", problem)
    if not message_type:
        raise Hl7Error("MSH-9", "the message type is required")
    sent = shell.get("MSH", 7)
    sent_at = timestamp(sent, "MSH-7", day_will_do=True, near=received_at) if sent else None
    if sent_at is not None and received_at is not None and sent_at > received_at + SENT_AHEAD:
        # MSH-7 orders a record's messages: one from the future would leave every later one "older", unapplied.
        raise Hl7Error("MSH-7", "is more than a day after the message came: check the sending system's clock")
    header = Header(
        sending_application=shell.get("MSH", 3),
        sending_facility=shell.get("MSH", 4),
        receiving_application=shell.get("MSH", 5),
        receiving_facility=shell.get("MSH", 6),
        sent_at=sent_at,
        message_type=message_type.upper(),
        trigger=trigger.upper(),
        control_id=control_id,
        processing_id=shell.get("MSH", 11),
        version=shell.get("MSH", 12),
        charset=charset,
    )
    return Message(segments, separators, header)


_EMPTY_HEADER = Header("", "", "", "", None, "", "", "", "", "", "")


def timestamp(value: str, field: str, *, day_will_do: bool = False, near: datetime | None = None) -> datetime:
    """An HL7 DTM (YYYYMMDDHHMM[SS[.SSSS]][+ZZZZ]) as UTC; without an offset it is the time in London. A date alone
    is a time only `day_will_do` (MSH-7, which only orders messages).

    Without an offset, 1am to 2am the night the clocks go back happens twice, and the same hour the night they go
    forward not at all. An appointment's time there is an error (which hour the patient should come is not ours to
    guess); MSH-7's is the reading nearest `near` (when the message came: a message is sent as it happens), so a
    cancellation sent at 01:10 GMT is not taken for one sent before a booking at 01:50 BST."""
    found = _TIMESTAMP.fullmatch(value.strip())
    if found is None or found.group(3 if day_will_do else 4) is None:
        raise Hl7Error(field, "must be a date and time like 20261214093000 or 20261214093000+0000")
    year, month, day, hour, minute, second = (int(g or 0) for g in found.groups()[:6])
    try:
        local = datetime(year, month or 1, day or 1, hour, minute, second)
    except ValueError as exc:
        raise Hl7Error(field, "is not a real date and time") from exc
    offset = found.group(7)
    if offset is None:
        return _in_london(local, field, near=near if day_will_do else None, guess=day_will_do)
    sign = -1 if offset[0] == "-" else 1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    if delta > timedelta(hours=14):
        raise Hl7Error(field, "has an offset beyond 14 hours")
    try:
        return (local - sign * delta).replace(tzinfo=UTC)
    except OverflowError:  # the offset takes it past year 9999 or before year 1
        raise Hl7Error(field, "is not a real date and time") from None


def _in_london(local: datetime, field: str, *, near: datetime | None, guess: bool) -> datetime:
    """A London wall-clock time as UTC; one the clock change makes ambiguous or skips is the reading nearest `near`,
    the first without it, when `guess`, or else an Hl7Error."""
    first, second = (local.replace(tzinfo=LONDON, fold=fold).astimezone(UTC) for fold in (0, 1))
    if first == second:
        return first
    if guess:
        return first if near is None else min((first, second), key=lambda reading: abs(reading - near))
    when = f"{local:%H:%M} on {local:%Y-%m-%d}"
    if first.astimezone(LONDON).replace(tzinfo=None) == local:
        raise Hl7Error(field, f"{when} happens twice in London (the clocks go back): send it with its offset")
    raise Hl7Error(field, f"{when} does not exist in London (the clocks go forward): send it with its offset")


def birth_date(value: str, field: str) -> str:
    """An HL7 date of birth (YYYYMMDD, sometimes with a time) as YYYY-MM-DD."""
    digits = value.strip()[:8]
    try:
        if len(digits) != 8 or not digits.isdigit():
            raise ValueError
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()
    except ValueError:
        raise Hl7Error(field, "must be a real date like 19480314") from None


def escape(text: str) -> str:
    """Text for a field of our ACK: HL7's delimiters escaped, line ends as spaces, other control characters left out
    (a sender's MSH-3 goes back in the ACK, which is stored: PostgreSQL stores no NUL)."""
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
    return _CONTROLS.sub("", " ".join(text.replace("~", "\\R\\").split()))


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Problem:
    """One ERR segment: where (PID-7, or PID-5.2) and what."""

    field: str
    message: str
    code: str = "207"  # HL7 table 0357: 207 application internal error; 101 required; 102 data type; 103 table


def ack(
    header: Header | None,
    code: str,
    *,
    control_id: str,
    now: datetime,
    text: str = "",
    problems: tuple[Problem, ...] = (),
) -> str:
    """An original-mode ACK: MSA-1 AA, AE or AR, MSA-2 the message's control id, an ERR segment per problem."""
    header = header or _EMPTY_HEADER
    msh = [
        "MSH",
        "^~\\&",
        escape(header.receiving_application or "HUB"),
        escape(header.receiving_facility or "HUB"),
        escape(header.sending_application),
        escape(header.sending_facility),
        now.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000"),
        "",
        f"ACK^{escape(header.trigger)}^ACK" if header.trigger else "ACK",
        control_id,
        escape(header.processing_id or "P"),
        escape(header.version or "2.5.1"),
    ]
    if header.charset:
        msh += ["", "", "", "", "", escape(header.charset)]
    segments = ["|".join(msh), "|".join(["MSA", code, escape(header.control_id), escape(text[:80])])]
    severity = "E" if code != "AA" else "W"
    for problem in problems:
        segment, _, rest = problem.field.partition("-")
        place, _, component = rest.partition(".")
        location = "^".join([segment, "1", place, "1", component]).rstrip("^") if place.isdigit() else escape(segment)
        segments.append("|".join(["ERR", "", location, problem.code, severity, "", "", "", escape(problem.message)]))
    return "\r".join(segments) + "\r"
