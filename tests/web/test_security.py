"""Security headers on every page, a CSP that inline script and style cannot get past, cached static assets."""

from __future__ import annotations

import html5lib
import httpx
import pytest

from tests.conftest import MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio

HTTPS_ORIGIN = "https://hub.example.nhs.uk"


def _csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice in the CSP"
        directives[name] = sources
    return directives


def assert_page_headers(response: httpx.Response) -> None:
    csp = _csp(response)
    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


async def _signed_in(h: Harness) -> tuple[int, int]:
    patient = await h.create_patient()
    appointment = await h.create_appointment(patient_id=patient, transport_booked=True)
    await h.create_letter(patient_id=patient, appointment_id=appointment)
    await h.sign_in()
    return patient, appointment


async def _kinds_of_page(h: Harness) -> dict[str, httpx.Response]:
    """A public page, a signed-in page, a 404, a 403, a 422 and a 405."""
    signed_out = await h.client.get("/")
    _, appointment = await _signed_in(h)
    return {
        "start": signed_out,
        "signed in": await h.client.get(f"/appointments/{appointment}"),
        "not found": await h.client.get("/no-such-page"),
        "someone else's": await h.client.get("/appointments/999999"),
        "form expired": await h.client.post("/preferences", data={"csrf_token": "forged"}),
        "invalid": await h.post_form("/preferences", {"paper": "maybe"}),
        "wrong method": await h.client.delete("/appointments"),
    }


async def test_every_kind_of_page_carries_the_security_headers(hub: Harness) -> None:
    pages = await _kinds_of_page(hub)
    expected = {
        "start": 200,
        "signed in": 200,
        "not found": 404,
        "someone else's": 404,
        "form expired": 403,
        "invalid": 422,
        "wrong method": 405,
    }
    for name, response in pages.items():
        assert response.status_code == expected[name], name
        assert response.headers["content-type"].startswith("text/html"), name
        assert_page_headers(response)
        assert "strict-transport-security" not in response.headers, f"{name}: HSTS over plain http"


async def test_redirects_and_downloads_carry_them_too(hub: Harness) -> None:
    patient, appointment = await _signed_in(hub)
    letter = await hub.db.fetch_one("SELECT id FROM letters WHERE patient_id = ?", (patient,))
    assert letter
    for path in (f"/appointments/{appointment}.ics", "/appointments.ics", f"/letters/{letter['id']}"):
        response = await hub.client.get(path)
        assert response.status_code == 200, path
        assert_page_headers(response)
    hub.client.cookies.clear()
    redirect = await hub.client.get("/appointments")
    assert redirect.status_code == 303
    assert redirect.headers["x-content-type-options"] == "nosniff"


async def test_hsts_only_over_https(make_hub: MakeHub) -> None:
    secure = await make_hub(base_url=HTTPS_ORIGIN)
    for response in (await _kinds_of_page(secure)).values():
        assert_page_headers(response)
        hsts = response.headers["strict-transport-security"]
        max_age = int(hsts.split("max-age=")[1].split(";")[0])
        assert max_age >= 31536000
    plain = await make_hub()
    assert "strict-transport-security" not in (await plain.client.get("/")).headers


async def test_cookies_are_http_only_same_site_and_secure_over_https(make_hub: MakeHub) -> None:
    secure = await make_hub(base_url=HTTPS_ORIGIN)
    await secure.create_patient()
    first = await secure.client.get("/")
    anon = first.headers["set-cookie"]
    assert anon.startswith("__Host-hub_anon=")
    assert all(flag in anon for flag in ("HttpOnly", "SameSite=Lax", "Secure", "Path=/"))
    signed_in = await secure.sign_in()
    session = [c for c in signed_in.headers.get_list("set-cookie") if c.startswith("__Host-hub_session=")]
    assert session
    assert all(flag.lower() in session[0].lower() for flag in ("HttpOnly", "SameSite=lax", "Secure", "Path=/"))
    assert "domain=" not in session[0].lower()


