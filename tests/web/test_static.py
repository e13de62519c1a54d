"""Static files: text compressed once per process and served with its own validator; everything else as it is."""

from __future__ import annotations

import gzip
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from hub.web.common import NHSUK_DIST
from hub.web.static import CachedStatic
from tests.harness import Harness
from tests.pages import app_client

pytestmark = pytest.mark.anyio
STYLE = b".nhsuk-card { margin: 0 0 24px; }\n" * 100


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "site.css").write_bytes(STYLE)
    (tmp_path / "tiny.css").write_bytes(b"a{}")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    return tmp_path


@pytest.fixture
async def client(folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Mount("/static", app=CachedStatic(directory=folder))])
    async with app_client(app, base_url="http://hub") as client:
        yield client


async def raw(client: httpx.AsyncClient, url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its bytes as sent (httpx would otherwise unzip them). httpx asks for gzip unless told
    otherwise."""
    async with client.stream("GET", url, headers=headers) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


async def test_text_is_sent_gzipped_and_unzips_to_the_file(client: httpx.AsyncClient) -> None:
    response, body = await raw(client, "/static/site.css?v=1", **{"accept-encoding": "gzip, deflate, br"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-type"].startswith("text/css")
    assert int(response.headers["content-length"]) == len(body) < len(STYLE) / 10
    assert "accept-ranges" not in response.headers
    assert gzip.decompress(body) == STYLE
    assert "immutable" in response.headers["cache-control"]


async def test_without_gzip_the_file_is_sent_as_it_is(client: httpx.AsyncClient) -> None:
    response, body = await raw(client, "/static/site.css", **{"accept-encoding": "identity"})
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"  # a cache must keep the two forms apart
    assert body == STYLE
    assert response.headers["cache-control"] == "public, max-age=86400"


async def test_each_form_revalidates_with_its_own_etag(client: httpx.AsyncClient) -> None:
    zipped, _ = await raw(client, "/static/site.css", **{"accept-encoding": "gzip"})
    plain, _ = await raw(client, "/static/site.css", **{"accept-encoding": "identity"})
    assert zipped.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    again, body = await raw(
        client, "/static/site.css", **{"accept-encoding": "gzip", "if-none-match": zipped.headers["etag"]}
    )
    assert again.status_code == 304 and body == b""
    assert again.headers["etag"] == zipped.headers["etag"]
    # The gzip form's validator does not stand for the plain file, nor the other way round.
    other, body = await raw(
        client, "/static/site.css", **{"accept-encoding": "identity", "if-none-match": zipped.headers["etag"]}
    )
    assert other.status_code == 200 and body == STYLE
    other, body = await raw(
        client, "/static/site.css", **{"accept-encoding": "gzip", "if-none-match": '"something-else"'}
    )
    assert other.status_code == 200 and gzip.decompress(body) == STYLE


async def test_a_range_request_gets_the_plain_bytes(client: httpx.AsyncClient) -> None:
    response, body = await raw(client, "/static/site.css", **{"accept-encoding": "gzip", "range": "bytes=0-9"})
    assert response.status_code == 206
    assert "content-encoding" not in response.headers
    assert body == STYLE[:10]


async def test_images_and_tiny_files_are_not_compressed(client: httpx.AsyncClient) -> None:
    for url in ("/static/logo.png", "/static/tiny.css"):
        response, body = await raw(client, url, **{"accept-encoding": "gzip"})
        assert response.status_code == 200, url
        assert "content-encoding" not in response.headers, url
        assert "vary" not in response.headers, url


async def test_a_changed_file_is_compressed_again(client: httpx.AsyncClient, folder: Path) -> None:
    _, first = await raw(client, "/static/site.css", **{"accept-encoding": "gzip"})
    assert gzip.decompress(first) == STYLE
    changed = STYLE.replace(b"24px", b"32px")
    (folder / "site.css").write_bytes(changed)
    later = os.stat(folder / "site.css").st_mtime + 5  # a new modification time, whatever the clock's grain
    os.utime(folder / "site.css", (later, later))
    _, second = await raw(client, "/static/site.css", **{"accept-encoding": "gzip"})
    assert gzip.decompress(second) == changed


async def test_the_nhsuk_stylesheet_asks_for_no_web_fonts_the_policy_blocks(hub: Harness) -> None:
    # Frutiger comes from assets.nhs.uk; font-src 'self' blocks it and every page logged an error.
    response = await hub.client.get(hub.app.state.hub.assets.url("nhsuk/nhsuk-frontend.min.css"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "immutable" in response.headers["cache-control"]
    assert "@font-face" not in response.text and "assets.nhs.uk" not in response.text
    assert ".nhsuk-header" in response.text  # the rest of the stylesheet is all there


async def test_favicon_ico_is_served(hub: Harness) -> None:
    response = await hub.client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.content == (NHSUK_DIST / "assets" / "images" / "favicon.ico").read_bytes()
