"""Pages gzipped for browsers that accept it, with a compressor sized for pages of a few KB.

Starlette's GZipMiddleware, less its dear parts. Its default compressor (zlib's largest window and memory level:
32 KB and 256 KB of state, allocated and cleared for every response) cost 60 microseconds for a 7.6 KB list page,
most of it setting up; an 8 KB window and memory level 5 give the same size for these pages (2,221 bytes against
2,225) in 28. And a page, the common case, is answered in one body message: its headers are read and rewritten
here in one pass over the list, where Starlette's responder built header objects and normalised its content-type
list again for every request (about 30 microseconds of a list page's 65 for compression). Anything else (a
streamed body, a 206, an excluded type, a body large enough to be compressed on a thread, such as the console's
CSV export) goes through Starlette's responder as before. A page larger than the
window compresses a little less well; static files are not affected (they are compressed once, at level 9, by
hub.web.static.CachedStatic).
"""

from __future__ import annotations

import zlib

from starlette.middleware.gzip import GZipMiddleware, GZipResponder, IdentityResponder
from starlette.types import Message, Receive, Scope, Send

WINDOW_BITS = 13  # an 8 KB window
MEMORY_LEVEL = 5
# Level 1: pages are a few KB, and level 6 saved a tenth of their size for twice the time. Static files are
# compressed once, at level 9, by CachedStatic.
LEVEL = 1
MINIMUM_SIZE = 500  # bytes: smaller bodies go as they are


def _compressor(level: int) -> zlib._Compress:
    return zlib.compressobj(level, zlib.DEFLATED, 16 + WINDOW_BITS, MEMORY_LEVEL)


def gzip_page(body: bytes, level: int = LEVEL) -> bytes:
    compressor = _compressor(level)
    return compressor.compress(body) + compressor.flush()


def accepts_gzip(scope: Scope) -> bool:
    return any(name == b"accept-encoding" and b"gzip" in value for name, value in scope["headers"])


class _PageResponder(GZipResponder):
    """Starlette's responder (for every case but the common one) with the small compressor."""

    @property
    def compressor(self) -> zlib._Compress:
        if self._compressor is None:
            self._compressor = _compressor(self.compresslevel)
        return self._compressor


class PageGZipMiddleware(GZipMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if accepts_gzip(scope):
            await _OneBody(self, send).respond(scope, receive)
        else:
            responder = IdentityResponder(self.app, self.minimum_size)
            responder.exclude_content_types = self.exclude_content_types  # normalised once, in __init__
            await responder(scope, receive, send)

    def streaming(self) -> _PageResponder:
        responder = _PageResponder(self.app, self.minimum_size, compresslevel=self.compresslevel)
        responder.thread_minimum_size = self.thread_minimum_size
        responder.exclude_content_types = self.exclude_content_types
        return responder


class _OneBody:
    """One response: a start and one final body are compressed here; on anything else, every message from the
    start on is handed to Starlette's responder, which then decides as it always has."""

    def __init__(self, middleware: PageGZipMiddleware, send: Send) -> None:
        self._middleware = middleware
        self._send = send
        self._start: Message | None = None
        self._fallback: _PageResponder | None = None
        self._as_it_is = False

    async def respond(self, scope: Scope, receive: Receive) -> None:
        await self._middleware.app(scope, receive, self.send)

    async def send(self, message: Message) -> None:
        if self._as_it_is:
            await self._send(message)
        elif self._fallback is not None:
            await self._fallback.send_with_compression(message)
        elif message["type"] == "http.response.start":
            if any(name.lower() == b"content-encoding" for name, _ in message.get("headers", ())):
                # Encoded already (a remembered page, gzipped once): passed on as it is, as Starlette's would.
                self._as_it_is = True
                await self._send(message)
            else:
                self._start = message
        elif (
            self._start is not None
            and message["type"] == "http.response.body"
            and not message.get("more_body", False)
            and len(message.get("body", b"")) < self._middleware.thread_minimum_size  # larger: on a thread, as before
            and self._compressible(self._start)
        ):
            await self._one_body(self._start, message)
        else:
            self._fallback = self._middleware.streaming()
            self._fallback.send = self._send
            if self._start is not None:
                await self._fallback.send_with_compression(self._start)
            await self._fallback.send_with_compression(message)

    def _compressible(self, start: Message) -> bool:
        if start["status"] == 206 or start.get("trailers", False):
            return False
        excluded = self._middleware.exclude_content_types
        for name, value in start.get("headers", ()):
            if name.lower() == b"content-type":  # as Starlette's responder reads it (an encoded start never gets here)
                media = value.decode("latin-1").partition(";")[0].strip().lower()
                grpc = "application/grpc" if media.startswith("application/grpc+") else media
                if media in excluded or media.partition("/")[0] + "/*" in excluded or grpc in excluded:
                    return False
        return True

    async def _one_body(self, start: Message, message: Message) -> None:
        body = message.get("body", b"")
        if len(body) < self._middleware.minimum_size:  # as it is: not worth compressing (a HEAD's empty body too)
            await self._send(start)
            await self._send(message)
            return
        headers = [(name, value) for name, value in start.get("headers", ()) if name.lower() != b"content-length"]
        vary = next((value for name, value in headers if name.lower() == b"vary"), None)
        if vary is None:
            headers.append((b"vary", b"Accept-Encoding"))
        elif b"accept-encoding" not in vary.lower():
            headers = [(n, v + b", Accept-Encoding" if n.lower() == b"vary" else v) for n, v in headers]
        body = gzip_page(body, self._middleware.compresslevel)
        headers += ((b"content-encoding", b"gzip"), (b"content-length", str(len(body)).encode()))
        await self._send({**start, "headers": headers})
        await self._send({**message, "body": body})
