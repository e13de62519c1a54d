"""What the hospital feed's path through the lifecycle asks of the database (the JSON API's PUTs, the CSV import and
HL7 share it): a brand-new appointment reads its patient and site once and closes or cancels nothing, since no
reminder, escalation or message can yet refer to an id the database has just given out; a new patient's contact
choices come back from its INSERT. Counted by a recorder around a real transaction, on both backends; what the
patient is sent is checked beside the counts, so a statement left out cannot have carried anything."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

import pytest

from hub.db import Params, Row, Transaction
from hub.rules.feed import Applied, read_appointment, read_patient, read_site
from hub.store.feed import upsert_appointment, upsert_patient, upsert_site
from tests.harness import Harness

pytestmark = pytest.mark.anyio
PATIENT = {"given_name": "Margaret", "family_name": "Jones", "date_of_birth": "1948-03-14", "mobile": "07700 900001"}
APPOINTMENT = {"patient_ref": "MRN1", "site_code": "RFH", "start": "2026-12-03T09:30:00+00:00", "duration_minutes": 30}


class Recorder:
    """A transaction that notes each statement it passes on."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.sql: list[str] = []

    async def execute(self, sql: str, params: Params = ()) -> int:
        self.sql.append(sql)
        return await self.tx.execute(sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        self.sql.append(sql)
        return await self.tx.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        self.sql.append(sql)
        return await self.tx.fetch_all(sql, params)

    async def hold(self, lock: str) -> None:
        await self.tx.hold(lock)

    async def hold_keys(self, keys: Iterable[str]) -> None:
        await self.tx.hold_keys(keys)

    def reads(self, table: str) -> int:
        return sum(1 for s in self.sql if s.startswith("SELECT") and re.search(rf"\bFROM {table}\b", s))

    def updates(self) -> list[str]:
        return [s for s in self.sql if s.startswith("UPDATE")]


async def _site(hub: Harness, org: int) -> None:
    site, errors = read_site({"name": "Royal Free Hospital", "postcode": "NW3 2QG"}, organisation_code="RAL")
    assert site is not None and not errors
    async with hub.db.write() as tx:
        await upsert_site(tx, organisation_id=org, code="RFH", values=site.values(), actor="1", now=hub.clock.now())


async def _patient(hub: Harness, org: int, **fields: Any) -> tuple[Applied, Recorder]:
    patient, errors = read_patient({**PATIENT, **fields}, today=date(2026, 11, 21))
    assert patient is not None and not errors
    async with hub.db.write() as tx:
        recorder = Recorder(tx)
        applied = await upsert_patient(
            recorder, organisation_id=org, ref="MRN1", values=patient.values(), actor="1", now=hub.clock.now()
        )
    return applied, recorder


async def _appointment(hub: Harness, org: int, **fields: Any) -> tuple[Applied, Recorder]:
    appointment, errors = read_appointment({**APPOINTMENT, **fields})
    assert appointment is not None and not errors
    async with hub.db.write() as tx:
        recorder = Recorder(tx)
        applied = await upsert_appointment(
            recorder,
            organisation_id=org,
            ref="A1",
            values=appointment.values(),
            actor="1",
            now=hub.clock.now(),
            settings=hub.settings,
        )
    return applied, recorder


async def test_a_new_appointment_reads_its_patient_and_site_once_and_closes_nothing(hub: Harness) -> None:
    org = await hub.organisation_id()
    await _site(hub, org)
    await _patient(hub, org)
    applied, recorder = await _appointment(hub, org)
    assert applied.outcome == "created"
    assert recorder.reads("patients") == 1
    assert recorder.reads("sites") == 1
    assert recorder.reads("outbox_messages") == 0  # nothing can be queued for an appointment not yet made
    assert recorder.updates() == []
    assert sum(s.startswith("INSERT INTO scheduled_notices") for s in recorder.sql) == 1  # reminders and escalation
    # And all of it still happened: the invitation names the site, the reminders and the escalation are planned.
    message = await hub.db.fetch_one("SELECT kind, recipient, personalisation FROM outbox_messages")
    assert message is not None and message["kind"] == "invitation" and message["recipient"] == "+447700900001"
    assert json.loads(message["personalisation"])["site"] == "Royal Free Hospital"
    notices = await hub.db.fetch_all("SELECT kind FROM scheduled_notices WHERE done_at IS NULL ORDER BY kind")
    assert [n["kind"] for n in notices] == [
        "escalation_post",
        "escalation_reminder_1",
        "escalation_reminder_2",
        "reminder_1d",
        "reminder_7d",
    ]


async def test_a_changed_appointment_is_read_once_and_its_old_reminders_are_replanned(hub: Harness) -> None:
    org = await hub.organisation_id()
    await _site(hub, org)
    await _patient(hub, org)
    await _appointment(hub, org)
    unchanged, recorder = await _appointment(hub, org)
    assert unchanged.outcome == "unchanged"
    assert recorder.reads("appointments") == 1  # its state and the fingerprint of what the hospital sent, together
    moved, recorder = await _appointment(hub, org, start="2026-12-04T09:30:00+00:00")
    assert moved.outcome == "updated"
    assert recorder.reads("appointments") == 1
    # An appointment that was already there keeps having its earlier plans closed.
    replanned = await hub.db.fetch_all(
        "SELECT kind FROM scheduled_notices WHERE outcome = 'replanned' ORDER BY kind", ()
    )
    assert [r["kind"] for r in replanned] == ["reminder_1d", "reminder_7d"]


async def test_a_new_patients_contact_choices_come_back_from_its_insert(hub: Harness) -> None:
    org = await hub.organisation_id()
    created, recorder = await _patient(hub, org, contact_opt_out={"sms": True})
    assert created.outcome == "created"
    assert recorder.reads("patients") == 1  # by reference, before the INSERT
    row = await hub.db.fetch_one(
        "SELECT sms_opted_out, hospital_choices FROM patients WHERE id = ?", (created.record_id,)
    )
    assert row is not None and row["sms_opted_out"] == 1 and json.loads(row["hospital_choices"]) == {"sms": True}
    updated, recorder = await _patient(hub, org, mobile="07700 900002")
    assert updated.outcome == "updated"
    assert recorder.reads("patients") == 1
