"""The integration API under /api/v1: JSON in and out, Bearer API keys, every call audited by key name."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from hub.clock import london
from hub.db import Transaction
from hub.rules.feed import (
    Applied,
    check_ref,
    read_appointment,
    read_events_query,
    read_letter_query,
    read_patient,
    read_site,
)
from hub.rules.slots import read_slot
from hub.rules.text import printable
from hub.rules.validation import Errors
from hub.store.api_keys import ApiKey, get_api_key
from hub.store.audit import record_audit
from hub.store.events import list_events
from hub.store.feed import put_site_map, upsert_appointment, upsert_patient, upsert_site
from hub.store.feed_locks import Touches, feed_write, feed_write_all
from hub.store.letters import upsert_letter
from hub.store.nhs_app import set_nhs_app_excluded
from hub.store.slots import upsert_slot, withdraw_slot
from hub.vocabulary import API_CALL_REJECTED, API_CALL_UNCHANGED, ActorType, AuditAction, RecordType
from hub.web.api.openapi import openapi_document
from hub.web.common import Hub, hub_of

_JSON_LIMIT = 1_000_000


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
    async with hub.db.write(keys=()) as tx:  # an audit row appended: no lock of the whole hub
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
    site, errors = read_site(await _read_json(request, key, "put_site", code), organisation_code=key.organisation_code)
    errors = check_ref("site_code", code) + errors
    if site is None or errors:
        return await _reject(request, key, "put_site", code, errors)
    async with hub.db.write() as tx:
        applied = await upsert_site(
            tx,
            organisation_id=key.organisation_id,
            code=code,
            values=site.values(),
            actor=key.name,
            now=hub.clock.now(),
        )
        await _audit_unchanged(tx, hub, key, "put_site", code, applied)
    return _answer("site_code", code, applied)


# What a site map may be: an image every browser shows, told by its first bytes, not by the Content-Type.
_MAP_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def _map_type(content: bytes) -> str | None:
    for magic, media_type in _MAP_TYPES:
        if content.startswith(magic):
            return media_type
    head = content[:1024].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in content[:4096].lower():
        return "image/svg+xml"
    return None


async def put_site_map_file(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    code = request.path_params["site_code"]
    content = await _read_body(request, key, "put_site", code, hub.settings.letter_max_bytes)
    media_type = _map_type(content)
    errors = check_ref("site_code", code)
    if media_type is None:
        errors.append({"field": "body", "message": "must be a PNG, JPEG or SVG image"})
    if media_type is None or errors:
        return await _reject(request, key, "put_site", code, errors)
    async with hub.db.write() as tx:
        applied = await put_site_map(
            tx,
            organisation_id=key.organisation_id,
            code=code,
            content=content,
            media_type=media_type,
            actor=key.name,
            now=hub.clock.now(),
        )
        await _audit_unchanged(tx, hub, key, "put_site", code, applied)
    if applied.outcome == "rejected":
        return await _reject(request, key, "put_site", code, list(applied.errors))
    return _answer("site_code", code, applied)


async def put_patient(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    ref = request.path_params["patient_ref"]
    patient, errors = read_patient(
        await _read_json(request, key, "put_patient", ref), today=london(hub.clock.now()).date()
    )
    errors = check_ref("patient_ref", ref) + errors
    if patient is None or errors:
        return await _reject(request, key, "put_patient", ref, errors)
    async with feed_write(hub.db, key.organisation_id, ref) as tx:
        applied = await upsert_patient(
            tx,
            organisation_id=key.organisation_id,
            ref=ref,
            values=patient.values(),
            actor=key.name,
            now=hub.clock.now(),
            settings=hub.settings,
        )
        # Kept apart from the record's fingerprint (bodies without it stay "unchanged"); left out, it stays as set.
        if patient.nhs_app_excluded is not None and applied.record_id is not None:
            excluded = await set_nhs_app_excluded(
                tx, patient_id=applied.record_id, excluded=patient.nhs_app_excluded, actor=key.name, now=hub.clock.now()
            )
            if excluded and applied.outcome == "unchanged":
                applied = Applied("updated", applied.record_id)
        await _audit_unchanged(tx, hub, key, "put_patient", ref, applied)
    if applied.outcome == "rejected":
        return await _reject(request, key, "put_patient", ref, list(applied.errors))
    return _answer("patient_ref", ref, applied)


async def put_appointment(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    ref = request.path_params["appointment_ref"]
    appointment, errors = read_appointment(await _read_json(request, key, "put_appointment", ref))
    errors = check_ref("appointment_ref", ref) + errors
    if appointment is None or errors:
        return await _reject(request, key, "put_appointment", ref, errors)
    async with feed_write(hub.db, key.organisation_id, appointment.patient_ref, appointment_ref=ref) as tx:
        applied = await upsert_appointment(
            tx,
            organisation_id=key.organisation_id,
            ref=ref,
            values=appointment.values(),
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
    query, query_errors = read_letter_query(request.query_params)
    errors = check_ref("letter_ref", ref) + query_errors
    content = await _read_body(request, key, "put_letter", ref, hub.settings.letter_max_bytes)
    if not content.startswith(b"%PDF-"):
        errors.append({"field": "body", "message": "must be a PDF file"})
    if query is None or errors:
        return await _reject(request, key, "put_letter", ref, errors)
    touches = Touches(key.organisation_id, query.patient_ref, query.appointment_ref, letter_ref=ref)
    async with feed_write_all(hub.db, [touches]) as tx:
        applied = await upsert_letter(
            tx,
            organisation_id=key.organisation_id,
            ref=ref,
            kind=str(query.kind),
            title=query.title,
            content=content,
            actor=key.name,
            now=hub.clock.now(),
            appointment_ref=query.appointment_ref,
            patient_ref=query.patient_ref,
        )
        await _audit_unchanged(tx, hub, key, "put_letter", ref, applied)
    if applied.outcome == "rejected":
        return await _reject(request, key, "put_letter", ref, list(applied.errors))
    return _answer("letter_ref", ref, applied)


async def put_slot(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    ref = request.path_params["slot_ref"]
    slot, errors = read_slot(await _read_json(request, key, "put_slot", ref))
    errors = check_ref("slot_ref", ref) + errors
    if slot is None or errors:
        return await _reject(request, key, "put_slot", ref, errors)
    async with hub.db.write() as tx:
        applied = await upsert_slot(
            tx, organisation_id=key.organisation_id, ref=ref, values=slot.values(), actor=key.name, now=hub.clock.now()
        )
        await _audit_unchanged(tx, hub, key, "put_slot", ref, applied)
    if applied.outcome == "rejected":
        return await _reject(request, key, "put_slot", ref, list(applied.errors))
    return _answer("slot_ref", ref, applied)


async def delete_slot(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    ref = request.path_params["slot_ref"]
    errors = check_ref("slot_ref", ref)
    if errors:
        return await _reject(request, key, "delete_slot", ref, errors)
    async with hub.db.write() as tx:
        applied = await withdraw_slot(
            tx, organisation_id=key.organisation_id, ref=ref, actor=key.name, now=hub.clock.now()
        )
        await _audit_unchanged(tx, hub, key, "delete_slot", ref, applied)
    if applied.outcome == "rejected":
        return await _reject(request, key, "delete_slot", ref, list(applied.errors))
    return _answer("slot_ref", ref, applied)


async def get_events(request: Request) -> Response:
    hub, key = hub_of(request), await _authenticate(request)
    query, errors = read_events_query(request.query_params, page_limit=hub.settings.api_page_limit)
    if query is None:
        return await _reject(request, key, "get_events", "events", errors)
    # Read with the ordinary lock shared: the "events" lock already keeps ids committing in order (a reader sees
    # a prefix), and the audit row is an append, so a poll of the feed holds up no patient's write.
    async with hub.db.write(keys=()) as tx:
        events = await list_events(tx, organisation_id=key.organisation_id, after=query.after, limit=query.limit)
        await record_audit(
            tx,
            at=hub.clock.now(),
            actor_type=ActorType.API_KEY,
            actor_id=key.name,
            action=AuditAction.EVENTS_READ,
            record_type=RecordType.API,
            record_id="events",
            detail=f"after {query.after}: {len(events)}",
        )
    next_cursor = events[-1]["id"] if events else str(query.after)
    return JSONResponse({"events": events, "next_cursor": next_cursor})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(hub_of(request).settings))
