"""The route table as a whole: CSRF on every POST, sign-in on every patient page, every page well formed.

Routes are read from the app itself, so a route added later is held to the same rules without editing this file.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from starlette.routing import BaseRoute, Mount, Route

from hub.store.offers import run_offers, set_earlier_request
from tests.conftest import MakeHub
from tests.harness import Harness
from tests.pages import SKIP_PAGE_CHECKS, check_page

pytestmark = pytest.mark.anyio

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
# Patient GET routes that answer without a session (everything else must send a signed-out browser to /).
PUBLIC = {
    "/",
    "/p/{token}",
    "/sign-in/code",
    "/sign-in/not-received",
    "/sign-in/verification-code",
    "/sites/{code}",
    "/sites/{code}/map",
    "/accessibility",
    "/privacy",
    "/healthz",
    "/dev/outbox",
    "/favicon.ico",
}
# Patient pages reachable when signed in; each must pass check_page.
SIGNED_IN_PAGES = (
    "/appointments",
    "/appointments/{appointment}",
    "/appointments/{appointment}/rebook",
    "/appointments/{appointment}/cancel",
    "/letters",
    "/messages",
    "/preferences",
    "/sites/RFH",
    "/sign-out",
    "/accessibility",
    "/privacy",
)


# Machine interfaces: authenticated by bearer tokens, never by cookies, so neither CSRF nor the patient's
# session applies. The staff console has its own sign-in, and its own tests.
NOT_PATIENT_WEB = ("/api/", "/notify/", "/staff")


def _all_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, set[str]]]:
    found: list[tuple[str, set[str]]] = []
    for route in routes:
        if isinstance(route, Route) and route.methods:
            found.append((prefix + route.path, set(route.methods)))
        elif isinstance(route, Mount) and route.routes:
            found += _all_routes(list(route.routes), prefix + route.path)
    return found


def _routes(h: Harness, method: str) -> list[str]:
    """The patient web's routes for one method, read from the app."""
    found = [
        path
        for path, methods in _all_routes(h.app.routes)
        if method in methods and not path.startswith(NOT_PATIENT_WEB)
    ]
    assert found, f"no {method} routes"
    return found


