"""PUT /api/v1/sites/{code}/map: a site the hospital creates through the API can have a map to download."""

from __future__ import annotations

import pytest

from tests.harness import Harness
from tests.web.api.test_handlers import SITE, Api, api_for, audit, count

pytestmark = pytest.mark.anyio
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


@pytest.fixture
async def api(hub: Harness) -> Api:
    return await api_for(hub, "RAL", "pas-live")


@pytest.fixture
async def other(api: Api) -> Api:
    return await api_for(api.hub, "RVL", "other-pas")


async def test_a_site_created_through_the_api_gets_a_map_patients_can_download(api: Api) -> None:
    assert (await api.put("sites/BARNET", {"name": "Barnet Hospital"})).status_code == 201
    page = await api.hub.client.get("/sites/BARNET")
    assert "Download the site map" not in page.text
    assert (await api.hub.client.get("/sites/BARNET/map")).status_code == 404

    response = await api.put("sites/BARNET/map", content=PNG, headers={"Content-Type": "image/png"})
    assert (response.status_code, response.json()) == (201, {"site_code": "BARNET", "outcome": "created"})

    page = await api.hub.client.get("/sites/BARNET")
    assert "Download the site map" in page.text and 'src="/sites/BARNET/map?organisation=RAL"' in page.text
    download = await api.hub.client.get("/sites/BARNET/map")
    assert download.status_code == 200
    assert download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert 'filename="barnet-site-map.png"' in download.headers["content-disposition"]

    again = await api.put("sites/BARNET/map", content=PNG)
    assert again.json()["outcome"] == "unchanged"
    replaced = await api.put("sites/BARNET/map", content=SVG)
    assert replaced.json()["outcome"] == "updated"
    download = await api.hub.client.get("/sites/BARNET/map")
    assert (download.content, download.headers["content-type"]) == (SVG, "image/svg+xml")
    assert await audit(api.hub, "pas-live") == ["site_created", "site_updated", "put_site_unchanged", "site_updated"]


@pytest.mark.parametrize("body", [b"", b"%PDF-1.4 not an image", b"<html><script>alert(1)</script></html>"])
async def test_a_map_that_is_not_an_image_is_422_and_changes_nothing(api: Api, body: bytes) -> None:
    assert (await api.put("sites/RFH", SITE)).status_code == 201
    response = await api.put("sites/RFH/map", content=body, headers={"Content-Type": "image/png"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "message": "must be a PNG, JPEG or SVG image"}]
    assert await count(api.hub, "site_maps") == 0


async def test_a_map_needs_the_site_first_and_only_its_own_trust_may_send_it(api: Api, other: Api) -> None:
    response = await api.put("sites/NOWHERE/map", content=PNG)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "site_code", "message": "no such site: PUT the site first"}]
    assert (await api.put("sites/RFH", SITE)).status_code == 201
    response = await other.put("sites/RFH/map", content=PNG)  # the other trust has no site RFH of its own
    assert response.status_code == 422
    assert await count(api.hub, "site_maps") == 0
    assert await audit(api.hub, "other-pas") == ["put_site_rejected"]
