"""Notify's callbacks: POST /notify/callbacks/status (delivery receipts) and /notify/callbacks/inbound (texts).

Both carry `Authorization: Bearer <notify.callback_token>`. Notify retries anything but a 2xx or a 4xx, so a
receipt for a message we do not know is answered 200 and dropped, and a malformed one 422.
"""

from __future__ import annotations

import hmac
import json
import logging
import unicodedata
from datetime import datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from hub.rules.text import text_problem
from hub.rules.validation import parse_instant
from hub.store.receipts import Inbound, Receipt, apply_receipt, receipt_patient, record_inbound
from hub.web.common import hub_of

log = logging.getLogger(__name__)
_BODY_LIMIT = 64_000
_RETRY_AFTER = "300"
# Words that turn "... stop" into something other than an instruction: "please don't stop", "when do I stop".
_NOT_A_COMMAND = frozenset(
    "not no never dont didnt doesnt cant cannot wont shouldnt when why how what do does did should".split()
)


class _Refused(Exception):
    def __init__(self, status: int, field: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.response = JSONResponse(
            {"errors": [{"field": field, "message": message}]}, status_code=status, headers=headers
        )


async def status(request: Request) -> Response:
    hub = hub_of(request)
    try:
        _authenticate(request)
        receipt = _receipt(await _json(request))
    except _Refused as refused:
        return refused.response
    # The message's patient's lock on PostgreSQL, not the hub's (the whole hub's when the message has none).
    patient = await receipt_patient(hub.db, receipt)
    async with hub.db.write(patient=patient) as tx:
        outcome = await apply_receipt(tx, receipt, settings=hub.settings, now=hub.clock.now(), locked=patient)
    if outcome == "unknown":
        log.info("delivery receipt (%s) for a message we do not know: ignored", receipt.status)
    if outcome == "unsettled":
        return JSONResponse(
            {"errors": [{"field": "reference", "message": "the message is being sent: try again later"}]},
            status_code=503,
            headers={"Retry-After": _RETRY_AFTER},
        )
    return JSONResponse({"outcome": outcome})


async def inbound(request: Request) -> Response:
    hub = hub_of(request)
    now = hub.clock.now()
    try:
        _authenticate(request)
        text = _inbound(await _json(request), now=now)
    except _Refused as refused:
        return refused.response
    async with hub.db.write() as tx:
        outcome = await record_inbound(tx, text, command=inbound_command(text.content), settings=hub.settings, now=now)
    return JSONResponse({"outcome": outcome})


def inbound_command(text: str) -> str | None:
    """ "stop" or "start" for STOP, "Stop.", "RAL STOP", "royal free start"...; None for anything else."""
    words = unicodedata.normalize("NFKC", text).split()
    if not 1 <= len(words) <= 4:
        return None
    words = [w.strip(".,;:!?\"'()[]*-").casefold() for w in words]
    *prefix, last = words
    if last not in ("stop", "start"):
        return None
    # A trust's prefix is plain letters and digits ("RAL", "royal free"); an apostrophe means a sentence.
    if any(not w.replace("-", "").isalnum() or w in _NOT_A_COMMAND for w in prefix):
        return None
    return last


def _authenticate(request: Request) -> None:
    expected = str(hub_of(request).settings.notify.callback_token)
    if not expected:
        # Never accept callbacks unauthenticated; 503 makes Notify retry, so none are lost while this is fixed.
        log.warning("a Notify callback arrived but notify.callback_token is not set: refused")
        raise _Refused(503, "authorization", "callbacks are not configured", {"Retry-After": _RETRY_AFTER})
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(given, expected.encode()):
        log.warning("a Notify callback with a missing or wrong token: refused")
        raise _Refused(401, "authorization", "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


async def _json(request: Request) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _BODY_LIMIT:
        raise _Refused(413, "body", f"must be {_BODY_LIMIT} bytes or fewer")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > _BODY_LIMIT:
                raise _Refused(413, "body", f"must be {_BODY_LIMIT} bytes or fewer")
    except ClientDisconnect as exc:
        raise _Refused(400, "body", "the request ended early") from exc
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _Refused(422, "body", "must be valid JSON") from exc


def _text(data: dict[str, Any], name: str, *, max_length: int, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_length:
        raise _Refused(422, name, f"must be a string of 1 to {max_length} characters")
    if problem := text_problem(value):
        raise _Refused(422, name, problem)
    return value.strip()


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Refused(422, "body", "must be a JSON object")
    return body


def _receipt(body: Any) -> Receipt:
    data = _object(body)
    notify_id = _text(data, "id", max_length=100)
    status = _text(data, "status", max_length=50)
    reference = _text(data, "reference", max_length=100, required=False)
    assert notify_id is not None and status is not None
    return Receipt(notify_id=notify_id, reference=reference or None, status=status)


def _inbound(body: Any, *, now: datetime) -> Inbound:
    data = _object(body)
    notify_id = _text(data, "id", max_length=100)
    source_number = _text(data, "source_number", max_length=30)
    content = data.get("message")
    if not isinstance(content, str) or len(content) > 10_000:
        raise _Refused(422, "message", "must be a string of at most 10000 characters")
    if problem := text_problem(content, newlines=True):
        raise _Refused(422, "message", problem)
    assert notify_id is not None and source_number is not None
    return Inbound(notify_id, source_number, content, _received_at(data.get("date_received"), now))


def _received_at(value: Any, now: datetime) -> datetime:
    """When Notify got the text; our own clock if the date is missing or odd (say, the year 9999), rather than lose
    a STOP."""
    parsed = parse_instant(value, naive_is_utc=True)
    return now if isinstance(parsed, str) else parsed
