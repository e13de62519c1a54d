"""Migration 0009: site codes unique per organisation. A hub upgraded after later migrations (0009 runs last there)
keeps its sites, their ids and everything that points at them; two trusts may then use the same code."""

from pathlib import Path

import pytest

from hub.clock import FixedClock
from hub.db import Database, IntegrityError
from hub.db.migrate import migrate
from tests import factories
from tests.databases import hand_migrated_url

pytestmark = pytest.mark.anyio


@pytest.fixture
async def url(backend: str, tmp_path: Path) -> str:
    return await hand_migrated_url(backend, tmp_path, "site_codes")


async def test_existing_sites_and_what_points_at_them_are_kept(db: Database, clock: FixedClock) -> None:
    assert 9 not in await migrate(db, clock, leave_out={9})
    now = clock.now()
    async with db.write() as tx:
        first = await factories.create_organisation(tx, code="RAL", name="Royal Free")
        second = await factories.create_organisation(tx, code="RAP", name="North Middlesex")
        rfh = await factories.create_site(tx, organisation_id=first, code="RFH")
        nmh = await factories.create_site(tx, organisation_id=second, code="NMH", name="North Middlesex")
        await factories.insert(
            tx,
            "site_maps",
            {"site_id": rfh, "media_type": "image/png", "content": b"\x89PNG", "content_hash": "h", "updated_at": "x"},
            key="site_id",
        )
        patient = await factories.create_patient(tx, organisation_id=first, now=now)
        appointment = await factories.create_appointment(
            tx, organisation_id=first, site_id=rfh, patient_id=patient, now=now
        )
        slot = await factories.create_slot(tx, organisation_id=second, site_id=nmh, now=now, starts_at=now)
    before = await db.fetch_all("SELECT * FROM sites ORDER BY id")

    assert await migrate(db, clock) == [9]

    assert await db.fetch_all("SELECT * FROM sites ORDER BY id") == before
    assert await db.fetch_all("SELECT site_id, content FROM site_maps") == [{"site_id": rfh, "content": b"\x89PNG"}]
    assert await db.fetch_one("SELECT site_id FROM appointments WHERE id = ?", (appointment,)) == {"site_id": rfh}
    assert await db.fetch_one("SELECT site_id FROM slots WHERE id = ?", (slot,)) == {"site_id": nmh}
    async with db.write() as tx:  # the other trust may now take the code; a new site gets a new id
        again = await factories.create_site(tx, organisation_id=second, code="RFH")
        assert again > max(r["id"] for r in before)
    with pytest.raises(IntegrityError):
        async with db.write() as tx:
            await factories.create_site(tx, organisation_id=first, code="RFH")
