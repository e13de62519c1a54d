"""The integration API under /api/v1: JSON in and out, Bearer API keys, every call audited by key name."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from hub.clock import london
from hub.db import Transaction
from hub.rules.feed import check_ref, validate_appointment, validate_patient, validate_site
from hub.rules.validation import printable
from hub.store.api_keys import ApiKey, get_api_key
from hub.store.audit import record_audit
from hub.store.events import list_events
from hub.store.feed import Applied, upsert_appointment, upsert_patient, upsert_site
from hub.store.letters import upsert_letter
from hub.vocabulary import API_CALL_REJECTED, API_CALL_UNCHANGED, ActorType, AuditAction, RecordType
from hub.vocabulary import LETTER_KIND_LABELS as LETTER_KINDS
from hub.web.api.openapi import openapi_document
from hub.web.common import Hub, hub_of

_JSON_LIMIT = 1_000_000
Errors = list[dict[str, str]]


class ApiError(Exception):
    def __init__(self, status: int, errors: Errors, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.errors = errors
        self.headers = headers or {}


def error_response(status: int, errors: Errors, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status, headers=headers)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.errors, exc.headers)


async def _authenticate(request: Request) -> ApiKey:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = await get_api_key(hub_of(request).db, token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise ApiError(
            401,
            [{"field": "authorization", "message": "a valid API key is required: Authorization: Bearer <key>"}],
            {"WWW-Authenticate": 'Bearer realm="hub"'},
        )
    return key


async def _receive(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, [{"field": "body", "message": f"must be {limit} bytes or fewer"}])
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, [{"field": "body", "message": f"must be {limit} bytes or fewer"}])
    except ClientDisconnect as exc:
        raise ApiError(400, [{"field": "body", "message": "the request ended early"}]) from exc
    return bytes(body)


async def _read_body(request: Request, key: ApiKey, action: str, ref: str, limit: int) -> bytes:
    try:
        return await _receive(request, limit)
    except ApiError:
        await _audited(request, key, API_CALL_REJECTED[action], ref, "body")
        raise


async def _read_json(request: Request, key: ApiKey, action: str, ref: str) -> Any:
    raw = await _read_body(request, key, action, ref, _JSON_LIMIT)
    try:
        return json.loads(raw)
    # RecursionError: deeply nested arrays, which json gives up on rather than parse.
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        await _audited(request, key, API_CALL_REJECTED[action], ref, "body")
        raise ApiError(422, [{"field": "body", "message": "must be valid JSON"}]) from exc


async def _audit_call(tx: Transaction, hub: Hub, key: ApiKey, action: AuditAction, ref: str, detail: str) -> None:
    await record_audit(
        tx,
        at=hub.clock.now(),
        actor_type=ActorType.API_KEY,
        actor_id=key.name,
        action=action,
        record_type=RecordType.API,
        record_id=printable(ref)[:100],  # a rejected ref can be any length, and hold any character
        detail=detail[:500],
    )


async def _audited(request: Request, key: ApiKey, action: AuditAction, ref: str, detail: str) -> None:
    hub = hub_of(request)
    async with hub.db.write() as tx:
        await _audit_call(tx, hub, key, action, ref, detail)


async def _audit_unchanged(tx: Transaction, hub: Hub, key: ApiKey, action: str, ref: str, applied: Applied) -> None:
    # Every call is audited; a resend that changed nothing is recorded as just that, not as a change.
    if applied.outcome == "unchanged":
        await _audit_call(tx, hub, key, API_CALL_UNCHANGED[action], ref, "")


async def _reject(request: Request, key: ApiKey, action: str, ref: str, errors: Errors, status: int = 422) -> Response:
    await _audited(request, key, API_CALL_REJECTED[action], ref, ",".join(sorted({e["field"] for e in errors})))
    return error_response(status, errors)


def _answer(name: str, ref: str, applied: Applied) -> Response:
    body = {name: ref, "outcome": applied.outcome}
    if applied.notice:
        body["notice"] = applied.notice
    return JSONResponse(body, status_code=201 if applied.outcome == "created" else 200)


async def put_site(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    code = request.path_params["site_code"]
    body = await _read_json(request, key, "put_site", code)
    values, errors = validate_site(body)
    errors = check_ref("site_code", code) + errors
    if (
        isinstance(body, dict)
        and isinstance(body.get("organisation"), str)
        and body["organisation"] != key.organisation_code
    ):
        errors.append(
            {"field": "organisation", "message": f"must be your organisation's code, {key.organisation_code}"}
        )
    if errors:
        return await _reject(request, key, "put_site", code, errors)
    async with hub.db.write() as tx:
        applied = await upsert_site(
            tx, organisation_id=key.organisation_id, code=code, values=values, actor=key.name, now=hub.clock.now()
        )
        await _audit_unchanged(tx, hub, key, "put_site", code, applied)
    if applied.outcome == "forbidden":
        return await _reject(request, key, "put_site", code, list(applied.errors), status=403)
    return _answer("site_code", code, applied)


async def put_patient(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    ref = request.path_params["patient_ref"]
    values, errors = validate_patient(
        await _read_json(request, key, "put_patient", ref), today=london(hub.clock.now()).date()
    )
    errors = check_ref("patient_ref", ref) + errors
    if errors:
        return await _reject(request, key, "put_patient", ref, errors)
    async with hub.db.write() as tx:
        applied = await upsert_patient(
            tx, organisation_id=key.organisation_id, ref=ref, values=values, actor=key.name, now=hub.clock.now()
        )
        await _audit_unchanged(tx, hub, key, "put_patient", ref, applied)
    return _answer("patient_ref", ref, applied)


async def put_appointment(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    ref = request.path_params["appointment_ref"]
    values, errors = validate_appointment(await _read_json(request, key, "put_appointment", ref))
    errors = check_ref("appointment_ref", ref) + errors
    if errors:
        return await _reject(request, key, "put_appointment", ref, errors)
    async with hub.db.write() as tx:
        applied = await upsert_appointment(
            tx,
            organisation_id=key.organisation_id,
            ref=ref,
            values=values,
            actor=key.name,
            now=hub.clock.now(),
            settings=hub.settings,
        )
        await _audit_unchanged(tx, hub, key, "put_appointment", ref, applied)
    if applied.outcome == "rejected":
        return await _reject(request, key, "put_appointment", ref, list(applied.errors))
    return _answer("appointment_ref", ref, applied)


async def put_letter(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    ref = request.path_params["letter_ref"]
    query = request.query_params
    errors = check_ref("letter_ref", ref)
    kind, title = query.get("kind", ""), query.get("title", "").strip()
    if kind not in LETTER_KINDS:
        errors.append({"field": "kind", "message": f"must be one of: {', '.join(LETTER_KINDS)}"})
    if not title or len(title) > 200 or any(ord(ch) < 32 for ch in title):
        errors.append({"field": "title", "message": "is required, 200 characters or fewer"})
    refs = {name: query.get(name) or None for name in ("appointment_ref", "patient_ref")}
    for name, value in refs.items():
        if value is not None:
            errors += check_ref(name, value)
    content = await _read_body(request, key, "put_letter", ref, hub.settings.letter_max_bytes)
    if not content.startswith(b"%PDF-"):
        errors.append({"field": "body", "message": "must be a PDF file"})
    if errors:
        return await _reject(request, key, "put_letter", ref, errors)
    async with hub.db.write() as tx:
        applied = await upsert_letter(
            tx,
            organisation_id=key.organisation_id,
            ref=ref,
            kind=kind,
            title=title,
            content=content,
            actor=key.name,
            now=hub.clock.now(),
            **refs,
        )
        await _audit_unchanged(tx, hub, key, "put_letter", ref, applied)
    if applied.outcome == "rejected":
        return await _reject(request, key, "put_letter", ref, list(applied.errors))
    return _answer("letter_ref", ref, applied)


async def get_events(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    after_text, limit_text = request.query_params.get("after", "0") or "0", request.query_params.get("limit", "100")
    errors = []
    if not (after_text.isascii() and after_text.isdigit() and len(after_text) < 19):
        errors.append({"field": "after", "message": "must be a cursor from next_cursor (or 0 to start)"})
    page_limit = hub.settings.api_page_limit
    if not (limit_text.isascii() and limit_text.isdigit() and 1 <= int(limit_text[:6]) <= page_limit):
        errors.append({"field": "limit", "message": f"must be a whole number from 1 to {page_limit}"})
    if errors:
        return await _reject(request, key, "get_events", "events", errors)
    async with hub.db.write() as tx:
        events = await list_events(
            tx, organisation_id=key.organisation_id, after=int(after_text), limit=int(limit_text)
        )
        await record_audit(
            tx,
            at=hub.clock.now(),
            actor_type=ActorType.API_KEY,
            actor_id=key.name,
            action=AuditAction.EVENTS_READ,
            record_type=RecordType.API,
            record_id="events",
            detail=f"after {after_text}: {len(events)}",
        )
    next_cursor = events[-1]["id"] if events else after_text
    return JSONResponse({"events": events, "next_cursor": next_cursor})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(hub_of(request).settings))
