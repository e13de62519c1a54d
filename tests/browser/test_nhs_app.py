"""The NHS App's journey in real Chromium against the demo server: a deep link with an asserted identity, the fake
NHS login, the appointment's page, confirm; then the Wayfinder API says Confirmed Attendance."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.browser.axe import NARROW, PHONE, assert_accessible
from tests.browser.conftest import DemoServer
from tests.fake_aggregator import AUDIENCE, SCOPE, FakeAggregator
from tests.fake_http import new_key
from tests.fake_nhs_login import MARGARET, NHS_APP_CLIENT, FakeNhsLogin

pytestmark = pytest.mark.browser
REQUEST_STATUS = "https://fhir.nhs.uk/StructureDefinition/Extension-Appointment-RequestStatus"
PORTAL_LINK = "https://fhir.nhs.uk/StructureDefinition/Extension-Portal-Link"
# Every route this module checks with axe, for tests/browser/test_axe_coverage.py: the pages NHS login adds or
# changes (the start page gains its button), on a 375 px phone with JavaScript and a 320 px screen without.
CHECKED_ROUTES = {"/", "/nhs-login/callback", "/nhs-login/signed-out", "/appointments/{id:record_id}"}
NHS_LOGIN_PAGES = [
    ("/", "Sign in to see your hospital appointments"),
    ("/nhs-login/callback", None),  # no attempt of this browser's: the link has expired
    ("/nhs-login/signed-out", "You have been signed out"),
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def aggregator() -> Iterator[FakeAggregator]:
    with FakeAggregator() as fake:
        yield fake


def _appointments(server: DemoServer, aggregator: FakeAggregator, provider: FakeNhsLogin) -> list[dict[str, Any]]:
    query = f"patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{MARGARET['nhs_number']}"
    request = urllib.request.Request(
        server.url(f"/fhir/r4/Appointment?{query}"),
        headers={
            "Authorization": f"Bearer {aggregator.access_token()}",
            "NHSD-ID-Token": provider.id_token(),
            "X-Correlation-ID": "browser-test-1",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        bundle = json.loads(response.read())
    return [entry["resource"] for entry in bundle["entry"]]


def _extension(resource: dict[str, Any], url: str) -> Any:
    found = [e for e in resource["extension"] if e["url"] == url]
    return (found[0].get("valueCode") or found[0].get("valueUrl")) if found else None


def _check_nhs_login_pages(browser: Browser, server: DemoServer) -> None:
    for options, javascript in ((PHONE, True), (NARROW, False)):
        context = browser.new_context(**options)
        if not javascript:

            def block(route: Route) -> None:
                route.abort()

            context.route("**/*.js*", block)
            context.route("**/*.mjs*", block)
        page = context.new_page()
        try:
            for path, heading in NHS_LOGIN_PAGES:
                page.goto(server.url(path))
                if path == "/":
                    expect(page.get_by_role("link", name="Continue with NHS login")).to_be_visible()
                assert ("js-enabled" in page.evaluate("document.body.className")) == javascript
                assert page.evaluate("document.documentElement.scrollWidth") <= options["viewport"]["width"]
                assert_accessible(page, path, heading=heading)
        finally:
            context.close()


def test_from_the_nhs_app_to_a_confirmed_appointment(
    start_demo: Callable[..., DemoServer], browser: Browser, aggregator: FakeAggregator
) -> None:
    port = _port()
    key = new_key(parameters={"kid": "demo-hub"})
    with FakeNhsLogin(
        client_key=key.as_dict(private=False), redirect_uri=f"http://127.0.0.1:{port}/nhs-login/callback"
    ) as provider:
        provider.signed_in = None  # only the NHS App's asserted identity signs the patient in
        server = start_demo(
            {
                "HUB_NHS_LOGIN__ENABLED": "true",
                "HUB_NHS_LOGIN__ISSUER": provider.issuer,
                "HUB_NHS_LOGIN__CLIENT_ID": provider.client_id,
                "HUB_NHS_LOGIN__KEY_ID": "demo-hub",
                "HUB_NHS_LOGIN__PRIVATE_KEY": key.as_pem(private=True).decode(),
                "HUB_NHS_APP__ENABLED": "true",
                "HUB_NHS_APP__TOKEN_ISSUER": aggregator.issuer,
                "HUB_NHS_APP__TOKEN_JWKS_URL": aggregator.jwks_url,
                "HUB_NHS_APP__TOKEN_AUDIENCE": AUDIENCE,
                "HUB_NHS_APP__TOKEN_SCOPE": SCOPE,
                "HUB_NHS_APP__ID_TOKEN_AUDIENCE": NHS_APP_CLIENT,
            },
            port=port,
        )
        # The first booked appointment the patient may still confirm, as the NHS App lists it.
        listed = _appointments(server, aggregator, provider)
        confirmable = [
            a
            for a in listed
            if a["status"] == "booked" and _extension(a, REQUEST_STATUS) is None and "RFH" not in a["description"]
        ]
        target = confirmable[-1]  # the furthest ahead: well past the 24-hour cut-off
        link = _extension(target, PORTAL_LINK) + f"&assertedLoginIdentity={provider.asserted_identity()}"
        page_id = target["identifier"][1]["value"]
        _check_nhs_login_pages(browser, server)
        page = browser.new_context(**PHONE).new_page()
        try:
            page.goto(link)
            expect(page).to_have_url(server.url(f"/appointments/{page_id}"))
            page.get_by_role("button", name="Confirm I will attend").click()
            expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text("Thank you for confirming")
            assert_accessible(page, "/appointments/{id:record_id}")  # signed in through NHS login
        finally:
            page.context.close()
        sent = provider.authorize_requests[-1]
        assert sent["prompt"] == "none" and provider.token_errors == []
        after = {a["id"]: a for a in _appointments(server, aggregator, provider)}
        assert _extension(after[target["id"]], REQUEST_STATUS) == "Confirmed Attendance"
