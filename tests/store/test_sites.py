"""A site as the patient's site page shows it, with the trust that runs it."""

from __future__ import annotations

import pytest

from hub.store.sites import get_site_by_code
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_a_site_is_found_by_its_code_with_its_trust(hub: Harness) -> None:
    await hub.create_organisation(code="RAL", name="Royal Free London NHS Foundation Trust")
    await hub.create_site(code="RFH", name="Royal Free Hospital")
    await hub.create_site(code="BH", name="Barnet Hospital", map_file=None, latitude=None, longitude=None)
    site = await get_site_by_code(hub.db, "RFH")
    assert site == {
        "code": "RFH",
        "name": "Royal Free Hospital",
        "address": "Pond Street, London",
        "postcode": "NW3 2QG",
        "latitude": 51.5533,
        "longitude": -0.1652,
        "directions": "Walk.",
        "parking": "Car park.",
        "phone": "020 7794 0500",
        "map_file": "rfh.svg",
        "organisation_name": "Royal Free London NHS Foundation Trust",
        "has_uploaded_map": False,  # 0 on SQLite, which compares equal
    }
    barnet = await get_site_by_code(hub.db, "BH")
    assert barnet is not None and (barnet["map_file"], barnet["latitude"], barnet["longitude"]) == (None, None, None)


@pytest.mark.parametrize("code", ["NOPE", "rfh", "RFH ", ""])
async def test_any_other_code_finds_nothing(hub: Harness, code: str) -> None:
    await hub.create_site(code="RFH")
    assert await get_site_by_code(hub.db, code) is None
