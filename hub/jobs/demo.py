"""Demo data: one trust, two sites with maps, and patients covering the cases a newcomer should see."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

from hub.clock import LONDON, format_date, format_time, to_db
from hub.db import Database, Transaction
from hub.links import new_link_id, patient_link
from hub.pdf import make_letter_pdf
from hub.settings import Settings
from hub.vocabulary import Channel, ContactPreference, HospitalStatus, LetterKind, MessageKind, MessageStatus, Mode

SMS, EMAIL = ContactPreference.SMS, ContactPreference.EMAIL
PATIENTS = [
    # (mrn, given, family, date of birth, mobile, email, verification code, preference)
    ("RF100001", "Margaret", "Jones", "1948-03-14", "+447700900001", None, "MJ4K7Q", SMS),
    ("RF100002", "David", "Patel", "1975-09-02", None, "david.patel@example.com", "DP8W2N", EMAIL),
    ("RF100003", "Amir", "Ahmed", "2019-06-21", "+447700900003", "sarah.ahmed@example.com", "AA3H9T", SMS),
    ("RF100004", "Layla", "Ahmed", "2019-06-21", "+447700900003", "sarah.ahmed@example.com", "LA6R2V", SMS),
]

# Valid test NHS numbers (modulus 11 check digit), so the console's NHS number search can be tried on everyone.
# The adults' match the NHS login sandbox's test users; the twins' come from the 999 range kept for testing.
NHS_NUMBERS = {"RF100001": "9434765919", "RF100002": "9000000009", "RF100003": "9991000038", "RF100004": "9991000046"}
# Clinics run on weekdays, 08:30 to 17:00; appointments start on 5-minute boundaries.
CLINIC_OPENS, CLINIC_CLOSES = time(8, 30), time(17, 0)
_DURATION = timedelta(minutes=30)


def _at(today: date, days: int, hour: int, minute: int = 0) -> datetime:
    """That clinic time, `days` from today; a Saturday or Sunday moves to the Monday after."""
    day = today + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def _clinic_times(start: datetime, end: datetime) -> list[datetime]:
    """Every 5-minute clinic start between two instants whose 30 minutes end by closing time."""
    found, day = [], start.astimezone(LONDON).date()
    while day <= end.astimezone(LONDON).date():
        if day.weekday() < 5:
            at = datetime.combine(day, CLINIC_OPENS, tzinfo=LONDON)
            while (at + _DURATION).time() <= CLINIC_CLOSES:
                if start < at <= end:
                    found.append(at)
                at += timedelta(minutes=5)
        day += timedelta(days=1)
    return found


def _soon(now: datetime) -> datetime:
    """The blood test: inside the 24-hour change cut-off when a clinic runs then (the latest time before it, so it
    is not an early morning after a late start), else the next clinic time. At least 2 hours away."""
    earliest = now + timedelta(hours=2)
    inside = _clinic_times(earliest, now + timedelta(hours=23))
    return inside[-1] if inside else _clinic_times(earliest, now + timedelta(days=5))[0]


async def _insert(tx: Transaction, table: str, values: dict[str, object]) -> int:
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    row = await tx.fetch_one(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id", list(values.values()))
    assert row is not None
    return int(row["id"])


async def seed_demo(db: Database, *, now: datetime) -> bool:
    """Seeds once; returns False when the demo trust is already there."""
    if await db.fetch_one("SELECT id FROM organisations WHERE code = 'RAL'"):
        return False
    stamp = to_db(now)
    today = now.astimezone(LONDON).date()
    async with db.write() as tx:
        org = await _insert(
            tx,
            "organisations",
            {"code": "RAL", "name": "Royal Free London NHS Foundation Trust", "phone": "020 7794 0500"},
        )
        rfh = await _insert(
            tx,
            "sites",
            {
                "organisation_id": org,
                "code": "RFH",
                "name": "Royal Free Hospital",
                "address": "Pond Street, London",
                "postcode": "NW3 2QG",
                "latitude": 51.5533,
                "longitude": -0.1652,
                "directions": "Belsize Park Underground station (Northern line) is a 5-minute walk. Buses 24, 46, 168"
                " and 268 stop outside the main entrance on Pond Street.",
                "parking": "Pay-and-display multi-storey car park off Fleet Road. Blue Badge bays are next to the main"
                " entrance.",
                "phone": "020 7794 0500",
                "map_file": "rfh.svg",
            },
        )
        bch = await _insert(
            tx,
            "sites",
            {
                "organisation_id": org,
                "code": "BCH",
                "name": "Barnet Hospital",
                "address": "Wellhouse Lane, Barnet",
                "postcode": "EN5 3DJ",
                "latitude": 51.6505,
                "longitude": -0.2148,
                "directions": "High Barnet Underground station (Northern line) is a 15-minute walk. Buses 307, 384 and"
                " 399 stop on Wellhouse Lane.",
                "parking": "Visitor car park by the main entrance; pay at the machines or by phone. Blue Badge bays"
                " are by Building B.",
                "phone": "020 8216 4000",
                "map_file": "bch.svg",
            },
        )
        patients = {}
        for mrn, given, family, born, mobile, email, uvc, preference in PATIENTS:
            patients[mrn] = await _insert(
                tx,
                "patients",
                {
                    "organisation_id": org,
                    "mrn": mrn,
                    "link_id": new_link_id(),
                    "nhs_number": NHS_NUMBERS.get(mrn),
                    "given_name": given,
                    "family_name": family,
                    "date_of_birth": born,
                    "mobile": mobile,
                    "email": email,
                    "verification_code": uvc,
                    "contact_preference": preference,
                    "address_lines": json.dumps(["1 Example Street", "London"]),
                    "postcode": "NW3 1AA",
                    "created_at": stamp,
                    "updated_at": stamp,
                },
            )
        plan = [
            # (patient, ref, site, clinic, specialty, start, mode, status, transport)
            (
                "RF100001",
                "A1001",
                rfh,
                "Cardiology outpatients",
                "Cardiology",
                _at(today, 12, 9, 30),
                Mode.IN_PERSON,
                HospitalStatus.BOOKED,
                0,
            ),
            (
                "RF100001",
                "A1002",
                bch,
                "Eye clinic",
                "Ophthalmology",
                _at(today, 20, 14, 15),
                Mode.IN_PERSON,
                HospitalStatus.BOOKED,
                1,
            ),
            (
                "RF100001",
                "A1003",
                rfh,
                "Diabetes review",
                "Diabetes",
                _at(today, 30, 11),
                Mode.TELEPHONE,
                HospitalStatus.BOOKED,
                0,
            ),
            (
                "RF100001",
                "A1004",
                rfh,
                "Blood tests",
                "Pathology",
                _soon(now),
                Mode.IN_PERSON,
                HospitalStatus.BOOKED,
                0,
            ),
            (
                "RF100001",
                "A1005",
                rfh,
                "Cardiology outpatients",
                "Cardiology",
                _at(today, -60, 10),
                Mode.IN_PERSON,
                HospitalStatus.ATTENDED,
                0,
            ),
            (
                "RF100001",
                "A1006",
                bch,
                "Physiotherapy",
                "Physiotherapy",
                _at(today, 8, 16),
                Mode.IN_PERSON,
                HospitalStatus.CANCELLED,
                0,
            ),
            (
                "RF100002",
                "A2001",
                bch,
                "Fracture clinic",
                "Trauma and orthopaedics",
                _at(today, 9, 10, 45),
                Mode.IN_PERSON,
                HospitalStatus.BOOKED,
                0,
            ),
            (
                "RF100002",
                "A2002",
                rfh,
                "Dermatology",
                "Dermatology",
                _at(today, 40, 15),
                Mode.VIDEO,
                HospitalStatus.BOOKED,
                0,
            ),
            (
                "RF100003",
                "A3001",
                rfh,
                "Children's outpatients",
                "Paediatrics",
                _at(today, 14, 9),
                Mode.IN_PERSON,
                HospitalStatus.BOOKED,
                0,
            ),
            (
                "RF100004",
                "A4001",
                rfh,
                "Children's outpatients",
                "Paediatrics",
                _at(today, 14, 9, 30),
                Mode.IN_PERSON,
                HospitalStatus.BOOKED,
                0,
            ),
        ]
        appointment_ids = {}
        for mrn, ref, site, clinic, specialty, start, mode, status, transport in plan:
            appointment_ids[ref] = await _insert(
                tx,
                "appointments",
                {
                    "organisation_id": org,
                    "ref": ref,
                    "patient_id": patients[mrn],
                    "site_id": site,
                    "clinic": clinic,
                    "specialty": specialty,
                    "clinician": "Dr A Example",
                    "starts_at": to_db(start),
                    "duration_minutes": 30,
                    "mode": mode,
                    "status": status,
                    "transport_booked": transport,
                    "created_at": stamp,
                    "updated_at": stamp,
                },
            )
        # The cardiology clinic's bookable slots: A1001's own and some free times. Patients of the clinics a trust
        # lets choose (HUB_SLOTS__SELF_SERVICE_CLINICS=RAL:Cardiology outpatients) pick a new time from them.
        times = [(12, 9, 30), (3, 9, 0), (3, 14, 0), (5, 10, 0), (6, 11, 30), (9, 9, 0), (10, 15, 0), (13, 10, 0)]
        for n, (days, hour, minute) in enumerate(times):
            await _insert(
                tx,
                "slots",
                {
                    "organisation_id": org,
                    "ref": f"S-RFH-{n + 1:03d}",
                    "site_id": rfh,
                    "clinic": "Cardiology outpatients",
                    "specialty": "Cardiology",
                    "clinician": "Dr A Example",
                    "starts_at": to_db(_at(today, days, hour, minute)),
                    "duration_minutes": 30,
                    "mode": Mode.IN_PERSON,
                    "status": "busy" if n == 0 else "free",
                    "appointment_id": appointment_ids["A1001"] if n == 0 else None,
                    "created_at": stamp,
                    "updated_at": stamp,
                },
            )
        named = {mrn: f"{given} {family}" for mrn, given, family, *_ in PATIENTS}
        booked = {ref: (clinic, site, start) for _, ref, site, clinic, _, start, *_ in plan}
        site_names = {rfh: "Royal Free Hospital", bch: "Barnet Hospital"}
        for ref, mrn, title in (
            ("L1001", "RF100001", "Your cardiology appointment"),
            ("L1002", "RF100001", "Your eye clinic appointment"),
            ("L2001", "RF100002", "Your fracture clinic appointment"),
        ):
            appointment = "A" + ref[1:]
            clinic, site, start = booked[appointment]
            pdf = make_letter_pdf(
                title=title,
                lines=[
                    f"Dear {named[mrn]},",
                    "",
                    f"We have booked you an appointment at the {clinic.lower()}, {site_names[site]}:",
                    "",
                    f"Clinic: {clinic}",
                    f"Date: {format_date(start)}",
                    f"Time: {format_time(start)}",
                    "",
                    "Please arrive 10 minutes early and bring a list of the medicines you take.",
                    "",
                    "If you cannot come, change or cancel the appointment online with the link in your text or email.",
                    "",
                    "Royal Free London NHS Foundation Trust",
                ],
            )
            await _insert(
                tx,
                "letters",
                {
                    "organisation_id": org,
                    "ref": ref,
                    "patient_id": patients[mrn],
                    "appointment_id": appointment_ids[appointment],
                    "kind": LetterKind.APPOINTMENT_LETTER,
                    "title": title,
                    "content": pdf,
                    "size_bytes": len(pdf),
                    "created_at": stamp,
                },
            )
        # A little history for /messages: the invitations the hospital's feed would have sent.
        for ref, kind, message_status, delivery, days_ago in (
            ("A1001", MessageKind.INVITATION, MessageStatus.SENT, "delivered", 3),
            ("A1002", MessageKind.INVITATION, MessageStatus.SENT, "delivered", 2),
            ("A1002", MessageKind.INVITATION_REMINDER, MessageStatus.SENT, None, 1),
        ):
            sent = to_db(now - timedelta(days=days_ago))
            await _insert(
                tx,
                "outbox_messages",
                {
                    "kind": kind,
                    "channel": Channel.SMS,
                    "patient_id": patients["RF100001"],
                    "appointment_id": appointment_ids[ref],
                    "recipient": "+447700900001",
                    "status": message_status,
                    "delivery_status": delivery,
                    "attempts": 1,
                    "next_attempt_at": sent,
                    "created_at": sent,
                    "sent_at": sent,
                },
            )
    return True


def demo_instructions(settings: Settings, link_ids: dict[str, str]) -> str:
    lines = [
        "",
        "Demo hub ready at " + settings.base_url,
        "Sign in with any of these (mobile or email, then date of birth); read the code at "
        + settings.base_url
        + "/dev/outbox",
        "",
    ]
    for mrn, given, family, born, mobile, email, uvc, _ in PATIENTS:
        contact = ("0" + mobile[3:]) if mobile else email
        lines.append(f"  {given} {family}: {contact}, born {born}  (verification code {uvc})")
        lines.append(f"    stable link: {patient_link(settings, link_ids[mrn])}")
    lines.append(
        "  Amir and Layla are twins who share their mother's mobile: start at / and give the verification code."
    )
    quiet = settings.notify.quiet_start_hour != settings.notify.quiet_end_hour
    lines += [
        "",
        (
            f"Quiet hours are on ({settings.notify.quiet_start_hour}:00 to {settings.notify.quiet_end_hour}:00):"
            " invitations and changes wait for the morning; security codes go at once."
            if quiet
            else "Quiet hours are off in the demo: every message shows in the dev outbox at once."
        ),
        f"Booking-centre console: {settings.base_url}/staff. For an admin's set-up link, run in another terminal:",
        f"  make staff{'' if settings.port == 8000 else f' PORT={settings.port}'}",
    ]
    return "\n".join(lines)
