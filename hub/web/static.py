"""Static files: long caching for cache-busted URLs, and text files compressed once, not on every request.

The NHS.UK stylesheet is 278 KB; compressing it for each new visitor cost a few milliseconds of the event loop
per first visit, all at once after a morning's bulk send. Here each text file is compressed once per process
(at the highest level, so it is also smaller), kept while the file is unchanged, and served to every browser
that accepts gzip. The gzip middleware leaves such responses alone (they already carry Content-Encoding).
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Receive, Scope, Send

MIN_SIZE = 500  # smaller files gain nothing worth a header (the gzip middleware's own minimum)
MAX_SIZE = 4 * 1024 * 1024  # larger files are streamed as they are rather than held in memory
_TEXT = {"application/javascript", "application/json", "image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon"}


def compressible(media_type: str) -> bool:
    return media_type.startswith("text/") or media_type in _TEXT


class CachedStatic(StaticFiles):
    """A year's caching for cache-busted URLs (?v=hash); a day for the rest (the CSS's own image URLs)."""

    def __init__(self, *, directory: Path) -> None:
        super().__init__(directory=directory)
        self._gzipped: dict[str, tuple[tuple[float, int], bytes]] = {}

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = response.headers.get("content-type", "").partition(";")[0].strip()
        if compressible(media_type) and MIN_SIZE <= stat_result.st_size <= MAX_SIZE:
            response.headers["Vary"] = "Accept-Encoding"  # either way: a cache must not mix the two forms
            request = Headers(scope=scope)
            if (
                isinstance(response, FileResponse)
                and "gzip" in request.get("accept-encoding", "")
                and ("range" not in request)
            ):
                response = self._gzip_response(str(full_path), stat_result, response, request)
        versioned = b"v=" in scope.get("query_string", b"")
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if versioned else "public, max-age=86400"
        )
        return response

    def _gzip_response(self, path: str, stat_result: os.stat_result, plain: FileResponse, request: Headers) -> Response:
        headers = {
            name: value
            for name, value in plain.headers.items()
            if name not in ("content-length", "accept-ranges", "etag")
        }
        # Another representation, so another validator: the file's ETag marked as the gzip form.
        headers["etag"] = plain.headers["etag"][:-1] + '-gzip"'
        headers["content-encoding"] = "gzip"
        if self.is_not_modified(Headers(headers), request):
            return NotModifiedResponse(Headers(headers))
        return Response(self._compressed(path, stat_result), status_code=plain.status_code, headers=headers)

    def _compressed(self, path: str, stat_result: os.stat_result) -> bytes:
        stamp = (stat_result.st_mtime, stat_result.st_size)
        cached = self._gzipped.get(path)
        if cached is None or cached[0] != stamp:
            body = gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)
            cached = self._gzipped[path] = (stamp, body)
        return cached[1]


class FontlessStylesheet:
    """The NHS.UK stylesheet without its @font-face rules. Frutiger is licensed for nhs.uk only and is fetched from
    assets.nhs.uk, which our Content-Security-Policy (font-src 'self') blocks; a trust's service uses the
    stylesheet's own fallback fonts. Built and compressed once per process."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._bodies: tuple[bytes, bytes] | None = None

    def _built(self) -> tuple[bytes, bytes]:
        if self._bodies is None:
            css = re.sub(rb"@font-face\s*\{[^}]*\}", b"", self._path.read_bytes())
            self._bodies = (css, gzip.compress(css, compresslevel=9, mtime=0))
        return self._bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain, zipped = self._built()
        request = Headers(scope=scope)
        headers = {
            "content-type": "text/css; charset=utf-8",
            "vary": "Accept-Encoding",
            "cache-control": "public, max-age=31536000, immutable"
            if b"v=" in scope.get("query_string", b"")
            else "public, max-age=86400",
        }
        if "gzip" in request.get("accept-encoding", ""):
            response = Response(zipped, headers={**headers, "content-encoding": "gzip"})
        else:
            response = Response(plain, headers=headers)
        await response(scope, receive, send)
