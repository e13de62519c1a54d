"""What every console page shares: the staff cookie, and the session behind it timing out."""

from __future__ import annotations

import pytest

from hub.store.staff import create_staff
from tests.conftest import SECRET, MakeHub
from tests.harness import Harness
from tests.staff_harness import PASSWORD, set_up_staff, staff_signed_in

pytestmark = pytest.mark.anyio


async def test_https_uses_a_host_prefixed_secure_cookie(make_hub: MakeHub) -> None:
    hub = await make_hub(base_url="https://hub.example.nhs.uk")
    token = await create_staff(hub.db, username="bob", role="agent", secret=SECRET, now=hub.clock.now(), hours=24)
    response = await hub.post_form(f"/staff/setup/{token}", {"password": PASSWORD, "confirm": PASSWORD})
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-hub_staff=") and "Secure" in header


async def test_idle_timeout_after_thirty_minutes(hub: Harness) -> None:
    await set_up_staff(hub)
    hub.clock.advance(minutes=29)
    assert await staff_signed_in(hub)
    hub.clock.advance(minutes=29)  # 29 minutes since the last request
    assert await staff_signed_in(hub)
    hub.clock.advance(minutes=30)
    response = await hub.client.get("/staff")
    assert response.status_code == 303 and response.headers["location"] == "/staff/sign-in?timed_out=1"
    assert not await staff_signed_in(hub)
