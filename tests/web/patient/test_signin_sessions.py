"""Patient sessions: timeouts, sign-out everywhere, cookies and their attributes, CSRF on sign-out."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from hub.store.sessions import session_id
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio

Browser = Callable[..., Harness]
TIMED_OUT = "You were signed out because you had not used the service for a while."


async def count(hub: Harness, table: str, where: str = "1 = 1") -> int:
    row = await hub.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}")
    assert row is not None
    return int(row["n"])


async def appointments_status(hub: Harness) -> tuple[int, str | None]:
    response = await hub.client.get("/appointments")
    return response.status_code, response.headers.get("location")


def set_cookie_header(response: httpx.Response, name: str) -> str:
    matching = [h for h in response.headers.get_list("set-cookie") if h.split("=", 1)[0] == name]
    assert len(matching) == 1, response.headers.get_list("set-cookie")
    return matching[0]


def attributes(header: str) -> set[str]:
    """'a=b; HttpOnly; Path=/; SameSite=lax' -> {'httponly', 'path=/', 'samesite=lax'}"""
    return {part.strip().lower() for part in header.split(";")[1:]}


# 10. Timeouts.


async def test_activity_within_15_minutes_keeps_the_session_alive(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()

    for _ in range(4):  # 56 minutes in all, never 15 idle
        hub.clock.advance(minutes=14)
        assert await appointments_status(hub) == (200, None)


async def test_15_minutes_idle_signs_the_patient_out(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()
    hub.clock.advance(minutes=14)
    assert await appointments_status(hub) == (200, None)

    hub.clock.advance(minutes=15)

    assert await appointments_status(hub) == (303, "/?signed_out=timeout")
    row = await hub.db.fetch_one("SELECT ended_at FROM sessions")
    assert row is not None and row["ended_at"] is not None
    page = await hub.client.get("/?signed_out=timeout")
    assert TIMED_OUT in page.text
    check_page(page.text)
    # Ended for good: the next request is simply not signed in.
    assert await appointments_status(hub) == (303, "/")


async def test_session_ends_two_hours_after_sign_in_however_active(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()

    for _ in range(11):  # 10, 20, ... 110 minutes
        hub.clock.advance(minutes=10)
        assert await appointments_status(hub) == (200, None)
    hub.clock.advance(minutes=10)

    assert await appointments_status(hub) == (303, "/?signed_out=timeout")
    assert await count(hub, "sessions", "ended_at IS NOT NULL") == 1


async def test_timeouts_follow_the_settings(make_hub: MakeHub) -> None:
    hub = await make_hub(session_idle_minutes=5, session_absolute_minutes=30)
    await hub.create_patient()
    await hub.sign_in()
    hub.clock.advance(minutes=4)
    assert await appointments_status(hub) == (200, None)
    hub.clock.advance(minutes=5)
    assert await appointments_status(hub) == (303, "/?signed_out=timeout")


# 11. Sign-out.


async def test_sign_out_ends_the_session_in_every_browser(hub: Harness, new_browser: Browser) -> None:
    patient = await hub.create_patient()
    phone, laptop = hub, new_browser(hub)
    await phone.sign_in()
    await laptop.sign_in()
    assert await appointments_status(laptop) == (200, None)
    assert await count(hub, "sessions", "ended_at IS NULL") == 2

    response = await phone.post_form("/sign-out", {})

    assert (response.status_code, response.headers["location"]) == (303, "/?signed_out=yes")
    assert 'hub_session=""' in set_cookie_header(response, "hub_session")
    assert await appointments_status(laptop) == (303, "/")
    assert await appointments_status(phone) == (303, "/")
    assert await count(hub, "sessions", "ended_at IS NULL") == 0
    audit = await hub.db.fetch_all(
        "SELECT actor_type, actor_id, record_type, record_id FROM audit_events WHERE action = 'signed_out'"
    )
    assert audit == [
        {"actor_type": "patient", "actor_id": str(patient), "record_type": "patient", "record_id": str(patient)}
    ]
    page = await phone.client.get("/?signed_out=yes")
    assert "You have signed out." in page.text


async def test_sign_out_leaves_other_patients_signed_in(hub: Harness, new_browser: Browser) -> None:
    await hub.create_patient()
    await hub.create_patient(given_name="Other", mobile="+447700900002", dob="1950-01-01")
    other = new_browser(hub)
    await hub.sign_in()
    await other.sign_in("07700 900002", "1950-01-01")

    await hub.post_form("/sign-out", {})

    assert await appointments_status(other) == (200, None)


async def test_get_sign_out_asks_to_confirm_and_changes_nothing(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()

    page = await hub.client.get("/sign-out")

    assert page.status_code == 200
    assert '<form method="post" action="/sign-out"' in page.text
    check_page(page.text)
    assert "set-cookie" not in page.headers
    assert await count(hub, "sessions", "ended_at IS NULL") == 1
    assert await count(hub, "audit_events", "action = 'signed_out'") == 0
    assert await appointments_status(hub) == (200, None)


async def test_sign_out_when_not_signed_in_goes_to_the_start(hub: Harness) -> None:
    response = await hub.client.get("/sign-out")
    assert (response.status_code, response.headers["location"]) == (303, "/")


@pytest.mark.parametrize("kind", ["missing", "wrong", "another browser's"])
async def test_sign_out_without_a_valid_csrf_token_is_403_and_signs_nobody_out(
    hub: Harness, new_browser: Browser, kind: str
) -> None:
    await hub.create_patient()
    await hub.sign_in()
    data: dict[str, str] = {}
    if kind == "wrong":
        data = {"csrf_token": "0" * 64}
    elif kind == "another browser's":
        other = new_browser(hub)
        await other.sign_in()  # the same patient, signed in elsewhere: still another browser's token
        data = {"csrf_token": await other.csrf("/sign-out")}

    response = await hub.client.post("/sign-out", data=data)

    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert await count(hub, "sessions", "ended_at IS NOT NULL") == 0
    assert await count(hub, "audit_events", "action = 'signed_out'") == 0
    assert await appointments_status(hub) == (200, None)


# 13. Cookies.


async def test_session_cookie_is_httponly_and_samesite_lax_over_http(hub: Harness) -> None:
    await hub.create_patient()
    response = await hub.sign_in()

    session = set_cookie_header(response, "hub_session")
    assert attributes(session) == {"httponly", "path=/", "samesite=lax"}
    assert "strict-transport-security" not in response.headers


async def test_over_https_cookies_are_host_prefixed_and_secure_with_hsts(make_hub: MakeHub) -> None:
    hub = await make_hub(base_url="https://hub.example.nhs.uk")
    await hub.create_patient()
    start = await hub.client.get("/")
    details = await hub.submit_details("07700 900001", "1948-03-14")
    signed_in = await hub.submit_code((await hub.sent_codes())[-1])

    assert signed_in.headers["location"] == "/appointments"
    cookies = {
        "__Host-hub_anon": set_cookie_header(start, "__Host-hub_anon"),
        "__Host-hub_signin": set_cookie_header(details, "__Host-hub_signin"),
        "__Host-hub_session": set_cookie_header(signed_in, "__Host-hub_session"),
    }
    for name, header in cookies.items():
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= attributes(header), name
        assert not any(a.startswith("domain=") for a in attributes(header)), name
    for response in (start, details, signed_in):
        assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
        assert not any(h.startswith("hub_") for h in response.headers.get_list("set-cookie"))
    assert (await hub.client.get("/appointments")).status_code == 200


async def test_sign_in_deletes_the_sign_in_cookie_and_issues_a_fresh_session(hub: Harness) -> None:
    await hub.create_patient()
    planted = "planted-by-someone-else-0123456789abcdef"
    hub.client.cookies.set("hub_session", planted, domain="testserver.local")

    first = await hub.sign_in()
    first_token = first.cookies["hub_session"]
    deleted = set_cookie_header(first, "hub_signin")
    await hub.post_form("/sign-out", {})
    second = await hub.sign_in()
    second_token = second.cookies["hub_session"]

    assert deleted.startswith('hub_signin="";') and "max-age=0" in attributes(deleted)
    assert first_token not in (planted, second_token)
    ids = {row["id"] for row in await hub.db.fetch_all("SELECT id FROM sessions")}
    # Stored as keyed hashes: the table alone cannot be used as a cookie.
    assert ids == {session_id(hub.settings.secret_key, first_token), session_id(hub.settings.secret_key, second_token)}
    assert not ids & {first_token, second_token}
    assert await appointments_status(hub) == (200, None)


async def test_a_made_up_session_cookie_signs_nobody_in(hub: Harness) -> None:
    await hub.create_patient()
    hub.client.cookies.set("hub_session", "made-up-token-0123456789abcdefghij", domain="testserver.local")
    assert await appointments_status(hub) == (303, "/")


# A signed-in patient opening a stable link.


async def test_signed_in_patient_opening_their_own_link_or_the_start_goes_to_their_appointments(hub: Harness) -> None:
    patient = await hub.create_patient()
    await hub.sign_in()
    for path in (f"/p/{await hub.link_token(patient)}", "/"):
        response = await hub.client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/appointments"), path
    assert await count(hub, "code_challenges") == 1  # the sign-in's own: no code spent


async def test_signed_in_patient_opening_someone_elses_link_can_sign_out_and_continue_as_them(hub: Harness) -> None:
    await hub.create_patient()
    child = await hub.create_patient(given_name="Lily", dob="2015-06-01", verification_code="PX2B9Z")
    await hub.sign_in()
    link = await hub.link_token(child)
    page = await hub.client.get(f"/p/{link}")
    assert page.status_code == 200
    check_page(page.text)
    assert "You are signed in as Margaret Jones" in page.text
    assert "Sign out and continue as someone else" in page.text

    response = await hub.post_form("/sign-out", {"link": link}, csrf_from=f"/p/{link}")

    assert (response.status_code, response.headers["location"]) == (303, f"/p/{link}?signed_out=yes")
    assert await appointments_status(hub) == (303, "/")
    start = await hub.client.get(f"/p/{link}?signed_out=yes")
    assert "Sign in to see your hospital appointments" in start.text
    assert f'name="link" value="{link}"' in start.text


async def test_sign_out_with_a_link_that_does_not_verify_goes_to_the_start(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()
    response = await hub.post_form("/sign-out", {"link": "not-a-link"})
    assert (response.status_code, response.headers["location"]) == (303, "/?signed_out=yes")
