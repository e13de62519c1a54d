"""The hospital's slot records: created, unchanged when resent, rejected for an unknown site; a slot the hub moved an
appointment into stays busy when the hospital's record still says free; withdrawn, its appointment stays booked."""

from __future__ import annotations

import pytest

from hub.rules.feed import Applied
from hub.store.slots import upsert_slot, withdraw_slot
from tests.harness import Harness
from tests.store.test_slot_moves import DAY, booked, move, row

pytestmark = pytest.mark.anyio


async def test_hospital_slot_records_and_withdrawal(hub: Harness) -> None:
    org, site = await hub.organisation_id(), await hub.site_id()
    start = hub.clock.now() + 5 * DAY
    values = {
        "site_code": "RFH",
        "clinic": "Cardiology outpatients",
        "specialty": "Cardiology",
        "clinician": "Dr A Example",
        "start": start,
        "duration_minutes": 30,
        "mode": "in_person",
        "status": "free",
        "appointment_ref": None,
    }
    async with hub.db.write() as tx:
        created = await upsert_slot(tx, organisation_id=org, ref="S1", values=values, actor="pas", now=start)
        again = await upsert_slot(tx, organisation_id=org, ref="S1", values=values, actor="pas", now=start)
        missing = await upsert_slot(
            tx, organisation_id=org, ref="S2", values={**values, "site_code": "NOPE"}, actor="pas", now=start
        )
    assert (created.outcome, again.outcome, missing.outcome) == ("created", "unchanged", "rejected")
    assert site
    [(patient, appointment, _)] = await booked(hub)
    assert (await move(hub, patient, appointment, created.record_id or 0)).done
    # The hospital has not booked it on its side yet: its record saying free does not free it.
    async with hub.db.write() as tx:
        resent = await upsert_slot(
            tx,
            organisation_id=org,
            ref="S1",
            values={**values, "clinic": "Cardiology outpatients"},
            actor="pas",
            now=start,
        )
        changed = await upsert_slot(
            tx, organisation_id=org, ref="S1", values={**values, "duration_minutes": 25}, actor="pas", now=start
        )
    assert resent.outcome == "unchanged" and changed.outcome == "updated"
    slot = await row(hub, "SELECT status, appointment_id, duration_minutes FROM slots WHERE ref = 'S1'")
    assert slot == {"status": "busy", "appointment_id": appointment, "duration_minutes": 25}
    async with hub.db.write() as tx:
        withdrawn = await withdraw_slot(tx, organisation_id=org, ref="S1", actor="pas", now=start)
        twice = await withdraw_slot(tx, organisation_id=org, ref="S1", actor="pas", now=start)
        unknown = await withdraw_slot(tx, organisation_id=org, ref="S9", actor="pas", now=start)
    assert (withdrawn.outcome, twice.outcome) == ("updated", "unchanged")
    assert unknown == Applied("rejected", errors=({"field": "slot_ref", "message": "no slot with this reference"},))
    # The appointment stays booked where it is: only the hospital moves or cancels it.
    assert (await row(hub, "SELECT status FROM appointments WHERE id = ?", appointment))["status"] == "booked"
