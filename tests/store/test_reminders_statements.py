"""The reminder chains' statements are prepared once per connection, not at every run.

SQLite prepares a statement with `LIKE ?` afresh each time it runs (the pattern could change its plan): 5 to 30
times the statement's own cost, paid on every letter opened and every appointment the hospital changes. A chain is
matched by its prefix with substr instead. sqlite_stmt (compiled into Python's SQLite here) counts a cached
statement's runs and re-preparations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.store.reminders import stop_escalation, withdraw_reminders
from tests.factories import (
    create_appointment,
    create_organisation,
    create_patient,
    create_scheduled_notice,
    create_site,
)
from tests.harness import Harness

pytestmark = [pytest.mark.anyio, pytest.mark.sqlite_only]


async def test_closing_chains_prepares_its_statements_once(hub: Harness) -> None:
    now = hub.clock.now()
    async with hub.db.write() as tx:
        organisation_id = await create_organisation(tx)
        site_id = await create_site(tx, organisation_id=organisation_id)
        patient_id = await create_patient(tx, organisation_id=organisation_id, now=now)
        appointments = []
        for _ in range(3):
            appointment_id = await create_appointment(
                tx, organisation_id=organisation_id, site_id=site_id, patient_id=patient_id, now=now
            )
            appointments.append(appointment_id)
            for kind in ("escalation_1", "reminder_7d", "reminder_1d"):
                await create_scheduled_notice(
                    tx, appointment_id=appointment_id, due_at=now + timedelta(days=1), kind=kind
                )
    for appointment_id in appointments:  # the escalation chain, then every chain: two patterns, by turns
        async with hub.db.write() as tx:
            await stop_escalation(tx, appointment_id=appointment_id, now=now)
            await withdraw_reminders(tx, appointment_id=appointment_id, now=now)
    async with hub.db.write() as tx:
        notices = await tx.fetch_all("SELECT kind, outcome FROM scheduled_notices ORDER BY id")
        cached = await tx.fetch_all(
            "SELECT sql, run, reprep FROM sqlite_stmt WHERE sql LIKE 'UPDATE scheduled_notices%'"
        )
    assert [n["outcome"] for n in notices] == ["opened", "cancel requested", "cancel requested"] * 3
    assert cached and sum(row["run"] for row in cached) == 6
    assert [row["reprep"] for row in cached] == [0] * len(cached)
