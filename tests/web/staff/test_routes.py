"""The console's route table as a whole: read from the app, so a route added later is held to the same rules.

Every console page sends a signed-out browser to the sign-in page (bar the few that are the way in), every form
refuses a post without this browser's CSRF token, and admin pages are for admins only.
"""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from hub.web.staff.routes import staff_routes
from tests.harness import Harness
from tests.staff_harness import set_up_staff

pytestmark = pytest.mark.anyio
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
# The way in: pages a browser sees before it is signed in (each checks its own stage of sign-in).
WAY_IN = {"/staff/sign-in", "/staff/sign-in/code", "/staff/enrol", "/staff/setup/{token}"}
ADMIN_ONLY = ("/staff/admin/", "/staff/queue.csv")


def _routes(method: str) -> list[str]:
    found = [r.path for r in staff_routes() if isinstance(r, Route) and r.methods and method in r.methods]
    assert found, method
    return found


def _url(path: str) -> str:
    return _PARAM.sub(lambda m: "made-up-token" if m.group(1) == "token" else "1", path)


async def test_the_app_serves_the_console_routes_all_under_staff_and_the_way_in_is_listed_here(hub: Harness) -> None:
    console = [(r.path, r.methods) for r in staff_routes() if isinstance(r, Route)]  # the app registered record_id
    assert len(console) == len(staff_routes()) and all(path.startswith("/staff") for path, _ in console)
    served = [(r.path, r.methods) for r in hub.app.routes if isinstance(r, Route) and r.path.startswith("/staff")]
    assert served == console
    assert set(_routes("GET")) >= WAY_IN


async def test_every_console_page_sends_a_signed_out_browser_to_sign_in(hub: Harness) -> None:
    for path in _routes("GET"):
        response = await hub.client.get(_url(path))
        if path in WAY_IN:
            assert response.status_code in (200, 303, 404), path  # its own stage check, or an unknown token
            if response.status_code == 303:
                assert response.headers["location"] == "/staff/sign-in", path
            continue
        assert response.status_code == 303, f"{path}: {response.status_code}"
        assert response.headers["location"] == "/staff/sign-in", path


async def test_every_console_form_refuses_a_post_without_this_browsers_token(hub: Harness) -> None:
    await set_up_staff(hub, "root", "admin")
    before = await hub.db.fetch_all("SELECT id, action FROM audit_events ORDER BY id")
    for path in _routes("POST"):
        for data in ({}, {"csrf_token": "forged"}):
            response = await hub.client.post(_url(path), data=data)
            assert response.status_code == 403, f"{path} with {data}: {response.status_code}"
    assert await hub.db.fetch_all("SELECT id, action FROM audit_events ORDER BY id") == before


async def test_an_agent_is_refused_every_admin_page_and_form(hub: Harness) -> None:
    await set_up_staff(hub, "alice", "agent")
    token = await hub.csrf("/staff/sign-in")
    for path in [p for p in _routes("GET") if p.startswith(ADMIN_ONLY)]:
        assert (await hub.client.get(_url(path))).status_code == 403, path
    for path in [p for p in _routes("POST") if p.startswith(ADMIN_ONLY)]:
        assert (await hub.client.post(_url(path), data={"csrf_token": token})).status_code == 403, path
