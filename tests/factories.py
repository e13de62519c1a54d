"""Keyword-only factories: one for every row a test needs, so no test writes an INSERT of its own.

Each takes an open transaction and returns the new row's id; `Harness` wraps them with its own clock and
defaults. Rows go straight into the tables, as the rest of the hub would have left them: these are test data,
not a second way to change an aggregate (tests of that use the store's functions).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from hub.clock import to_db
from hub.db import Transaction
from hub.links import new_link_id
from hub.rules.staff import hash_password

TASKS = "tasks"  # the booking centre's tasks: the table's name, in one place
PDF = b"%PDF-1.4\n%%EOF\n"


async def insert(tx: Transaction, table: str, values: dict[str, Any], *, key: str = "id") -> Any:
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    row = await tx.fetch_one(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING {key}", list(values.values()))
    assert row is not None
    return row[key]


async def _next(tx: Transaction, table: str) -> int:
    row = await tx.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"]) + 1


async def create_organisation(
    tx: Transaction, *, code: str = "RAL", name: str = "Test Trust", phone: str = "020 7000 0000"
) -> int:
    return int(await insert(tx, "organisations", {"code": code, "name": name, "phone": phone}))


async def create_site(
    tx: Transaction,
    *,
    organisation_id: int,
    code: str = "RFH",
    name: str = "Royal Free Hospital",
    map_file: str | None = "rfh.svg",
    latitude: float | None = 51.5533,
    longitude: float | None = -0.1652,
) -> int:
    values = {
        "organisation_id": organisation_id,
        "code": code,
        "name": name,
        "address": "Pond Street, London",
        "postcode": "NW3 2QG",
        "latitude": latitude,
        "longitude": longitude,
        "directions": "Walk.",
        "parking": "Car park.",
        "phone": "020 7794 0500",
        "map_file": map_file,
    }
    return int(await insert(tx, "sites", values))


async def create_patient(
    tx: Transaction,
    *,
    organisation_id: int,
    now: datetime,
    mrn: str | None = None,
    nhs_number: str | None = None,
    given_name: str = "Margaret",
    family_name: str = "Jones",
    dob: str = "1948-03-14",
    mobile: str | None = "+447700900001",
    email: str | None = None,
    address_lines: Sequence[str] = (),
    postcode: str = "",
    verification_code: str = "MJ4K7Q",
    contact_preference: str = "sms",
    sms_opted_out: bool = False,
    nhs_app_excluded: bool = False,
) -> int:
    values = {
        "organisation_id": organisation_id,
        "mrn": mrn or f"MRN{await _next(tx, 'patients'):05d}",
        "nhs_number": nhs_number,
        "given_name": given_name,
        "family_name": family_name,
        "date_of_birth": dob,
        "mobile": mobile,
        "email": email,
        "address_lines": json.dumps(list(address_lines)),
        "postcode": postcode,
        "verification_code": verification_code,
        "contact_preference": contact_preference,
        "sms_opted_out": int(sms_opted_out),
        "nhs_app_excluded": int(nhs_app_excluded),
        "link_id": new_link_id(),
        "created_at": to_db(now),
        "updated_at": to_db(now),
    }
    return int(await insert(tx, "patients", values))


async def create_appointment(
    tx: Transaction,
    *,
    organisation_id: int,
    site_id: int,
    patient_id: int,
    now: datetime,
    starts_at: datetime | None = None,
    ref: str | None = None,
    status: str = "booked",
    mode: str = "in_person",
    clinic: str = "Cardiology outpatients",
    specialty: str = "Cardiology",
    clinician: str = "Dr A Example",
    duration_minutes: int = 30,
    transport_booked: bool = False,
    interpreter_booked: bool = False,
    request_state: str = "none",
    sequence: int = 0,
) -> int:
    values = {
        "organisation_id": organisation_id,
        "ref": ref or f"A{await _next(tx, 'appointments'):05d}",
        "patient_id": patient_id,
        "site_id": site_id,
        "clinic": clinic,
        "specialty": specialty,
        "clinician": clinician,
        "starts_at": to_db(starts_at or now + timedelta(days=10)),
        "duration_minutes": duration_minutes,
        "mode": mode,
        "transport_booked": int(transport_booked),
        "interpreter_booked": int(interpreter_booked),
        "status": status,
        "request_state": request_state,
        "sequence": sequence,
        "created_at": to_db(now),
        "updated_at": to_db(now),
    }
    return int(await insert(tx, "appointments", values))


async def create_slot(
    tx: Transaction,
    *,
    organisation_id: int,
    site_id: int,
    now: datetime,
    starts_at: datetime,
    ref: str | None = None,
    clinic: str = "Cardiology outpatients",
    specialty: str = "Cardiology",
    clinician: str = "Dr A Example",
    duration_minutes: int = 30,
    mode: str = "in_person",
    status: str = "free",
    appointment_id: int | None = None,
) -> int:
    values = {
        "organisation_id": organisation_id,
        "ref": ref or f"S{await _next(tx, 'slots'):05d}",
        "site_id": site_id,
        "clinic": clinic,
        "specialty": specialty,
        "clinician": clinician,
        "starts_at": to_db(starts_at),
        "duration_minutes": duration_minutes,
        "mode": mode,
        "status": status,
        "appointment_id": appointment_id,
        "created_at": to_db(now),
        "updated_at": to_db(now),
    }
    return int(await insert(tx, "slots", values))


async def create_slot_move(
    tx: Transaction,
    *,
    appointment_id: int,
    to_slot_id: int | None,
    previous_start: datetime,
    at: datetime,
    from_slot_id: int | None = None,
    actor_type: str = "patient",
    actor_id: str = "1",
    how: str = "patient",
) -> int:
    values = {
        "appointment_id": appointment_id,
        "from_slot_id": from_slot_id,
        "to_slot_id": to_slot_id,
        "previous_start": to_db(previous_start),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "how": how,
        "at": to_db(at),
    }
    return int(await insert(tx, "slot_moves", values))


async def create_letter(
    tx: Transaction,
    *,
    organisation_id: int,
    patient_id: int,
    now: datetime,
    appointment_id: int | None = None,
    title: str = "Your letter",
    content: bytes = PDF,
    kind: str = "appointment_letter",
    replaced_refs: Sequence[str] = (),
) -> int:
    """A letter; `replaced_refs`: the numbers it had before HL7 MDM^T10s filed it under its own."""
    values = {
        "organisation_id": organisation_id,
        "ref": f"L{await _next(tx, 'letters'):05d}",
        "patient_id": patient_id,
        "appointment_id": appointment_id,
        "kind": kind,
        "title": title,
        "content": content,
        "size_bytes": len(content),
        "created_at": to_db(now),
    }
    letter_id = int(await insert(tx, "letters", values))
    for ref in replaced_refs:
        replaced = {"organisation_id": organisation_id, "ref": ref, "letter_id": letter_id, "replaced_at": to_db(now)}
        await insert(tx, "replaced_letter_refs", replaced, key="letter_id")
    return letter_id


async def create_message(
    tx: Transaction,
    *,
    now: datetime,
    kind: str = "invitation",
    channel: str = "sms",
    recipient: str = "+447700900001",
    template_id: str = "t",
    personalisation: dict[str, Any] | None = None,
    patient_id: int | None = None,
    appointment_id: int | None = None,
    lane: str = "bulk",
    status: str = "queued",
    delivery_status: str | None = None,
    notify_id: str | None = None,
    attempts: int = 0,
    sent_at: datetime | None = None,
    urgent: bool = False,
    check_first: bool = False,
    templated: bool = False,
) -> int:
    """An outbox message; with status "sent", as the worker leaves one it has handed to Notify. `templated`: a letter
    to go as the hub's own template, not the hospital's PDF."""
    values = {
        "kind": kind,
        "lane": lane,
        "channel": channel,
        "patient_id": patient_id,
        "appointment_id": appointment_id,
        "recipient": recipient,
        "template_id": template_id,
        "personalisation": json.dumps(personalisation or {}, sort_keys=True),
        "status": status,
        "delivery_status": delivery_status,
        "notify_id": notify_id,
        "attempts": attempts,
        "sent_at": to_db(sent_at) if sent_at else None,
        "urgent": int(urgent),
        "check_first": int(check_first),
        "next_attempt_at": to_db(now),
        "created_at": to_db(now),
    }
    message_id = int(await insert(tx, "outbox_messages", values))
    if templated:
        await insert(tx, "templated_letters", {"message_id": message_id}, key="message_id")
    return message_id


async def create_task(
    tx: Transaction,
    *,
    patient_id: int,
    now: datetime,
    kind: str = "rebook",
    appointment_id: int | None = None,
    reason: str = "",
    preferred_times: str = "",
    status: str = "open",
    source_id: int | None = None,
    claimed_by: int | None = None,
    claimed_until: datetime | None = None,
    attempts: int = 0,
    not_before: datetime | None = None,
) -> int:
    """A booking-centre task; `not_before`: waiting for the time to call again."""
    values = {
        "kind": kind,
        "patient_id": patient_id,
        "appointment_id": appointment_id,
        "reason": reason,
        "preferred_times": preferred_times,
        "status": status,
        "source_id": source_id,
        "claimed_by": claimed_by,
        "claimed_until": to_db(claimed_until) if claimed_until else None,
        "attempts": attempts,
        "not_before": to_db(not_before) if not_before else None,
        "created_at": to_db(now),
    }
    return int(await insert(tx, TASKS, values))


async def create_staff_user(
    tx: Transaction,
    *,
    now: datetime,
    username: str = "agent1",
    role: str = "agent",
    password: str | None = None,
    totp_secret: str | None = None,
) -> int:
    """A staff account; with a password and an authenticator secret it is enrolled and can sign in."""
    values = {
        "username": username,
        "role": role,
        "password_hash": hash_password(password) if password else None,
        "totp_secret": totp_secret,
        "enrolled_at": to_db(now) if password and totp_secret else None,
        "created_at": to_db(now),
    }
    return int(await insert(tx, "staff_users", values))


async def create_scheduled_notice(
    tx: Transaction,
    *,
    appointment_id: int,
    due_at: datetime,
    kind: str = "reminder_1d",
    done_at: datetime | None = None,
    outcome: str = "",
) -> int:
    values = {
        "appointment_id": appointment_id,
        "kind": kind,
        "due_at": to_db(due_at),
        "done_at": to_db(done_at) if done_at else None,
        "outcome": outcome,
    }
    return int(await insert(tx, "scheduled_notices", values))


async def create_scheduled_notices(
    tx: Transaction, *, appointment_id: int, due_at: datetime, count: int, kind: str = "reminder_1d"
) -> None:
    """`count` notices alike, in one statement (thousands, for the sweep's tests, without thousands of trips)."""
    await tx.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO scheduled_notices (appointment_id, kind, due_at) SELECT ?, ?, ? FROM n WHERE i <= ?",
        (count, appointment_id, kind, to_db(due_at), count),
    )


