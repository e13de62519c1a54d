"""Staff organisations in the store: the scope read back, admins' changes within their own trusts, all audited."""

from __future__ import annotations

import pytest

from hub.rules.staff_scope import SYSTEM, Scope
from hub.store.staff import create_staff
from hub.store.staff_scope import get_scope, scoped, set_staff_organisations, staff_in_scope
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def _new(hub: Harness, username: str, codes: list[str], *, hub_wide: bool = False, by: Scope = SYSTEM) -> int:
    await create_staff(
        hub.db,
        username=username,
        role="agent",
        secret=hub.settings.secret_key,
        now=hub.clock.now(),
        hours=24,
        organisations=codes,
        hub_wide=hub_wide,
        by=by,
    )
    row = await hub.db.fetch_one("SELECT id FROM staff_users WHERE username = ?", (username,))
    assert row is not None
    return int(row["id"])


async def _audit(hub: Harness, staff_id: int) -> list[tuple[str, str, str]]:
    rows = await hub.db.fetch_all(
        "SELECT actor_id, action, detail FROM audit_events WHERE record_type = 'staff' AND record_id = ? ORDER BY id",
        (str(staff_id),),
    )
    return [(r["actor_id"], r["action"], r["detail"]) for r in rows]


async def test_the_command_line_creates_accounts_of_any_trusts_and_hub_wide_ones(hub: Harness) -> None:
    a, b = await hub.organisation_id("RAL"), await hub.organisation_id("RVR")
    both = await _new(hub, "ann", ["RAL", "RVR"])
    everything = await _new(hub, "hana", [], hub_wide=True)
    assert await get_scope(hub.db, both) == Scope(both, False, frozenset({a, b}))
    assert (await get_scope(hub.db, everything)).hub_wide
    assert await _audit(hub, both) == [("cli", "staff_created", "organisations RAL,RVR")]
    assert await _audit(hub, everything) == [("cli", "staff_created", "organisations none; hub-wide")]


async def test_an_unknown_trust_is_refused_and_nothing_is_created(hub: Harness) -> None:
    with pytest.raises(ValueError, match="no organisation with the code 'XYZ'"):
        await _new(hub, "ann", ["XYZ"])
    assert await hub.db.fetch_one("SELECT id FROM staff_users") is None


async def test_an_admin_of_one_trust_gives_only_that_trust(hub: Harness) -> None:
    await hub.organisation_id("RAL"), await hub.organisation_id("RVR")
    admin = await _new(hub, "erin", ["RAL"])
    by = await get_scope(hub.db, admin)
    with pytest.raises(ValueError, match="trusts you work for"):
        await _new(hub, "ann", ["RVR"], by=by)
    with pytest.raises(ValueError, match="hub-wide admin"):
        await _new(hub, "ann", [], hub_wide=True, by=by)
    assert await hub.db.fetch_one("SELECT id FROM staff_users WHERE username = 'ann'") is None
    ann = await _new(hub, "ann", ["RAL"], by=by)
    assert await _audit(hub, ann) == [(str(admin), "staff_created", "organisations RAL")]


async def test_an_admin_changes_only_what_they_can_see(hub: Harness) -> None:
    await hub.organisation_id("RAL"), await hub.organisation_id("RVR")
    admin = await get_scope(hub.db, await _new(hub, "erin", ["RAL"]))
    both = await _new(hub, "ann", ["RAL", "RVR"])
    theirs = await _new(hub, "bob", ["RVR"])
    hub_wide = await _new(hub, "hana", [], hub_wide=True)
    assert await staff_in_scope(hub.db, both, admin) and await staff_in_scope(hub.db, admin.staff_id, admin)
    assert not await staff_in_scope(hub.db, theirs, admin) and not await staff_in_scope(hub.db, hub_wide, admin)
    assert not await set_staff_organisations(
        hub.db, staff_id=theirs, codes=["RAL"], hub_wide=False, by=admin, now=hub.clock.now()
    )
    # Taking RAL away from ann leaves her RVR, which this admin neither sees nor may remove.
    assert await set_staff_organisations(hub.db, staff_id=both, codes=[], hub_wide=False, by=admin, now=hub.clock.now())
    assert (await get_scope(hub.db, both)).organisation_ids == {await hub.organisation_id("RVR")}
    assert (await _audit(hub, both))[-1] == (str(admin.staff_id), "staff_organisations_changed", "organisations RVR")
    assert (await _audit(hub, theirs))[-1][1] == "staff_created"


def test_the_condition_limits_to_the_scopes_trusts() -> None:
    assert scoped(SYSTEM, "p.organisation_id") == ("", [])
    assert scoped(Scope(1, False, frozenset()), "p.organisation_id") == (" AND 1 = 0", [])
    assert scoped(Scope(1, False, frozenset({3, 2})), "x") == (" AND x IN (?, ?)", [2, 3])
