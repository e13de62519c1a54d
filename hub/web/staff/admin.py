"""Admin pages: staff accounts (disable, reset the authenticator) and the audit log."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hub.rules.validation import printable
from hub.store.audit import record_staff_read
from hub.store.staff import disable_staff, list_staff, reset_totp
from hub.store.staff_lookup import list_audit
from hub.store.staff_scope import staff_in_scope
from hub.vocabulary import AuditAction, RecordType
from hub.web.common import hub_of, read_form
from hub.web.staff.common import require_admin, scope_of, see_other, staff_page

DONE = {
    "disabled": "The account is disabled and its sessions ended.",
    "reset": "The authenticator is reset. They enrol a new one at their next sign-in.",
}
AUDIT_FILTERS = ("actor_type", "actor_id", "action", "record_type", "record_id")


async def staff_list(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    return staff_page(
        request,
        "admin_staff.html",
        {
            "people": await list_staff(hub.db, scope=scope_of(request)),
            "me": me,
            "notice": DONE.get(request.query_params.get("done", ""), ""),
        },
    )


async def disable(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    await read_form(request)
    await _staff_or_404(request)
    await disable_staff(hub.db, staff_id=request.path_params["id"], by=me["id"], now=hub.clock.now())
    return see_other("/staff/admin/staff?done=disabled")


async def reset(request: Request) -> Response:
    hub = hub_of(request)
    me = await require_admin(request)
    await read_form(request)
    await _staff_or_404(request)
    await reset_totp(hub.db, staff_id=request.path_params["id"], by=me["id"], now=hub.clock.now())
    return see_other("/staff/admin/staff?done=reset")


async def _staff_or_404(request: Request) -> None:
    """An account of another trust is not found, as its patients are not."""
    if not await staff_in_scope(hub_of(request).db, request.path_params["id"], scope_of(request)):
        raise HTTPException(404)


async def audit_log(request: Request) -> Response:
    hub = hub_of(request)
    staff = await require_admin(request)
    values = {k: printable(request.query_params.get(k, "")).strip()[:100] for k in AUDIT_FILTERS}
    events = await list_audit(
        hub.db,
        scope=scope_of(request),
        actor_type=values["actor_type"],
        actor_id=values["actor_id"],
        action=values["action"],
        record_type=values["record_type"],
        record_id=values["record_id"],
    )
    await record_staff_read(
        hub.db,
        at=hub.clock.now(),
        staff_id=staff["id"],
        action=AuditAction.AUDIT_LOG_VIEWED,
        record_type=RecordType.AUDIT_LOG,
        record_id="",
        detail=f"{len(events)} rows",
    )
    return staff_page(request, "admin_audit.html", {"values": values, "events": events})