class _World:
    """A signed-in patient with an appointment and a letter, and the values to put in route parameters."""

    def __init__(self, h: Harness, patient: int, appointment: int, letter: int, link: str) -> None:
        self.h, self.patient, self.appointment, self.letter, self.link = h, patient, appointment, letter, link

    def url(self, path: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "id":
                if path.startswith("/offers"):
                    return "1"  # the earlier appointment offered to the patient
                return str(self.letter if path.startswith("/letters") else self.appointment)
            if name == "code":
                return "RFH"
            if name == "slot":
                return "1"
            if name == "token":
                return self.link
            raise AssertionError(f"{path}: teach tests/test_routes.py what to put in {{{name}}}")

        return _PARAM.sub(value, path)


async def _world(h: Harness, *, sign_in: bool = True) -> _World:
    patient = await h.create_patient()
    appointment = await h.create_appointment(patient_id=patient)
    letter = await h.create_letter(patient_id=patient, appointment_id=appointment)
    # An earlier time offered to them (offer 1, slot 1).
    await h.create_slot(starts_at=h.clock.now() + timedelta(days=5))
    await set_earlier_request(h.db, patient_id=patient, appointment_id=appointment, wanted=True, now=h.clock.now())
    await run_offers(h.db, settings=h.settings, now=h.clock.now())
    if sign_in:
        await h.sign_in()
    return _World(h, patient, appointment, letter, await h.link_token(patient))


async def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(hub: Harness) -> None:
    world = await _world(hub)
    # A sign-in attempt too, for the code forms (the start page itself sends a signed-in patient on).
    details = {"contact": "07700 900001", "dob-day": "14", "dob-month": "3", "dob-year": "1948"}
    assert (await hub.post_form("/sign-in", details, csrf_from="/preferences")).status_code == 303
    right = await hub.csrf("/preferences")
    for path in _routes(hub, "POST"):
        url = world.url(path)
        for data in (
            {},
            {"csrf_token": ""},
            {"csrf_token": right[:-1] + ("1" if right.endswith("0") else "0")},
            {"csrf_token": right.upper()},
        ):
            response = await hub.client.post(url, data={**data, "reason": "other", "contact_preference": "sms"})
            assert response.status_code == 403, f"{path} with {data}: {response.status_code}"
            assert "This form has expired" in response.text
            check_page(response.text)


async def test_a_csrf_token_from_another_browser_is_refused(make_hub: MakeHub) -> None:
    hub = await make_hub()
    world = await _world(hub)
    other = await make_hub()  # a second browser: same secret key, its own cookies
    foreign = await other.csrf("/")
    for path in _routes(hub, "POST"):
        response = await hub.client.post(world.url(path), data={"csrf_token": foreign})
        assert response.status_code == 403, path


async def test_patient_pages_send_a_signed_out_browser_to_the_start(hub: Harness) -> None:
    world = await _world(hub, sign_in=False)
    patient_pages = [p for p in _routes(hub, "GET") if p not in PUBLIC]
    assert "/appointments" in patient_pages and "/preferences" in patient_pages
    for path in patient_pages:
        response = await hub.client.get(world.url(path))
        assert response.status_code == 303, f"{path}: {response.status_code}"
        assert response.headers["location"] == "/", path


async def test_patient_pages_say_when_a_session_timed_out(make_hub: MakeHub) -> None:
    hub = await make_hub(codes_per_identity_per_hour=100, codes_per_contact_per_hour=100, codes_per_client_per_hour=100)
    world = await _world(hub, sign_in=False)
    for path in [p for p in _routes(hub, "GET") if p not in PUBLIC]:
        await hub.sign_in()
        hub.clock.advance(minutes=hub.settings.session_idle_minutes + 1)
        response = await hub.client.get(world.url(path))
        assert response.status_code == 303, path
        assert response.headers["location"] == "/?signed_out=timeout", path


async def test_public_routes_listed_here_are_real_routes(make_hub: MakeHub) -> None:
    hub = await make_hub(demo=True)
    paths = set(_routes(hub, "GET"))
    assert PUBLIC <= paths, PUBLIC - paths
    mounts = {r.path for r in hub.app.routes if isinstance(r, Mount)}
    assert {"/static", "/assets", "/nhsuk"} <= mounts


async def test_public_pages_answer_a_signed_out_browser(hub: Harness) -> None:
    world = await _world(hub, sign_in=False)
    for path in ("/", "/p/{token}", "/sites/{code}", "/accessibility", "/privacy"):
        response = await hub.client.get(world.url(path))
        assert response.status_code == 200, path
        check_page(response.text)
    assert (await hub.client.get(world.url("/sites/{code}/map"))).status_code == 200
    assert (await hub.client.get("/healthz")).text == "ok"


async def test_every_signed_in_page_is_well_formed(hub: Harness) -> None:
    world = await _world(hub)
    for path in SIGNED_IN_PAGES:
        url = path.format(appointment=world.appointment)
        response = await hub.client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        assert response.headers["content-type"].startswith("text/html"), url
        check_page(response.text)


async def test_every_html_get_route_is_well_formed_when_signed_in(make_hub: MakeHub) -> None:
    hub = await make_hub(demo=True)
    world = await _world(hub)
    for path in _routes(hub, "GET"):
        response = await hub.client.get(world.url(path))
        assert response.status_code < 400, f"{path}: {response.status_code}"
        if response.status_code == 200 and response.headers["content-type"].startswith("text/html"):
            check_page(response.text)


async def test_ids_too_big_for_the_database_are_not_found(hub: Harness) -> None:
    await _world(hub)
    right = await hub.csrf("/preferences")
    huge = "9" * 30
    for path in _routes(hub, "GET"):
        if "{id" in path:
            response = await hub.client.get(_PARAM.sub(huge, path))
            assert response.status_code == 404, path
    for path in _routes(hub, "POST"):
        if "{id" in path:
            response = await hub.client.post(_PARAM.sub(huge, path), data={"csrf_token": right})
            assert response.status_code == 404, path


async def test_a_request_for_another_host_is_refused_before_any_redirect(make_hub: MakeHub) -> None:
    # F9: GET /staff/ with Host: evil.example answered 307 Location: http://evil.example/staff.
    hub = await make_hub(base_url="https://appointments.example.nhs.uk", allowed_hosts=["testserver", "10.0.0.7"])
    refused = await hub.client.get("/staff/", headers={"host": "evil.example"}, extensions=SKIP_PAGE_CHECKS)
    assert refused.status_code == 400 and "location" not in refused.headers
    for host in ("appointments.example.nhs.uk", "10.0.0.7:8000"):  # the base URL's, and a health check's
        assert (await hub.client.get("/healthz", headers={"host": host})).status_code == 200, host
