"""A trust whose PAS talks HL7 over TCP (the hl7 package's MLLP client) and the JSON API, with helpers the seams
tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from hub.jobs.hl7_listener import make_receiver, start_listener
from hub.rules.appointments import ActionPolicy
from hub.rules.slots import Window
from hub.vocabulary import CancelMode
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.hl7_samples import SETTINGS

POLICY = ActionPolicy(cutoff=timedelta(hours=24), rebook_limit=2, cancel_mode=CancelMode.IMMEDIATE)
WINDOW = Window(cutoff=timedelta(hours=24), days=42)


@pytest.fixture
async def trust(make_hub: MakeHub) -> Harness:
    hub = await make_hub(**SETTINGS, **{"slots.earlier_batch": 1})
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    return hub


@pytest.fixture
async def port(trust: Harness) -> AsyncIterator[int]:
    receiver = await make_receiver(trust.db, trust.settings, trust.clock)
    server = await start_listener(receiver, host="127.0.0.1", port=0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def rows(trust: Harness, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await trust.db.fetch_all(sql, params)
