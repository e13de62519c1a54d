"""Staff reads of patient data are audited: searches (terms only as a keyed hash), records, tasks, exports and the
audit log itself (F5)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.rules.appointments import ActionPolicy
from hub.store.appointments import request_rebook
from hub.vocabulary import CancelMode
from tests.harness import Harness
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio


async def _reads(hub: Harness) -> list[tuple[str, str, str, str]]:
    rows = await hub.db.fetch_all(
        "SELECT action, actor_id, record_type, record_id, detail FROM audit_events"
        " WHERE action IN ('patients_searched', 'patient_record_viewed', 'task_viewed', 'queue_exported',"
        " 'audit_log_viewed') ORDER BY id"
    )
    return [(r["action"], r["actor_id"], r["record_type"], r["record_id"]) for r in rows]


async def test_every_staff_read_of_patient_data_is_audited(hub: Harness) -> None:
    patient = await hub.create_patient(family_name="Jones", mrn="MRN77")
    appointment = await hub.create_appointment(patient_id=patient)
    policy = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.REQUEST)
    assert (
        await request_rebook(
            hub.db,
            patient_id=patient,
            appointment_id=appointment,
            reason="",
            preferred_times="",
            now=hub.clock.now(),
            policy=policy,
        )
    ).done
    task = await hub.db.fetch_one("SELECT id FROM tasks")
    assert task is not None
    staff = await set_up_staff(hub, "root", "admin")
    me = str(staff.id)
    search = {"family_name": "Jones", "dob-day": "14", "dob-month": "3", "dob-year": "1948"}
    assert (await hub.client.get("/staff/patients", params=search)).status_code == 200
    assert (await hub.client.get("/staff/patients", params={"mrn": "MRN77"})).status_code == 200
    assert (await hub.client.get(f"/staff/patients/{patient}")).status_code == 200
    assert (await hub.client.get(f"/staff/tasks/{task['id']}")).status_code == 200
    assert (await hub.client.get("/staff/queue.csv")).status_code == 200
    assert (await hub.client.get("/staff/admin/audit")).status_code == 200
    assert await _reads(hub) == [
        ("patients_searched", me, "patient", "search"),
        ("patients_searched", me, "patient", "search"),
        ("patient_record_viewed", me, "patient", str(patient)),
        ("task_viewed", me, "task", str(task["id"])),
        ("queue_exported", me, "task", "export"),
        ("audit_log_viewed", me, "audit_log", ""),
    ]
    searches = await hub.db.fetch_all("SELECT detail FROM audit_events WHERE action = 'patients_searched' ORDER BY id")
    for row in searches:
        assert "Jones" not in row["detail"] and "1948" not in row["detail"] and "MRN77" not in row["detail"]
        assert row["detail"].endswith(f"shown {patient}")
    assert searches[0]["detail"] != searches[1]["detail"]  # different terms, different hashes


async def test_an_empty_or_refused_search_is_not_a_read(hub: Harness) -> None:
    await set_up_staff(hub)
    await hub.client.get("/staff/patients")
    await hub.client.get("/staff/patients", params={"family_name": "Jones"})  # no date of birth: refused
    assert await _reads(hub) == []
