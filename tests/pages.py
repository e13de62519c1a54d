"""Page checks that every test client runs on every HTML response, and the clients that run them.

Every page the hub renders must have a non-empty <title> in its <head>, parse as HTML5 without a single error,
give every <form> an action (and every POST form a CSRF token), and use each id once. The checks run from an httpx
response hook, so a test cannot forget them: every GET that answers HTML is checked whatever its status, error
pages included. (A page a POST renders, a form sent back with its errors, is checked by the test that posts.)
A test that really must fetch malformed output says so on the request:

    await hub.client.get(path, extensions=SKIP_PAGE_CHECKS)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import html5lib
import httpx
from starlette.types import ASGIApp

SKIP_PAGE_CHECKS = {"skip_page_checks": True}
_FORM_METHODS = ("get", "post")


class PageError(AssertionError):
    def __init__(self, problem: str, url: str = "") -> None:
        super().__init__(f"{url}: {problem}" if url else problem)


def check_page(html: str, url: str = "") -> Element:
    """The parsed page, once it has passed every check; PageError names the first it fails."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    try:
        document: Element = parser.parse(html)
    except html5lib.html5parser.ParseError as error:
        raise PageError(f"not valid HTML5 ({error}): {_near(parser, html)}", url) from None
    title = document.find("./head/title")
    if title is None or not (title.text or "").strip():
        raise PageError("page has no <title>", url)
    for form in document.iter("form"):
        action, method = form.get("action"), (form.get("method") or "get").lower()
        if not action:
            raise PageError("a <form> has no action", url)
        if method not in _FORM_METHODS:
            raise PageError(f"form {action} has method {method!r}", url)
        if method == "post" and form.find(".//input[@name='csrf_token']") is None:
            raise PageError(f"POST form {action} has no CSRF token", url)
    ids = Counter(el.get("id") for el in document.iter() if el.get("id"))
    duplicates = sorted(i for i, n in ids.items() if n > 1 and i)
    if duplicates:
        raise PageError(f"duplicate ids: {duplicates}", url)
    return document


def _near(parser: Any, html: str) -> str:
    """The line the parser stopped on, to find the fault without reading the whole page."""
    line = parser.errors[-1][0][0] if parser.errors else 0
    lines = html.splitlines()
    return f"line {line}: {lines[line - 1].strip()[:200]!r}" if 0 < line <= len(lines) else ""


def is_html(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/html")


async def check_response(response: httpx.Response) -> None:
    """The response hook: every HTML answer to a GET is a page, and every page passes check_page."""
    request = response.request
    if request.method != "GET" or request.extensions.get("skip_page_checks") or not is_html(response):
        return
    await response.aread()
    check_page(response.text, f"GET {request.url.path}")


PAGE_CHECKS: dict[str, list[Callable[[httpx.Response], Awaitable[None]]]] = {"response": [check_response]}


def app_client(
    app: ASGIApp,
    *,
    base_url: str | httpx.URL = "http://testserver",
    address: str = "203.0.113.7",
    raise_app_exceptions: bool = True,
    cookies: httpx.Cookies | None = None,
) -> httpx.AsyncClient:
    """A browser on the app, in process: the only way tests build one, so every page it gets is checked."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url=base_url, cookies=cookies, event_hooks=PAGE_CHECKS)


@dataclass(frozen=True)
class Page:
    """A page that passed the checks: the response and its parsed document."""

    response: httpx.Response
    document: Element

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def title(self) -> str:
        title = self.document.find("./head/title")
        assert title is not None and title.text
        return " ".join(title.text.split())

    def by_id(self, element_id: str) -> Element | None:
        return next((el for el in self.document.iter() if el.get("id") == element_id), None)

    def all(self, tag: str) -> list[Element]:
        return list(self.document.iter(tag))


async def get_page(client: httpx.AsyncClient, path: str, *, status: int = 200) -> Page:
    """GET a page, insist on its status and HTML, and hand it back parsed (the checks ran on the way)."""
    response = await client.get(path)
    assert response.status_code == status, f"GET {path}: {response.status_code}, expected {status}"
    assert is_html(response), f"GET {path} is {response.headers.get('content-type')!r}, not a page"
    return Page(response, check_page(response.text, f"GET {path}"))
