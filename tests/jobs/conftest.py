"""A trust whose PAS sends HL7, and the hub's MLLP listener for it (tests.hl7_listening)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import MakeHub
from tests.harness import Harness
from tests.hl7_listening import hl7_trust, listening


@pytest.fixture
async def trust(make_hub: MakeHub) -> Harness:
    return await hl7_trust(make_hub)


@pytest.fixture
async def port(trust: Harness) -> AsyncIterator[int]:
    async with listening(trust) as [port]:
        yield port
