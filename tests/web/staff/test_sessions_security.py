"""Staff sessions: an absolute lifetime however busy, and form tokens bound to the staff session."""

from __future__ import annotations

import pytest

from tests.harness import Harness
from tests.staff_harness import set_up_staff, sign_in_staff, sign_out_staff, staff_signed_in

pytestmark = pytest.mark.anyio


async def test_a_busy_staff_session_still_ends_after_twelve_hours(hub: Harness) -> None:
    await set_up_staff(hub)
    assert hub.settings.staff.session_absolute_hours == 12
    for _ in range(71):  # a request every 10 minutes: never idle
        hub.clock.advance(minutes=10)
        assert await staff_signed_in(hub)
    hub.clock.advance(minutes=10)  # 12 hours since sign-in
    response = await hub.client.get("/staff")
    assert response.status_code == 303 and response.headers["location"].startswith("/staff/sign-in")


async def test_a_form_token_from_an_earlier_staff_session_is_refused(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    old = await hub.csrf("/staff/sign-in")
    await sign_out_staff(hub)
    anonymous = await hub.csrf("/staff/sign-in")
    await sign_in_staff(hub, staff)
    for token in (old, anonymous):
        response = await hub.client.post("/staff/sign-out", data={"csrf_token": token})
        assert response.status_code == 403
    assert await staff_signed_in(hub)
    assert (await hub.post_form("/staff/sign-out", {}, csrf_from="/staff/sign-in")).status_code == 303
