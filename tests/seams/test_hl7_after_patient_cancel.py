"""HL7 after the patient cancelled (immediate mode): an SIU^S13 or S14 carries no status, and the hub's cancel is
not the hospital's word. A reschedule or modification the hospital sends before it has taken in the cancel is
about the booking it still holds, so it is held as a conflict for the booking centre, as the JSON API's update
is; the hospital's own cancel (S15) settles it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import MakeHub
from tests.harness import Harness
from tests.hl7_listening import hl7_trust
from tests.hl7_samples import Client, siu
from tests.seams.conftest import rows
from tests.web.patient.test_slots import post

pytestmark = pytest.mark.anyio


@pytest.fixture
async def trust(make_hub: MakeHub) -> Harness:
    return await hl7_trust(make_hub, cancel_mode="immediate")


async def state(trust: Harness) -> dict[str, Any]:
    [appointment] = await rows(trust, "SELECT status, starts_at, clinician FROM appointments")
    tasks = await rows(trust, "SELECT kind, status FROM tasks ORDER BY id")
    events = [r["kind"] for r in await rows(trust, "SELECT kind FROM events ORDER BY id")]
    return {"appointment": appointment, "tasks": tasks, "events": events}


@pytest.mark.parametrize(
    "update",
    [
        siu("S13", control_id="M2", start="202612160930", sent="20261121110000"),  # moved to another day
        siu("S14", control_id="M2", sent="20261121110000").replace("Patel^Anita", "Okafor^Sam"),  # modified
    ],
    ids=["reschedule", "modification"],
)
async def test_a_status_less_siu_after_the_patients_cancel_is_held_as_a_conflict(
    trust: Harness, port: int, update: str
) -> None:
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"
        [booked] = await rows(trust, "SELECT id, starts_at, clinician FROM appointments")
        await trust.sign_in()
        done = await post(trust, f"/appointments/{booked['id']}/cancel", {"reason": "no_longer_needed"})
        assert done.status_code == 303 and done.headers["location"].endswith("done=cancelled")
        ack = await client.send(update)
        assert (ack.code, ack.errors) == ("AA", []), ack.raw
        held = await state(trust)
        assert held["appointment"] == {
            "status": "cancelled",
            "starts_at": booked["starts_at"],
            "clinician": booked["clinician"],
        }
        assert held["tasks"] == [{"kind": "conflict", "status": "open"}]
        assert held["events"][-2:] == ["appointment.cancelled_by_patient", "appointment.conflict"]
        # The hospital takes the cancel in: its own cancel settles the conflict, and the appointment stays cancelled.
        ack = await client.send(siu("S15", control_id="M3", sent="20261121120000"))
        assert (ack.code, ack.errors) == ("AA", []), ack.raw
    settled = await state(trust)
    assert settled["appointment"]["status"] == "cancelled"
    assert settled["tasks"] == [{"kind": "conflict", "status": "closed"}]


async def test_a_modification_after_a_held_reschedule_builds_on_the_held_one(trust: Harness, port: int) -> None:
    # The hospital moved the cancelled appointment (held: the hub's cancel is not in its record yet), then changes
    # only the clinician (an S14 with no timing). Its record is the held one with that change: the new time stays,
    # so an agent accepting the hospital's version books the patient at the time the hospital holds.
    async with Client(port) as client:
        assert (await client.send(siu())).code == "AA"
        [booked] = await rows(trust, "SELECT id FROM appointments")
        await trust.sign_in()
        assert (await post(trust, f"/appointments/{booked['id']}/cancel", {"reason": "no_longer_needed"})).status_code
        moved = siu("S13", control_id="M2", start="202612160930", sent="20261121110000")
        assert (await client.send(moved)).code == "AA"
        modified = siu("S14", control_id="M3", start="", sent="20261121120000").replace("Patel^Anita", "Okafor^Sam")
        ack = await client.send(modified)
        assert (ack.code, ack.errors) == ("AA", []), ack.raw
    [row] = await rows(trust, "SELECT status, starts_at, held_update FROM appointments")
    held = json.loads(row["held_update"])
    assert (held["status"], held["starts_at"], held["clinician"]) == (
        "booked",
        "2026-12-16T09:30:00.000000Z",
        "Dr Sam Okafor",
    )
    assert (row["status"], row["starts_at"]) == ("cancelled", "2026-12-14T09:30:00.000000Z")
