"""Integration API keys: shown once, stored only as a hash, one trust each, revocable."""

from __future__ import annotations

import pytest

from hub.store.api_keys import ApiKey, create_api_key, get_api_key, revoke_api_key
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_a_new_key_is_shown_once_and_only_its_hash_is_kept(hub: Harness) -> None:
    org = await hub.create_organisation(code="RAL")
    key = await create_api_key(hub.db, organisation_code="RAL", name="pas", now=hub.clock.now())
    assert key.startswith("hub_") and len(key) > 40
    [row] = await hub.db.fetch_all("SELECT * FROM api_keys")
    assert key not in str(row) and row["prefix"] == key[:8]
    found = await get_api_key(hub.db, key)
    assert found == ApiKey(int(row["id"]), org, "RAL", "pas")
    [audit] = await hub.db.fetch_all("SELECT action, record_id, detail FROM audit_events")
    assert audit == {"action": "api_key_created", "record_id": str(row["id"]), "detail": "pas"}


async def test_names_are_per_trust_and_a_trust_must_exist(hub: Harness) -> None:
    await hub.create_organisation(code="RAL")
    await hub.create_organisation(code="RVR", name="Other Trust")
    await create_api_key(hub.db, organisation_code="RAL", name="pas", now=hub.clock.now())
    await create_api_key(hub.db, organisation_code="RVR", name="pas", now=hub.clock.now())
    with pytest.raises(ValueError, match="already has a key named pas"):
        await create_api_key(hub.db, organisation_code="RAL", name="pas", now=hub.clock.now())
    with pytest.raises(LookupError, match="XYZ"):
        await create_api_key(hub.db, organisation_code="XYZ", name="pas", now=hub.clock.now())


@pytest.mark.parametrize("key", ["", "hub_", "hub_not-a-real-key", "pas-key", "hub_" + "x" * 200])
async def test_anything_but_a_live_key_finds_nothing(hub: Harness, key: str) -> None:
    await hub.create_api_key()
    assert await get_api_key(hub.db, key) is None


async def test_a_revoked_key_opens_nothing_and_revoking_twice_changes_nothing(hub: Harness) -> None:
    key = await hub.create_api_key(organisation_code="RAL", name="pas")
    other = await hub.create_api_key(organisation_code="RAL", name="imaging")
    assert await revoke_api_key(hub.db, organisation_code="RAL", name="pas", now=hub.clock.now())
    assert await get_api_key(hub.db, key) is None
    assert await get_api_key(hub.db, other) is not None
    assert not await revoke_api_key(hub.db, organisation_code="RAL", name="pas", now=hub.clock.now())
    assert not await revoke_api_key(hub.db, organisation_code="RVR", name="imaging", now=hub.clock.now())
    actions = [r["action"] for r in await hub.db.fetch_all("SELECT action FROM audit_events ORDER BY id")]
    assert actions == ["api_key_created", "api_key_created", "api_key_revoked"]
