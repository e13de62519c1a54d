"""A site as the patient's site page shows it, with the trust that runs it; codes are each trust's own."""

from __future__ import annotations

import pytest

from hub.store.sites import find_sites
from tests import factories
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_a_site_is_found_by_its_code_with_its_trust(hub: Harness) -> None:
    await hub.create_organisation(code="RAL", name="Royal Free London NHS Foundation Trust")
    site_id = await hub.create_site(code="RFH", name="Royal Free Hospital")
    await hub.create_site(code="BH", name="Barnet Hospital", map_file=None, latitude=None, longitude=None)
    assert await find_sites(hub.db, "RFH") == [
        {
            "id": site_id,
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
            "organisation_code": "RAL",
            "organisation_name": "Royal Free London NHS Foundation Trust",
            "has_uploaded_map": False,  # 0 on SQLite, which compares equal
        }
    ]
    [barnet] = await find_sites(hub.db, "BH", organisation_code="RAL")
    assert (barnet["map_file"], barnet["latitude"], barnet["longitude"]) == (None, None, None)


async def test_two_trusts_sites_of_one_code_are_told_apart_by_the_trust(hub: Harness) -> None:
    await hub.create_site(code="MAIN", name="Royal Free Hospital")
    other = await hub.create_organisation(code="RVL", name="Other Trust")
    async with hub.db.write() as tx:
        await factories.create_site(tx, organisation_id=other, code="MAIN", name="Other Main Hospital")
    assert [s["name"] for s in await find_sites(hub.db, "MAIN")] == ["Royal Free Hospital", "Other Main Hospital"]
    assert [s["name"] for s in await find_sites(hub.db, "MAIN", organisation_code="RVL")] == ["Other Main Hospital"]
    assert await find_sites(hub.db, "MAIN", organisation_code="NOPE") == []


@pytest.mark.parametrize("code", ["NOPE", "rfh", "RFH ", ""])
async def test_any_other_code_finds_nothing(hub: Harness, code: str) -> None:
    await hub.create_site(code="RFH")
    assert await find_sites(hub.db, code) == []