def _inline_code(html: str) -> list[str]:
    """Everything the CSP would block: inline scripts, handlers, javascript: URLs, inline styles."""
    document = html5lib.parse(html, namespaceHTMLElements=False)
    found = []
    for element in document.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "script" and (not element.get("src") or (element.text or "").strip()):
            found.append(f"inline <script>: {(element.text or '')[:60]!r}")
        if tag == "style":
            found.append("<style> block")
        for name, value in element.attrib.items():
            if name == "style":
                found.append(f"style attribute on <{tag}>: {value!r}")
            if name.lower().startswith("on"):
                found.append(f"{name} handler on <{tag}>")
            if name in ("href", "src", "action", "formaction") and value.strip().lower().startswith("javascript:"):
                found.append(f"javascript: URL on <{tag}>")
    return found


async def test_no_page_has_inline_script_or_style(make_hub: MakeHub) -> None:
    hub = await make_hub(demo=True)
    # Twins first, so the verification code page can be reached too.
    for name, code in (("Amy", "MJ4K7Q"), ("Beth", "TW1N2B")):
        await hub.create_patient(given_name=name, mobile="+447700900009", dob="2015-06-01", verification_code=code)
    await hub.submit_details("07700 900009", "2015-06-01")
    pages = {"code": await hub.client.get("/sign-in/code")}
    await hub.submit_code((await hub.sent_codes())[-1])
    pages["verification code"] = await hub.client.get("/sign-in/verification-code")
    pages["start"] = await hub.client.get("/")
    pages["bad link"] = await hub.client.get("/p/not-a-link")
    _, appointment = await _signed_in(hub)
    for path in (
        "/appointments",
        f"/appointments/{appointment}",
        f"/appointments/{appointment}?done=confirmed",
        f"/appointments/{appointment}/rebook",
        f"/appointments/{appointment}/cancel",
        "/letters",
        "/preferences",
        "/preferences?saved=1",
        "/sites/RFH",
        "/sign-out",
        "/accessibility",
        "/privacy",
        "/dev/outbox",
        "/no-such-page",
    ):
        pages[path] = await hub.client.get(path)
    pages["rebook errors"] = await hub.post_form(f"/appointments/{appointment}/rebook", {"reason": "x" * 501})
    pages["cancel errors"] = await hub.post_form(f"/appointments/{appointment}/cancel", {"reason": "<script>"})
    pages["form expired"] = await hub.client.post("/preferences", data={"csrf_token": "forged"})
    for name, response in pages.items():
        assert response.headers["content-type"].startswith("text/html"), name
        assert response.status_code in (200, 403, 404, 422), f"{name}: {response.status_code}"
        assert _inline_code(response.text) == [], name


def _assets(html: str) -> list[str]:
    document = html5lib.parse(html, namespaceHTMLElements=False)
    urls = [link.get("href") for link in document.iter("link") if "stylesheet" in (link.get("rel") or "").split()]
    urls += [script.get("src") for script in document.iter("script")]
    return [u for u in urls if u]


async def test_static_assets_are_cache_busted_and_cached_for_a_year(hub: Harness) -> None:
    page = await hub.client.get("/")
    assets = _assets(page.text)
    stylesheets = [u for u in assets if ".css" in u]
    assert len(stylesheets) >= 2 and any(".js" in u or ".mjs" in u for u in assets)
    for url in assets:
        assert "?v=" in url, url
        response = await hub.client.get(url)
        assert response.status_code == 200, url
        cache = response.headers["cache-control"]
        assert "max-age=31536000" in cache and "immutable" in cache, url
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_static_assets_are_gzipped_when_the_browser_accepts_it(hub: Harness) -> None:
    page = await hub.client.get("/")
    css = next(u for u in _assets(page.text) if "nhsuk-frontend" in u and ".css" in u)
    zipped = await hub.client.get(css, headers={"accept-encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped.headers.get("vary", "").lower()
    assert ".nhsuk-" in zipped.text  # httpx unzipped it
    plain = await hub.client.get(css, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text == zipped.text


async def test_unversioned_asset_urls_get_a_short_cache(hub: Harness) -> None:
    response = await hub.client.get("/static/css/hub.css")
    assert response.status_code == 200
    assert "immutable" not in response.headers["cache-control"]
    assert (await hub.client.get("/static/../hub/settings.py")).status_code == 404


async def test_dev_outbox_exists_only_in_demo_mode(make_hub: MakeHub) -> None:
    demo = await make_hub(demo=True)
    page = await demo.client.get("/dev/outbox")
    assert page.status_code == 200
    assert_page_headers(page)
    plain = await make_hub()
    assert (await plain.client.get("/dev/outbox")).status_code == 404
