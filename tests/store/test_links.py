"""Which patient a stable link reaches, and rotating a patient's link (hub/store/links.py)."""

from __future__ import annotations

import pytest

from hub.links import LegacyLink, new_link_id
from hub.store.links import patient_for_link, rotate_patient_link
from hub.vocabulary import ActorType
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def _count(hub: Harness, where: str) -> int:
    row = await hub.db.fetch_one(f"SELECT COUNT(*) AS n FROM audit_events WHERE {where}")
    assert row is not None
    return int(row["n"])


async def test_a_link_id_or_an_unrotated_patient_id_reaches_the_patient_and_nothing_else_does(hub: Harness) -> None:
    patient = await hub.create_patient()
    row = await hub.db.fetch_one("SELECT link_id FROM patients WHERE id = ?", (patient,))
    assert row is not None
    assert await patient_for_link(hub.db, row["link_id"]) == patient
    assert await patient_for_link(hub.db, LegacyLink(patient)) == patient
    assert await patient_for_link(hub.db, new_link_id()) is None
    assert await patient_for_link(hub.db, LegacyLink(patient + 1)) is None


async def test_rotation_replaces_the_link_id_and_retires_the_old_forms(hub: Harness) -> None:
    patient = await hub.create_patient()
    row = await hub.db.fetch_one("SELECT link_id FROM patients WHERE id = ?", (patient,))
    assert row is not None
    new = await rotate_patient_link(
        hub.db, patient_id=patient, actor_type=ActorType.AGENT, actor_id=7, now=hub.clock.now()
    )
    assert new is not None and new != row["link_id"]
    assert await patient_for_link(hub.db, new) == patient
    assert await patient_for_link(hub.db, row["link_id"]) is None
    assert await patient_for_link(hub.db, LegacyLink(patient)) is None
    assert await _count(hub, f"action = 'patient_link_rotated' AND record_id = '{patient}'") == 1


async def test_rotating_a_patient_that_does_not_exist_changes_nothing(hub: Harness) -> None:
    assert (
        await rotate_patient_link(
            hub.db, patient_id=999, actor_type=ActorType.SYSTEM, actor_id="t", now=hub.clock.now()
        )
        is None
    )
    assert await _count(hub, "action = 'patient_link_rotated'") == 0
