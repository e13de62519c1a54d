"""What every Wayfinder request goes through around its handler: the X-Correlation-ID (echoed and logged,
WF-NFR-09), maintenance (503, WF-NFR-06), the rate limit (429, WF-NFR-03), the time limit (504, WF-NFR-02), and
errors as FHIR OperationOutcomes. Log lines carry no personal data: no NHS number, no date of birth, no token."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.rules.fhir import operation_outcome
from hub.web.common import hub_of

# Named apart from the hub's other logs: the standard asks that the Aggregator's requests be told apart.
log = logging.getLogger("hub.wayfinder")
FHIR_JSON = "application/fhir+json"
_CORRELATION = re.compile(r"[A-Za-z0-9._:-]{1,128}")
Handler = Callable[[Request], Awaitable[Response]]


class FhirError(Exception):
    def __init__(self, status: int, code: str, diagnostics: str, *, access_denied: bool = False) -> None:
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics, self.access_denied = status, code, diagnostics, access_denied


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # No caching anywhere: a patient's change shows in the next call (WF-NFR-04).
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=FHIR_JSON,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def outcome_response(error: FhirError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="wayfinder"'} if error.status == 401 else {}
    if error.status in (429, 503):
        headers["Retry-After"] = "1" if error.status == 429 else "600"
    body = operation_outcome(error.code, error.diagnostics, access_denied=error.access_denied)
    return fhir_response(body, error.status, headers)


class RateLimit:
    """At most `per_second` requests in any second, in this process (each web process has its own)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._recent: deque[datetime] = deque()

    def allow(self, now: datetime) -> bool:
        while self._recent and now - self._recent[0] >= timedelta(seconds=1):
            self._recent.popleft()
        if len(self._recent) >= self.per_second:
            return False
        self._recent.append(now)
        return True


def guarded(resource: str, handler: Handler) -> Handler:
    async def guard(request: Request) -> Response:
        started = time.perf_counter()
        correlation = request.headers.get("x-correlation-id", "")
        known = bool(_CORRELATION.fullmatch(correlation))
        try:
            response = await _answer(request, handler, correlation if known else "")
        except FhirError as error:
            response = outcome_response(error)
        if known:
            response.headers["X-Correlation-ID"] = correlation
        log.info(
            "wayfinder %s %s %d %.1fms correlation=%s",
            request.method,
            resource,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            correlation if known else "-",
        )
        return response

    return guard


async def _answer(request: Request, handler: Handler, correlation: str) -> Response:
    hub = hub_of(request)
    settings = hub.settings.nhs_app
    if not correlation:
        raise FhirError(400, "exception", '"X-Correlation-ID" header is required (letters, digits, . _ : -)')
    if settings.maintenance:
        raise FhirError(503, "transient", "Service Unavailable: planned maintenance; try again later")
    limit: RateLimit = request.app.state.wayfinder_rate
    if not limit.allow(hub.clock.now()):
        raise FhirError(429, "exception", "Too Many Requests")
    request.state.correlation_id = correlation
    try:
        return await asyncio.wait_for(handler(request), timeout=settings.timeout_ms / 1000)
    except TimeoutError as exc:
        raise FhirError(504, "exception", "Gateway Timeout") from exc