async def create_inbound_message(
    tx: Transaction,
    *,
    received_at: datetime,
    notify_id: str = "in-1",
    patient_id: int | None = None,
    source_number: str = "+447700900001",
    content: str = "Can I come earlier?",
    action: str = "for_booking_centre",
) -> int:
    """A text a patient sent us, as Notify's callback leaves it."""
    values = {
        "notify_id": notify_id,
        "patient_id": patient_id,
        "source_number": source_number,
        "content": content,
        "received_at": to_db(received_at),
        "action": action,
    }
    return int(await insert(tx, "inbound_messages", values))


async def create_code_challenge(
    tx: Transaction,
    *,
    id: str,
    issued_at: datetime,
    contact_key: str = "key",
    link_patient_id: int | None = None,
    code_hash: str = "hash",
    candidates: Sequence[int] = (),
) -> str:
    """A sign-in attempt (its id is the hash of the browser's token) and the patients it may be for."""
    values = {
        "id": id,
        "contact_key": contact_key,
        "link_patient_id": link_patient_id,
        "code_hash": code_hash,
        "issued_at": to_db(issued_at),
    }
    await insert(tx, "code_challenges", values)
    for patient_id in candidates:
        await tx.execute(
            "INSERT INTO code_challenge_candidates (challenge_id, patient_id) VALUES (?, ?)", (id, patient_id)
        )
    return id


async def create_session(
    tx: Transaction, *, id: str, patient_id: int, created_at: datetime, last_seen_at: datetime | None = None
) -> str:
    """A patient's session (its id is the hash of the cookie's token)."""
    values = {
        "id": id,
        "patient_id": patient_id,
        "created_at": to_db(created_at),
        "last_seen_at": to_db(last_seen_at or created_at),
    }
    await insert(tx, "sessions", values)
    return id


async def create_audit_event(
    tx: Transaction,
    *,
    at: datetime,
    actor_type: str = "system",
    actor_id: str = "worker",
    action: str = "sent",
    record_type: str = "outbox_message",
    record_id: str = "1",
    detail: str = "",
) -> int:
    values = {
        "at": to_db(at),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "action": action,
        "record_type": record_type,
        "record_id": record_id,
        "detail": detail,
    }
    return int(await insert(tx, "audit_events", values))
