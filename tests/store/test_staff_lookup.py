"""What an agent looks up (patients, a patient's record, the audit log) and the two things they do to a patient."""

from __future__ import annotations

import json

import pytest

from hub.rules.staff_scope import SYSTEM
from hub.store.audit import record_audit
from hub.store.staff_lookup import (
    SEARCH_LIMIT,
    find_patients,
    get_patient_record,
    list_audit,
    opt_out_of_texts,
    resend_link,
)
from hub.vocabulary import ActorType, AuditAction, RecordType
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_patients_are_found_by_nhs_number_hospital_number_or_name_and_date_of_birth(hub: Harness) -> None:
    margaret = await hub.create_patient(mrn="RF100001", nhs_number="9434765919", family_name="Ó Briain")
    await hub.create_patient(mrn="RF100002", family_name="Ó Briain", dob="1950-01-01", mobile="+447700900002")
    assert [p["id"] for p in await find_patients(hub.db, scope=SYSTEM, nhs_number="9434765919")] == [margaret]
    assert [p["id"] for p in await find_patients(hub.db, scope=SYSTEM, mrn="rf100001")] == [margaret]
    found = await find_patients(
        hub.db, scope=SYSTEM, family_name="Ó BRIAIN", date_of_birth="1948-03-14"
    )  # SQLite folds ASCII only
    assert [(p["id"], p["organisation_code"]) for p in found] == [(margaret, "RAL")]
    assert await find_patients(hub.db, scope=SYSTEM, family_name="Ó Briain") == []  # a name alone is not enough
    assert await find_patients(hub.db, scope=SYSTEM) == []


async def test_a_search_returns_one_more_than_it_shows(hub: Harness) -> None:
    for n in range(SEARCH_LIMIT + 5):
        await hub.create_patient(family_name="Smith", mobile=f"+4477009{n:05d}")
    assert (
        len(await find_patients(hub.db, scope=SYSTEM, family_name="Smith", date_of_birth="1948-03-14"))
        == SEARCH_LIMIT + 1
    )


async def test_the_record_holds_appointments_tasks_messages_and_the_patients_audit(hub: Harness) -> None:
    patient = await hub.create_patient()
    other = await hub.create_patient(mobile="+447700900002")
    appointment = await hub.create_appointment(patient_id=patient, ref="A-OURS")
    await hub.create_appointment(patient_id=other, ref="A-THEIRS")
    await hub.create_task(patient_id=patient, appointment_id=appointment, reason="Away")
    await hub.create_message(patient_id=patient, appointment_id=appointment, sent=True)
    async with hub.db.write() as tx:
        for action, record_type, record_id in (
            (AuditAction.SIGNED_IN, RecordType.PATIENT, patient),
            (AuditAction.CONFIRMED, RecordType.APPOINTMENT, appointment),
            (AuditAction.SIGNED_IN, RecordType.PATIENT, other),
        ):
            await record_audit(
                tx,
                at=hub.clock.now(),
                actor_type=ActorType.PATIENT,
                actor_id=patient,
                action=action,
                record_type=record_type,
                record_id=record_id,
            )
    record = await get_patient_record(hub.db, patient, scope=SYSTEM)
    assert record is not None
    assert record["patient"]["id"] == patient
    assert [a["ref"] for a in record["appointments"]] == ["A-OURS"]
    assert [t["reason"] for t in record["tasks"]] == ["Away"]
    assert [(m["status"], m["sent_at"]) for m in record["messages"]] == [("sent", hub.clock.now())]
    assert [(a["action"], a["record_type"]) for a in record["audit"]] == [
        ("confirmed", "appointment"),
        ("signed_in", "patient"),
    ]
    assert await get_patient_record(hub.db, 999, scope=SYSTEM) is None


async def test_stopping_texts_is_recorded_once_and_told_to_the_hospital(hub: Harness) -> None:
    patient = await hub.create_patient()
    staff = await hub.create_staff_user()
    templates = hub.settings.notify.templates
    for _ in range(2):
        assert await opt_out_of_texts(
            hub.db, scope=SYSTEM, patient_id=patient, staff_id=staff, templates=templates, now=hub.clock.now()
        )
    assert await hub.db.fetch_one("SELECT sms_opted_out FROM patients") == {"sms_opted_out": 1}
    [event] = await hub.db.fetch_all("SELECT kind, data FROM events")
    assert (event["kind"], json.loads(event["data"])) == ("patient.sms_opted_out", {"by": "booking_centre"})
    assert [a["action"] for a in await hub.db.fetch_all("SELECT action FROM audit_events")] == ["sms_opted_out"]
    assert not await opt_out_of_texts(
        hub.db, scope=SYSTEM, patient_id=999, staff_id=staff, templates=templates, now=hub.clock.now()
    )


@pytest.mark.parametrize(
    ("mobile", "email", "sms_opted_out", "channel", "recipient"),
    [
        ("+447700900001", None, False, "sms", "+447700900001"),
        ("+447700900001", "m@example.com", True, "email", "m@example.com"),
        (None, None, False, None, None),
    ],
)
async def test_the_link_goes_again_by_the_patients_usual_channel(
    hub: Harness, mobile: str | None, email: str | None, sms_opted_out: bool, channel: str | None, recipient: str | None
) -> None:
    patient_id = await hub.create_patient(mobile=mobile, email=email, sms_opted_out=sms_opted_out)
    staff = await hub.create_staff_user()
    sent = await resend_link(
        hub.db, scope=SYSTEM, patient_id=patient_id, staff_id=staff, settings=hub.settings, now=hub.clock.now()
    )
    assert sent is (channel is not None)
    messages = await hub.db.fetch_all("SELECT kind, lane, channel, recipient, personalisation FROM outbox_messages")
    if channel is None:
        assert messages == []
        return
    [message] = messages
    assert (message["kind"], message["lane"], message["channel"], message["recipient"]) == (
        "patient_link",
        "bulk",
        channel,
        recipient,
    )
    assert json.loads(message["personalisation"]) == {"link": await hub.patient_link(patient_id)}


async def test_nobody_gets_no_link(hub: Harness) -> None:
    assert (
        await resend_link(hub.db, scope=SYSTEM, patient_id=999, staff_id=1, settings=hub.settings, now=hub.clock.now())
        is None
    )


async def test_the_audit_log_filters_and_lists_the_newest_first(hub: Harness) -> None:
    async with hub.db.write() as tx:
        for actor, action in (
            ("1", AuditAction.TASK_CLAIMED),
            ("2", AuditAction.TASK_CLAIMED),
            ("1", AuditAction.TASK_RELEASED),
        ):
            await record_audit(
                tx,
                at=hub.clock.now(),
                actor_type=ActorType.AGENT,
                actor_id=actor,
                action=action,
                record_type=RecordType.TASK,
                record_id=7,
            )
    assert [(r["actor_id"], r["action"]) for r in await list_audit(hub.db, scope=SYSTEM)] == [
        ("1", "task_released"),
        ("2", "task_claimed"),
        ("1", "task_claimed"),
    ]
    assert [r["action"] for r in await list_audit(hub.db, scope=SYSTEM, actor_id="1")] == [
        "task_released",
        "task_claimed",
    ]
    assert [r["actor_id"] for r in await list_audit(hub.db, scope=SYSTEM, action="task_claimed", limit=1)] == ["2"]
    assert await list_audit(hub.db, scope=SYSTEM, record_type="patient") == []
    assert (await list_audit(hub.db, scope=SYSTEM))[0]["at"] == hub.clock.now()
