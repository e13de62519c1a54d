"""HL7 v2.4/2.5.1 messages in the style of published examples, with a PAS's usual quirks (trailing separators,
empty optional segments, a Z-segment, `\\n` line ends in places), and an MLLP client on the `hl7` package's streams.

Every name, number and address here is made up; NHS numbers are from the 943 476 test range."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from hl7.mllp import open_hl7_connection

FACILITY = "RFH_PAS"
SETTINGS = {
    "hl7.facilities": [f"{FACILITY}=RAL"],
    "hl7.mrn_types": ["RAL:MR", "RAL:PAS"],
    "hl7.nhs_number_types": ["RAL:NH", "RAL:NHS"],
    "hl7.locations": ["RAL:RFH-OPD=RFH"],
    "hl7.services": ["RAL:CARD=Cardiology outpatients|Cardiology"],
    "hl7.appointment_types": ["RAL:TEL=telephone", "RAL:VID=video", "RAL:F2F=in_person"],
    "hl7.document_types": ["RAL:CL=clinic_letter", "RAL:AL=appointment_letter"],
}
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def msh(
    kind: str, control_id: str, *, sent: str = "20261121095500", facility: str = FACILITY, charset: str = ""
) -> str:
    # MSH-9 as 2.5.1 sends it (SIU^S12^SIU_S12); MSH-18 only when given; a trailing separator, as PASes leave.
    tail = f"|||||{charset}" if charset else ""
    return f"MSH|^~\\&|MEDWAY|{facility}|HUB|HUB|{sent}||{kind}|{control_id}|P|2.5.1|{tail}"


def pid(
    mrn: str = "RF1234567",
    *,
    nhs: str = "9434765919",
    family: str = "Jones",
    given: str = "Margaret",
    born: str = "19480314",
    phones: str = "020 7946 0000^PRN^PH~07700 900001^ORN^CP~^NET^Internet^margaret.jones@example.com",
    address: str = "1 Pond Street^Flat 2^London^^NW3 2QG^GBR^H",
) -> str:
    return f"PID|1||{mrn}^^^RFH^MR~{nhs}^^^NHS^NH||{family}^{given}^^^Mrs||{born}|F|||{address}||{phones}||||||||"


def siu(
    trigger: str = "S12",
    *,
    control_id: str = "MSG00001",
    ref: str = "APT-1001",
    start: str = "202612140930",
    minutes: str = "30",
    kind: str = "F2F",
    location: str = "RFH-OPD",
    sent: str = "20261121095500",
    patient: str | None = None,
    sep: str = "\r",
) -> str:
    segments = [
        msh(f"SIU^{trigger}^SIU_S12", control_id, sent=sent),
        f"SCH|{ref}^RFH|{ref}^RFH|||||ROUTINE^Routine|{kind}^Appointment type|{minutes}|MIN|^^{minutes}^{start}|||||"
        "||||||||||Booked",
        "NTE|1||Please bring a list of your medicines",
        patient if patient is not None else pid(),
        "PV1|1|O|RFH-OPD^^^RFH||||||||||||||||",
        "RGS|1|A",
        f"AIS|1|A|CARD^Cardiology clinic|{start}|||{minutes}|MIN",
        f"AIL|1|A|{location}^^^RFH|||{start}",
        "AIP|1|A|C123456^Patel^Anita^^^Dr|CON^Consultant|",
        "ZPV|RFH|local extension",
    ]
    return sep.join(segments) + sep


def adt(trigger: str = "A08", *, control_id: str = "ADT00001", sent: str = "20261121095500", **fields: str) -> str:
    segments = [
        msh(f"ADT^{trigger}^ADT_A01", control_id, sent=sent),
        f"EVN|{trigger}|{sent}",
        pid(**fields),
        "PD1||||G1234567^Smith^John^^^Dr",
        "PV1|1|N",
    ]
    return "\r".join(segments) + "\r"


def merge(surviving: str, prior: str, *, control_id: str = "A40001", sent: str = "20261121100000") -> str:
    segments = [
        msh("ADT^A40^ADT_A39", control_id, sent=sent),
        f"EVN|A40|{sent}",
        f"PID|1||{surviving}^^^RFH^MR||Jones^Margaret||19480314|F",
        f"MRG|{prior}^^^RFH^MR",
    ]
    return "\r".join(segments) + "\r"


def mdm(
    trigger: str = "T02",
    *,
    control_id: str = "MDM00001",
    document: str = "DOC-77",
    appointment: str = "APT-1001",
    content: bytes = PDF,
    kind: str = "CL^Clinic letter",
    replaces: str = "",
) -> str:
    """`replaces`: a T10's parent document (TXA-13), which `document` replaces."""
    data = base64.b64encode(content).decode()
    segments = [
        msh(f"MDM^{trigger}^MDM_T02", control_id),
        "EVN|T02|20261121095500",
        pid(),
        f"PV1|1|O|RFH-OPD^^^RFH||||||||||||||||{appointment}",
        f"TXA|1|{kind}|AP|20261121095000||||||||{document}|{replaces}|||||AU",
        f"OBX|1|ED|PDF^Letter||^AP^PDF^Base64^{data}||||||F",
    ]
    return "\r".join(segments) + "\r"


@dataclass
class Ack:
    code: str
    control_id: str
    text: str
    errors: list[str]  # each ERR as "location: message"
    raw: str


def read_ack(raw: bytes) -> Ack:
    segments = {}
    errors = []
    for line in raw.decode().split("\r"):
        fields = line.split("|")
        if fields[0] == "ERR":
            errors.append(f"{fields[2]}: {fields[8]}")
        elif fields[0]:
            segments[fields[0]] = fields
    msa = segments["MSA"]
    return Ack(msa[1], msa[2], msa[3] if len(msa) > 3 else "", errors, raw.decode())


class Client:
    """One MLLP connection, through the hl7 package's own client streams."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def __aenter__(self) -> Client:
        self.reader, self.writer = await open_hl7_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def send(self, message: str | bytes) -> Ack:
        self.writer.writeblock(message.encode() if isinstance(message, str) else message)
        await self.writer.drain()
        return read_ack(await self.reader.readblock())
