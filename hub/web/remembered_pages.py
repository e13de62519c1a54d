"""Pages remembered by everything they are made from.

A page whose template reads nothing but its context renders the same HTML for the same context. What depends on
the time is decided by the handler and passed in (the list's grouping into upcoming, past and cancelled), the
filters are pure (London dates and times of a stored instant) and the globals are settings, fixed for the process.
The patient's list of appointments is asked for again and again (after each appointment opened, on every reload),
and rendering and compressing it were most of its cost. So it is remembered under a key made of its whole context:
every column of every row read for it, the patient, the browser's CSRF token, the notice shown. Nothing is ever
invalidated, because nothing needs to be: a changed appointment, letter, offer or name, a different session or an
appointment that has passed into "Past" is a different key, and an old entry is never found again.

What is remembered is personal: a page is found only by its own data (the patient's row, with their id, and their
session's token are in the key), so no patient can be given another's; entries are few (`size`, least recently used
out first), dropped once nobody has asked for them for a few minutes (`max_age`), and never leave the process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from jinja2 import Template
from starlette.responses import HTMLResponse, Response

from hub.web.compression import MINIMUM_SIZE, accepts_gzip, gzip_page


def _key(value: Any) -> Hashable:
    """The context's values as one hashable key. A row (a dict of plain values) becomes its items, hashed in C;
    containers of rows are walked. Equal values render alike within one page: its handler puts values of one type
    in each place (a column's type is its schema's), so 1 is never compared with True there, nor '<b>' with
    Markup('<b>'). Something unhashable inside a row leaves the key unhashable, and the page is rendered."""
    kind = type(value)
    if kind is dict:
        items = tuple(value.items())
        try:
            hash(items)
        except TypeError:  # rows within, or something that cannot be a key
            return tuple((name, _key(item)) for name, item in items)
        return items
    if kind is list or kind is tuple:
        return tuple(map(_key, value))
    return value


class _Page:
    __slots__ = ("html", "gzipped", "used")

    def __init__(self, html: bytes) -> None:
        self.html = html
        self.gzipped: bytes | None = None
        self.used = 0.0


class RememberedPages:
    def __init__(self, size: int = 1024, max_age: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._max_age = max_age  # seconds
        self._clock = clock
        self._pages: OrderedDict[Hashable, _Page] = OrderedDict()
        self.hits = 0  # pages answered from memory

    def __len__(self) -> int:
        return len(self._pages)

    def response(self, scope: Any, template: Template, context: dict[str, Any], status: int = 200) -> Response:
        """The page for this context, rendered or remembered; gzipped here (once) when the browser takes it, so
        that the compression middleware passes it on as it is."""
        key = (template.name, status, _key(context))
        try:
            hash(key)
        except TypeError:
            return HTMLResponse(template.render(context), status_code=status)
        page = self._remembered(key) or self._remember(key, template.render(context).encode())
        if len(page.html) < MINIMUM_SIZE or not accepts_gzip(scope):
            return HTMLResponse(page.html, status_code=status)
        if page.gzipped is None:
            page.gzipped = gzip_page(page.html)
        return Response(
            page.gzipped,
            status_code=status,
            media_type="text/html",
            headers={"content-encoding": "gzip", "vary": "Accept-Encoding"},
        )

    def _remembered(self, key: Hashable) -> _Page | None:
        now = self._clock()
        pages = self._pages
        while pages:  # least recently used first: drop those nobody has asked for in max_age
            oldest = next(iter(pages.values()))
            if now - oldest.used <= self._max_age:
                break
            pages.popitem(last=False)
        page = pages.get(key)
        if page is not None:
            self.hits += 1
            page.used = now
            pages.move_to_end(key)
        return page

    def _remember(self, key: Hashable, html: bytes) -> _Page:
        page = self._pages[key] = _Page(html)
        page.used = self._clock()
        if len(self._pages) > self._size:
            self._pages.popitem(last=False)
        return page
