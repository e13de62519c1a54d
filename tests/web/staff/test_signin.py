"""Staff sign-in: password and authenticator code, replay, lockout, sign-out, CSRF, set-up links and enrolment."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.settings import ROOT
from hub.store.staff import create_staff
from tests.conftest import SECRET
from tests.databases import own_database_url
from tests.harness import Harness
from tests.pages import check_page
from tests.staff_harness import (
    PASSWORD,
    WRONG,
    code_for,
    set_up_staff,
    sign_in_staff,
    sign_out_staff,
    staff_signed_in,
    submit_password,
    submit_totp,
)

pytestmark = pytest.mark.anyio


async def test_set_up_enrol_and_sign_in(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    assert await staff_signed_in(hub)
    await sign_out_staff(hub)
    assert not await staff_signed_in(hub)
    await sign_in_staff(hub, staff)
    page = await hub.client.get("/staff")
    check_page(page.text)
    assert "Call-back queue" in page.text and "alice (agent)" in page.text


async def test_unauthenticated_console_redirects_to_sign_in(hub: Harness) -> None:
    for path in ("/staff", "/staff/patients", "/staff/admin/staff", "/staff/tasks/1"):
        response = await hub.client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/staff/sign-in", path
    check_page((await hub.client.get("/staff/sign-in")).text)


async def test_wrong_password_and_unknown_user_are_refused_alike(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    await sign_out_staff(hub)
    wrong = await submit_password(hub, staff.username, "not the password at all")
    unknown = await submit_password(hub, "nobody", "not the password at all")
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert WRONG in response.text
        check_page(response.text)
    assert not await staff_signed_in(hub)


async def test_wrong_totp_is_refused(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    await sign_out_staff(hub)
    hub.clock.advance(seconds=30)
    assert (await submit_password(hub, staff.username, staff.password)).status_code == 303
    right = code_for(hub, staff.secret)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = await submit_totp(hub, wrong)
    assert response.status_code == 400 and "The code is not right" in response.text
    check_page(response.text)
    assert not await staff_signed_in(hub)  # the password alone opens nothing


async def test_replayed_totp_is_refused(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    await sign_out_staff(hub)
    hub.clock.advance(seconds=30)
    code = code_for(hub, staff.secret)
    await submit_password(hub, staff.username, staff.password)
    assert (await submit_totp(hub, code)).status_code == 303
    await sign_out_staff(hub)
    await submit_password(hub, staff.username, staff.password)
    response = await submit_totp(hub, code)  # same code, same 30 seconds: someone who saw it over a shoulder
    assert response.status_code == 400 and "used already" in response.text
    assert not await staff_signed_in(hub)
    hub.clock.advance(seconds=30)
    assert (await submit_totp(hub, code_for(hub, staff.secret))).status_code == 303


async def test_lockout_after_five_failures_lasts_fifteen_minutes(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    await sign_out_staff(hub)
    for _ in range(5):
        response = await submit_password(hub, staff.username, "wrong password here")
    assert "locked for 15 minutes" in response.text
    hub.clock.advance(seconds=30)
    response = await submit_password(hub, staff.username, staff.password)  # the right one, while locked
    assert response.status_code == 400 and "locked" in response.text
    hub.clock.advance(minutes=14)
    assert (await submit_password(hub, staff.username, staff.password)).status_code == 400
    hub.clock.advance(minutes=1)
    await sign_in_staff(hub, staff)
    audit = await hub.db.fetch_all("SELECT action FROM audit_events WHERE record_type = 'staff'")
    assert "staff_locked" in {a["action"] for a in audit}


async def test_wrong_codes_count_towards_lockout(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    await sign_out_staff(hub)
    hub.clock.advance(seconds=30)
    await submit_password(hub, staff.username, staff.password)
    for _ in range(4):
        assert (await submit_totp(hub, "000000")).status_code == 400
    response = await submit_totp(hub, "000000")
    assert "locked" in response.text
    response = await submit_password(hub, staff.username, staff.password)
    assert response.status_code == 400 and "locked" in response.text


async def test_sign_out_ends_the_session_on_the_server(hub: Harness) -> None:
    await set_up_staff(hub)
    cookie = hub.client.cookies.get("hub_staff")
    assert cookie
    await sign_out_staff(hub)
    hub.client.cookies.set("hub_staff", cookie)  # a copy of the old cookie opens nothing
    assert not await staff_signed_in(hub)


async def test_staff_cookie_is_strict_and_renewed_at_sign_in(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    await sign_out_staff(hub)
    hub.clock.advance(seconds=30)
    first = await submit_password(hub, staff.username, staff.password)
    before = hub.client.cookies.get("hub_staff")
    second = await submit_totp(hub, code_for(hub, staff.secret))
    for response in (first, second):
        header = response.headers["set-cookie"].lower()
        assert "httponly" in header and "samesite=strict" in header
    assert hub.client.cookies.get("hub_staff") != before


async def test_csrf_is_enforced(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    response = await hub.client.post("/staff/sign-out", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert await staff_signed_in(hub)
    await sign_out_staff(hub)
    response = await hub.client.post("/staff/sign-in", data={"username": staff.username, "password": staff.password})
    assert response.status_code == 403
    assert "hub_staff" not in response.headers.get("set-cookie", "")


async def test_set_up_link_is_single_use_and_expires(hub: Harness) -> None:
    token = await create_staff(hub.db, username="carol", role="agent", secret=SECRET, now=hub.clock.now(), hours=24)
    check_page((await hub.client.get(f"/staff/setup/{token}")).text)
    response = await hub.post_form(f"/staff/setup/{token}", {"password": "too short", "confirm": "too short"})
    assert response.status_code == 400 and "12 characters or more" in response.text
    assert (
        await hub.post_form(f"/staff/setup/{token}", {"password": PASSWORD, "confirm": PASSWORD})
    ).status_code == 303
    assert (await hub.client.get(f"/staff/setup/{token}")).status_code == 404
    late = await create_staff(hub.db, username="dave", role="agent", secret=SECRET, now=hub.clock.now(), hours=24)
    hub.clock.advance(hours=24)
    assert (await hub.client.get(f"/staff/setup/{late}")).status_code == 404


async def test_enrolment_shows_a_qr_code_and_needs_a_valid_code(hub: Harness) -> None:
    token = await create_staff(hub.db, username="erin", role="agent", secret=SECRET, now=hub.clock.now(), hours=24)
    await hub.post_form(f"/staff/setup/{token}", {"password": PASSWORD, "confirm": PASSWORD})
    page = await hub.client.get("/staff/enrol")
    check_page(page.text)
    [qr] = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page.text)
    assert base64.b64decode(qr).startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')  # or the image is broken
    response = await hub.post_form("/staff/enrol", {"code": "000000"})
    assert response.status_code == 400
    assert not await staff_signed_in(hub)
    row = await hub.db.fetch_one("SELECT enrolled_at FROM staff_users WHERE username = 'erin'")
    assert row is not None and row["enrolled_at"] is None


def test_create_staff_command_prints_a_set_up_link(tmp_path: Path, backend: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=own_database_url(backend, tmp_path), HUB_SECRET_KEY=SECRET)
    run = [sys.executable, "-m", "hub"]
    subprocess.run([*run, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    done = subprocess.run(
        [*run, "create-staff", "--username", "Admin1", "--role", "admin", "--hub-wide"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "http://127.0.0.1:8000/staff/setup/" in done.stdout
    again = subprocess.run(
        [*run, "create-staff", "--username", "admin1", "--role", "admin", "--hub-wide"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "already" in again.stderr


async def test_a_locked_account_answers_like_a_wrong_password_or_an_unknown_user(hub: Harness) -> None:
    staff = await set_up_staff(hub)
    await sign_out_staff(hub)
    for _ in range(5):
        await submit_password(hub, staff.username, "wrong password here")
    answers = [
        await submit_password(hub, staff.username, staff.password),  # locked, right password
        await submit_password(hub, staff.username, "another wrong one"),  # locked, wrong password
        await submit_password(hub, "nobody-by-this-name", "wrong password here"),  # no such user
    ]
    texts = {re.sub(r'value="[^"]*"', "", a.text) for a in answers}
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert len(texts) == 1
