"""The page checks themselves: each fault is caught, and every test client runs them on every GET."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.harness import Harness
from tests.pages import SKIP_PAGE_CHECKS, PageError, app_client, check_page

pytestmark = pytest.mark.anyio

FORM = '<form action="/save" method="post"><input type="hidden" name="csrf_token" value="t"></form>'


def page(body: str = "<p>Hello</p>", *, head: str = "<title>A page</title>") -> str:
    head = f'<head><meta charset="utf-8">{head}</head>'
    return f'<!DOCTYPE html>\n<html lang="en-GB">\n{head}\n<body>{body}</body>\n</html>'


def test_a_good_page_passes_and_comes_back_parsed() -> None:
    document = check_page(page(FORM + '<form action="/search"><input id="q" name="q"></form>'))
    assert [form.get("action") for form in document.iter("form")] == ["/save", "/search"]


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        (page(head=""), "no <title>"),
        (page(head="<title>  </title>"), "no <title>"),
        (page("<svg><title>Only a picture has one</title></svg>", head=""), "no <title>"),
        (page().removeprefix("<!DOCTYPE html>\n"), "not valid HTML5"),
        (page("<p>Unclosed <b>bold</p>"), "not valid HTML5"),
        (page("<p>A stray </div> end tag</p>"), "not valid HTML5"),
        (page("<p>Invalid\x0bcharacter</p>"), "not valid HTML5"),
        (page('<form method="post"><input name="csrf_token"></form>'), "no action"),
        (page('<form action="" method="post"><input name="csrf_token"></form>'), "no action"),
        (page('<form action="/x" method="put"></form>'), "method 'put'"),
        (page('<form action="/x" method="post"></form>'), "no CSRF token"),
        (page('<p id="a">One</p><p id="a">Two</p>'), "duplicate ids: ['a']"),
        (page('<p id="a">One</p><svg><g id="a"></g></svg>'), "duplicate ids: ['a']"),
    ],
)
def test_each_fault_is_caught(html: str, problem: str) -> None:
    with pytest.raises(PageError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        check_page(html, "GET /somewhere")


BAD = page('<p id="x">1</p><p id="x">2</p>')


async def _bad(request: Request) -> Response:
    return HTMLResponse(BAD, status_code=int(request.query_params.get("status", "200")))


async def _text(request: Request) -> Response:
    return PlainTextResponse("<p>not a page, so not checked</p>")


APP = Starlette(routes=[Route("/bad", _bad, methods=["GET", "POST"]), Route("/text", _text)])


@pytest.mark.parametrize("status", [200, 400, 404, 500])
async def test_the_client_checks_every_html_answer_to_a_get_whatever_its_status(status: int) -> None:
    async with app_client(APP) as client:
        with pytest.raises(PageError, match="GET /bad: duplicate ids"):
            await client.get(f"/bad?status={status}")


async def test_a_test_can_opt_out_visibly_and_other_answers_are_left_alone() -> None:
    async with app_client(APP) as client:
        assert (await client.get("/bad", extensions=SKIP_PAGE_CHECKS)).text == BAD
        assert (await client.get("/text")).status_code == 200
        assert (await client.post("/bad")).status_code == 200  # the test that posts checks what comes back


async def test_the_hubs_clients_check_pages(hub: Harness, new_browser: Callable[..., Harness]) -> None:
    hub.app.router.routes.insert(0, Route("/bad", _bad))
    other = new_browser(hub)
    for client in (hub.client, other.client):
        with pytest.raises(PageError):
            await client.get("/bad")
    with pytest.raises(PageError):
        await hub.get_page("/bad")


async def test_get_page_insists_on_the_status_and_parses_the_page(hub: Harness) -> None:
    start = await hub.get_page("/")
    assert start.title and start.all("form")
    missing = await hub.get_page("/sites/NOWHERE", status=404)
    assert missing.response.status_code == 404
    with pytest.raises(AssertionError, match="expected 200"):
        await hub.get_page("/sites/NOWHERE")
    with pytest.raises(AssertionError, match="not a page"):
        await hub.get_page("/healthz")
