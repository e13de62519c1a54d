"""What every page handler shares: forms read with their CSRF token checked, the client's address as a keyed hash,
cache-busted asset URLs, and templates that read a row's keys before a dict's attributes."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from hub.rules.codes import keyed_hash
from hub.web.common import MAX_FIELD, Assets, client_address, client_key, read_form
from tests.conftest import SECRET, MakeHub
from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def _echo(request: Request) -> Response:
    """The form as read_form hands it to a handler."""
    return JSONResponse(await read_form(request))


async def _client(request: Request) -> Response:
    return PlainTextResponse(client_key(request))


def _with_test_routes(hub: Harness) -> Harness:
    hub.app.router.routes[:0] = [Route("/test/echo", _echo, methods=["POST"]), Route("/test/client", _client)]
    return hub


async def test_a_form_is_read_trimmed_and_cleaned_once_its_token_is_this_browsers(hub: Harness) -> None:
    _with_test_routes(hub)
    token = await hub.csrf("/")  # the browser's token, as any page's form carries it
    sent = {"csrf_token": token, "long": "x" * (MAX_FIELD + 10), "nul": "a\x00b\tc\nd", "blank": ""}
    response = await hub.client.post("/test/echo", data=sent)
    assert response.status_code == 200
    assert response.json() == {"csrf_token": token, "long": "x" * MAX_FIELD, "nul": "ab\tc\nd", "blank": ""}


@pytest.mark.parametrize("token", [None, "", "forged"])
async def test_a_form_without_this_browsers_token_is_refused(hub: Harness, token: str | None) -> None:
    _with_test_routes(hub)
    await hub.csrf("/")  # the browser has its anonymous cookie and a token of its own
    data = {"name": "x"} if token is None else {"csrf_token": token, "name": "x"}
    assert (await hub.client.post("/test/echo", data=data)).status_code == 403


async def test_another_browsers_token_is_refused(hub: Harness, new_browser: Callable[..., Harness]) -> None:
    _with_test_routes(hub)
    theirs = await hub.csrf("/")
    other = new_browser(hub)
    mine = await other.csrf("/")
    assert mine != theirs
    assert (await other.client.post("/test/echo", data={"csrf_token": theirs})).status_code == 403
    assert (await other.client.post("/test/echo", data={"csrf_token": mine})).status_code == 200


async def test_a_form_with_too_many_fields_or_a_body_that_is_not_a_form_is_refused(hub: Harness) -> None:
    _with_test_routes(hub)
    token = await hub.csrf("/")
    many = {"csrf_token": token, **{f"f{n}": "x" for n in range(60)}}
    assert (await hub.client.post("/test/echo", data=many)).status_code == 400
    broken = b"--boundary\r\nContent-Disposition: form-data\r\n\r\nno name\r\n"
    headers = {"content-type": "multipart/form-data; boundary=boundary"}
    assert (await hub.client.post("/test/echo", content=broken, headers=headers)).status_code == 400


async def test_the_client_is_known_by_a_keyed_hash_of_its_address(hub: Harness) -> None:
    _with_test_routes(hub)
    key = (await hub.client.get("/test/client", headers={"x-forwarded-for": "192.0.2.1"})).text
    assert key == keyed_hash(SECRET, "client", "203.0.113.7")  # the proxy's header is not believed by default
    assert "203.0.113.7" not in key


async def test_behind_a_trusted_proxy_the_address_it_appended_is_the_client(make_hub: MakeHub) -> None:
    # F3: the leftmost entry was taken, which the client writes: a rotating spoofed entry escaped every limit.
    hub = _with_test_routes(await make_hub(trusted_proxies=["203.0.113.7", "10.0.0.0/8"]))
    client = keyed_hash(SECRET, "client", "192.0.2.1")
    for spoofed in ("198.51.100.1", "198.51.100.2", "10.9.9.9"):
        headers = {"x-forwarded-for": f"{spoofed}, 192.0.2.1, 10.1.2.3"}  # client's own, what our proxies saw
        assert (await hub.client.get("/test/client", headers=headers)).text == client
    assert (await hub.client.get("/test/client")).text == keyed_hash(SECRET, "client", "203.0.113.7")


async def test_forwarded_headers_from_anyone_but_a_trusted_proxy_are_ignored(make_hub: MakeHub) -> None:
    hub = _with_test_routes(await make_hub(trusted_proxies=["10.0.0.0/8"]))
    headers = {"x-forwarded-for": "192.0.2.1"}
    assert (await hub.client.get("/test/client", headers=headers)).text == keyed_hash(SECRET, "client", "203.0.113.7")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["192.0.2.1"], "192.0.2.1"),
        ("10.0.0.1", ["1.1.1.1, 192.0.2.1", "10.0.0.2"], "192.0.2.1"),  # two headers are one list
        ("10.0.0.1", ["not-an-address, 10.0.0.2"], "not-an-address"),
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # all ours: the furthest one seen
        ("192.0.2.9", ["192.0.2.1"], "192.0.2.9"),
    ],
)
def test_the_client_address_is_the_rightmost_not_trusted(peer: str, forwarded: list[str], client: str) -> None:
    assert client_address(peer, forwarded, (ipaddress.ip_network("10.0.0.0/8"),)) == client


def test_an_asset_url_carries_a_hash_of_the_file(tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    style = tmp_path / "css" / "hub.css"
    style.write_text("body { color: #212b32; }")
    assets = Assets({"static": tmp_path})
    url = assets.url("/static/css/hub.css")
    assert url.startswith("/static/css/hub.css?v=") and len(url.split("=")[1]) == 12
    style.write_text("body { color: #005eb8; }")
    assert assets.url("static/css/hub.css") != url  # another spelling of the path: read afresh
    assert assets.url("/static/css/hub.css") == url  # the same one: kept until the next deploy


async def test_templates_read_a_rows_keys_but_keep_a_dicts_own_methods(hub: Harness) -> None:
    templates = hub.app.state.hub.templates
    row = {"clinic": "Cardiology", "items": "three", "get": "posted"}
    html = templates.from_string("{{ row.clinic }}|{{ row.missing }}|{{ row.get('clinic') }}").render(row=row)
    assert html == "Cardiology||Cardiology"


def test_templates_read_the_environments_globals_directly() -> None:
    """Jinja's default wraps each template's globals in a ChainMap, read key by key in Python: every render copied
    the ~70 globals through it and every `{% from ... import %}` compared their keys one by one (a third of the
    list page's rendering). The templates read the environment's own dict, and still see a global set later."""
    from hub.app import ASSET_MOUNTS
    from hub.settings import load_settings
    from hub.web.common import make_templates

    env = make_templates(Assets(ASSET_MOUNTS), load_settings(environ={"HUB_SECRET_KEY": SECRET, "HUB_DEMO": "true"}))
    page = env.get_template("views/patient/appointments.html")
    assert type(page.globals) is dict and page.globals is env.globals
    env.globals["added_later"] = "seen"
    assert env.from_string("{{ added_later }}").render() == "seen"
    assert env.get_template("base.html").globals["added_later"] == "seen"
