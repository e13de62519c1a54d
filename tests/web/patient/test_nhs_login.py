"""Continue with NHS login, against the fake NHS login on real HTTP, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from hub.clock import FixedClock
from tests import factories
from tests.conftest import MakeHub
from tests.fake_http import new_key
from tests.fake_nhs_login import MARGARET, FakeNhsLogin
from tests.harness import Harness
from tests.pas import pas_for

pytestmark = pytest.mark.anyio
CALLBACK = "http://127.0.0.1:8000/nhs-login/callback"


@pytest.fixture
def client_key() -> RSAKey:
    return new_key(parameters={"kid": "hub-client-1"})


@pytest.fixture
def provider(clock: FixedClock, client_key: RSAKey) -> Iterator[FakeNhsLogin]:
    with FakeNhsLogin(now=clock.now, client_key=client_key.as_dict(private=False), redirect_uri=CALLBACK) as fake:
        yield fake


@pytest.fixture
async def hub(make_hub: MakeHub, provider: FakeNhsLogin, client_key: RSAKey) -> Harness:
    return await make_hub(
        **{
            "nhs_login.enabled": True,
            "nhs_login.issuer": provider.issuer,
            "nhs_login.client_id": provider.client_id,
            "nhs_login.private_key": client_key.as_pem(private=True).decode(),
            "nhs_login.key_id": "hub-client-1",
        }
    )


async def _through_nhs_login(hub: Harness, path: str) -> httpx.Response:
    """Follow the hub to NHS login and back: the answer of the hub's callback."""
    start = await hub.client.get(path)
    assert start.status_code == 303, start.text
    async with httpx.AsyncClient() as browser:
        back = await browser.get(start.headers["location"])
    assert back.status_code == 302, back.text
    location = urlsplit(back.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    return await hub.client.get(f"{location.path}?{location.query}")


async def test_the_start_page_offers_nhs_login(hub: Harness) -> None:
    page = await hub.get_page("/")
    assert any(a.get("href") == "/nhs-login/start" for a in page.all("a"))


async def test_the_authorize_request_asks_for_p9_with_state_and_nonce(hub: Harness, provider: FakeNhsLogin) -> None:
    response = await hub.client.get("/nhs-login/start")
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["response_type"] == ["code"] and query["scope"] == ["openid profile"]
    assert query["client_id"] == [provider.client_id] and query["redirect_uri"] == [CALLBACK]
    assert query["vtr"] == ['["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]']
    assert query["state"][0] and query["nonce"][0] and "prompt" not in query
    assert "hub_nhs_login" in response.headers["set-cookie"]


async def test_a_patient_signs_in_and_sees_their_appointments(hub: Harness, provider: FakeNhsLogin) -> None:
    patient = await hub.create_patient(nhs_number=MARGARET["nhs_number"], dob=MARGARET["birthdate"])
    await hub.create_appointment(patient_id=patient)
    response = await _through_nhs_login(hub, "/nhs-login/start")
    assert response.status_code == 303 and response.headers["location"] == "/appointments"
    assert provider.token_errors == []  # our private_key_jwt assertion passed every check
    page = await hub.get_page("/appointments")
    warning = page.by_id("hub-idle-warning")
    assert warning is not None and (warning.get("data-idle"), warning.get("data-warn")) == ("600", "540")
    audit = await hub.db.fetch_all("SELECT action, detail FROM audit_events WHERE actor_id = ?", (str(patient),))
    assert {"action": "signed_in", "detail": "nhs_login"} in audit


async def test_a_deep_link_with_an_asserted_identity_lands_on_the_appointment(
    hub: Harness, provider: FakeNhsLogin
) -> None:
    patient = await hub.create_patient(nhs_number=MARGARET["nhs_number"], dob=MARGARET["birthdate"])
    appointment = await hub.create_appointment(patient_id=patient)
    provider.signed_in = None  # no NHS login session of its own: only the NHS App's assertion signs them in
    link = (
        f"/nhs-app/appointments/{appointment}?extSystemName=appointment-hub&trackingId=c93e2449"
        f"&assertedLoginIdentity={provider.asserted_identity()}"
    )
    response = await _through_nhs_login(hub, link)
    assert response.headers["location"] == f"/appointments/{appointment}"
    sent = provider.authorize_requests[-1]
    assert sent["prompt"] == "none" and sent["asserted_login_identity"]
    await hub.get_page(f"/appointments/{appointment}")


async def test_no_matching_record_offers_the_code_sign_in(hub: Harness) -> None:
    await hub.create_patient(nhs_number=MARGARET["nhs_number"], dob="1950-01-01")
    response = await _through_nhs_login(hub, "/nhs-login/start")
    assert response.status_code == 200
    assert "We could not find your hospital appointments" in response.text
    assert 'href="/"' in response.text and (await hub.client.get("/appointments")).status_code == 303


async def test_identity_below_p9_is_not_enough(hub: Harness, provider: FakeNhsLogin) -> None:
    await hub.create_patient(nhs_number=MARGARET["nhs_number"], dob=MARGARET["birthdate"])
    provider.signed_in = {**MARGARET, "identity_proofing_level": "P5"}
    response = await _through_nhs_login(hub, "/nhs-login/start")
    assert "You need to prove who you are in NHS login first" in response.text


async def test_a_callback_without_this_browsers_state_is_refused(hub: Harness, new_browser: object) -> None:
    start = await hub.client.get("/nhs-login/start")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    assert callable(new_browser)
    other: Harness = new_browser(hub)
    response = await other.client.get(f"/nhs-login/callback?state={state}&code=x")
    assert response.status_code == 400 and "took too long" in response.text


async def test_login_required_starts_nhs_login_again(hub: Harness, provider: FakeNhsLogin) -> None:
    provider.signed_in = None
    start = await hub.client.get(f"/nhs-app/appointments/1?assertedLoginIdentity={'e30.e30.'}")
    async with httpx.AsyncClient() as browser:
        back = await browser.get(start.headers["location"])
    location = urlsplit(back.headers["location"])
    response = await hub.client.get(f"{location.path}?{location.query}")
    assert response.status_code == 303 and response.headers["location"] == "/nhs-login/start?return_to=/appointments/1"


async def test_an_idle_nhs_login_session_ends_at_ten_minutes_with_a_page_of_its_own(hub: Harness) -> None:
    await hub.create_patient(nhs_number=MARGARET["nhs_number"], dob=MARGARET["birthdate"])
    await _through_nhs_login(hub, "/nhs-login/start")
    hub.clock.advance(minutes=9, seconds=30)
    assert (await hub.client.get("/nhs-login/keep-alive")).status_code == 204
    hub.clock.advance(minutes=10)
    response = await hub.client.get("/appointments")
    assert response.status_code == 303 and response.headers["location"] == "/nhs-login/signed-out"
    page = await hub.client.get("/nhs-login/signed-out")
    assert "close this window or tab" in page.text
    assert (await hub.client.get("/appointments")).headers["location"] == "/"


async def test_a_code_session_has_no_idle_warning(hub: Harness) -> None:
    await hub.create_patient()
    await hub.sign_in()
    page = await hub.get_page("/appointments")
    assert page.by_id("hub-idle-warning") is None


async def test_a_deep_link_to_another_trusts_appointment_signs_in_as_that_trusts_record(
    hub: Harness, provider: FakeNhsLogin
) -> None:
    # The NHS App lists every trust's appointments for the NHS number; signing in picks one record (the latest
    # changed), which must be the one that holds the appointment the patient tapped.
    other = await hub.create_organisation(code="RRV", name="University College London Hospitals")
    async with hub.db.write() as tx:
        site = await factories.create_site(tx, organisation_id=other, code="UCH", name="University College Hospital")
        theirs = await factories.create_patient(
            tx, organisation_id=other, now=hub.clock.now(), nhs_number=MARGARET["nhs_number"], dob=MARGARET["birthdate"]
        )
        appointment = await factories.create_appointment(
            tx, organisation_id=other, site_id=site, patient_id=theirs, now=hub.clock.now()
        )
    await hub.create_patient(nhs_number=MARGARET["nhs_number"], dob=MARGARET["birthdate"])  # the first trust's
    provider.signed_in = None
    link = f"/nhs-app/appointments/{appointment}?assertedLoginIdentity={provider.asserted_identity()}"
    response = await _through_nhs_login(hub, link)
    assert response.headers["location"] == f"/appointments/{appointment}"
    page = await hub.get_page(f"/appointments/{appointment}")
    assert "University College Hospital" in page.text


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 3000 + b"\n%%EOF\n"


async def _viewed(hub: Harness, letter_id: int) -> object:
    row = await hub.db.fetch_one("SELECT first_viewed_at FROM letters WHERE id = ?", (letter_id,))
    assert row is not None
    return row["first_viewed_at"]


async def test_a_letter_opened_from_the_nhs_app_is_recorded_read(hub: Harness, provider: FakeNhsLogin) -> None:
    # The NHS App's link to a letter comes back through NHS login's redirects, so the letter's request is
    # cross-site; it is the patient opening it all the same, and unrecorded it went by post as unread.
    patient = await hub.create_patient(nhs_number=MARGARET["nhs_number"], dob=MARGARET["birthdate"])
    appointment = await hub.create_appointment(patient_id=patient)
    letter = await hub.create_letter(patient_id=patient, appointment_id=appointment, content=PDF)
    other = await hub.create_letter(patient_id=patient, appointment_id=appointment, content=PDF, title="Another")
    provider.signed_in = None
    link = f"/nhs-app/letters/{letter}?assertedLoginIdentity={provider.asserted_identity()}"
    response = await _through_nhs_login(hub, link)
    assert response.headers["location"] == f"/letters/{letter}"
    cross_site = {"sec-fetch-site": "cross-site"}
    shown = await hub.client.get(f"/letters/{other}", headers=cross_site)  # another letter: not what the mark names
    assert shown.status_code == 200 and await _viewed(hub, other) is None
    opened = await hub.client.get(f"/letters/{letter}", headers=cross_site)
    assert opened.status_code == 200 and opened.content == PDF
    assert await _viewed(hub, letter) is not None
    # Used once: another site opening the other letter afterwards is not the patient reading it.
    assert (await hub.client.get(f"/letters/{other}", headers=cross_site)).status_code == 200
    assert await _viewed(hub, other) is None


async def test_the_nhs_app_mark_holds_only_with_the_session_it_came_with(hub: Harness, provider: FakeNhsLogin) -> None:
    patient = await hub.create_patient(nhs_number=MARGARET["nhs_number"], dob=MARGARET["birthdate"])
    letter = await hub.create_letter(
        patient_id=patient, appointment_id=await hub.create_appointment(patient_id=patient), content=PDF
    )
    response = await _through_nhs_login(hub, f"/nhs-app/letters/{letter}")
    assert response.headers["location"] == f"/letters/{letter}"
    await _through_nhs_login(hub, "/nhs-login/start")  # signed in again: a new session, the old mark kept
    opened = await hub.client.get(f"/letters/{letter}", headers={"sec-fetch-site": "cross-site"})
    assert opened.status_code == 200 and await _viewed(hub, letter) is None


async def test_the_trust_excluding_the_patient_from_the_nhs_app_ends_their_nhs_login_sessions(
    hub: Harness, new_browser: Callable[..., Harness]
) -> None:
    """SRCBR1a: nothing of the patient's reaches the NHS App once the trust excludes them. A session NHS login
    started (the NHS App's own way in) ends with it; a session from the code sign-in is not the NHS App's and stays."""
    pas = await pas_for(hub, nhs_number=MARGARET["nhs_number"])
    coded = new_browser(hub)
    await coded.sign_in()
    response = await _through_nhs_login(hub, "/nhs-login/start")
    assert response.headers["location"] == "/appointments"
    assert (await hub.client.get("/appointments")).status_code == 200
    await pas.put_patient(nhs_number=MARGARET["nhs_number"], nhs_app_excluded=True)
    assert (await hub.client.get("/appointments")).status_code == 303
    assert (await coded.client.get("/appointments")).status_code == 200
