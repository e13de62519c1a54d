"""Hospital sites: how to get there, parking, and a map to download. Public: no personal data.

A site is named by its trust's code and its own (`/sites/MAIN?organisation=RAL`): two trusts may both have a site
"MAIN". A link without the trust (made before codes were per trust) shows the site when one trust has the code,
and lets the patient choose when several do."""

from __future__ import annotations

from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from hub.db import Row
from hub.rules.text import printable
from hub.store.sites import find_sites, get_site_map
from hub.web.common import STATIC, hub_of, render, signed_in_patient


async def _sites(request: Request) -> list[Row]:
    # A public URL anyone can type: what no code holds goes before the query (PostgreSQL refuses a NUL outright).
    organisation = printable(request.query_params.get("organisation", ""))[:40]
    return await find_sites(
        hub_of(request).db,
        printable(request.path_params["code"])[:40],
        organisation_code=organisation or None,
    )


async def site_page(request: Request) -> Response:
    sites = await _sites(request)
    if not sites:
        raise HTTPException(404)
    await signed_in_patient(request)
    if len(sites) > 1:
        return render(request, "views/patient/site_choice.html", {"sites": sites})
    site = sites[0]
    links = {}
    if site["latitude"] is not None and site["longitude"] is not None:
        lat, lon = site["latitude"], site["longitude"]
        links["geo"] = f"geo:{lat},{lon}?q={lat},{lon}({quote(site['name'])})"
        links["osm"] = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"
    return render(request, "views/patient/site.html", {"site": site, "links": links})


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/svg+xml": ".svg"}


async def site_map(request: Request) -> Response:
    sites = await _sites(request)
    if len(sites) != 1:  # no such site, or several trusts' sites of this code and none chosen
        raise HTTPException(404)
    site = sites[0]
    uploaded = await get_site_map(hub_of(request).db, site["id"])
    if uploaded is not None:  # sent by the hospital through the API
        filename = f"{site['code'].lower()}-site-map{_EXTENSIONS.get(uploaded['media_type'], '')}"
        return Response(
            bytes(uploaded["content"]),
            media_type=uploaded["media_type"],
            headers={
                "Content-Disposition": f'attachment; filename="{quote(filename)}"',
                "Cache-Control": "public, max-age=3600",
            },
        )
    if not site["map_file"]:
        raise HTTPException(404)
    path = (STATIC / "maps" / site["map_file"]).resolve()
    if path.parent != (STATIC / "maps").resolve() or not path.is_file():
        raise HTTPException(404)
    filename = f"{site['code'].lower()}-site-map{path.suffix}"
    return FileResponse(path, filename=filename, headers={"Cache-Control": "public, max-age=86400"})
