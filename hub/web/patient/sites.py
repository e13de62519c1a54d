"""Hospital sites: how to get there, parking, and a map to download. Public: no personal data."""

from __future__ import annotations

from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from hub.store.sites import get_site_by_code, get_site_map
from hub.web.common import STATIC, hub_of, render, signed_in_patient


async def site_page(request: Request) -> Response:
    site = await get_site_by_code(hub_of(request).db, request.path_params["code"][:40])
    if site is None:
        raise HTTPException(404)
    await signed_in_patient(request)
    links = {}
    if site["latitude"] is not None and site["longitude"] is not None:
        lat, lon = site["latitude"], site["longitude"]
        links["geo"] = f"geo:{lat},{lon}?q={lat},{lon}({quote(site['name'])})"
        links["osm"] = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"
    return render(request, "views/patient/site.html", {"site": site, "links": links})


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/svg+xml": ".svg"}


async def site_map(request: Request) -> Response:
    code = request.path_params["code"][:40]
    uploaded = await get_site_map(hub_of(request).db, code)
    if uploaded is not None:  # sent by the hospital through the API
        filename = f"{code.lower()}-site-map{_EXTENSIONS.get(uploaded['media_type'], '')}"
        return Response(
            bytes(uploaded["content"]),
            media_type=uploaded["media_type"],
            headers={
                "Content-Disposition": f'attachment; filename="{quote(filename)}"',
                "Cache-Control": "public, max-age=3600",
            },
        )
    site = await get_site_by_code(hub_of(request).db, code)
    if site is None or not site["map_file"]:
        raise HTTPException(404)
    path = (STATIC / "maps" / site["map_file"]).resolve()
    if path.parent != (STATIC / "maps").resolve() or not path.is_file():
        raise HTTPException(404)
    filename = f"{site['code'].lower()}-site-map{path.suffix}"
    return FileResponse(path, filename=filename, headers={"Cache-Control": "public, max-age=86400"})
