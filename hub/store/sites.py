"""Queries on sites."""

from __future__ import annotations

from hub.db import Database, Row


async def get_site_by_code(db: Database, code: str) -> Row | None:
    return await db.fetch_one(
        "SELECT s.code, s.name, s.address, s.postcode, s.latitude, s.longitude, s.directions, s.parking,"
        " s.phone, s.map_file, o.name AS organisation_name,"
        " EXISTS (SELECT 1 FROM site_maps m WHERE m.site_id = s.id) AS has_uploaded_map FROM sites s"
        " JOIN organisations o ON o.id = s.organisation_id WHERE s.code = ?",
        (code,),
    )


async def get_site_map(db: Database, code: str) -> Row | None:
    """The map the hospital sent through the API: media_type and content."""
    return await db.fetch_one(
        "SELECT m.media_type, m.content FROM site_maps m JOIN sites s ON s.id = m.site_id WHERE s.code = ?", (code,)
    )


async def list_organisation_names(db: Database) -> list[str]:
    """The trusts the hub serves, by name: the privacy notice names them as responsible for patients' data."""
    return [r["name"] for r in await db.fetch_all("SELECT name FROM organisations ORDER BY name")]
