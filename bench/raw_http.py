"""Load-generator HTTP clients: a few microseconds of client work per request.

The load generator shares the machine's cores with the server. httpx spends about a millisecond of CPU on each
request, so a run driven by it measures httpx: at 100 patients with no reading time the generator sat at 100% of a
core while the hub used 15-30% of one. These clients speak just enough HTTP/1.1 for the hub's pages (keep-alive,
Content-Length or chunked bodies, gzip, cookies), one connection per simulated patient, as a browser holds one.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlencode


class Headers(dict[str, str]):
    """Response headers by lower-case name (a repeated header keeps its last value; Set-Cookie is read apart)."""


@dataclass
class Page:
    status_code: int
    headers: Headers
    body: bytes
    path: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Browser:
    """One patient's browser: one keep-alive connection, a cookie jar, gzip accepted."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> Page:
        return await self._send("GET", path, b"")

    async def post(self, path: str, data: dict[str, str]) -> Page:
        return await self._send("POST", path, urlencode(data).encode())

    async def _send(self, method: str, path: str, body: bytes) -> Page:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept-Encoding: gzip\r\n"
        if self.cookies:
            head += "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n"
        if method == "POST":
            head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        request = (head + "\r\n").encode() + body
        try:
            status, headers, cookies, raw = await self._exchange(request, fresh=self._writer is None)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed the connection while it was idle (uvicorn does after 5 s): the request never
            # reached it, so it is safe to send again on a new one.
            self.close()
            status, headers, cookies, raw = await self._exchange(request, fresh=True)
        for name, value, attributes in cookies:
            if value == "" or "max-age=0" in attributes:  # how a server deletes a cookie
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        if headers.get("content-encoding") == "gzip":
            raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        return Page(status, headers, raw, path)

    async def _exchange(self, request: bytes, *, fresh: bool) -> tuple[int, Headers, list[tuple[str, str, str]], bytes]:
        if fresh:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self._reader is not None and self._writer is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0][9:12])
        headers = Headers()
        cookies: list[tuple[str, str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                pair, _, attributes = value.partition(";")
                cookie, _, cookie_value = pair.partition("=")
                cookies.append((cookie.strip(), cookie_value.strip().strip('"'), attributes.lower().replace(" ", "")))
            else:
                headers[name] = value
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int((await self._reader.readuntil(b"\r\n")).strip(), 16):
                body += (await self._reader.readexactly(size + 2))[:-2]
            await self._reader.readuntil(b"\r\n")
        else:
            body = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            self.close()
        return status, headers, cookies, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class RawClient:
    """One keep-alive connection asking for one page with fixed headers, for the list-page comparison."""

    def __init__(self, port: int, path: str, cookie: str = "") -> None:
        self.port = port
        headers = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: gzip\r\n"
        if cookie:
            headers += f"Cookie: {cookie}\r\n"
        self.request = (headers + "\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> tuple[int, bytes]:
        try:
            return await self._get()
        except (asyncio.IncompleteReadError, ConnectionError):
            # uvicorn closes a connection idle for 5 s (while the other server had its round): open a new one.
            self.close()
            self.writer = None
            return await self._get()

    async def _get(self) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
