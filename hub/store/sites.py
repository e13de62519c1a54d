"""Queries on sites."""

from __future__ import annotations

from hub.db import Database, Row


async def get_site_by_code(db: Database, code: str) -> Row | None:
    return await db.fetch_one(
        "SELECT s.code, s.name, s.address, s.postcode, s.latitude, s.longitude, s.directions, s.parking,"
        " s.phone, s.map_file, o.name AS organisation_name FROM sites s"
        " JOIN organisations o ON o.id = s.organisation_id WHERE s.code = ?",
        (code,),
    )
