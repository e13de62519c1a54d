"""Staff accounts for the console tests: created as `create-staff` does, set up and enrolled over HTTP."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import pyotp

from hub.store.staff import create_staff
from tests.harness import Harness

PASSWORD = "correct horse battery staple"
WRONG = "The username or password is not right"
_SECRET = re.compile(r'data-secret="([A-Z2-7]+)"')


@dataclass
class Staff:
    id: int
    username: str
    password: str
    secret: str


def code_for(hub: Harness, secret: str, *, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(hub.clock.now().timestamp() + 30 * steps)


async def set_up_staff(
    hub: Harness,
    username: str = "alice",
    role: str = "agent",
    password: str = PASSWORD,
    *,
    organisations: Sequence[str] | None = None,
    hub_wide: bool = False,
) -> Staff:
    """Creates the account, chooses its password through the set-up link and enrols the authenticator:
    the hub's client ends up signed in as this person. Unless told otherwise they work for the test trust (the
    one the harness's factories use)."""
    if organisations is None:
        organisations = [] if hub_wide else [await _default_trust(hub)]
    token = await create_staff(
        hub.db,
        username=username,
        role=role,
        secret=hub.settings.secret_key,
        now=hub.clock.now(),
        hours=24,
        organisations=organisations,
        hub_wide=hub_wide,
    )
    response = await hub.post_form(f"/staff/setup/{token}", {"password": password, "confirm": password})
    assert response.status_code == 303 and response.headers["location"] == "/staff/enrol", response.text
    page = await hub.client.get("/staff/enrol")
    match = _SECRET.search(page.text)
    assert match, page.text
    secret = match.group(1)
    response = await hub.post_form("/staff/enrol", {"code": code_for(hub, secret)})
    assert response.status_code == 303 and response.headers["location"] == "/staff", response.text
    row = await hub.db.fetch_one("SELECT id FROM staff_users WHERE username = ?", (username,))
    assert row is not None
    return Staff(int(row["id"]), username, password, secret)


async def _default_trust(hub: Harness) -> str:
    row = await hub.db.fetch_one("SELECT code FROM organisations WHERE id = ?", (await hub.organisation_id(),))
    assert row is not None
    return str(row["code"])


async def staff_signed_in(hub: Harness) -> bool:
    return (await hub.client.get("/staff")).status_code == 200


async def sign_out_staff(hub: Harness) -> None:
    response = await hub.post_form("/staff/sign-out", {}, csrf_from="/staff/sign-in")
    assert response.status_code == 303


async def submit_password(hub: Harness, username: str, password: str) -> httpx.Response:
    return await hub.post_form("/staff/sign-in", {"username": username, "password": password})


async def submit_totp(hub: Harness, code: str) -> httpx.Response:
    return await hub.post_form("/staff/sign-in/code", {"code": code}, csrf_from="/staff/sign-in")


async def sign_in_staff(hub: Harness, staff: Staff) -> None:
    """A fresh sign-in; moves the clock to the next 30-second step so the code has not been used yet."""
    hub.clock.advance(seconds=30)
    response = await submit_password(hub, staff.username, staff.password)
    assert response.status_code == 303 and response.headers["location"] == "/staff/sign-in/code", response.text
    response = await submit_totp(hub, code_for(hub, staff.secret))
    assert response.status_code == 303 and response.headers["location"] == "/staff", response.text
