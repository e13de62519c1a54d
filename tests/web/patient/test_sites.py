import html5lib
import pytest

from hub.settings import ROOT
from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio


def links_of(html: str) -> dict[str, str]:
    """Link text -> href."""
    document = html5lib.parse(html, namespaceHTMLElements=False)
    return {" ".join("".join(a.itertext()).split()): a.get("href") or "" for a in document.iter("a")}


async def test_site_page_has_address_directions_parking_and_map_links(hub: Harness) -> None:
    await hub.create_site()
    response = await hub.client.get("/sites/RFH")  # public: no sign-in
    assert response.status_code == 200
    check_page(response.text)
    html = response.text
    assert "<h1>Royal Free Hospital</h1>" in html
    assert "Pond Street, London<br>NW3 2QG" in html
    assert "<h2>How to get there</h2><p>Walk.</p>" in html
    assert "<h2>Parking</h2><p>Car park.</p>" in html
    links = links_of(html)
    assert links["Open in your phone's maps app"] == "geo:51.5533,-0.1652?q=51.5533,-0.1652(Royal%20Free%20Hospital)"
    assert links["See it on OpenStreetMap (opens another website)"] == (
        "https://www.openstreetmap.org/?mlat=51.5533&mlon=-0.1652#map=17/51.5533/-0.1652"
    )
    assert links["Download the site map"] == "/sites/RFH/map?organisation=RAL"
    assert links["020 7794 0500"] == "tel:02077940500"
    assert '<img class="hub-map" src="/sites/RFH/map?organisation=RAL"' in html


async def test_map_downloads_as_an_svg_attachment(hub: Harness) -> None:
    await hub.create_site()
    response = await hub.client.get("/sites/RFH/map")
    assert response.status_code == 200
    assert response.content == (ROOT / "static" / "maps" / "rfh.svg").read_bytes()
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["content-disposition"] == 'attachment; filename="rfh-site-map.svg"'
    assert b"<svg" in response.content


async def test_site_without_a_map_has_no_map_link(hub: Harness) -> None:
    await hub.create_site(code="BCH", name="Barnet Hospital", map_file=None)
    response = await hub.client.get("/sites/BCH")
    assert response.status_code == 200
    check_page(response.text)
    assert "/sites/BCH/map" not in response.text
    assert "Site map" not in response.text
    assert (await hub.client.get("/sites/BCH/map")).status_code == 404


async def test_site_without_coordinates_has_no_geo_links(hub: Harness) -> None:
    await hub.create_site(code="CFH", name="Chase Farm Hospital", latitude=None, longitude=None, map_file=None)
    response = await hub.client.get("/sites/CFH")
    check_page(response.text)
    assert "geo:" not in response.text
    assert "openstreetmap" not in response.text


@pytest.mark.parametrize("map_file", ["missing.svg", "../css/hub.css", "../../settings.toml"])
async def test_map_outside_the_maps_folder_or_missing_is_not_found(hub: Harness, map_file: str) -> None:
    await hub.create_site(code="XYZ", map_file=map_file)
    response = await hub.client.get("/sites/XYZ/map")
    assert response.status_code == 404
    assert "[notify" not in response.text


async def test_unknown_site_is_not_found(hub: Harness) -> None:
    await hub.create_site()
    for path in ("/sites/NOPE", "/sites/NOPE/map", "/sites/" + "R" * 300):
        response = await hub.client.get(path)
        assert response.status_code == 404, path
        check_page(response.text)


@pytest.mark.parametrize("path", ["/sites/%00", "/sites/%00/map", "/sites/NOPE?organisation=%00"])
async def test_a_nul_in_a_site_address_is_not_found(hub: Harness, path: str) -> None:
    # Anyone can type these: PostgreSQL refuses a NUL in a query, which was a 500.
    await hub.create_site()
    response = await hub.client.get(path)
    assert response.status_code == 404, path
    check_page(response.text)


@pytest.mark.parametrize("path", ["/sites/RFH", "/accessibility", "/privacy", "/no-such-page"])
async def test_pages_anyone_may_see_keep_the_signed_in_header(hub: Harness, path: str) -> None:
    await hub.create_site()
    await hub.create_patient()
    await hub.sign_in()
    response = await hub.client.get(path)
    links = links_of(response.text)
    assert links["Sign out"] == "/sign-out", path
    assert links["Contact preferences"] == "/preferences", path
    assert "Margaret Jones" in response.text, path


async def test_site_page_has_a_back_link(hub: Harness) -> None:
    await hub.create_site()
    assert links_of((await hub.client.get("/sites/RFH")).text)["Back"] == "/"
    await hub.create_patient()
    await hub.sign_in()
    assert links_of((await hub.client.get("/sites/RFH")).text)["Back to your appointments"] == "/appointments"
