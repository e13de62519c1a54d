"""The hospital feed applied at the store: upserts by the hospital's references, where the same record twice
changes nothing, and a change to an appointment queues its notice in the same transaction.

Bodies are read through hub/rules/feed.py's records first, as every writer's are.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from hub.rules.appointments import ActionPolicy
from hub.rules.feed import Applied, read_appointment, read_patient, read_site
from hub.store.appointments import request_rebook
from hub.store.feed import upsert_appointment, upsert_patient, upsert_site
from hub.store.patients import update_preferences
from hub.vocabulary import CancelMode
from tests.harness import Harness

pytestmark = pytest.mark.anyio
SITE = {"name": "Royal Free Hospital", "postcode": "NW3 2QG"}
PATIENT = {"given_name": "Margaret", "family_name": "Jones", "date_of_birth": "1948-03-14", "mobile": "07700 900001"}


async def _site(hub: Harness, organisation_id: int, code: str = "RFH", **fields: Any) -> Applied:
    site, errors = read_site({**SITE, **fields}, organisation_code="RAL")
    assert site is not None and not errors
    async with hub.db.write() as tx:
        return await upsert_site(
            tx, organisation_id=organisation_id, code=code, values=site.values(), actor="1", now=hub.clock.now()
        )


async def _patient(hub: Harness, organisation_id: int, ref: str = "MRN1", **fields: Any) -> Applied:
    patient, errors = read_patient({**PATIENT, **fields}, today=date(2026, 11, 21))
    assert patient is not None and not errors
    async with hub.db.write() as tx:
        return await upsert_patient(
            tx, organisation_id=organisation_id, ref=ref, values=patient.values(), actor="1", now=hub.clock.now()
        )


async def _appointment(hub: Harness, organisation_id: int, ref: str = "A1", **fields: Any) -> Applied:
    body = {"patient_ref": "MRN1", "site_code": "RFH", "start": "2026-12-03T09:30:00+00:00", "duration_minutes": 30}
    appointment, errors = read_appointment({**body, **fields})
    assert appointment is not None and not errors
    async with hub.db.write() as tx:
        return await upsert_appointment(
            tx,
            organisation_id=organisation_id,
            ref=ref,
            values=appointment.values(),
            actor="1",
            now=hub.clock.now(),
            settings=hub.settings,
        )


async def test_a_site_is_created_then_unchanged_then_updated_and_each_trust_has_its_own(hub: Harness) -> None:
    ral = await hub.organisation_id()
    other = await hub.create_organisation(code="RVR", name="Other Trust")
    created = await _site(hub, ral)
    assert created.outcome == "created"
    assert await _site(hub, ral) == Applied("unchanged", created.record_id)
    assert await _site(hub, ral, parking="Car park on Fleet Road.") == Applied("updated", created.record_id)
    # Site codes are each trust's own: the other trust's "RFH" is a site of its own, and ours is untouched.
    theirs = await _site(hub, other, name="Not yours")
    assert theirs.outcome == "created" and theirs.record_id != created.record_id
    rows = await hub.db.fetch_all("SELECT organisation_id, name, parking, latitude FROM sites ORDER BY id")
    assert rows == [
        {"organisation_id": ral, "name": "Royal Free Hospital", "parking": "Car park on Fleet Road.", "latitude": None},
        {"organisation_id": other, "name": "Not yours", "parking": "", "latitude": None},
    ]


async def test_a_new_patient_gets_a_verification_code_and_the_same_record_twice_changes_nothing(hub: Harness) -> None:
    org = await hub.organisation_id()
    created = await _patient(hub, org)
    assert created.outcome == "created"
    row = await hub.db.fetch_one("SELECT mobile, verification_code, contact_preference, updated_at FROM patients")
    assert row is not None and row["mobile"] == "+447700900001" and len(row["verification_code"]) == 6
    hub.clock.advance(hours=1)
    assert await _patient(hub, org) == Applied("unchanged", created.record_id)
    again = await hub.db.fetch_one("SELECT verification_code, updated_at FROM patients")
    assert again == {"verification_code": row["verification_code"], "updated_at": row["updated_at"]}
    actions = [a["action"] for a in await hub.db.fetch_all("SELECT action FROM audit_events")]
    assert actions == ["patient_created"]


async def test_the_patients_own_channel_stands_unless_the_hospital_sends_one(hub: Harness) -> None:
    org = await hub.organisation_id()
    patient = await _patient(hub, org, email="margaret@example.com")
    assert patient.record_id is not None
    await update_preferences(  # the patient chose email on /preferences
        hub.db,
        patient.record_id,
        contact_preference="email",
        paperless=True,
        opted_out=False,
        templates=hub.settings.notify.templates,
        at=hub.clock.now(),
    )
    await _patient(hub, org, email="margaret@example.com", family_name="Smith")
    assert await hub.db.fetch_one("SELECT contact_preference FROM patients") == {"contact_preference": "email"}
    await _patient(hub, org, email="margaret@example.com", contact_preference="sms")
    assert await hub.db.fetch_one("SELECT contact_preference FROM patients") == {"contact_preference": "sms"}
    await _patient(hub, org, mobile=None, email="margaret@example.com")  # no mobile: texts cannot be the way
    assert await hub.db.fetch_one("SELECT contact_preference FROM patients") == {"contact_preference": "email"}


async def test_an_appointment_for_a_patient_or_site_we_do_not_know_is_refused(hub: Harness) -> None:
    org = await hub.organisation_id()
    refused = await _appointment(hub, org)
    assert refused.outcome == "rejected"
    assert [e["field"] for e in refused.errors] == ["patient_ref", "site_code"]
    assert await hub.db.fetch_all("SELECT id FROM appointments") == []


async def test_a_new_booking_invites_the_patient_and_a_move_tells_them_in_the_same_transaction(hub: Harness) -> None:
    org = await hub.organisation_id()
    await _site(hub, org)
    await _patient(hub, org)
    created = await _appointment(hub, org)
    assert (created.outcome, created.notice) == ("created", "invitation")
    assert await _appointment(hub, org) == Applied("unchanged", created.record_id)
    await hub.send_queued()  # the invitation went before the move
    moved = await _appointment(hub, org, start="2026-12-04T14:00:00+00:00")
    assert (moved.outcome, moved.notice) == ("updated", "changed")
    sent = await hub.db.fetch_all("SELECT kind, channel, recipient FROM outbox_messages ORDER BY id")
    assert [(m["kind"], m["channel"]) for m in sent] == [("invitation", "sms"), ("changed", "sms")]
    row = await hub.db.fetch_one("SELECT starts_at, sequence FROM appointments")
    assert row == {"starts_at": "2026-12-04T14:00:00.000000Z", "sequence": 1}


async def test_a_new_time_from_the_hospital_answers_the_patients_request_to_rebook(hub: Harness) -> None:
    org = await hub.organisation_id()
    await _site(hub, org)
    patient, appointment = (await _patient(hub, org)).record_id, (await _appointment(hub, org)).record_id
    assert patient is not None and appointment is not None
    asked = await request_rebook(
        hub.db,
        patient_id=patient,
        appointment_id=appointment,
        reason="Away",
        preferred_times="",
        now=hub.clock.now(),
        policy=ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST),
    )
    assert asked.done
    await _appointment(hub, org, clinic="Cardiology outpatients")  # not a move: the request stands
    assert await hub.db.fetch_one("SELECT request_state FROM appointments") == {"request_state": "rebook_requested"}
    await _appointment(hub, org, clinic="Cardiology outpatients", start="2026-12-10T09:30:00+00:00")
    assert await hub.db.fetch_one("SELECT request_state FROM appointments") == {"request_state": "none"}


async def test_an_appointment_cannot_be_moved_to_another_patient(hub: Harness) -> None:
    org = await hub.organisation_id()
    await _site(hub, org)
    await _patient(hub, org)
    await _patient(hub, org, ref="MRN2", given_name="Tom", mobile="07700 900002")
    await _appointment(hub, org)
    refused = await _appointment(hub, org, patient_ref="MRN2")
    assert refused.outcome == "rejected" and "another patient" in refused.errors[0]["message"]
    patient = await hub.db.fetch_one("SELECT p.mrn FROM appointments a JOIN patients p ON p.id = a.patient_id")
    assert patient == {"mrn": "MRN1"}


async def test_a_booking_in_the_past_is_recorded_without_a_notice(hub: Harness) -> None:
    org = await hub.organisation_id()
    await _site(hub, org)
    await _patient(hub, org)
    past = (datetime(2026, 11, 21, 10, 0) - timedelta(days=1)).isoformat() + "+00:00"
    applied = await _appointment(hub, org, start=past, status="attended")
    assert (applied.outcome, applied.notice) == ("created", None)
    assert await hub.db.fetch_all("SELECT id FROM outbox_messages") == []
