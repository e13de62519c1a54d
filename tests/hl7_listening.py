"""A trust whose PAS sends HL7 (tests.hl7_samples' facility and tables), and the hub's MLLP listener on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hub.jobs.hl7_listener import make_receiver, start_listener
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.hl7_samples import SETTINGS


async def hl7_trust(make_hub: MakeHub, **settings: Any) -> Harness:
    hub = await make_hub(**SETTINGS, **settings)
    await hub.create_organisation(code="RAL")
    await hub.create_site(code="RFH")
    return hub


@asynccontextmanager
async def listening(*instances: Harness) -> AsyncIterator[list[int]]:
    """Each instance's listener (its receiver groups what arrives together into one commit); their ports."""
    servers = [
        await start_listener(await make_receiver(hub.db, hub.settings, hub.clock), host="127.0.0.1", port=0)
        for hub in instances
    ]
    try:
        yield [int(server.sockets[0].getsockname()[1]) for server in servers]
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
