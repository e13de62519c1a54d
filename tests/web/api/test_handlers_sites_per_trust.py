"""Site codes belong to a trust: two trusts may both have a site "MAIN", and each trust's key, appointments,
slots and patients see only their own. Another trust's code is "not found" to a key, never "forbidden"."""

from __future__ import annotations

import pytest

from tests.harness import Harness
from tests.web.api.test_handlers import APPOINTMENT, SITE, Api, api_for, count
from tests.web.api.test_handlers_site_map import PNG
from tests.web.patient.test_sites import links_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def first(hub: Harness) -> Api:
    return await api_for(hub, "RAL", "pas-live")


@pytest.fixture
async def second(first: Api) -> Api:
    return await api_for(first.hub, "RVL", "other-pas")


async def site_of(hub: Harness, appointment_ref: str) -> dict[str, str]:
    row = await hub.db.fetch_one(
        "SELECT s.name, o.code AS organisation_code, s.code FROM appointments a JOIN sites s ON s.id = a.site_id"
        " JOIN organisations o ON o.id = s.organisation_id WHERE a.ref = ?",
        (appointment_ref,),
    )
    assert row is not None
    return dict(row)


async def test_two_trusts_each_create_and_update_their_own_site_main(first: Api, second: Api) -> None:
    assert (await first.put("sites/MAIN", {**SITE, "name": "Royal Free Hospital"})).status_code == 201
    assert (await second.put("sites/MAIN", {**SITE, "name": "Other Main Hospital"})).status_code == 201
    assert (await second.put("sites/MAIN", {**SITE, "name": "Other Main Hospital, renamed"})).status_code == 200
    names = await first.hub.db.fetch_all(
        "SELECT o.code, s.name FROM sites s JOIN organisations o ON o.id = s.organisation_id"
        " WHERE s.code = 'MAIN' ORDER BY o.code"
    )
    assert names == [
        {"code": "RAL", "name": "Royal Free Hospital"},
        {"code": "RVL", "name": "Other Main Hospital, renamed"},
    ]
    # Each trust's map goes to its own site.
    assert (await first.put("sites/MAIN/map", content=PNG)).status_code == 201
    maps = await first.hub.db.fetch_all(
        "SELECT o.code FROM site_maps m JOIN sites s ON s.id = m.site_id"
        " JOIN organisations o ON o.id = s.organisation_id"
    )
    assert maps == [{"code": "RAL"}]


async def test_another_trusts_code_is_not_found_and_its_put_creates_its_own(first: Api, second: Api) -> None:
    assert (await first.put("sites/RFH", SITE)).status_code == 201
    # A map for a code only the other trust has: no such site, as for a code nobody has.
    response = await second.put("sites/RFH/map", content=PNG)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "site_code", "message": "no such site: PUT the site first"}]
    assert (await second.put("sites/RFH", {**SITE, "name": "Mine"})).status_code == 201
    assert await count(first.hub, "sites", "code = 'RFH' AND name = ?", (SITE["name"],)) == 1
    assert await count(first.hub, "sites", "code = 'RFH' AND name = 'Mine'") == 1


async def test_appointments_of_each_trust_land_at_their_own_site(first: Api, second: Api) -> None:
    await first.setup(site="MAIN")
    await second.setup(site="MAIN", mobile="07700 900002", email="other@example.com")
    await second.put("sites/MAIN", {**SITE, "name": "Other Main Hospital"})
    assert (await first.put("appointments/A1", {**APPOINTMENT, "site_code": "MAIN"})).status_code == 201
    assert (await second.put("appointments/B1", {**APPOINTMENT, "site_code": "MAIN"})).status_code == 201
    assert await site_of(first.hub, "A1") == {"name": SITE["name"], "organisation_code": "RAL", "code": "MAIN"}
    assert await site_of(first.hub, "B1") == {"name": "Other Main Hospital", "organisation_code": "RVL", "code": "MAIN"}
    # A code only the other trust has is no site of this one.
    await second.put("sites/ONLYB", {**SITE, "name": "Only B"})
    response = await first.put("appointments/A2", {**APPOINTMENT, "site_code": "ONLYB"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["site_code"]


async def test_each_patients_site_page_is_their_own_trusts(first: Api, second: Api) -> None:
    hub = first.hub
    await first.setup(site="MAIN")
    await second.setup(site="MAIN", mobile="07700 900002", email="other@example.com")
    await second.put("sites/MAIN", {**SITE, "name": "Other Main Hospital", "directions": "Turn left."})
    assert (await first.put("appointments/A1", {**APPOINTMENT, "site_code": "MAIN"})).status_code == 201
    assert (await second.put("appointments/B1", {**APPOINTMENT, "site_code": "MAIN"})).status_code == 201

    for contact, name, ref in (("07700 900001", SITE["name"], "A1"), ("07700 900002", "Other Main Hospital", "B1")):
        await hub.sign_in(contact)
        row = await hub.db.fetch_one("SELECT id FROM appointments WHERE ref = ?", (ref,))
        assert row is not None
        page = await hub.client.get(f"/appointments/{row['id']}")
        site_link = links_of(page.text)[f"Directions, parking and a site map for {name}"]
        site_page = await hub.get_page(site_link)
        assert f"<h1>{name}</h1>" in site_page.text
        await hub.client.post("/sign-out", data={"csrf_token": await hub.csrf("/sign-out")})

    # The code alone names two sites: the page lets the patient choose, naming each trust.
    choice = await hub.get_page("/sites/MAIN")
    links = links_of(choice.text)
    assert links[f"{SITE['name']} (Trust RAL)"] == "/sites/MAIN?organisation=RAL"
    assert links["Other Main Hospital (Trust RVL)"] == "/sites/MAIN?organisation=RVL"
    await hub.get_page("/sites/MAIN?organisation=NOPE", status=404)
    assert (await hub.client.get("/sites/MAIN/map")).status_code == 404
