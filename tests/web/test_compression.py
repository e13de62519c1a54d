"""Pages gzipped with a compressor sized for them: what the browser unpacks is the page, and what should not be
compressed is not."""

from __future__ import annotations

import zlib

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hub.web.compression import PageGZipMiddleware

pytestmark = pytest.mark.anyio
_WORDS = "appointment clinic hospital letter monday march royal free barnet chase farm confirm cancel".split()
_BLOCK = "".join(f"<p>{n} {_WORDS[n * 7 % 13]} {_WORDS[n * 11 % 13]} {n * 7919 % 10007}</p>\n" for n in range(400))
# Twice over, 12 KB apart: a 32 KB window finds the second copy whole, an 8 KB window cannot reach back to it.
PAGE = (_BLOCK * 2).encode()


def _app() -> Starlette:
    async def page(request: Request) -> Response:
        return Response(PAGE, media_type="text/html")

    async def small(request: Request) -> Response:
        return Response(b"<p>ok</p>", media_type="text/html")

    async def stream(request: Request) -> StreamingResponse:
        async def rows():  # type: ignore[no-untyped-def]
            for n in range(200):
                yield f"{n},appointment,booked\n".encode()

        return StreamingResponse(rows(), media_type="text/csv")

    async def encoded(request: Request) -> Response:
        return Response(zlib.compress(PAGE, 9, 31), headers={"content-encoding": "gzip"}, media_type="text/css")

    async def varies(request: Request) -> Response:
        return Response(PAGE, media_type="text/html", headers={"vary": "Cookie"})

    async def partial(request: Request) -> Response:
        return Response(PAGE, status_code=206, media_type="text/html")

    async def picture(request: Request) -> Response:
        return Response(PAGE, media_type="image/png")

    async def grpc(request: Request) -> Response:
        return Response(PAGE, media_type="application/grpc+proto")

    async def export(request: Request) -> Response:  # past Starlette's 128 KiB: compressed on a thread
        return Response(PAGE * 12, media_type="text/csv")

    handlers = {"/": page, "/s": small, "/c": stream, "/e": encoded, "/v": varies, "/p": partial, "/i": picture}
    handlers["/x"] = export
    routes = [Route(path, handler) for path, handler in (handlers | {"/g": grpc}).items()]
    return Starlette(routes=routes, middleware=[Middleware(PageGZipMiddleware, minimum_size=500, compresslevel=1)])


async def _get(path: str, accept: str = "gzip") -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://testserver") as client:
        async with client.stream("GET", path, headers={"Accept-Encoding": accept}) as response:
            await response.aread()
            return response


async def test_a_page_is_gzipped_and_unpacks_to_itself() -> None:
    response = await _get("/")
    assert response.headers["content-encoding"] == "gzip" and "accept-encoding" in response.headers["vary"].lower()
    assert response.content == PAGE  # as httpx unpacked it
    assert int(response.headers["content-length"]) < len(PAGE) / 3


async def test_the_compressor_uses_a_small_window() -> None:
    # An 8 KB window and memory level 5: exactly what such a compressor makes (zlib's defaults make another size).
    small = zlib.compressobj(1, zlib.DEFLATED, 16 + 13, 5)
    expected = small.compress(PAGE) + small.flush()
    response = await _get("/")
    assert int(response.headers["content-length"]) == len(expected)


async def test_small_plain_streamed_and_already_encoded_bodies() -> None:
    small = await _get("/s")
    assert "content-encoding" not in small.headers and small.content == b"<p>ok</p>"
    plain = await _get("/", accept="identity")
    assert "content-encoding" not in plain.headers and plain.content == PAGE
    streamed = await _get("/c")
    assert streamed.headers["content-encoding"] == "gzip"
    assert streamed.content == b"".join(f"{n},appointment,booked\n".encode() for n in range(200))
    encoded = await _get("/e")
    assert encoded.headers["content-encoding"] == "gzip" and encoded.content == PAGE  # compressed once, not twice


async def test_a_page_keeps_its_own_vary_and_has_one_length() -> None:
    response = await _get("/v")
    assert response.headers["vary"] == "Cookie, Accept-Encoding" and response.content == PAGE
    assert response.headers.get_list("content-length") == [response.headers["content-length"]]


@pytest.mark.parametrize("path", ["/p", "/i", "/g"])
async def test_partial_content_and_excluded_types_are_sent_as_they_are(path: str) -> None:
    response = await _get(path)
    assert "content-encoding" not in response.headers
    assert response.content == PAGE and response.headers["content-length"] == str(len(PAGE))


async def test_a_large_body_is_compressed_whole() -> None:
    response = await _get("/x")
    assert response.headers["content-encoding"] == "gzip" and response.content == PAGE * 12
    assert response.headers.get_list("content-length") == [response.headers["content-length"]]
