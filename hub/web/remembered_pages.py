"""Pages remembered by everything they are made from.

A page whose template reads nothing but its context renders the same HTML for the same context. What depends on
the time is decided by the handler and passed in (the list's grouping into upcoming, past and cancelled), the
filters are pure (London dates and times of a stored instant) and the globals are settings, fixed for the process.
The patient's list of appointments is asked for again and again (after each appointment opened, on every reload),
and rendering and compressing it were most of its cost. So it is remembered under a digest of its whole context:
every column of every row read for it, the patient, the browser's CSRF token, the notice shown. Nothing is ever
invalidated, because nothing needs to be: a changed appointment, letter, offer or name, a different session or an
appointment that has passed into "Past" is a different key, and an old entry is never found again.

The digest is SHA-256 of the context as pickle writes it, which records each value's type as well as its value:
True and 1, '<b>' and Markup('<b>'), 1:30am BST and the 1:30am GMT an hour later (fold) are different keys, though
they compare equal. A context pickle cannot write is rendered every time.

What is remembered is personal (the page): it is found only by a digest of its own data, the patient's row and
session's token among it, so no patient can be given another's, and the key holds nothing readable. Pages are
kept gzipped, few (`size`) and small in all (`max_bytes`), least recently used out first, and each is dropped once
nobody has asked for it for `max_age` seconds (checked whenever a remembered page is asked for); they never leave
the process.
"""

from __future__ import annotations

import hashlib
import pickle
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from jinja2 import Template
from starlette.responses import HTMLResponse, Response

from hub.web.compression import MINIMUM_SIZE, accepts_gzip, gzip_page


def _key(template: Template, status: int, context: dict[str, Any]) -> bytes | None:
    try:
        written = pickle.dumps((template.name, status, context), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # anything pickle cannot write (a lambda, a generator, a socket): not remembered
        return None
    return hashlib.sha256(written).digest()


class _Page:
    __slots__ = ("body", "gzipped", "used")

    def __init__(self, html: bytes, used: float) -> None:
        self.gzipped = len(html) >= MINIMUM_SIZE
        self.body = gzip_page(html) if self.gzipped else html
        self.used = used


class RememberedPages:
    def __init__(
        self,
        size: int = 1024,
        max_age: float = 300.0,
        max_bytes: int = 8 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._max_age = max_age  # seconds
        self._max_bytes = max_bytes
        self._clock = clock
        self._pages: OrderedDict[bytes, _Page] = OrderedDict()
        self._bytes = 0
        self.hits = 0  # pages answered from memory

    def __len__(self) -> int:
        return len(self._pages)

    def response(self, scope: Any, template: Template, context: dict[str, Any], status: int = 200) -> Response:
        """The page for this context, rendered or remembered, gzipped when the browser takes it (then the
        compression middleware passes it on as it is)."""
        key = _key(template, status, context)
        if key is None:
            return HTMLResponse(template.render(context), status_code=status)
        page = self._remembered(key) or self._remember(key, template.render(context).encode())
        if not page.gzipped:
            return HTMLResponse(page.body, status_code=status)
        if not accepts_gzip(scope):
            return HTMLResponse(zlib.decompress(page.body, wbits=31), status_code=status)
        return Response(
            page.body,
            status_code=status,
            media_type="text/html",
            headers={"content-encoding": "gzip", "vary": "Accept-Encoding"},
        )

    def _remembered(self, key: bytes) -> _Page | None:
        now = self._clock()
        pages = self._pages
        while pages:  # least recently used first: drop those nobody has asked for in max_age
            oldest = next(iter(pages.values()))
            if now - oldest.used <= self._max_age:
                break
            self._drop_oldest()
        page = pages.get(key)
        if page is not None:
            self.hits += 1
            page.used = now
            pages.move_to_end(key)
        return page

    def _remember(self, key: bytes, html: bytes) -> _Page:
        page = self._pages[key] = _Page(html, self._clock())
        self._bytes += len(page.body)
        while len(self._pages) > self._size or self._bytes > self._max_bytes:
            self._drop_oldest()
        return page

    def _drop_oldest(self) -> None:
        _, page = self._pages.popitem(last=False)
        self._bytes -= len(page.body)
