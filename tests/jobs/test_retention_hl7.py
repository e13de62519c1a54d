"""The HL7 listener's answers are kept as long as everything else: 24 months."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.jobs.retention import purge_old_records
from hub.store.hl7 import get_answer, record_answer
from tests.conftest import MakeHub

pytestmark = pytest.mark.anyio


async def test_answers_older_than_24_months_are_removed(make_hub: MakeHub) -> None:
    hub = await make_hub()
    now = hub.clock.now()
    async with hub.db.write() as tx:
        for control_id, age in (("OLD", timedelta(days=740)), ("NEW", timedelta(days=700))):
            await record_answer(
                tx,
                facility="PAS",
                control_id=control_id,
                message_type="SIU^S12",
                code="AA",
                ack=control_id,
                now=now - age,
            )
    await purge_old_records(hub.db, now=now)
    async with hub.db.write() as tx:
        assert (await get_answer(tx, "PAS", "OLD"), await get_answer(tx, "PAS", "NEW")) == (None, "NEW")
