"""Queries on sites. A site's code is its trust's own: two trusts may each have a site "MAIN"."""

from __future__ import annotations

from hub.db import Database, Row

_SITE = (
    "SELECT s.id, s.code, s.name, s.address, s.postcode, s.latitude, s.longitude, s.directions, s.parking,"
    " s.phone, s.map_file, o.code AS organisation_code, o.name AS organisation_name,"
    " EXISTS (SELECT 1 FROM site_maps m WHERE m.site_id = s.id) AS has_uploaded_map FROM sites s"
    " JOIN organisations o ON o.id = s.organisation_id WHERE s.code = ?"
)


async def find_sites(db: Database, code: str, *, organisation_code: str | None = None) -> list[Row]:
    """The site with this code in that organisation; without one, every organisation's site with this code (a
    link made before codes were per organisation), in organisation order."""
    if organisation_code is not None:
        return await db.fetch_all(_SITE + " AND o.code = ?", (code, organisation_code))
    return await db.fetch_all(_SITE + " ORDER BY o.code, s.id", (code,))


async def get_site_map(db: Database, site_id: int) -> Row | None:
    """The map the hospital sent through the API: media_type and content."""
    return await db.fetch_one("SELECT media_type, content FROM site_maps WHERE site_id = ?", (site_id,))
