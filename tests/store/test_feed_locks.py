"""Which locks a hospital record takes on PostgreSQL: its patient, found by its references (a letter's among them,
by a number a T10 has since replaced too), and a key per reference it may create."""

from __future__ import annotations

import asyncio

import pytest

from hub.store.feed_locks import Touches, appointment_ref_key, feed_write_all, patient_ref_key
from hub.store.letters import upsert_letter
from tests.factories import PDF
from tests.harness import Harness
from tests.holding import held_write, touch_patient

pytestmark = pytest.mark.anyio


def test_a_record_locks_a_key_per_reference_it_may_create() -> None:
    touches = Touches(3, "MRN1", "A1", letter_ref="DOC-78", replaces="DOC-77")
    assert touches.keys() == [
        patient_ref_key(3, "MRN1"),
        appointment_ref_key(3, "A1"),
        "letter_ref:3:DOC-78",
        "letter_ref:3:DOC-77",
    ]
    assert Touches(3, None).keys() == []


async def _letter_renamed(hub: Harness) -> tuple[int, int]:
    """A patient's letter filed as DOC-77, then replaced (an MDM T10) as DOC-78: (organisation, patient)."""
    patient = await hub.create_patient(mrn="MRN1")
    org = await hub.organisation_id()
    async with hub.db.write() as tx:
        for ref, replaces in (("DOC-77", None), ("DOC-78", "DOC-77")):
            applied = await upsert_letter(
                tx,
                organisation_id=org,
                ref=ref,
                replaces=replaces,
                patient_ref="MRN1",
                appointment_ref=None,
                kind="clinic_letter",
                title="Clinic letter",
                content=PDF + ref.encode(),
                actor="hl7:PAS",
                now=hub.clock.now(),
            )
            assert applied.outcome in ("created", "updated")
    return org, patient


async def test_a_record_replacing_a_replaced_number_locks_the_patient_of_the_letter_it_became(
    hub: Harness, backend: str
) -> None:
    # A T10 naming DOC-77 (now DOC-78) as the document it replaces may change that letter: it waits for its patient's
    # own write in flight, as a record naming DOC-78 does, though it names neither the patient nor an appointment.
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    org, patient = await _letter_renamed(hub)

    async def record(touches: Touches) -> None:
        async with feed_write_all(hub.db, [touches]):
            pass

    for touches in (
        Touches(org, None, letter_ref="DOC-79", replaces="DOC-77"),
        Touches(org, None, letter_ref="DOC-77"),
        Touches(org, None, letter_ref="DOC-78"),
    ):
        async with held_write(hub.db, patient=patient, doing=touch_patient(patient)):
            waiting = asyncio.create_task(record(touches))
            await asyncio.sleep(0.3)
            assert not waiting.done(), touches
        await asyncio.wait_for(waiting, timeout=10)


async def test_a_record_about_another_patient_waits_for_no_letters_patient(hub: Harness, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time")
    org, patient = await _letter_renamed(hub)
    async with held_write(hub.db, patient=patient, doing=touch_patient(patient)):
        async with asyncio.timeout(5):
            async with feed_write_all(hub.db, [Touches(org, None, letter_ref="DOC-90", replaces="DOC-89")]):
                pass
